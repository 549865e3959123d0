import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findHeadEnd, forwardedLines, parseRequestHead, parseResponseHead } from './head.js';
import type { RequestHead, ResponseHead } from './head.js';

function req(text: string): RequestHead {
  const r = parseRequestHead(text);
  if (typeof r === 'string') throw new Error(r);
  return r;
}

describe('request heads', () => {
  it('parses method, target, version, headers and framing', () => {
    const h = req('POST /a?b=c HTTP/1.1\r\nHost: Example.COM:8080\r\nContent-Length: 12\r\nX-A:  spaced  \r\n\r\n');
    assert.equal(h.method, 'POST');
    assert.equal(h.target, '/a?b=c');
    assert.equal(h.minor, 1);
    assert.equal(h.hostname, 'example.com');
    assert.equal(h.contentLength, 12);
    assert.equal(h.chunked, false);
    assert.equal(h.close, false);
    assert.equal(h.headers.find((x) => x.name === 'x-a')?.value, 'spaced');
  });

  it('reduces absolute-form to origin-form with the authority as Host', () => {
    const h = req('GET http://api.example.com:81/x?y HTTP/1.1\r\nHost: other\r\n\r\n');
    assert.equal(h.target, '/x?y');
    assert.equal(h.host, 'api.example.com:81');
    assert.equal(h.headers.filter((x) => x.name === 'host').length, 1);
  });

  it('knows when the client wants to close', () => {
    assert.equal(req('GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n').close, true);
    assert.equal(req('GET / HTTP/1.0\r\n\r\n').close, true);
    assert.equal(req('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n').close, false);
  });

  it('accepts chunked as the final coding only', () => {
    assert.equal(req('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n').chunked, true);
    assert.equal(parseRequestHead('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n'), 'CORRAL_ERR_AMBIGUOUS_LENGTH');
    assert.equal(parseRequestHead('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n'), 'CORRAL_ERR_AMBIGUOUS_LENGTH');
  });

  it('finds the end of a head across reads', () => {
    const b = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY');
    assert.equal(findHeadEnd(b, 0), b.length - 4);
    assert.equal(findHeadEnd(b.subarray(0, 20), 0), -1);
    assert.equal(findHeadEnd(b, 25), b.length - 4);
  });

  it('treats Connection-named fields as hop-by-hop', () => {
    const r = req('GET / HTTP/1.1\r\nHost: a\r\nKeep-Alive: 5\r\nX-Secret: s\r\nX-Other: o\r\nConnection: x-secret\r\n\r\n');
    assert.equal(forwardedLines(r, false), 'Host: a\r\nX-Other: o\r\n');
  });
});

describe('response heads', () => {
  const res = (text: string): ResponseHead => {
    const r = parseResponseHead(text);
    if (typeof r === 'string') throw new Error(r);
    return r;
  };
  it('parses status, reason and framing', () => {
    const r = res('HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\n');
    assert.equal(r.status, 404);
    assert.equal(r.reason, 'Not Found');
    assert.equal(r.contentLength, 3);
    assert.equal(res('HTTP/1.1 200\r\n\r\n').reason, '');
    assert.equal(res('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n').closeDelimited, true);
    assert.equal(res('HTTP/1.0 200 OK\r\n\r\n').close, true);
  });
  it('rejects malformed responses', () => {
    for (const t of ['HTTP/1.1 20 OK\r\n\r\n', 'HTTP/2 200\r\n\r\n', 'HTTP/1.1 700 Odd\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'HTTP/1.1 200 OK\r\nX: a\x00\r\n\r\n']) {
      assert.equal(parseResponseHead(t), 'CORRAL_ERR_BAD_RESPONSE', JSON.stringify(t));
    }
  });

  it('takes Content-Length as 1 to 15 digits and nothing else', () => {
    assert.equal(res('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n').contentLength, 0);
    assert.equal(res('HTTP/1.1 200 OK\r\nContent-Length:  007 \r\n\r\n').contentLength, 7);
    assert.equal(res('HTTP/1.1 200 OK\r\nContent-Length: 999999999999999\r\n\r\n').contentLength, 999999999999999);
    for (const v of ['', '1a', '+1', '-1', '1 2', '0x10', '1.0', '1e3', '1234567890123456', '\u0661']) {
      assert.equal(parseResponseHead(`HTTP/1.1 200 OK\r\nContent-Length: ${v}\r\n\r\n`), 'CORRAL_ERR_BAD_RESPONSE', JSON.stringify(v));
      assert.equal(parseRequestHead(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${v}\r\n\r\n`), 'CORRAL_ERR_AMBIGUOUS_LENGTH', JSON.stringify(v));
    }
  });
  it('reads the Connection values keep-alive and close in any case', () => {
    for (const [v, close] of [['keep-alive', false], ['Keep-Alive', false], ['close', true], ['CLOSE', true], ['keep-alive, close', true], ['Keep-Alive,x-a', false]] as const) {
      const r = res(`HTTP/1.1 200 OK\r\nConnection: ${v}\r\nX-A: 1\r\n\r\n`);
      assert.equal(r.close, close, v);
      assert.equal(r.connectionTokens.includes('keep-alive'), v.toLowerCase().includes('keep-alive'), v);
      assert.equal(r.special.length, v.includes('x-a') ? 2 : 1, v);
    }
    assert.equal(res('HTTP/1.0 200 OK\r\nConnection: KEEP-ALIVE\r\n\r\n').close, false);
  });
});

describe('header line scanning', () => {
  // The definition the hand-written scanner implements (RFC 9110 §5.1, §5.5; RFC 9112 §5.1-5.2).
  const LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/s;
  const BAD = /[\x00-\x08\x0a-\x1f\x7f]/;
  it('accepts exactly the lines the grammar accepts, with the same name and value', async () => {
    const fc = (await import('fast-check')).default;
    const chars = fc.constantFrom(...'aZ-_:; \t\x01\x7f\r\né!~0'.split(''));
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 12 }).map((a) => a.join('')), (line) => {
        if (line.includes('\r\n')) return;
        const m = LINE.exec(line);
        const ok = m !== null && !BAD.test(m[2] as string);
        const r = parseRequestHead(`GET / HTTP/1.1\r\nHost: a\r\n${line}\r\n\r\n`);
        if (!ok) {
          assert.equal(typeof r, 'string', JSON.stringify(line));
          return;
        }
        assert.notEqual(typeof r, 'string', JSON.stringify(line));
        const h = (r as RequestHead).headers[1];
        // Lines naming framing or Host fields may be rejected for other reasons; compare the rest.
        assert.equal(h?.name, (m?.[1] as string).toLowerCase());
        assert.equal(h?.value, m?.[2]);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('forwarded header lines', () => {
  const HOP = ['connection', 'proxy-connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade', 'trailer'];
  const FWD = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded'];
  const OTHER = ['x-a', 'cookie', 'accept', 'x-forwarded', 'forwarde', 'tee', 'upgrades', 'x-forwarded-port', 'proxy-connectio', 'keep_alive', 'x-private'];
  it('drops exactly the hop-by-hop lines (and the forwarding ones when asked), whatever their case', async () => {
    const fc = (await import('fast-check')).default;
    const recase = (name: string, mask: number): string =>
      [...name].map((c, i) => ((mask >> i % 30) & 1 ? c.toUpperCase() : c)).join('');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...HOP.filter((n) => n !== 'transfer-encoding'), ...FWD, ...OTHER), fc.integer({ min: 0, max: 2 ** 30 })), { maxLength: 8 }),
        fc.boolean(),
        fc.boolean(),
        (fields, namePrivate, dropForwarding) => {
          const lines = ['Host: a', ...fields.map(([n, m], i) => `${recase(n, m)}: v${i}`)];
          if (namePrivate) lines.push('Connection: x-private');
          const r = parseRequestHead(`GET / HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`);
          if (typeof r === 'string') throw new Error(r);
          const connection = lines.filter((l) => l.toLowerCase().startsWith('connection:')).map((l) => l.slice(11).trim().toLowerCase());
          const named = connection.join(',').split(',').map((t) => t.trim());
          const expected = lines.filter((l) => {
            const name = l.slice(0, l.indexOf(':')).toLowerCase();
            if (HOP.includes(name) || named.includes(name)) return false;
            return !(dropForwarding && FWD.includes(name));
          });
          assert.equal(forwardedLines(r, dropForwarding), expected.map((l) => `${l}\r\n`).join(''));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('request line scanning', () => {
  // The grammar the hand-written scanner implements (RFC 9112 §3), as a reference.
  const LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f]+) HTTP\/(\d)\.(\d)$/;
  it('accepts exactly the request lines the grammar accepts, with the same method, target and version', async () => {
    const fc = (await import('fast-check')).default;
    const chars = fc.constantFrom(...'GET /aZ%é?~\t\x01\x7fHTP10.9\r'.split(''));
    const piece = fc.array(chars, { maxLength: 6 }).map((a) => a.join(''));
    fc.assert(
      fc.property(piece, piece, fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/1.', 'HTTP/11.1', 'HTTP/a.1', 'http/1.1'), fc.boolean(), (a, b, version, spaced) => {
        const line = spaced ? `${a} ${b} ${version}` : `${a}${b} ${version}`;
        if (line.includes('\r')) return;
        const m = LINE.exec(line);
        const r = parseRequestHead(`${line}\r\nHost: h\r\n\r\n`);
        if (m === null) {
          assert.equal(r, 'CORRAL_ERR_BAD_REQUEST', JSON.stringify(line));
          return;
        }
        if (m[3] !== '1' || (m[4] !== '0' && m[4] !== '1')) {
          assert.equal(r, 'CORRAL_ERR_VERSION', JSON.stringify(line));
          return;
        }
        if (typeof r === 'string') {
          // A valid line whose target is not origin-form may still be refused (absolute-form rules).
          assert.ok(!(m[2] as string).startsWith('/'), `${JSON.stringify(line)}: ${r}`);
          return;
        }
        assert.equal(r.method, m[1]);
        assert.equal(r.minor, m[4] === '1' ? 1 : 0);
        if ((m[2] as string).startsWith('/')) assert.equal(r.target, m[2]);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('status line scanning', () => {
  const LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
  it('accepts exactly the status lines the grammar accepts, with the same status and reason', async () => {
    const fc = (await import('fast-check')).default;
    const chars = fc.constantFrom(...'HTP/1.0 2049OK\té\x01\x7fx'.split(''));
    fc.assert(
      fc.property(fc.constantFrom('HTTP/1.1 ', 'HTTP/1.0 ', 'HTTP/1.2 ', 'HTTP/2 ', 'HTTP/1.1', ''), fc.array(chars, { maxLength: 9 }).map((a) => a.join('')), (prefix, rest) => {
        const line = prefix + rest;
        const m = LINE.exec(line);
        const r = parseResponseHead(`${line}\r\nContent-Length: 0\r\n\r\n`);
        const valid = m !== null && Number(m[2]) >= 100 && Number(m[2]) <= 599;
        if (!valid) {
          assert.equal(r, 'CORRAL_ERR_BAD_RESPONSE', JSON.stringify(line));
          return;
        }
        assert.notEqual(typeof r, 'string', JSON.stringify(line));
        const res = r as ResponseHead;
        assert.equal(res.status, Number(m?.[2]));
        assert.equal(res.reason, m?.[3] ?? '');
        assert.equal(res.minor, m?.[1] === '1' ? 1 : 0);
      }),
      { numRuns: 5000 },
    );
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { httpFarmYaml, rawExchange, request, startNode, startRawServer, startUpstream, statusOf } from '../../../test/support/farm.js';
import type { Farm, Upstream } from '../../../test/support/farm.js';

describe('malformed requests get a 4xx and reach no server', () => {
  let up: Upstream;
  let farm: Farm;
  before(async () => {
    up = await startUpstream('s1');
    farm = await startNode(httpFarmYaml([up.port]));
  });
  after(async () => {
    await farm.close();
    await up.close();
  });

  const cases: [string, string, number][] = [
    ['Content-Length with Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['duplicate Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', 400],
    ['Content-Length list', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello', 400],
    ['invalid Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n', 400],
    ['Content-Length with a sign', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello', 400],
    ['Transfer-Encoding not ending in chunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400],
    ['Transfer-Encoding on HTTP/1.0', 'POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n', 400],
    ['space before the colon', 'GET / HTTP/1.1\r\nHost: a\r\nX-Bad : v\r\n\r\n', 400],
    ['control character in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\x01b\r\n\r\n', 400],
    ['NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\x00b\r\n\r\n', 400],
    ['bare LF inside the head', 'GET / HTTP/1.1\r\nHost: a\nX-Smuggle: 1\r\n\r\n', 400],
    ['invalid header name', 'GET / HTTP/1.1\r\nHost: a\r\nX(Bad): v\r\n\r\n', 400],
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    // Dropping a Content-Length named in Connection while framing by it would pass the body on as a second request.
    ['Content-Length named in Connection', 'POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 31\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['Host named in Connection', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, host\r\n\r\n', 400],
    ['no Host on HTTP/1.1', 'GET / HTTP/1.1\r\nX: y\r\n\r\n', 400],
    ['invalid Host', 'GET / HTTP/1.1\r\nHost: a b@c\r\n\r\n', 400],
    ['malformed request line', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['garbage', 'HELLO\r\n\r\n', 400],
    ['HTTP/2 preface over HTTP/1', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505],
    ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 400],
    ['malformed chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', 400],
  ];
  for (const [name, raw, status] of cases) {
    it(`${name} → ${status}`, async () => {
      const before = up.hits;
      const reply = await rawExchange(farm.port, raw);
      assert.equal(statusOf(reply), status, reply);
      assert.match(reply, /x-corral-error: CORRAL_ERR_/);
      assert.equal(up.hits, before, 'the request reached a server');
    });
  }

  it('an oversized header section → 431', async () => {
    const before = up.hits;
    const reply = await rawExchange(farm.port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.equal(statusOf(reply), 431);
    assert.equal(up.hits, before);
  });

  it('still serves well-formed requests afterwards', async () => {
    const r = await request(farm.url);
    assert.equal(r.status, 200);
  });
});

describe('a misbehaving server gets a 502, never a crash', () => {
  const serve = async (respond: (socket: import('node:net').Socket) => void): Promise<{ farm: Farm; close(): Promise<void> }> => {
    const raw = await startRawServer((s) => s.once('data', () => respond(s)));
    const farm = await startNode(httpFarmYaml([raw.port], '    retries: 0'));
    return {
      farm,
      close: async () => {
        await farm.close();
        await raw.close();
      },
    };
  };

  for (const [what, head] of [
    ['garbage instead of a response head', 'SSH-2.0-OpenSSH_9.2\r\n\r\n'],
    ['a response whose Connection names Content-Length', 'HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 3\r\n\r\nabc'],
    ['both Content-Length and Transfer-Encoding in a response', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'],
  ]) {
    it(`${what}: 502`, async () => {
      const t = await serve((s) => s.write(head as string));
      try {
        const r = await request(t.farm.url);
        assert.equal(r.status, 502);
        assert.match(r.body, /CORRAL_ERR_BAD_RESPONSE/);
      } finally {
        await t.close();
      }
    });
  }

  it('a close before the response head', async () => {
    const t = await serve((s) => s.end());
    try {
      const r = await request(t.farm.url, { method: 'POST', body: 'x' });
      assert.equal(r.status, 502);
      assert.match(r.body, /CORRAL_ERR_SERVER_FAILED/);
    } finally {
      await t.close();
    }
  });

  it('a close in the middle of the body closes the client connection', async () => {
    const t = await serve((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a few bytes'));
    try {
      await assert.rejects(request(t.farm.url), /aborted|socket hang up|ECONNRESET/);
    } finally {
      await t.close();
    }
  });


  it('a second response after the first is not forwarded and the connection is not reused', async () => {
    let conns = 0;
    const raw = await startRawServer((s) => {
      conns++;
      s.once('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil'));
    });
    const farm = await startNode(httpFarmYaml([raw.port]));
    try {
      const a = await request(farm.url);
      assert.equal(a.body, 'ok');
      const b = await request(farm.url);
      assert.equal(b.body, 'ok');
      assert.equal(conns, 2);
    } finally {
      await farm.close();
      await raw.close();
    }
  });

  it('a malformed chunked response body', async () => {
    const t = await serve((s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n'));
    try {
      await assert.rejects(request(t.farm.url));
    } finally {
      await t.close();
    }
  });
});

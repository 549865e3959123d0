import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  PROXY_V1_MAX,
  PROXY_V2_MAX_LENGTH,
  PROXY_V2_SIGNATURE,
  ProxyHeaderReader,
  bytesToIpv6,
  encodeProxyHeader,
  encodeProxyV1,
  encodeProxyV2,
  ipv6ToBytes,
  parseProxyHeader,
  proxyAddresses,
} from './proxy-protocol.js';
import type { ProxyAddresses, ProxyParseResult, ProxyTlv } from './proxy-protocol.js';

const V4: ProxyAddresses = {
  family: 'tcp4',
  source: { address: '192.0.2.7', port: 51000 },
  destination: { address: '10.0.0.1', port: 443 },
};
const V6: ProxyAddresses = {
  family: 'tcp6',
  source: { address: '2001:db8::7', port: 51000 },
  destination: { address: 'fe80::1', port: 8443 },
};

function v2(verCmd: number, fam: number, body: Buffer | number[]): Buffer {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([verCmd, fam]), len, b]);
}

function done(r: ProxyParseResult): Extract<ProxyParseResult, { status: 'done' }> {
  assert.equal(r.status, 'done', r.status === 'error' ? r.reason : 'need-more');
  return r as Extract<ProxyParseResult, { status: 'done' }>;
}

function errorOf(r: ProxyParseResult): string {
  assert.equal(r.status, 'error');
  return (r as { reason: string }).reason;
}

describe('PROXY v1 encoding', () => {
  it('writes TCP4, TCP6 and UNKNOWN lines', () => {
    assert.equal(encodeProxyV1(V4).toString('latin1'), 'PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\n');
    assert.equal(encodeProxyV1(V6).toString('latin1'), 'PROXY TCP6 2001:db8::7 fe80::1 51000 8443\r\n');
    assert.equal(encodeProxyV1(null).toString('latin1'), 'PROXY UNKNOWN\r\n');
    assert.equal(encodeProxyHeader('v1', V4).toString('latin1'), 'PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\n');
  });

  it('fits the 107-byte limit with the longest addresses', () => {
    const longest: ProxyAddresses = {
      family: 'tcp6',
      source: { address: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', port: 65535 },
      destination: { address: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', port: 65535 },
    };
    const h = encodeProxyV1(longest);
    assert.equal(h.length, 104);
    assert.ok(h.length <= PROXY_V1_MAX);
  });

  it('drops an IPv6 zone index', () => {
    const h = encodeProxyV1({ ...V6, destination: { address: 'fe80::1%eth0', port: 1 } });
    assert.equal(h.toString('latin1'), 'PROXY TCP6 2001:db8::7 fe80::1 51000 1\r\n');
  });

  it('refuses addresses of the wrong family and bad ports', () => {
    assert.throws(() => encodeProxyV1({ ...V4, source: { address: '::1', port: 1 } }), RangeError);
    assert.throws(() => encodeProxyV1({ ...V6, source: { address: '1.2.3.4', port: 1 } }), RangeError);
    assert.throws(() => encodeProxyV1({ ...V4, source: { address: '1.2.3.4', port: 65536 } }), RangeError);
    assert.throws(() => encodeProxyV1({ ...V4, source: { address: '1.2.3.4', port: -1 } }), RangeError);
    assert.throws(() => encodeProxyV1({ ...V4, source: { address: 'evil\r\nGET /', port: 1 } }), RangeError);
  });
});

describe('PROXY v2 encoding', () => {
  it('writes TCP over IPv4 byte for byte', () => {
    const expected = Buffer.concat([
      PROXY_V2_SIGNATURE,
      Buffer.from([0x21, 0x11, 0x00, 0x0c, 192, 0, 2, 7, 10, 0, 0, 1, 0xc7, 0x38, 0x01, 0xbb]),
    ]);
    assert.deepEqual(encodeProxyV2(V4), expected);
    assert.deepEqual(encodeProxyHeader('v2', V4), expected);
  });

  it('writes TCP over IPv6', () => {
    const h = encodeProxyV2(V6);
    assert.equal(h.length, 16 + 36);
    assert.equal(h[12], 0x21);
    assert.equal(h[13], 0x21);
    assert.equal(h.readUInt16BE(14), 36);
    assert.deepEqual(h.subarray(16, 32), Buffer.from('20010db8000000000000000000000007', 'hex'));
    assert.deepEqual(h.subarray(32, 48), Buffer.from('fe800000000000000000000000000001', 'hex'));
    assert.equal(h.readUInt16BE(48), 51000);
    assert.equal(h.readUInt16BE(50), 8443);
  });

  it('writes LOCAL as a bare 16-byte header', () => {
    assert.deepEqual(encodeProxyV2(null), Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]));
  });

  it('appends TLVs', () => {
    const h = encodeProxyV2(V4, [{ type: 0x02, value: Buffer.from('example.com') }]);
    assert.equal(h.readUInt16BE(14), 12 + 3 + 11);
    assert.deepEqual(h.subarray(28), Buffer.from([0x02, 0x00, 0x0b, ...Buffer.from('example.com')]));
  });
});

describe('proxyAddresses', () => {
  it('unwraps IPv4-mapped addresses when both ends are IPv4', () => {
    assert.deepEqual(proxyAddresses('::ffff:192.0.2.7', 5, '::ffff:10.0.0.1', 80), {
      family: 'tcp4',
      source: { address: '192.0.2.7', port: 5 },
      destination: { address: '10.0.0.1', port: 80 },
    });
  });

  it('maps an IPv4 end into IPv6 beside an IPv6 end', () => {
    const a = proxyAddresses('192.0.2.7', 5, '2001:db8::1', 80);
    assert.equal(a?.family, 'tcp6');
    assert.equal(a?.source.address, '::ffff:192.0.2.7');
    const h = done(parseProxyHeader(encodeProxyV2(a)));
    assert.equal(h.header.addresses?.source.address, '::ffff:192.0.2.7');
  });

  it('returns null for a missing or invalid end', () => {
    assert.equal(proxyAddresses(undefined, 5, '10.0.0.1', 80), null);
    assert.equal(proxyAddresses('10.0.0.2', undefined, '10.0.0.1', 80), null);
    assert.equal(proxyAddresses('not-an-ip', 5, '10.0.0.1', 80), null);
    assert.equal(proxyAddresses('10.0.0.2', 70000, '10.0.0.1', 80), null);
  });

  it('strips zone indexes', () => {
    assert.equal(proxyAddresses('fe80::2%lo', 5, 'fe80::1%lo', 80)?.source.address, 'fe80::2');
  });
});

describe('PROXY v1 parsing', () => {
  it('reads TCP4 and reports the bytes consumed', () => {
    const r = done(parseProxyHeader(Buffer.from('PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\nGET / HTTP/1.1\r\n')));
    assert.equal(r.consumed, 41);
    assert.deepEqual(r.header, { version: 1, command: 'proxy', addresses: V4, tlvs: [] });
  });

  it('reads TCP6 and canonicalizes the addresses', () => {
    const r = done(parseProxyHeader(Buffer.from('PROXY TCP6 2001:DB8:0:0:0:0:0:7 FE80::0001 51000 8443\r\n')));
    assert.deepEqual(r.header.addresses, V6);
  });

  it('reads UNKNOWN with or without trailing fields', () => {
    for (const line of ['PROXY UNKNOWN\r\n', 'PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n', 'PROXY UNKNOWN whatever is here\r\n']) {
      const r = done(parseProxyHeader(Buffer.from(line + 'payload')));
      assert.equal(r.consumed, line.length);
      assert.equal(r.header.command, 'unknown');
      assert.equal(r.header.addresses, null);
    }
  });

  it('reads ports 0 and 65535', () => {
    const r = done(parseProxyHeader(Buffer.from('PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n')));
    assert.equal(r.header.addresses?.source.port, 0);
    assert.equal(r.header.addresses?.destination.port, 65535);
  });

  it('needs more for every strict prefix of a valid header', () => {
    const h = Buffer.from('PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\n');
    for (let n = 0; n < h.length; n++) assert.equal(parseProxyHeader(h.subarray(0, n)).status, 'need-more', `prefix ${n}`);
  });

  const bad: [string, string | Buffer, RegExp][] = [
    ['lower-case keyword', 'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n', /not a PROXY/],
    ['no space after PROXY', 'PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n', /not a PROXY/],
    ['LF without CR', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', /invalid character/],
    ['CR not followed by LF', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r', /CR not followed by LF/],
    ['double space', 'PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n', /single spaces/],
    ['trailing space', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n', /single spaces/],
    ['missing port', 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', /single spaces/],
    ['extra field', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n', /single spaces/],
    ['unknown protocol', 'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n', /unknown protocol/],
    ['UDP4', 'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n', /unknown protocol/],
    ['bare PROXY', 'PROXY \r\n', /single spaces/],
    ['IPv6 in TCP4', 'PROXY TCP4 ::1 5.6.7.8 1 2\r\n', /invalid source address/],
    ['IPv4 in TCP6', 'PROXY TCP6 ::1 5.6.7.8 1 2\r\n', /invalid destination address/],
    ['octet out of range', 'PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n', /invalid source address/],
    ['leading zero octet', 'PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n', /invalid source address/],
    ['host name', 'PROXY TCP4 localhost 5.6.7.8 1 2\r\n', /invalid source address/],
    ['zone index', 'PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n', /invalid source address/],
    ['port out of range', 'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n', /invalid source port/],
    ['port with leading zero', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 080\r\n', /invalid destination port/],
    ['signed port', 'PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n', /invalid source port/],
    ['hex port', 'PROXY TCP4 1.2.3.4 5.6.7.8 0x1 2\r\n', /invalid source port/],
    ['non-ASCII', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.\xe9 1 2\r\n', 'latin1'), /invalid character/],
    ['NUL', Buffer.from('PROXY TCP4 1.2.3.4\0', 'latin1'), /invalid character/],
    ['no CRLF in 107 bytes', `PROXY UNKNOWN ${'x'.repeat(93)}`, /longer than 107/],
    ['CRLF at bytes 107-108', `PROXY UNKNOWN ${'x'.repeat(92)}\r\n`, /longer than 107/],
  ];
  for (const [name, input, reason] of bad) {
    it(`rejects ${name}`, () => assert.match(errorOf(parseProxyHeader(Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1'))), reason));
  }

  it('accepts a header of exactly 107 bytes', () => {
    const line = `PROXY UNKNOWN ${'x'.repeat(91)}\r\n`;
    assert.equal(line.length, 107);
    assert.equal(done(parseProxyHeader(Buffer.from(line))).consumed, 107);
  });

  it('fails at the first byte that cannot start a header', () => {
    assert.match(errorOf(parseProxyHeader(Buffer.from('G'))), /not a PROXY/);
    assert.match(errorOf(parseProxyHeader(Buffer.from('PROXX'))), /not a PROXY/);
    assert.match(errorOf(parseProxyHeader(Buffer.from([0x16, 0x03, 0x01]))), /not a PROXY/); // a TLS ClientHello
  });
});

describe('PROXY v2 parsing', () => {
  it('reads TCP over IPv4 and IPv6', () => {
    const payload = Buffer.from('hello');
    const r4 = done(parseProxyHeader(Buffer.concat([encodeProxyV2(V4), payload])));
    assert.equal(r4.consumed, 28);
    assert.deepEqual(r4.header, { version: 2, command: 'proxy', addresses: V4, tlvs: [] });
    const r6 = done(parseProxyHeader(encodeProxyV2(V6)));
    assert.equal(r6.consumed, 52);
    assert.deepEqual(r6.header.addresses, V6);
  });

  it('reads LOCAL, skipping whatever block it carries', () => {
    assert.equal(done(parseProxyHeader(encodeProxyV2(null))).header.command, 'local');
    const withBlock = v2(0x20, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]);
    const r = done(parseProxyHeader(withBlock));
    assert.equal(r.header.command, 'local');
    assert.equal(r.header.addresses, null);
    assert.equal(r.consumed, 28);
    // A LOCAL header with a short opaque block is skipped too.
    assert.equal(done(parseProxyHeader(v2(0x20, 0x11, [1, 2, 3]))).consumed, 19);
  });

  it('treats UNSPEC, UNIX and datagram families as unknown (use the real endpoints)', () => {
    assert.equal(done(parseProxyHeader(v2(0x21, 0x00, []))).header.command, 'unknown');
    assert.equal(done(parseProxyHeader(v2(0x21, 0x31, Buffer.alloc(216)))).header.command, 'unknown');
    assert.equal(done(parseProxyHeader(v2(0x21, 0x12, Buffer.alloc(12)))).header.command, 'unknown');
  });

  it('skips TLVs and returns them', () => {
    const tlvs: ProxyTlv[] = [
      { type: 0x02, value: Buffer.from('example.com') },
      { type: 0x04, value: Buffer.alloc(5) },
      { type: 0xe0, value: Buffer.alloc(0) },
    ];
    const h = encodeProxyV2(V4, tlvs);
    const r = done(parseProxyHeader(Buffer.concat([h, Buffer.from('GET /')])));
    assert.equal(r.consumed, h.length);
    assert.deepEqual(r.header.addresses, V4);
    assert.deepEqual(r.header.tlvs, tlvs);
  });

  it('needs more for every strict prefix of a valid header', () => {
    const h = encodeProxyV2(V6, [{ type: 0x02, value: Buffer.from('x') }]);
    for (let n = 0; n < h.length; n++) assert.equal(parseProxyHeader(h.subarray(0, n)).status, 'need-more', `prefix ${n}`);
  });

  it('accepts the declared-length cap and rejects one byte more', () => {
    const at = encodeProxyV2(V4, [{ type: 0x04, value: Buffer.alloc(PROXY_V2_MAX_LENGTH - 12 - 3) }]);
    assert.equal(done(parseProxyHeader(at)).consumed, 16 + PROXY_V2_MAX_LENGTH);
    const over = encodeProxyV2(V4, [{ type: 0x04, value: Buffer.alloc(PROXY_V2_MAX_LENGTH - 12 - 2) }]);
    // Rejected from the fixed part alone, before the body arrives.
    assert.match(errorOf(parseProxyHeader(over.subarray(0, 16))), /exceeds 1024/);
    assert.match(errorOf(parseProxyHeader(over, { maxV2Length: 1024 })), /exceeds/);
    assert.equal(done(parseProxyHeader(over, { maxV2Length: 2048 })).consumed, over.length);
  });

  const bad: [string, Buffer, RegExp][] = [
    ['a wrong signature byte', Buffer.concat([PROXY_V2_SIGNATURE.subarray(0, 7), Buffer.from([0x00])]), /not a PROXY/],
    ['version 1 in the binary format', v2(0x11, 0x11, Buffer.alloc(12)), /unsupported version/],
    ['version 3', v2(0x31, 0x11, Buffer.alloc(12)), /unsupported version/],
    ['command 2', v2(0x22, 0x11, Buffer.alloc(12)), /unknown command/],
    ['command 15', v2(0x2f, 0x11, Buffer.alloc(12)), /unknown command/],
    ['address family 4', v2(0x21, 0x41, Buffer.alloc(12)), /unknown address family/],
    ['transport 3', v2(0x21, 0x13, Buffer.alloc(12)), /unknown transport/],
    ['an IPv4 block shorter than 12', v2(0x21, 0x11, Buffer.alloc(11)), /too short/],
    ['an IPv6 block shorter than 36', v2(0x21, 0x21, Buffer.alloc(35)), /too short/],
    ['a UNIX block shorter than 216', v2(0x21, 0x31, Buffer.alloc(100)), /too short/],
    ['a truncated TLV', v2(0x21, 0x11, Buffer.concat([Buffer.alloc(12), Buffer.from([0x02, 0x00])])), /truncated TLV/],
    ['a TLV longer than the header', v2(0x21, 0x11, Buffer.concat([Buffer.alloc(12), Buffer.from([0x02, 0x00, 0x05, 1, 2])])), /TLV exceeds/],
    ['a huge declared length', Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]), /exceeds/],
  ];
  for (const [name, input, reason] of bad) {
    it(`rejects ${name}`, () => assert.match(errorOf(parseProxyHeader(input)), reason));
  }

  it('fails as soon as the version/command byte is wrong, before the rest arrives', () => {
    assert.match(errorOf(parseProxyHeader(Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x13])]))), /unsupported version/);
  });
});

describe('ProxyHeaderReader', () => {
  it('assembles a header split byte by byte and returns the bytes after it', () => {
    const h = Buffer.concat([encodeProxyV2(V6), Buffer.from('GET /')]);
    const reader = new ProxyHeaderReader();
    for (let i = 0; i < 51; i++) assert.equal(reader.push(h.subarray(i, i + 1)).status, 'need-more');
    assert.equal(reader.buffered, 51);
    const r = reader.push(h.subarray(51));
    assert.equal(r.status, 'done');
    if (r.status !== 'done') return;
    assert.deepEqual(r.header.addresses, V6);
    assert.equal(r.rest?.toString(), 'GET /');
    assert.equal(reader.buffered, 0);
  });

  it('returns null rest when the header ends the chunk', () => {
    const r = new ProxyHeaderReader().push(encodeProxyV1(V4));
    assert.equal(r.status === 'done' && r.rest, null);
  });

  it('errors on an endless v1 line instead of buffering it', () => {
    const reader = new ProxyHeaderReader();
    assert.equal(reader.push(Buffer.from('PROXY UNKNOWN ')).status, 'need-more');
    let last = reader.push(Buffer.alloc(50, 0x41));
    assert.equal(last.status, 'need-more');
    last = reader.push(Buffer.alloc(50, 0x41));
    assert.equal(last.status, 'error');
    assert.equal(reader.buffered, 0);
  });
});

describe('IPv6 text and bytes', () => {
  const cases: [string, string][] = [
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['0:0:1:0:0:0:1:0', '0:0:1::1:0'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::ffff:c000:0201', '::ffff:192.0.2.1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['FE80::ABCD', 'fe80::abcd'],
  ];
  for (const [input, canonical] of cases) {
    it(`${input} → ${canonical}`, () => assert.equal(bytesToIpv6(ipv6ToBytes(input) as Buffer), canonical));
  }

  it('rejects invalid text', () => {
    for (const bad of ['', '1.2.3.4', ':::', '1:2:3:4:5:6:7:8:9', 'g::1', '1::2::3']) assert.equal(ipv6ToBytes(bad), null, bad);
  });

  it('agrees with the WHATWG URL serializer on any 16 bytes (mapped IPv4 aside)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        const b = Buffer.from(bytes);
        const text = bytesToIpv6(b);
        assert.deepEqual(ipv6ToBytes(text), b);
        if (!text.startsWith('::ffff:') || text.indexOf('.') === -1) {
          assert.equal(text, new URL(`http://[${text}]/`).hostname.slice(1, -1));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

// ---- properties ----------------------------------------------------------------

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
// Sparse words make `::` compression and mapped addresses common.
const ipv6 = fc
  .array(fc.oneof(fc.constant(0), fc.constant(0xffff), fc.nat(0xffff)), { minLength: 8, maxLength: 8 })
  .map((ws) => {
    const b = Buffer.alloc(16);
    ws.forEach((w, i) => b.writeUInt16BE(w, i * 2));
    return bytesToIpv6(b);
  });
const port = fc.nat(0xffff);
// Plain objects (fast-check records have a null prototype, which strict deepEqual tells apart).
const addressesOf = (ip: fc.Arbitrary<string>, family: 'tcp4' | 'tcp6'): fc.Arbitrary<ProxyAddresses> =>
  fc.tuple(ip, port, ip, port).map(([sa, sp, da, dp]) => ({
    family,
    source: { address: sa, port: sp },
    destination: { address: da, port: dp },
  }));
const addresses = fc.oneof(addressesOf(ipv4, 'tcp4'), addressesOf(ipv6, 'tcp6'));
const tlvs = fc.array(
  fc.tuple(fc.nat(255), fc.uint8Array({ maxLength: 100 })).map(([type, value]): ProxyTlv => ({ type, value: Buffer.from(value) })),
  { maxLength: 5 },
);
const payload = fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u));

/** Splits a buffer at the given cut points (sorted, deduplicated). */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    out.push(buf.subarray(at, p));
    at = p;
  }
  out.push(buf.subarray(at));
  return out;
}

describe('PROXY protocol properties', () => {
  it('round-trips v1 and v2 headers (with TLVs) through arbitrary chunking', () => {
    fc.assert(
      fc.property(
        fc.option(addresses, { nil: null }),
        fc.constantFrom('v1' as const, 'v2' as const),
        tlvs,
        payload,
        fc.array(fc.nat(2000), { maxLength: 6 }),
        (addrs, version, extensions, data, cuts) => {
          const header = version === 'v1' ? encodeProxyV1(addrs) : encodeProxyV2(addrs, extensions);
          const whole = Buffer.concat([header, data]);
          const r = done(parseProxyHeader(whole, { maxV2Length: 0xffff }));
          assert.equal(r.consumed, header.length);
          assert.equal(r.header.version, version === 'v1' ? 1 : 2);
          if (addrs === null) {
            assert.equal(r.header.command, version === 'v1' ? 'unknown' : 'local');
          } else {
            assert.equal(r.header.command, 'proxy');
            assert.deepEqual(r.header.addresses, addrs);
          }
          assert.deepEqual(r.header.tlvs, version === 'v2' ? extensions : []);

          const reader = new ProxyHeaderReader({ maxV2Length: 0xffff });
          let got: Buffer[] = [];
          let finished = false;
          for (const chunk of split(whole, cuts)) {
            if (finished) {
              got.push(chunk);
              continue;
            }
            const step = reader.push(chunk);
            assert.notEqual(step.status, 'error');
            if (step.status === 'done') {
              finished = true;
              assert.deepEqual(step.header, r.header);
              got = step.rest === null ? [] : [step.rest];
            }
          }
          assert.ok(finished);
          assert.deepEqual(Buffer.concat(got), data);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never throws on arbitrary bytes, never overreads, and stays bounded', () => {
    const prefixes = fc.constantFrom(Buffer.alloc(0), Buffer.from('PROXY '), Buffer.from('PROXY TCP4 '), PROXY_V2_SIGNATURE, Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21])]));
    fc.assert(
      fc.property(prefixes, fc.uint8Array({ maxLength: 1200 }), (prefix, tail) => {
        const buf = Buffer.concat([prefix, Buffer.from(tail)]);
        const r = parseProxyHeader(buf);
        if (r.status === 'done') assert.ok(r.consumed > 0 && r.consumed <= buf.length);
        if (r.status === 'need-more') assert.ok(buf.length < 16 + PROXY_V2_MAX_LENGTH);
        if (r.status === 'need-more' && buf[0] === 0x50) assert.ok(buf.length < PROXY_V1_MAX);
      }),
      { numRuns: 5000 },
    );
  });

  it('rejects printable garbage (an HTTP request, a stray line) at once', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 200 }), (s) => {
        fc.pre(!s.startsWith('P'));
        assert.equal(parseProxyHeader(Buffer.from(s)).status, 'error');
      }),
    );
  });

  it('corrupting one byte of a v1 address line never yields a different valid header silently', () => {
    fc.assert(
      fc.property(addresses, fc.nat(200), fc.integer({ min: 0x20, max: 0x7e }), (addrs, pos, byte) => {
        const h = Buffer.from(encodeProxyV1(addrs));
        const i = pos % (h.length - 2); // keep CRLF
        const original = h[i];
        h[i] = byte;
        const r = parseProxyHeader(h);
        if (r.status === 'done' && r.header.command === 'proxy' && byte !== original) {
          // Still well-formed: then it must describe what the bytes say, and consume the whole line.
          assert.equal(r.consumed, h.length);
          assert.deepEqual(parseProxyHeader(encodeProxyV1(r.header.addresses)).status, 'done');
        }
      }),
    );
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  formatAddress,
  formatCidr,
  isHostName,
  isLoopbackHost,
  parseAddress,
  parseCidr,
  parseHost,
} from './address.js';
import { ConfigValueError } from './errors.js';

describe('parseAddress', () => {
  const cases: [string, string, number][] = [
    ['127.0.0.1:8080', '127.0.0.1', 8080],
    ['0.0.0.0:8080', '0.0.0.0', 8080],
    ['*:8080', '0.0.0.0', 8080],
    ['[::1]:8080', '::1', 8080],
    ['[::]:443', '::', 443],
    ['[fe80::1%eth0]:80', 'fe80::1%eth0', 80],
    ['localhost:0', 'localhost', 0],
    ['app-1.internal.example.com:65535', 'app-1.internal.example.com', 65535],
    ['my_service:9000', 'my_service', 9000],
  ];
  for (const [text, host, port] of cases) {
    it(`reads ${text}`, () => assert.deepEqual(parseAddress(text), { host, port }));
  }

  const rejected: [string, RegExp][] = [
    ['127.0.0.1', /missing port/],
    ['::1:8080', /IPv6 addresses go in brackets: \[::1\]:8080/],
    ['[::1]8080', /missing port/],
    ['[::1:8080', /missing "\]"/],
    ['[127.0.0.1]:80', /brackets hold an IPv6 address only/],
    [':8080', /missing host; use \*:PORT/],
    ['127.0.0.1:65536', /port must be a number from 0 to 65535/],
    ['127.0.0.1:-1', /port must be/],
    ['127.0.0.1:http', /port must be/],
    ['127.0.0.1:', /port must be/],
    ['256.0.0.1:80', /invalid IPv4 address/],
    ['10.0.0:80', /invalid IPv4 address/],
    ['bad host:80', /invalid host/],
    ['-lead.example.com:80', /invalid host/],
    ['', /missing port/],
  ];
  for (const [text, message] of rejected) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseAddress(text), (e: unknown) => e instanceof ConfigValueError && message.test(e.message));
    });
  }

  it('round-trips IPv4, IPv6 and host-name addresses', () => {
    const host = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain());
    const port = fc.integer({ min: 0, max: 65535 });
    fc.assert(
      fc.property(host, port, (h, p) => {
        const address = { host: h, port: p };
        assert.deepEqual(parseAddress(formatAddress(address)), address);
      }),
    );
  });
});

describe('hosts', () => {
  it('accepts IP literals and host names', () => {
    assert.equal(parseHost('::1'), '::1');
    assert.equal(parseHost('10.1.2.3'), '10.1.2.3');
    assert.equal(parseHost('db.internal'), 'db.internal');
    assert.ok(isHostName('example.com.'));
    assert.ok(!isHostName('a..b'));
    assert.ok(!isHostName('x'.repeat(64)));
    assert.ok(!isHostName('host.123'));
    assert.throws(() => parseHost('a b'), ConfigValueError);
  });

  it('knows loopback hosts', () => {
    for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.9.9.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) {
      assert.ok(isLoopbackHost(host), host);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1', '::2']) {
      assert.ok(!isLoopbackHost(host), host);
    }
  });
});

describe('parseCidr', () => {
  it('reads networks and bare addresses', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 4 });
    assert.deepEqual(parseCidr('::1/128'), { address: '::1', prefix: 128, family: 6 });
    assert.deepEqual(parseCidr('192.0.2.7'), { address: '192.0.2.7', prefix: 32, family: 4 });
    assert.deepEqual(parseCidr('2001:db8::1'), { address: '2001:db8::1', prefix: 128, family: 6 });
    assert.deepEqual(parseCidr('0.0.0.0/0'), { address: '0.0.0.0', prefix: 0, family: 4 });
    // A VIP keeps its host bits.
    assert.deepEqual(parseCidr('10.0.0.100/24'), { address: '10.0.0.100', prefix: 24, family: 4 });
  });

  const rejected: [string, RegExp][] = [
    ['10.0.0.0/33', /prefix length from 0 to 32/],
    ['::/129', /prefix length from 0 to 128/],
    ['10.0.0.0/', /prefix length/],
    ['10.0.0.0/8/8', /prefix length/],
    ['10.0.0.0/x', /prefix length/],
    ['example.com/8', /expected an IP address or a network/],
    ['[::1]/128', /expected an IP address or a network/],
    ['', /expected an IP address/],
  ];
  for (const [text, message] of rejected) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseCidr(text), (e: unknown) => e instanceof ConfigValueError && message.test(e.message));
    });
  }

  it('round-trips every network', () => {
    const v4 = fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 }));
    const v6 = fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 }));
    fc.assert(
      fc.property(fc.oneof(v4, v6), ([address, prefix]) => {
        const text = `${address}/${prefix}`;
        assert.equal(formatCidr(parseCidr(text)), text);
      }),
    );
  });
});

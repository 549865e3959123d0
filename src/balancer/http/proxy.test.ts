import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  httpFarmYaml,
  rawExchange,
  refusedPort,
  request,
  startNode,
  startRawServer,
  startUpstream,
  statusOf,
} from '../../../test/support/farm.js';
import type { Farm, Upstream } from '../../../test/support/farm.js';

describe('http proxy: forwarding', () => {
  let up: Upstream;
  let farm: Farm;
  before(async () => {
    up = await startUpstream('s1', (req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('Connection', 'X-Drop-Me');
        res.setHeader('X-Drop-Me', 'secret');
        res.setHeader('Proxy-Connection', 'keep-alive');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ url: req.url, headers: req.headers }));
      });
    });
    farm = await startNode(httpFarmYaml([up.port], '    serverHeader: X-Server\n    forwardFor: true'));
  });
  after(async () => {
    await farm.close();
    await up.close();
  });

  it('proxies a request, preserves Host and names the server', async () => {
    const r = await request(farm.url, { path: '/a/b?c=d', headers: { host: 'shop.example.com' } });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/a/b?c=d');
    assert.equal(seen.headers.host, 'shop.example.com');
    assert.equal(r.headers['x-server'], 's1');
  });

  it('strips hop-by-hop headers both ways, including those named in Connection', async () => {
    const r = await request(farm.url, {
      headers: {
        connection: 'keep-alive, X-Private',
        'x-private': 'do not forward',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        te: 'trailers',
        upgrade: 'h2c',
        'x-kept': 'yes',
      },
    });
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    for (const h of ['x-private', 'keep-alive', 'proxy-connection', 'te', 'upgrade']) {
      assert.equal(seen.headers[h], undefined, `${h} reached the server`);
    }
    assert.equal(seen.headers['x-kept'], 'yes');
    assert.equal(r.headers['x-drop-me'], undefined);
    assert.equal(r.headers['proxy-connection'], undefined);
  });

  it('replaces a spoofed X-Forwarded-For from an untrusted peer and adds the forwarding headers', async () => {
    const r = await request(farm.url, {
      headers: {
        host: 'www.example.com:8443',
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'evil.example',
        forwarded: 'for=6.6.6.6',
      },
    });
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], 'www.example.com:8443');
    assert.equal(seen.headers.forwarded, 'for=127.0.0.1;host="www.example.com:8443";proto=http');
  });

  it('keeps the client connection and the server connection alive', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const before = up.connections;
    for (let i = 0; i < 20; i++) {
      const r = await request(farm.url, { agent });
      assert.equal(r.status, 200);
    }
    agent.destroy();
    assert.ok(up.connections - before <= 1, `server saw ${up.connections - before} new connections for 20 requests`);
  });

  it('streams a chunked request body and a chunked response', async () => {
    const r = await rawExchange(
      farm.port,
      'POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n',
    );
    assert.equal(statusOf(r), 200);
    assert.match(r, /"transfer-encoding":"chunked"/);
  });
});

describe('http proxy: protocol versions and interim responses', () => {
  let up: Upstream;
  let farm: Farm;
  before(async () => {
    up = await startUpstream('s1', (req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        if (req.url === '/len') {
          res.end(`got ${n} bytes`);
          return;
        }
        // No Content-Length: Node answers HTTP/1.1 clients with chunked encoding.
        res.write(`got ${n} bytes`);
        res.end();
      });
    });
    farm = await startNode(httpFarmYaml([up.port]));
  });
  after(async () => {
    await farm.close();
    await up.close();
  });

  it('decodes a chunked response for an HTTP/1.0 client and closes after it', async () => {
    const r = await rawExchange(farm.port, 'GET / HTTP/1.0\r\n\r\n');
    assert.match(r, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(r, /transfer-encoding/i);
    assert.match(r, /\r\nConnection: close\r\n/);
    assert.ok(r.endsWith('\r\n\r\ngot 0 bytes'), JSON.stringify(r));
  });

  it('keeps an HTTP/1.0 keep-alive client open', async () => {
    const r = await rawExchange(farm.port, 'GET /len HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', 300);
    assert.match(r, /\r\nConnection: keep-alive\r\n/);
    assert.match(r, /\r\ncontent-length: 11\r\n/i);
  });

  it('relays 100 Continue and then the final response', async () => {
    const r = await rawExchange(
      farm.port,
      'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello',
    );
    assert.match(r, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.match(r, /\r\n\r\nb\r\ngot 5 bytes\r\n0\r\n\r\n$/);
  });

  it('serves pipelined requests in order', async () => {
    const one = 'POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc';
    const two = 'GET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';
    const r = await rawExchange(farm.port, one + two);
    const statuses = r.match(/HTTP\/1\.1 200 /g) ?? [];
    assert.equal(statuses.length, 2, r);
    assert.ok(r.indexOf('got 3 bytes') < r.lastIndexOf('got 0 bytes'));
  });
});

describe('http proxy: trusted proxies', () => {
  let up: Upstream;
  let farm: Farm;
  before(async () => {
    up = await startUpstream('s1', (req, res) => {
      res.end(JSON.stringify(req.headers));
    });
    farm = await startNode(httpFarmYaml([up.port], '    forwardFor: true', undefined, '    trustedProxies: [127.0.0.0/8]'));
  });
  after(async () => {
    await farm.close();
    await up.close();
  });

  it('keeps and appends to X-Forwarded-For from a trusted peer', async () => {
    const r = await request(farm.url, {
      headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', forwarded: 'for=203.0.113.7' },
    });
    const h = JSON.parse(r.body) as Record<string, string>;
    assert.equal(h['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'https');
    assert.match(h.forwarded ?? '', /^for=203\.0\.113\.7, for=127\.0\.0\.1;/);
  });
});

describe('http proxy: routes', () => {
  let api: Upstream;
  let web: Upstream;
  let farm: Farm;
  before(async () => {
    api = await startUpstream('api');
    web = await startUpstream('web');
    farm = await startNode(`
frontends:
  - name: f
    listen: 127.0.0.1:0
    routes:
      - { host: api.example.com, pathPrefix: /v1, backend: api }
      - { host: "*.static.example.com", backend: api }
    backend: web
backends:
  - name: api
    servers: [{ name: a, address: 127.0.0.1:${api.port} }]
  - name: web
    servers: [{ name: w, address: 127.0.0.1:${web.port} }]
`);
  });
  after(async () => {
    await farm.close();
    await api.close();
    await web.close();
  });

  it('routes by host and path prefix, then falls back to the default backend', async () => {
    const body = async (host: string, path: string): Promise<string> => (await request(farm.url, { path, headers: { host } })).body;
    assert.equal(await body('api.example.com', '/v1/users'), 'api');
    assert.equal(await body('API.example.com:80', '/v1'), 'api');
    assert.equal(await body('api.example.com', '/v10'), 'web');
    assert.equal(await body('api.example.com', '/v2'), 'web');
    assert.equal(await body('img.static.example.com', '/x'), 'api');
    assert.equal(await body('other.example.com', '/v1'), 'web');
  });
});

describe('http proxy: retries and backups', () => {
  it('redispatches away from a refusing server with no client-visible error', async () => {
    const good = await startUpstream('good');
    const dead = await refusedPort();
    const farm = await startNode(httpFarmYaml([dead, good.port], '    retries: 2\n    serverHeader: X-Server'));
    try {
      for (let i = 0; i < 40; i++) {
        const r = await request(farm.url);
        assert.equal(r.status, 200);
        assert.equal(r.body, 'good');
      }
      assert.equal(good.hits, 40);
    } finally {
      await farm.close();
      await good.close();
    }
  });

  it('uses the backup only when every primary is refused', async () => {
    const primary = await startUpstream('primary');
    const backup = await startUpstream('backup');
    const dead = await refusedPort();
    const yaml = (p1: number, p2: number): string =>
      httpFarmYaml([p1, p2, backup.port], '    retries: 3', (p, i) =>
        i === 2 ? `{ name: spare, address: 127.0.0.1:${p}, backup: true }` : `{ name: p${i}, address: 127.0.0.1:${p} }`,
      );
    const farm1 = await startNode(yaml(dead, primary.port));
    try {
      for (let i = 0; i < 10; i++) assert.equal((await request(farm1.url)).body, 'primary');
      assert.equal(backup.hits, 0);
    } finally {
      await farm1.close();
    }
    const dead2 = await refusedPort();
    const farm2 = await startNode(yaml(dead, dead2));
    try {
      for (let i = 0; i < 10; i++) assert.equal((await request(farm2.url)).body, 'backup');
    } finally {
      await farm2.close();
      await primary.close();
      await backup.close();
    }
  });

  it('answers 502 when every server refuses, and 503 with no eligible server at all', async () => {
    const dead = await refusedPort();
    const farm = await startNode(httpFarmYaml([dead], '    retries: 3'));
    try {
      const r = await request(farm.url);
      assert.equal(r.status, 502);
      assert.match(r.body, /CORRAL_ERR_CONNECT_FAILED/);
    } finally {
      await farm.close();
    }
    const farm0 = await startNode(httpFarmYaml([dead], '', (p) => `{ name: zero, address: 127.0.0.1:${p}, weight: 0 }`));
    try {
      const r = await request(farm0.url);
      assert.equal(r.status, 503);
      assert.match(r.body, /CORRAL_ERR_NO_SERVER/);
    } finally {
      await farm0.close();
    }
  });

  it('retries an idempotent request whose connection was reset before any response byte', async () => {
    let resets = 0;
    const flaky = await startRawServer((s) => {
      s.once('data', () => {
        resets++;
        s.resetAndDestroy();
      });
    });
    const good = await startUpstream('good');
    const farm = await startNode(
      httpFarmYaml([flaky.port, good.port], '    balance: first\n    retries: 1'),
    );
    try {
      const r = await request(farm.url);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'good');
      assert.equal(resets, 1);
      // POST is not idempotent: the reset is reported, not retried.
      const p = await request(farm.url, { method: 'POST', body: 'x' });
      assert.equal(p.status, 502);
      assert.equal(resets, 2);
    } finally {
      await farm.close();
      await flaky.close();
      await good.close();
    }
  });
});

describe('http proxy: queue and timeouts', () => {
  it('queues beyond maxConn in FIFO order and times the queue out with 503', async () => {
    const release: (() => void)[] = [];
    const up = await startUpstream('slow', (req, res) => {
      release.push(() => res.end(req.url));
    });
    const farm = await startNode(httpFarmYaml([up.port], '    maxConn: 1\n    timeouts: { queue: 300ms }'));
    try {
      const first = request(farm.url, { path: '/1' });
      while (up.hits < 1) await new Promise((r) => setImmediate(r));
      const second = request(farm.url, { path: '/2' });
      const third = await request(farm.url, { path: '/3' }).catch((e: Error) => e);
      // /2 and /3 wait behind /1; /1 is held past the queue timeout.
      assert.ok(!(third instanceof Error));
      assert.equal(third.status, 503);
      assert.match(third.body, /CORRAL_ERR_QUEUE_TIMEOUT/);
      assert.equal(up.hits, 1, 'a queued request reached the server while it was full');
      (release.shift() as () => void)();
      assert.equal((await first).body, '/1');
      assert.equal((await second).status, 503);
    } finally {
      await farm.close();
      await up.close();
    }
  });

  it('hands a freed slot to the oldest queued request', async () => {
    const release: (() => void)[] = [];
    const up = await startUpstream('slow', (req, res) => {
      release.push(() => res.end(req.url));
    });
    const farm = await startNode(httpFarmYaml([up.port], '    maxConn: 1\n    timeouts: { queue: 5s }'));
    try {
      const order: string[] = [];
      const go = (p: string): Promise<void> => request(farm.url, { path: p }).then((r) => void order.push(r.body));
      const all = [go('/1')];
      while (up.hits < 1) await new Promise((r) => setImmediate(r));
      all.push(go('/2'));
      await new Promise((r) => setTimeout(r, 20));
      all.push(go('/3'));
      for (let n = 1; n <= 3; n++) {
        while (up.hits < n) await new Promise((r) => setImmediate(r));
        (release.shift() as () => void)();
      }
      await Promise.all(all);
      assert.deepEqual(order, ['/1', '/2', '/3']);
    } finally {
      await farm.close();
      await up.close();
    }
  });

  it('answers 504 when the server is silent past timeouts.server', async () => {
    const up = await startUpstream('mute', () => {});
    const farm = await startNode(httpFarmYaml([up.port], '    timeouts: { server: 200ms }'));
    try {
      const r = await request(farm.url);
      assert.equal(r.status, 504);
      assert.match(r.body, /CORRAL_ERR_SERVER_TIMEOUT/);
    } finally {
      await farm.close();
      await up.close();
    }
  });
});

describe('http proxy: response heads as forwarded', () => {
  let response = '';
  let raw: { port: number; close(): Promise<void> };
  let farm: Farm;
  before(async () => {
    raw = await startRawServer((s) => {
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n')) s.write(response);
      });
    });
    farm = await startNode(httpFarmYaml([raw.port]));
  });
  after(async () => {
    await farm.close();
    await raw.close();
  });

  it('keeps every line but the hop-by-hop ones, in order, byte for byte', async () => {
    const fc = (await import('fast-check')).default;
    const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);
    const line = fc.record({
      name: fc.constantFrom('X-A', 'x-bee', 'Content-Type', 'Keep-Alive', 'Proxy-Connection', 'TE', 'Trailer', 'Upgrade', 'Server', 'Connection'),
      value: fc.stringMatching(/^[A-Za-z0-9=;,/ -]{0,20}$/).map((v) => v.trim()),
    });
    const connectionValue = fc.constantFrom('keep-alive', 'Keep-Alive', 'close', 'x-a', 'keep-alive, X-Bee', 'CLOSE');
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(line, { maxLength: 8 }), connectionValue, fc.stringMatching(/^[a-z]{0,40}$/), async (http10, lines, conn, body) => {
        const fields = lines.map((l) => ({ name: l.name, value: l.name === 'Connection' ? conn : l.value }));
        const named = new Set(fields.filter((f) => f.name === 'Connection').flatMap((f) => f.value.split(',').map((t) => t.trim().toLowerCase())));
        const status = http10 ? 'HTTP/1.0 200 OK' : 'HTTP/1.1 200 OK';
        const text = (f: { name: string; value: string }): string => `${f.name}: ${f.value}\r\n`;
        response = `${status}\r\nContent-Length: ${body.length}\r\n${fields.map(text).join('')}\r\n${body}`;
        const kept = fields.filter((f) => !HOP.has(f.name.toLowerCase()) && !named.has(f.name.toLowerCase()));
        const want = `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${kept.map(text).join('')}Connection: close\r\n\r\n${body}`;
        const got = await rawExchange(farm.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        assert.equal(got, want);
      }),
      { numRuns: 150 },
    );
  });
});

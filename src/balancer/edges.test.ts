/**
 * Production edges: TLS termination with SNI, TLS to servers, WebSocket
 * tunnels, and hot reload under load.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { describe, it } from 'node:test';
import { makeCert } from '../../test/support/certs.js';
import { config, httpFarmYaml, request, startNode, startUpstream } from '../../test/support/farm.js';

function tlsGet(port: number, servername: string, path = '/'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders; peerCN: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path, servername, rejectUnauthorized: false, agent: false, headers: { host: servername } },
      (res) => {
        const cert = (res.socket as tls.TLSSocket).getPeerCertificate();
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, peerCN: String(cert.subject?.CN ?? '') }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('TLS termination', () => {
  it('selects the certificate by SNI, falls back to the default, sets X-Forwarded-Proto: https', async () => {
    const def = makeCert(['default.test']);
    const a = makeCert(['a.example.com']);
    const wild = makeCert(['*.wild.example.com']);
    const up = await startUpstream('s', (req, res) => res.end(String(req.headers['x-forwarded-proto'])));
    const farm = await startNode(
      httpFarmYaml([up.port], '    forwardFor: true\n    sticky: { cookie: S }', undefined,
        `    tls: { cert: ${def.cert}, key: ${def.key}, certs: [{ cert: ${a.cert}, key: ${a.key} }, { cert: ${wild.cert}, key: ${wild.key} }] }`),
    );
    try {
      const ra = await tlsGet(farm.port, 'a.example.com');
      assert.equal(ra.peerCN, 'a.example.com');
      assert.equal(ra.body, 'https');
      assert.match(ra.headers['set-cookie']?.[0] ?? '', /; Secure$/);
      assert.equal((await tlsGet(farm.port, 'x.wild.example.com')).peerCN, '*.wild.example.com');
      assert.equal((await tlsGet(farm.port, 'unknown.example.org')).peerCN, 'default.test');
      // TLS 1.1 is refused.
      await assert.rejects(
        new Promise((resolve, reject) => {
          const s = tls.connect({ host: '127.0.0.1', port: farm.port, maxVersion: 'TLSv1.1', minVersion: 'TLSv1', rejectUnauthorized: false }, () => resolve(s));
          s.on('error', reject);
        }),
      );
      // Garbage instead of a handshake: that connection closes, the node keeps serving.
      await new Promise<void>((resolve) => {
        const s = net.connect(farm.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
        s.on('close', () => resolve());
        s.on('error', () => {});
        s.resume();
      });
      assert.equal((await tlsGet(farm.port, 'a.example.com')).status, 200);
    } finally {
      await farm.close();
      await up.close();
    }
  });

  it('connects to servers over TLS, verifying against a configured CA', async () => {
    const cert = makeCert(['127.0.0.1', 'backend.test']);
    const server = https.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (req, res) => res.end(`tls ${req.url}`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const ok = await startNode(httpFarmYaml([port], '    retries: 0', (p) => `{ name: t, address: 127.0.0.1:${p}, tls: { ca: ${cert.cert}, servername: backend.test } }`));
      try {
        const r = await request(ok.url, { path: '/x' });
        assert.equal(r.body, 'tls /x');
      } finally {
        await ok.close();
      }
      // Without the CA the certificate is not trusted: no response from that server.
      const strict = await startNode(httpFarmYaml([port], '    retries: 0', (p) => `{ name: t, address: 127.0.0.1:${p}, tls: true }`));
      try {
        const r = await request(strict.url);
        assert.equal(r.status, 502);
      } finally {
        await strict.close();
      }
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });

  it('re-reads certificates on reload', async () => {
    const one = makeCert(['one.test']);
    const up = await startUpstream('s');
    const yaml = httpFarmYaml([up.port], '', undefined, `    tls: { cert: ${one.cert}, key: ${one.key} }`);
    const farm = await startNode(yaml);
    try {
      assert.equal((await tlsGet(farm.port, 'one.test')).peerCN, 'one.test');
      const two = makeCert(['two.test']);
      writeFileSync(one.cert, readFileSync(two.cert));
      writeFileSync(one.key, readFileSync(two.key));
      const r = await farm.node.reload(config(yaml));
      assert.equal(r.changed, false);
      assert.equal((await tlsGet(farm.port, 'one.test')).peerCN, 'two.test');
    } finally {
      await farm.close();
      await up.close();
    }
  });
});

/** A minimal WebSocket-style upgrade server: after 101 it echoes bytes upper-cased. */
async function startUpgradeServer(name: string): Promise<{ port: number; closed: Promise<void>; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => res.end(`plain ${name}`));
  let onClosed: () => void = () => {};
  const closed = new Promise<void>((r) => (onClosed = r));
  server.on('upgrade', (req, socket: net.Socket, head: Buffer) => {
    if (req.headers.upgrade !== 'websocket') {
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Name: ${name}\r\n\r\n`);
    if (head.length > 0) socket.write(head.toString().toUpperCase());
    socket.on('data', (d: Buffer) => socket.write(d.toString().toUpperCase()));
    socket.on('end', () => socket.end());
    socket.on('close', () => onClosed());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    closed,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

function upgrade(port: number, headers = ''): Promise<{ socket: net.Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${headers}\r\n`);
    });
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      if (end + 4 < buf.length) socket.unshift(Buffer.from(buf.slice(end + 4), 'latin1'));
      resolve({ socket, head: buf.slice(0, end) });
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

function read(socket: net.Socket, n: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const on = (d: Buffer): void => {
      got += d.toString();
      if (got.length >= n) {
        socket.off('data', on);
        resolve(got);
      }
    };
    socket.on('data', on);
  });
}

describe('WebSocket and Upgrade', () => {
  it('balances the upgrade, tunnels both ways, and closing one side closes the other', async () => {
    const a = await startUpgradeServer('a');
    const b = await startUpgradeServer('b');
    const farm = await startNode(httpFarmYaml([a.port, b.port], '    sticky: { cookie: S }\n    serverHeader: X-Server'));
    try {
      const first = await upgrade(farm.port);
      assert.match(first.head, /^HTTP\/1\.1 101 /);
      assert.match(first.head, /\r\nUpgrade: websocket/i);
      assert.match(first.head, /\r\nConnection: Upgrade/i);
      const name = /X-Name: (\w)/.exec(first.head)?.[1] as string;
      const cookie = /Set-Cookie: (S=[^;]+)/.exec(first.head)?.[1] as string;
      first.socket.write('hello');
      assert.equal(await read(first.socket, 5), 'HELLO');
      // Stickiness applies to upgrades.
      for (let i = 0; i < 4; i++) {
        const again = await upgrade(farm.port, `Cookie: ${cookie}\r\n`);
        assert.equal(/X-Name: (\w)/.exec(again.head)?.[1], name);
        again.socket.destroy();
      }
      // The client closes: the server side closes too.
      const server = name === 'a' ? a : b;
      first.socket.end();
      await server.closed;
      // A plain request on the same frontend still works.
      const plain = await request(farm.url);
      assert.match(plain.body, /^plain /);
    } finally {
      await farm.close();
      await a.close();
      await b.close();
    }
  });

  it('a refused upgrade is an ordinary response and the tunnel is not opened', async () => {
    const a = await startUpgradeServer('a');
    const farm = await startNode(httpFarmYaml([a.port]));
    try {
      const r = await new Promise<string>((resolve, reject) => {
        const s = net.connect(farm.port, '127.0.0.1', () =>
          s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n'),
        );
        let buf = '';
        s.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.includes('\r\n\r\n')) {
            s.destroy();
            resolve(buf);
          }
        });
        s.on('error', reject);
      });
      assert.match(r, /^HTTP\/1\.1 400 /);
    } finally {
      await farm.close();
      await a.close();
    }
  });

  it('an idle tunnel is closed after timeouts.idle', async () => {
    const a = await startUpgradeServer('a');
    const farm = await startNode(httpFarmYaml([a.port], '', undefined, '    timeouts: { idle: 200ms }'));
    try {
      const { socket } = await upgrade(farm.port);
      const t0 = Date.now();
      await new Promise<void>((r) => socket.on('close', () => r()));
      assert.ok(Date.now() - t0 >= 150);
      await a.closed;
    } finally {
      await farm.close();
      await a.close();
    }
  });
});

describe('hot reload', () => {
  it('reloads 20 times during sustained load with zero failed requests, keeping the listener', async () => {
    const ups = await Promise.all(['a', 'b', 'c'].map((n) => startUpstream(n)));
    const yaml = (i: number): string =>
      httpFarmYaml(
        ups.map((u) => u.port),
        `    balance: ${i % 2 === 0 ? 'roundrobin' : 'leastconn'}\n    serverHeader: X-Gen-${i}`,
        (p, k) => `{ name: ${'abc'[k]}, address: 127.0.0.1:${p}, weight: ${1 + ((i + k) % 3)} }`,
      ).replace('listen: 127.0.0.1:0', `listen: 127.0.0.1:PORT`);
    const first = await startNode(yaml(0).replace('PORT', '0'));
    const port = first.port;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const worker = async (): Promise<void> => {
      while (running) {
        try {
          const r = await request(first.url, { agent });
          if (r.status === 200) ok++;
          else failures.push(`status ${r.status}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    try {
      const countersBefore = first.node.backends.get('app')?.servers.reduce((n, s) => n + s.counters.total, 0) ?? 0;
      for (let i = 1; i <= 20; i++) {
        const target = ok + 20;
        while (ok < target) await new Promise((r) => setImmediate(r));
        const r = await first.node.reload(config(yaml(i).replace('PORT', String(port))));
        assert.equal(r.changed, true);
        assert.equal(first.node.port('web'), port);
      }
      const target = ok + 50;
      while (ok < target) await new Promise((r) => setImmediate(r));
      running = false;
      await Promise.all(workers);
      assert.deepEqual(failures, []);
      assert.ok(ok > 400, `only ${ok} requests`);
      // Counters carried over across generations.
      const after = first.node.backends.get('app')?.servers.reduce((n, s) => n + s.counters.total, 0) ?? 0;
      assert.ok(after >= countersBefore + ok - 8 * 3, `counters ${countersBefore} → ${after} for ${ok} requests`);
      const last = await request(first.url);
      assert.ok('x-gen-20' in last.headers, 'the last generation does not answer');
    } finally {
      running = false;
      agent.destroy();
      await first.close();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  it('rejects a generation that cannot be built and keeps serving the old one', async () => {
    const up = await startUpstream('s');
    const farm = await startNode(httpFarmYaml([up.port]));
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      const bad = config(httpFarmYaml([up.port]).replace('listen: 127.0.0.1:0', `listen: 127.0.0.1:${taken}`));
      await assert.rejects(farm.node.reload(bad), /CORRAL_ERR_LISTEN|cannot listen/);
      assert.equal((await request(farm.url)).body, 's');
    } finally {
      blocker.close();
      await farm.close();
      await up.close();
    }
  });
});

describe('TCP mode through the node, and PROXY protocol on HTTP frontends', () => {
  it('serves a mode: tcp frontend next to an http one, and reloads it', async () => {
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as net.AddressInfo).port;
    const up = await startUpstream('web');
    const yaml = `
frontends:
  - { name: web, listen: 127.0.0.1:0, backend: app }
  - { name: raw, listen: 127.0.0.1:0, mode: tcp, backend: echo }
backends:
  - name: app
    servers: [{ name: w, address: 127.0.0.1:${up.port} }]
  - name: echo
    servers: [{ name: e, address: 127.0.0.1:${echoPort} }]
`;
    const farm = await startNode(yaml);
    try {
      const tcpPort = farm.node.port('raw');
      const roundTrip = (): Promise<string> =>
        new Promise((resolve, reject) => {
          const s = net.connect(tcpPort, '127.0.0.1', () => s.end('ping'));
          let got = '';
          s.on('data', (d: Buffer) => (got += d.toString()));
          s.on('end', () => resolve(got));
          s.on('error', reject);
        });
      assert.equal(await roundTrip(), 'ping');
      assert.equal((await request(farm.url)).body, 'web');
      await farm.node.reload(config(yaml.replace('backend: echo }', 'backend: echo, maxConn: 500 }')));
      assert.equal(await roundTrip(), 'ping');
    } finally {
      await farm.close();
      echo.close();
      await up.close();
    }
  });

  it('acceptProxy takes the client address from the PROXY header and drops connections without one', async () => {
    const up = await startUpstream('s', (req, res) => res.end(String(req.headers['x-forwarded-for'])));
    const farm = await startNode(httpFarmYaml([up.port], '    forwardFor: true', undefined, '    acceptProxy: true'));
    try {
      const v1 = await rawExchangeStr(farm.port, 'PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      assert.match(v1, /\r\n\r\n203\.0\.113\.9$/);
      const bad = await rawExchangeStr(farm.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      assert.equal(bad, '');
      assert.equal(up.hits, 1);
    } finally {
      await farm.close();
      await up.close();
    }
  });
});

function rawExchangeStr(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', () => {});
  });
}

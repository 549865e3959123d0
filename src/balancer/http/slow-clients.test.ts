/**
 * Slow and broken clients cannot exhaust an HTTP frontend: real sockets
 * against a node started from YAML with short timeouts.
 *
 *   slowloris   a head dribbled a byte at a time        → 408 after timeouts.headers
 *   slow body   a body that stops                        → 408 after backends[].timeouts.client
 *   slow read   a client that never reads a big answer  → server held back, memory bounded,
 *                                                           closed after timeouts.client
 *   maxConn     more connections than frontends[].maxConn → refused and logged
 *   TLS         garbage or silence instead of a handshake → closed, logged, node keeps serving
 *   half-open   request, then FIN                        → the response still arrives
 *
 * Every wait is on an event (log line, socket event, server callback) with a
 * deadline a little beyond the configured timeout.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import { makeCert } from '../../../test/support/certs.js';
import { LogCapture } from '../../../test/support/log-capture.js';
import { httpFarmYaml, request, startNode, startUpstream, statusOf } from '../../../test/support/farm.js';
import type { Farm, Upstream } from '../../../test/support/farm.js';

// ---- harness -------------------------------------------------------------------


const HEADERS_MS = 300;
const CLIENT_MS = 300;
/** Slack on top of a configured timeout before a test gives up waiting for its effect. */
const SLACK_MS = 1_500;

/** The frontend and backend timeouts every test here runs with (plus `frontendExtra`). */
function slowYaml(ports: readonly number[], frontendExtra = '', backendExtra = ''): string {
  return httpFarmYaml(
    ports,
    `    retries: 0\n    timeouts: { client: ${CLIENT_MS}ms }\n${backendExtra}`,
    undefined,
    `    timeouts: { headers: ${HEADERS_MS}ms, idle: 1s }\n${frontendExtra}`,
  );
}

async function farmWith(up: Upstream, frontendExtra = '', backendExtra = ''): Promise<{ farm: Farm; log: LogCapture }> {
  const log = new LogCapture();
  const farm = await startNode(slowYaml([up.port], frontendExtra, backendExtra), log.logger);
  return { farm, log };
}

/** Client sockets of the running test, destroyed by {@link teardown}. */
const clients = new Set<net.Socket>();

function connect(port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: opts.allowHalfOpen ?? false });
    clients.add(s);
    s.once('close', () => clients.delete(s));
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/**
 * Destroys the test's client sockets first: `node.stop()` awaits the
 * listener's close, which waits for every open connection (a client that
 * keeps dribbling, or a TLS peer before its handshake, would hold it up).
 */
async function teardown(farm: Farm, up: Upstream): Promise<void> {
  for (const s of clients) s.destroy();
  clients.clear();
  await farm.close();
  await up.close();
}

interface Ending {
  readonly data: string;
  /** ms from the call until the socket closed. */
  readonly afterMs: number;
  readonly error: string | null;
}

/** Everything a socket receives until it closes, and when that was; rejects after `timeoutMs`. */
function untilClosed(s: net.Socket, timeoutMs: number): Promise<Ending> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let error: string | null = null;
    const timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`)), timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks).toString('latin1'), afterMs: Date.now() - t0, error });
    });
  });
}

/** Resolves when `emitter` emits `event`, rejects after `timeoutMs` with `what`. */
function once(emitter: EventEmitter, event: string, what: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
    emitter.once(event, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Writes `text` one byte every `everyMs` until done or the socket closes; resolves with the bytes written. */
function dribble(s: net.Socket, text: string, everyMs: number): Promise<number> {
  return new Promise((resolve) => {
    let i = 0;
    const timer = setInterval(() => {
      if (s.destroyed || s.writableEnded || i >= text.length) {
        clearInterval(timer);
        resolve(i);
        return;
      }
      s.write(text[i++] as string);
    }, everyMs);
    s.once('close', () => {
      clearInterval(timer);
      resolve(i);
    });
  });
}


// ---- tests ---------------------------------------------------------------------

describe('slow clients: slowloris (a head that never completes)', () => {
  it('answers 408 and closes after timeouts.headers although a byte arrives every 50 ms; the server is never reached', async () => {
    const up = await startUpstream('s1');
    const { farm, log } = await farmWith(up);
    try {
      const s = await connect(farm.port);
      const ended = untilClosed(s, HEADERS_MS + SLACK_MS);
      // 2,000 bytes at 20 a second would take 100 s: only a deadline for the whole head stops it.
      const head = `GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ${'x'.repeat(2_000)}\r\n\r\n`;
      const written = dribble(s, head, 50);
      const r = await ended;
      assert.equal(statusOf(r.data), 408, r.data);
      assert.match(r.data, /x-corral-error: CORRAL_ERR_CLIENT_TIMEOUT/i);
      assert.ok(r.afterMs >= HEADERS_MS - 50, `closed after ${r.afterMs} ms`);
      assert.ok((await written) < 60, 'the dribble was cut short');
      assert.equal(up.hits, 0, 'the request reached a server');
      await log.wait((l) => l.error === 'CORRAL_ERR_CLIENT_TIMEOUT' && l.status === 408);
      assert.equal((await request(farm.url)).status, 200);
    } finally {
      await teardown(farm, up);
    }
  });

  it('closes a connection that sends nothing at all after timeouts.headers, without an answer', async () => {
    const up = await startUpstream('s1');
    const { farm } = await farmWith(up);
    try {
      const s = await connect(farm.port);
      const r = await untilClosed(s, HEADERS_MS + SLACK_MS);
      assert.equal(r.data, '');
      assert.equal(up.connections, 0);
    } finally {
      await teardown(farm, up);
    }
  });
});

describe('slow clients: the first connection after a quiet spell', () => {
  it('is not closed early when no connection was open for longer than timeouts.headers', async () => {
    // Inactivity is stamped with a coarse clock that only sweeps advance; with no connection
    // open, no sweep runs and the clock goes stale. A new connection must not inherit that age.
    const up = await startUpstream('s1');
    const { farm } = await farmWith(up);
    try {
      await new Promise((resolve) => setTimeout(resolve, HEADERS_MS * 2)); // a quiet spell: nothing connected
      const s = await connect(farm.port);
      await new Promise((resolve) => setTimeout(resolve, HEADERS_MS / 2)); // several sweep periods, well within the limit
      assert.equal(s.destroyed, false, 'closed before timeouts.headers');
      s.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      const r = await untilClosed(s, HEADERS_MS + SLACK_MS);
      assert.equal(statusOf(r.data), 200);
    } finally {
      await teardown(farm, up);
    }
  });
});

describe('slow clients: slow body', () => {
  it('answers 408 and closes after timeouts.client when a Content-Length body stops; the server sees the request aborted', async () => {
    let aborted: () => void = () => {};
    const serverAborted = new Promise<string>((resolve) => (aborted = () => resolve('aborted')));
    let received = 0;
    const up = await startUpstream('s1', (req, res) => {
      req.on('data', (c: Buffer) => (received += c.length));
      // 'close' before 'end': the request body never completed.
      let complete = false;
      req.on('end', () => {
        complete = true;
        res.end('ok');
      });
      req.on('close', () => {
        if (!complete) aborted();
      });
    });
    const { farm, log } = await farmWith(up);
    try {
      const s = await connect(farm.port);
      const ended = untilClosed(s, CLIENT_MS + SLACK_MS);
      s.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nfirst bytes');
      const r = await ended;
      assert.equal(statusOf(r.data), 408, r.data);
      assert.ok(r.afterMs >= CLIENT_MS - 50, `closed after ${r.afterMs} ms`);
      assert.equal(await Promise.race([serverAborted, new Promise((res) => setTimeout(() => res('not aborted'), SLACK_MS))]), 'aborted');
      assert.equal(received, 'first bytes'.length);
      const line = await log.wait((l) => l.msg === 'request' && l.error === 'CORRAL_ERR_CLIENT_TIMEOUT');
      assert.equal(line.status, 408);
      assert.equal((await request(farm.url)).status, 200);
    } finally {
      await teardown(farm, up);
    }
  });

  it('answers 408 after timeouts.client when a body is dribbled a byte every 50 ms', async () => {
    let received = 0;
    const up = await startUpstream('s1', (req, res) => {
      req.on('data', (c: Buffer) => (received += c.length));
      req.on('end', () => res.end('ok'));
    });
    const { farm } = await farmWith(up);
    try {
      const s = await connect(farm.port);
      const ended = untilClosed(s, CLIENT_MS + SLACK_MS);
      s.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n');
      const written = dribble(s, 'y'.repeat(1_000), 50);
      const r = await ended;
      assert.equal(statusOf(r.data), 408, r.data);
      assert.ok((await written) < 100, 'the dribble was cut short');
      assert.ok(received < 100);
    } finally {
      await teardown(farm, up);
    }
  });
});

describe('slow clients: slow read', () => {
  it('holds the server back while a client does not read 50 MB, stays within bounded memory, then closes after timeouts.client', async (t) => {
    const total = 50 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const events = new EventEmitter();
    /** Server side: bytes handed to res.write, and whether it is waiting for 'drain'. */
    const server = { written: 0, buffered: 0, waiting: false, closed: false };
    const up = await startUpstream('big', (req, res) => {
      req.resume();
      if (req.url !== '/big') {
        res.end('small');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      const pump = (): void => {
        server.waiting = false;
        while (server.written < total) {
          server.written += chunk.length;
          if (!res.write(chunk)) {
            server.waiting = true;
            server.buffered = res.socket?.writableLength ?? 0;
            events.emit('blocked');
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      res.on('close', () => {
        server.closed = true;
        events.emit('closed');
      });
      pump();
    });
    const { farm, log } = await farmWith(up);
    try {
      global.gc?.();
      const rss0 = process.memoryUsage().rss;
      const s = await connect(farm.port);
      s.pause(); // never read
      const blocked = once(events, 'blocked', 'the server to be held back', 5_000);
      s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
      await blocked;
      // The server stays blocked: no 'drain' arrives while the client does not read.
      // Sample for the rest of timeouts.client, when the proxy gives up.
      let peakRss = process.memoryUsage().rss;
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 10);
      const closed = once(events, 'closed', 'the upstream response to be closed', CLIENT_MS + SLACK_MS);
      await closed;
      clearInterval(sampler);
      assert.ok(server.waiting, 'the server was still waiting for drain when it was closed');
      const flushed = server.written - server.buffered;
      assert.ok(server.written < total / 4, `the server wrote ${server.written} of ${total} bytes`);
      assert.ok(peakRss - rss0 < 16 * 1024 * 1024, `RSS grew by ${((peakRss - rss0) / 1048576).toFixed(1)} MB (response: 50 MB)`);
      t.diagnostic(
        `server wrote ${(server.written / 1048576).toFixed(1)} MB of 50 MB (${(server.buffered / 1048576).toFixed(2)} MB of it still in its own buffer when last blocked); ` +
          `RSS peak +${((peakRss - rss0) / 1048576).toFixed(1)} MB`,
      );
      const line = await log.wait((l) => l.msg === 'request' && typeof l.note === 'string' && /client timeout/.test(l.note));
      assert.equal(line.status, 200);
      assert.ok(Number(line.bytesOut) < total / 4, `proxy forwarded ${String(line.bytesOut)} bytes (server flushed about ${flushed})`);
      // Reading now drains what the kernel held, then the connection ends short of the full body.
      const rest = untilClosed(s, 5_000);
      s.resume();
      const r = await rest;
      assert.ok(r.data.length < total, `client got ${r.data.length} bytes`);
      assert.equal((await request(farm.url)).status, 200);
    } finally {
      await teardown(farm, up);
    }
  });
});

describe('slow clients: frontend maxConn', () => {
  it('refuses the connection beyond maxConn with a log line, and accepts again once others close', async () => {
    const up = await startUpstream('s1');
    // Idle keep-alive connections live for timeouts.idle: long enough for the test.
    const log = new LogCapture();
    const farm = await startNode(
      httpFarmYaml([up.port], '', undefined, '    maxConn: 5\n    timeouts: { headers: 5s, idle: 10s }'),
      log.logger,
    );
    const open: net.Socket[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const s = await connect(farm.port);
        open.push(s);
        // A request makes sure the balancer has accepted and counted it.
        const got = new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
        s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
        assert.equal(statusOf(await got), 200);
      }
      const sixth = await connect(farm.port); // the kernel accepts; the balancer closes it at once
      sixth.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      const r = await untilClosed(sixth, 2_000);
      assert.equal(r.data, '', 'no answer on a refused connection');
      const line = await log.wait((l) => l.msg === 'connection refused: frontend maxConn reached');
      assert.equal(line.frontend, 'web');
      assert.equal(line.maxConn, 5);
      assert.equal(line.level, 40);
      assert.equal(up.hits, 5);

      const gone = open.map((s) => once(s, 'close', 'an open connection to close', 2_000));
      for (const s of open.splice(0)) s.end();
      await Promise.all(gone);
      // The balancer sees the FINs asynchronously: retry briefly until a connection is accepted again.
      const t0 = Date.now();
      let status = 0;
      while (status !== 200 && Date.now() - t0 < 2_000) {
        status = await request(farm.url).then((x) => x.status, () => 0);
      }
      assert.equal(status, 200);
    } finally {
      await teardown(farm, up);
    }
  });
});

describe('slow clients: TLS frontends', () => {
  async function tlsFarm(): Promise<{ farm: Farm; log: LogCapture; up: Upstream; cert: string }> {
    const cert = makeCert(['localhost']);
    const up = await startUpstream('s1');
    const log = new LogCapture();
    const farm = await startNode(slowYaml([up.port], `    tls: { cert: ${cert.cert}, key: ${cert.key} }`), log.logger);
    return { farm, log, up, cert: cert.cert };
  }

  function tlsGet(port: number, ca: string, servername: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, path: '/', createConnection: () => tls.connect({ host: '127.0.0.1', port, ca: [ca], servername, checkServerIdentity: () => undefined }) },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  it('closes and logs a connection that sends garbage instead of a handshake, and keeps serving', async () => {
    const { farm, log, up, cert } = await tlsFarm();
    try {
      for (const garbage of [Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3]), Buffer.alloc(4096, 0xff)]) {
        const s = await connect(farm.port);
        const ended = untilClosed(s, 2_000);
        s.write(garbage);
        const r = await ended;
        assert.ok(!r.data.startsWith('HTTP/'), 'no HTTP answer on a TLS port');
      }
      const line = await log.wait((l) => l.msg === 'TLS handshake failed');
      assert.equal(line.frontend, 'web');
      assert.equal(await tlsGet(farm.port, readFileSync(cert, 'utf8'), 'localhost'), 200);
      assert.equal(await tlsGet(farm.port, readFileSync(cert, 'utf8'), 'unknown.example.org'), 200, 'an unknown SNI gets the default certificate');
      await log.wait((l) => l.msg === 'unknown SNI name: default certificate used');
      assert.equal(up.hits, 2);
    } finally {
      await teardown(farm, up);
    }
  });

  it('closes a connection that never starts its handshake within timeouts.headers', async () => {
    const { farm, up } = await tlsFarm();
    try {
      const s = await connect(farm.port);
      const r = await untilClosed(s, HEADERS_MS + SLACK_MS);
      assert.equal(r.data, '');
    } finally {
      await teardown(farm, up);
    }
  });
});

describe('slow clients: half-open TCP peer', () => {
  for (const overTls of [false, true]) {
    it(`delivers the response to a client that sent its request and then shut down its write side${overTls ? ' (TLS)' : ''}`, async () => {
      const up = await startUpstream('s1', (req, res) => {
        req.resume();
        // Answer a little later, so the client's FIN is in before the response.
        req.on('end', () => setTimeout(() => res.end('late answer'), 100));
      });
      const cert = makeCert(['localhost']);
      const { farm, log } = await farmWith(up, overTls ? `    tls: { cert: ${cert.cert}, key: ${cert.key} }` : '');
      try {
        const s = overTls ? await connectTls(farm.port, readFileSync(cert.cert, 'utf8')) : await connect(farm.port, { allowHalfOpen: true });
        const ended = untilClosed(s, 3_000);
        s.end('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
        const r = await ended;
        const lines = log.lines.filter((l) => l.msg === 'request').map((l) => JSON.stringify(l));
        assert.equal(statusOf(r.data), 200, `got ${JSON.stringify(r.data)} (error ${r.error}); access log:\n${lines.join('\n')}`);
        assert.match(r.data, /late answer$/);
        assert.equal(up.hits, 1);
      } finally {
        await teardown(farm, up);
      }
    });
  }

  it('closes a half-open client that sends nothing more, without waiting for a timeout', async () => {
    const up = await startUpstream('s1');
    const { farm } = await farmWith(up);
    try {
      const s = await connect(farm.port, { allowHalfOpen: true });
      const ended = untilClosed(s, HEADERS_MS + SLACK_MS);
      s.once('end', () => s.end());
      s.end();
      const r = await ended;
      assert.equal(r.data, '');
      assert.ok(r.afterMs < HEADERS_MS, `closed after ${r.afterMs} ms`);
    } finally {
      await teardown(farm, up);
    }
  });
});

describe('slow clients: shutdown', () => {
  it('stop(0) closes an idle keep-alive connection at once instead of waiting for it', async () => {
    const up = await startUpstream('s1');
    const farm = await startNode(httpFarmYaml([up.port], '', undefined, '    timeouts: { headers: 5s, idle: 5s }'));
    try {
      const s = await connect(farm.port);
      const got = new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
      s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      assert.equal(statusOf(await got), 200);
      const t0 = Date.now();
      const closed = untilClosed(s, 10_000);
      await farm.node.stop(0);
      const stopMs = Date.now() - t0;
      await closed;
      assert.ok(stopMs < 1_000, `stop(0) took ${stopMs} ms with one idle keep-alive client (timeouts.idle 5s)`);
    } finally {
      await teardown(farm, up);
    }
  });
});

/** A TLS client (half-open allowed) trusting `ca`, once its handshake is done. */
function connectTls(port: number, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = { host: '127.0.0.1', port, ca: [ca], servername: 'localhost', allowHalfOpen: true };
    const s = tls.connect(options);
    clients.add(s);
    s.once('close', () => clients.delete(s));
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

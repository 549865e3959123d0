/**
 * `mode: tcp` over real sockets on 127.0.0.1: balancing, retries, half-close,
 * timeouts, queueing, PROXY protocol both ways, resets and a 100 MB transfer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { readFileSync, unlinkSync } from 'node:fs';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import { makeCert } from '../../../test/support/certs.js';
import { LogCapture } from '../../../test/support/log-capture.js';
import type { BackendConfig } from '../../config/index.js';
import { config, refusedPort, startRawServer } from '../../../test/support/farm.js';
import { RuntimeBackend } from '../backend.js';
import { encodeProxyV1, encodeProxyV2, parseProxyHeader } from '../proxy-protocol.js';
import type { ProxyHeader } from '../proxy-protocol.js';
import { TcpFrontend } from './tcp-frontend.js';
import type { Tunnel } from './tunnel.js';

// ---- harness -------------------------------------------------------------------


interface Proxy {
  readonly fe: TcpFrontend;
  readonly backend: RuntimeBackend;
  readonly port: number;
  readonly log: LogCapture;
  /** Waits for every tunnel to end, checks every slot was given back, then stops. */
  close(): Promise<void>;
}

/** One `mode: tcp` frontend in front of backend `app`, built from YAML like a node would. */
async function startProxy(
  servers: string[],
  backendYaml = '',
  frontendYaml = '',
  /** Changes the validated backend config, for what the config rules reject but the runtime must survive. */
  edit: (b: BackendConfig) => BackendConfig = (b) => b,
): Promise<Proxy> {
  const yaml = `
frontends:
  - name: edge
    listen: 127.0.0.1:0
    mode: tcp
    backend: app
${frontendYaml}
backends:
  - name: app
${backendYaml}
    servers:
${servers.map((s) => `      - ${s}`).join('\n')}
`;
  const cfg = config(yaml);
  const log = new LogCapture();
  const backends = new Map<string, RuntimeBackend>();
  for (const b of cfg.backends) backends.set(b.name, new RuntimeBackend(edit(b), randomBytes(32)));
  const fe = new TcpFrontend({ config: cfg.frontends[0] as (typeof cfg.frontends)[number], backends, log: log.logger });
  const { port } = await fe.listen();
  const backend = backends.get('app') as RuntimeBackend;
  return {
    fe,
    backend,
    port,
    log,
    close: async () => {
      try {
        await until(() => fe.clients.size === 0, 'every tunnel to end');
        for (const s of backend.servers) assert.equal(s.active, 0, `slot of ${s.name} released`);
      } finally {
        // A failed test must not leave tunnels (and the run) hanging.
        await fe.close(0);
        backend.close();
      }
    },
  };
}

const server = (name: string, port: number, extra = ''): string =>
  `{ name: ${name}, address: 127.0.0.1:${port}${extra === '' ? '' : `, ${extra}`} }`;

/** Polls a condition the code under test offers no event for. */
async function until(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

type RawServer = Awaited<ReturnType<typeof startRawServer>>;

/** A server that writes its name on connect, then echoes (`hold`) or closes (`close`). */
async function namedServer(name: string, mode: 'close' | 'hold' | 'echo' = 'close'): Promise<RawServer & { sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const raw = await startRawServer((s) => {
    sockets.push(s);
    if (mode === 'close') s.end(name);
    else if (mode === 'hold') s.write(name);
    else {
      s.write(name);
      s.pipe(s);
    }
  });
  return Object.assign(raw, { sockets });
}

function connect(port: number, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true, ...(localAddress !== undefined ? { localAddress } : {}) });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

interface Collected {
  readonly data: Buffer;
  readonly error: NodeJS.ErrnoException | null;
  /** The peer's FIN arrived (a clean end, not a reset). */
  readonly ended: boolean;
}

/** Everything a socket receives until it closes; on the peer's FIN our side is ended too unless `autoEnd` is false. */
function collect(s: net.Socket, autoEnd = true): Promise<Collected> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: NodeJS.ErrnoException | null = null;
    let ended = false;
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      ended = true;
      // Our side may still be open (allowHalfOpen); finish it so the socket closes.
      if (autoEnd && !s.writableEnded) s.end();
    });
    s.on('error', (e: NodeJS.ErrnoException) => (error = e));
    s.on('close', () => resolve({ data: Buffer.concat(chunks), error, ended }));
  });
}

/** Connects, sends `data`, half-closes, and returns what came back. */
async function exchange(port: number, data: string | Buffer = '', localAddress?: string): Promise<Collected> {
  const s = await connect(port, localAddress);
  const done = collect(s);
  s.end(data);
  return done;
}

/** The first chunk a socket receives. */
function firstData(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    s.once('data', (c: Buffer) => resolve(c.toString()));
    s.once('close', () => reject(new Error('closed before any data')));
  });
}

function readPem(path: string): Buffer {
  return readFileSync(path);
}

function tally(names: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[n] = (out[n] ?? 0) + 1;
  return out;
}

/**
 * A port whose accept queue is full: SYNs are dropped, so connecting hangs
 * (a child process listens with backlog 1 and blocks its event loop).
 */
async function blackholePort(): Promise<{ port: number; close(): void }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '-e',
      "require('net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, function () { process.stdout.write(this.address().port + '\\n'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); });",
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve) => child.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  // Fill the accept queue until a connect stays pending.
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 16; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
    const connected = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 200);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    if (!connected) break;
  }
  return {
    port,
    close: () => {
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
    },
  };
}

/** Reads a PROXY header and the bytes after it from everything a server received. */
function splitProxy(data: Buffer): { header: ProxyHeader; rest: string } {
  const r = parseProxyHeader(data);
  assert.equal(r.status, 'done', r.status === 'error' ? r.reason : r.status);
  if (r.status !== 'done') throw new Error('unreachable');
  return { header: r.header, rest: data.subarray(r.consumed).toString() };
}

/** A raw server that records everything each connection sends until its FIN, then closes. */
async function recordingServer(): Promise<RawServer & { received: Promise<Buffer>[] }> {
  const received: Promise<Buffer>[] = [];
  const raw = await startRawServer((s) => {
    received.push(
      new Promise((resolve) => {
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('end', () => {
          s.end();
          resolve(Buffer.concat(chunks));
        });
        s.on('close', () => resolve(Buffer.concat(chunks)));
      }),
    );
  });
  return Object.assign(raw, { received });
}

// ---- tests ---------------------------------------------------------------------

describe('tcp mode: forwarding', () => {
  it('echoes through the proxy, counts bytes both ways and logs one line', async () => {
    const echo = await startRawServer((s) => s.pipe(s));
    const p = await startProxy([server('e1', echo.port)]);
    try {
      const r = await exchange(p.port, 'hello, tunnel');
      assert.equal(r.data.toString(), 'hello, tunnel');
      assert.equal(r.error, null);
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.frontend, 'edge');
      assert.equal(line?.backend, 'app');
      assert.equal(line?.server, 'e1');
      assert.equal(line?.client, '127.0.0.1');
      assert.equal(typeof line?.clientPort, 'number');
      assert.equal(line?.bytesIn, 13);
      assert.equal(line?.bytesOut, 13);
      assert.equal(line?.termination, 'client-closed');
      assert.equal(typeof line?.durationMs, 'number');
      assert.equal(line?.error, undefined);
      const s = p.backend.servers[0];
      assert.deepEqual([s?.counters.total, s?.counters.bytesIn, s?.counters.bytesOut, s?.counters.failures], [1, 13, 13, 0]);
      assert.equal(p.fe.counters.connections, 1);
    } finally {
      await p.close();
      await echo.close();
    }
  });

  it('forwards a binary payload that arrives before the server connection is up', async () => {
    const echo = await startRawServer((s) => s.pipe(s));
    const p = await startProxy([server('e1', echo.port)]);
    try {
      const payload = randomBytes(300 * 1024); // beyond the held-bytes limit: the client is paused, nothing lost
      const r = await exchange(p.port, payload);
      assert.ok(r.data.equals(payload));
    } finally {
      await p.close();
      await echo.close();
    }
  });
});

describe('tcp mode: every balance mode distributes', () => {
  async function sequential(p: Proxy, n: number, localAddress?: string): Promise<string[]> {
    const names: string[] = [];
    for (let i = 0; i < n; i++) names.push((await exchange(p.port, '', localAddress)).data.toString());
    return names;
  }

  /** Opens `n` connections one after another, each kept open; returns the server each reached. */
  async function held(p: Proxy, n: number): Promise<{ names: string[]; sockets: net.Socket[] }> {
    const names: string[] = [];
    const sockets: net.Socket[] = [];
    for (let i = 0; i < n; i++) {
      const s = await connect(p.port);
      sockets.push(s);
      names.push(await firstData(s));
    }
    return { names, sockets };
  }

  async function release(sockets: net.Socket[]): Promise<void> {
    await Promise.all(
      sockets.map((s) => {
        const closed = new Promise((r) => s.once('close', r));
        s.destroy();
        return closed;
      }),
    );
  }

  it('roundrobin follows weights', async () => {
    const a = await namedServer('a');
    const b = await namedServer('b');
    const p = await startProxy([server('a', a.port, 'weight: 3'), server('b', b.port, 'weight: 1')], '    balance: roundrobin');
    try {
      assert.deepEqual(tally(await sequential(p, 8)), { a: 6, b: 2 });
    } finally {
      await p.close();
      await a.close();
      await b.close();
    }
  });

  it('source hashes the client address: stable per address, spread across addresses', async () => {
    const a = await namedServer('a');
    const b = await namedServer('b');
    const p = await startProxy([server('a', a.port), server('b', b.port)], '    balance: source');
    try {
      const byAddress = new Map<string, string>();
      for (let i = 2; i < 12; i++) {
        const local = `127.0.0.${i}`;
        const names = await sequential(p, 3, local);
        assert.equal(new Set(names).size, 1, `${local} kept its server: ${names.join(',')}`);
        byAddress.set(local, names[0] as string);
      }
      assert.equal(new Set(byAddress.values()).size, 2, `spread: ${JSON.stringify([...byAddress])}`);
    } finally {
      await p.close();
      await a.close();
      await b.close();
    }
  });

  it('source with hashSourcePort spreads one address over servers (the client port is used)', async () => {
    const a = await namedServer('a');
    const b = await namedServer('b');
    const p = await startProxy([server('a', a.port), server('b', b.port)], '    balance: source\n    hashSourcePort: true');
    try {
      assert.equal(Object.keys(tally(await sequential(p, 20))).length, 2);
    } finally {
      await p.close();
      await a.close();
      await b.close();
    }
  });

  it('leastconn spreads concurrent connections', async () => {
    const a = await namedServer('a', 'hold');
    const b = await namedServer('b', 'hold');
    const p = await startProxy([server('a', a.port), server('b', b.port)], '    balance: leastconn');
    try {
      const { names, sockets } = await held(p, 6);
      assert.deepEqual(tally(names), { a: 3, b: 3 });
      await release(sockets);
    } finally {
      await p.close();
      await a.close();
      await b.close();
    }
  });

  it('first fills a server up to maxConn before the next', async () => {
    const a = await namedServer('a', 'hold');
    const b = await namedServer('b', 'hold');
    const p = await startProxy([server('a', a.port, 'maxConn: 2'), server('b', b.port, 'maxConn: 2')], '    balance: first');
    try {
      const { names, sockets } = await held(p, 3);
      assert.deepEqual(names, ['a', 'a', 'b']);
      await release(sockets);
    } finally {
      await p.close();
      await a.close();
      await b.close();
    }
  });

  it('lblc keeps the destination on one server until it is overloaded', async () => {
    const a = await namedServer('a', 'hold');
    const b = await namedServer('b', 'hold');
    const p = await startProxy([server('a', a.port), server('b', b.port)], '    balance: lblc');
    try {
      const first = await held(p, 1);
      await release(first.sockets);
      const { names, sockets } = await held(p, 4);
      // Same destination: the first server again, until active > weight while the other is idle.
      assert.equal(names[0], first.names[0]);
      assert.equal(names[1], first.names[0]);
      assert.deepEqual(tally(names), { a: 2, b: 2 });
      await release(sockets);
    } finally {
      await p.close();
      await a.close();
      await b.close();
    }
  });

  it('random reaches every server', async () => {
    const a = await namedServer('a');
    const b = await namedServer('b');
    const p = await startProxy([server('a', a.port), server('b', b.port)], '    balance: random');
    try {
      const t = tally(await sequential(p, 40));
      assert.ok((t.a ?? 0) > 0 && (t.b ?? 0) > 0, JSON.stringify(t));
    } finally {
      await p.close();
      await a.close();
      await b.close();
    }
  });

  it('hash without a key (nothing to hash in TCP) falls back to round robin', async () => {
    // The config rules reject balance: hash behind a tcp frontend; the runtime still copes.
    const a = await namedServer('a');
    const b = await namedServer('b');
    const hash = (c: BackendConfig): BackendConfig => ({ ...c, balance: 'hash', hashOn: { kind: 'header', name: 'X-User' } });
    const p = await startProxy([server('a', a.port), server('b', b.port)], '', '', hash);
    try {
      assert.deepEqual(tally(await sequential(p, 10)), { a: 5, b: 5 });
    } finally {
      await p.close();
      await a.close();
      await b.close();
    }
  });
});

describe('tcp mode: connect failures and retries', () => {
  it('redispatches away from a refused port with zero client-visible failures', async () => {
    const dead = await refusedPort();
    const b = await namedServer('b');
    const p = await startProxy([server('dead', dead), server('b', b.port)], '    balance: roundrobin\n    retries: 3');
    try {
      for (let i = 0; i < 10; i++) {
        const r = await exchange(p.port);
        assert.equal(r.data.toString(), 'b');
        assert.equal(r.error, null);
      }
      const [deadServer, live] = p.backend.servers;
      assert.ok((deadServer?.counters.connectFailures ?? 0) >= 5);
      assert.equal(deadServer?.counters.failures, deadServer?.counters.connectFailures);
      assert.equal(live?.counters.total, 10);
      const lines = await p.log.accessLines(10);
      assert.ok(lines.every((l) => l.error === undefined && l.server === 'b'));
      assert.ok(lines.some((l) => l.retries === 1));
      assert.ok(p.log.lines.some((l) => l.msg === 'redispatching connection' && l.server === 'dead'));
    } finally {
      await p.close();
      await b.close();
    }
  });

  it('closes the client with CORRAL_ERR_CONNECT_FAILED once every server refused', async () => {
    const d1 = await refusedPort();
    const d2 = await refusedPort();
    const p = await startProxy([server('d1', d1), server('d2', d2)], '    retries: 3');
    try {
      const r = await exchange(p.port, 'anyone?');
      assert.equal(r.data.length, 0);
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.error, 'CORRAL_ERR_CONNECT_FAILED');
      assert.equal(line?.termination, 'connect-failed');
      assert.equal(line?.retries, 1);
      assert.match(String(line?.note), /ECONNREFUSED/);
    } finally {
      await p.close();
    }
  });

  it('stops after `retries` redispatches', async () => {
    const ports = await Promise.all([refusedPort(), refusedPort(), refusedPort()]);
    const p = await startProxy(ports.map((port, i) => server(`d${i}`, port)), '    retries: 1');
    try {
      await exchange(p.port);
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.retries, 1);
      assert.equal(p.backend.servers.reduce((n, s) => n + s.counters.total, 0), 2);
    } finally {
      await p.close();
    }
  });

  it('retries a connect timeout elsewhere, and reports CORRAL_ERR_CONNECT_TIMEOUT when nothing answers', async () => {
    const hole = await blackholePort();
    const b = await namedServer('b');
    const p = await startProxy([server('hole', hole.port), server('b', b.port)], '    balance: first\n    retries: 2\n    timeouts: { connect: 200ms }');
    const only = await startProxy([server('hole', hole.port)], '    timeouts: { connect: 200ms }');
    try {
      const r = await exchange(p.port);
      assert.equal(r.data.toString(), 'b');
      assert.equal(p.backend.servers[0]?.counters.connectFailures, 1);

      const t0 = Date.now();
      const r2 = await exchange(only.port, 'x');
      assert.equal(r2.data.length, 0);
      assert.ok(Date.now() - t0 >= 150);
      const [line] = await only.log.accessLines(1);
      assert.equal(line?.error, 'CORRAL_ERR_CONNECT_TIMEOUT');
      assert.equal(line?.termination, 'connect-timeout');
    } finally {
      await p.close();
      await only.close();
      await b.close();
      hole.close();
    }
  });

  it('retries a server that resets before sending a byte, replaying what the client sent', async () => {
    const resetter = await startRawServer((s) => s.resetAndDestroy());
    const echo = await startRawServer((s) => s.pipe(s));
    const p = await startProxy([server('rst', resetter.port), server('echo', echo.port)], '    balance: roundrobin\n    retries: 2');
    try {
      for (let i = 0; i < 6; i++) {
        const r = await exchange(p.port, `ping ${i}`);
        assert.equal(r.data.toString(), `ping ${i}`);
        assert.equal(r.error, null);
      }
      assert.ok((p.backend.servers[0]?.counters.failures ?? 0) >= 3);
    } finally {
      await p.close();
      await resetter.close();
      await echo.close();
    }
  });

  it('does not retry once more was sent than it keeps for a replay', async () => {
    let swallowed = 0;
    const greedy = await startRawServer((s) => {
      s.on('data', (d: Buffer) => {
        swallowed += d.length;
        if (swallowed > 200 * 1024) s.resetAndDestroy();
      });
    });
    const echo = await startRawServer((s) => s.pipe(s));
    const p = await startProxy([server('greedy', greedy.port), server('echo', echo.port)], '    balance: first\n    retries: 2');
    try {
      const c = await connect(p.port);
      const done = collect(c);
      c.write(randomBytes(1024 * 1024));
      const r = await done;
      assert.equal(r.data.length, 0);
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.termination, 'server-reset');
      assert.equal(line?.retries, 0);
      assert.equal(p.backend.servers[1]?.counters.total, 0);
    } finally {
      await p.close();
      await greedy.close();
      await echo.close();
    }
  });

  it('closes the client with CORRAL_ERR_NO_SERVER when no server is eligible', async () => {
    const a = await namedServer('a');
    const p = await startProxy([server('a', a.port)]);
    try {
      p.backend.servers[0]?.setAdmin('maint');
      const r = await exchange(p.port, 'x');
      assert.equal(r.data.length, 0);
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.error, 'CORRAL_ERR_NO_SERVER');
      assert.equal(line?.server, null);
    } finally {
      await p.close();
      await a.close();
    }
  });
});

describe('tcp mode: half-close', () => {
  it('client FIN reaches the server, which still answers, then ends', async () => {
    const srv = await startRawServer((s) => {
      s.allowHalfOpen = true;
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      // Answer only after the client's FIN: the request is "everything until EOF".
      s.on('end', () => setTimeout(() => s.end(`answer to ${Buffer.concat(chunks).toString()}`), 50));
    });
    const p = await startProxy([server('s', srv.port)]);
    try {
      const r = await exchange(p.port, 'question');
      assert.equal(r.data.toString(), 'answer to question');
      assert.equal(r.ended, true);
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.termination, 'client-closed');
    } finally {
      await p.close();
      await srv.close();
    }
  });

  it('server FIN reaches the client, which still sends, and the server receives it', async () => {
    let late: Promise<string> = Promise.resolve('');
    const srv = await startRawServer((s) => {
      s.allowHalfOpen = true;
      late = new Promise((resolve) => {
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('end', () => resolve(Buffer.concat(chunks).toString()));
      });
      s.end('banner, and I am done talking');
    });
    const p = await startProxy([server('s', srv.port)]);
    try {
      const c = await connect(p.port);
      const got = collect(c, false);
      await new Promise((r) => c.once('end', r));
      // Our read side is closed; the write side still works through the proxy.
      c.write('late ');
      c.end('data');
      const r = await got;
      assert.equal(r.data.toString(), 'banner, and I am done talking');
      assert.equal(await late, 'late data');
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.termination, 'server-closed');
      assert.equal(line?.bytesIn, 9);
    } finally {
      await p.close();
      await srv.close();
    }
  });

  it('works the same when a listener without allowHalfOpen hands sockets to accept()', async () => {
    const srv = await startRawServer((s) => {
      s.allowHalfOpen = true;
      s.on('data', () => {});
      s.on('end', () => setTimeout(() => s.end('late answer'), 50));
    });
    const p = await startProxy([server('s', srv.port)]);
    const shared = net.createServer((s) => p.fe.accept(s));
    await new Promise<void>((r) => shared.listen(0, '127.0.0.1', r));
    try {
      const r = await exchange((shared.address() as AddressInfo).port, 'q');
      assert.equal(r.data.toString(), 'late answer');
    } finally {
      shared.close();
      await p.close();
      await srv.close();
    }
  });
});

describe('tcp mode: idle timeout', () => {
  it('closes both sides when no byte moves either way', async () => {
    let serverSide: Promise<void> = Promise.resolve();
    const srv = await startRawServer((s) => {
      serverSide = new Promise((r) => s.once('close', () => r()));
    });
    const p = await startProxy([server('s', srv.port)], '', '    timeouts: { idle: 300ms }');
    try {
      const c = await connect(p.port);
      const t0 = Date.now();
      const r = await collect(c);
      await serverSide;
      assert.equal(r.data.length, 0);
      assert.ok(Date.now() - t0 >= 250);
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.termination, 'idle-timeout');
    } finally {
      await p.close();
      await srv.close();
    }
  });

  it('keeps a tunnel open while bytes flow in one direction only', async () => {
    const srv = await startRawServer((s) => s.resume());
    const p = await startProxy([server('s', srv.port)], '', '    timeouts: { idle: 300ms }');
    try {
      const c = await connect(p.port);
      const r = collect(c);
      for (let i = 0; i < 8; i++) {
        c.write('tick');
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.equal(c.destroyed, false);
      c.end();
      assert.equal((await r).error, null);
    } finally {
      await p.close();
      await srv.close();
    }
  });
});

describe('tcp mode: per-server maxConn', () => {
  it('queues beyond maxConn and serves the queue, with its early bytes, when a slot frees', async () => {
    const srv = await namedServer('s', 'echo');
    const p = await startProxy([server('s', srv.port)], '    maxConn: 1\n    timeouts: { queue: 5s }');
    try {
      const c1 = await connect(p.port);
      assert.equal(await firstData(c1), 's');
      const c2 = await connect(p.port);
      const got2 = collect(c2);
      c2.write('early');
      await until(() => p.backend.queueLength === 1, 'the second connection to queue');
      assert.equal(srv.sockets.length, 1);
      assert.equal(p.backend.servers[0]?.active, 1);
      c1.destroy();
      await until(() => srv.sockets.length === 2, 'the queued connection to reach the server');
      c2.end();
      assert.equal((await got2).data.toString(), 'searly');
      const lines = await p.log.accessLines(2);
      assert.ok(lines.some((l) => typeof l.queueMs === 'number' && l.queueMs > 0));
    } finally {
      await p.close();
      await srv.close();
    }
  });

  it('closes a connection that waited longer than timeouts.queue', async () => {
    const srv = await namedServer('s', 'hold');
    const p = await startProxy([server('s', srv.port)], '    maxConn: 1\n    timeouts: { queue: 200ms }');
    try {
      const c1 = await connect(p.port);
      await firstData(c1);
      const r = await exchange(p.port, 'waiting');
      assert.equal(r.data.length, 0);
      const line = await p.log.wait((l) => l.msg === 'connection' && l.error === 'CORRAL_ERR_QUEUE_TIMEOUT');
      assert.equal(line.termination, 'queue-timeout');
      assert.equal(srv.sockets.length, 1);
      c1.destroy();
    } finally {
      await p.close();
      await srv.close();
    }
  });
});

describe('tcp mode: PROXY protocol towards servers (sendProxy)', () => {
  for (const version of ['v1', 'v2'] as const) {
    it(`sends a ${version} header with the client and frontend addresses before the client's bytes`, async () => {
      const rec = await recordingServer();
      const p = await startProxy([server('r', rec.port)], `    sendProxy: ${version}`);
      try {
        const c = await connect(p.port);
        const localPort = c.localPort;
        const done = collect(c);
        c.end('payload after the header');
        await done;
        const { header, rest } = splitProxy(await (rec.received[0] as Promise<Buffer>));
        assert.equal(header.version, version === 'v1' ? 1 : 2);
        assert.equal(header.command, 'proxy');
        assert.deepEqual(header.addresses, {
          family: 'tcp4',
          source: { address: '127.0.0.1', port: localPort },
          destination: { address: '127.0.0.1', port: p.port },
        });
        assert.equal(rest, 'payload after the header');
        assert.equal(p.backend.servers[0]?.counters.bytesIn, 'payload after the header'.length);
      } finally {
        await p.close();
        await rec.close();
      }
    });
  }
});

describe('tcp mode: PROXY protocol from an outer balancer (acceptProxy)', () => {
  it('uses the v1 header source as the client, strips the header and forwards the rest', async () => {
    const rec = await recordingServer();
    const p = await startProxy([server('r', rec.port)], '    sendProxy: v2', '    acceptProxy: true');
    try {
      await exchange(p.port, 'PROXY TCP4 203.0.113.9 198.51.100.1 40000 443\r\nGET / HTTP/1.0\r\n\r\n');
      const { header, rest } = splitProxy(await (rec.received[0] as Promise<Buffer>));
      assert.deepEqual(header.addresses, {
        family: 'tcp4',
        source: { address: '203.0.113.9', port: 40000 },
        destination: { address: '198.51.100.1', port: 443 },
      });
      assert.equal(rest, 'GET / HTTP/1.0\r\n\r\n');
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.client, '203.0.113.9');
      assert.equal(line?.clientPort, 40000);
      assert.equal(line?.peer, '127.0.0.1');
      assert.equal(line?.bytesIn, 18);
    } finally {
      await p.close();
      await rec.close();
    }
  });

  it('accepts a v2 header (IPv6, with TLVs) split across writes', async () => {
    const rec = await recordingServer();
    const p = await startProxy([server('r', rec.port)], '    sendProxy: v1', '    acceptProxy: true');
    try {
      const header = encodeProxyV2(
        { family: 'tcp6', source: { address: '2001:db8::9', port: 40000 }, destination: { address: '2001:db8::1', port: 443 } },
        [{ type: 0x02, value: Buffer.from('example.com') }],
      );
      const c = await connect(p.port);
      const done = collect(c);
      for (let i = 0; i < header.length; i += 7) {
        c.write(header.subarray(i, i + 7));
        await new Promise((r) => setTimeout(r, 2));
      }
      c.end('data');
      await done;
      const got = (await (rec.received[0] as Promise<Buffer>)).toString('latin1');
      assert.equal(got, 'PROXY TCP6 2001:db8::9 2001:db8::1 40000 443\r\ndata');
    } finally {
      await p.close();
      await rec.close();
    }
  });

  it('uses the connection addresses for a v2 LOCAL header', async () => {
    const rec = await recordingServer();
    const p = await startProxy([server('r', rec.port)], '    sendProxy: v1', '    acceptProxy: true');
    try {
      const c = await connect(p.port);
      const localPort = c.localPort;
      const done = collect(c);
      c.end(Buffer.concat([encodeProxyV2(null), Buffer.from('x')]));
      await done;
      const got = (await (rec.received[0] as Promise<Buffer>)).toString('latin1');
      assert.equal(got, `PROXY TCP4 127.0.0.1 127.0.0.1 ${localPort} ${p.port}\r\nx`);
    } finally {
      await p.close();
      await rec.close();
    }
  });

  it('schedules on the real address: source hash follows the header, not the peer', async () => {
    const a = await namedServer('a');
    const b = await namedServer('b');
    const p = await startProxy([server('a', a.port), server('b', b.port)], '    balance: source', '    acceptProxy: true');
    try {
      const byClient = new Map<string, string>();
      for (let i = 1; i <= 10; i++) {
        const ip = `198.51.100.${i}`;
        const names = new Set<string>();
        for (let k = 0; k < 3; k++) {
          const h = encodeProxyV1({ family: 'tcp4', source: { address: ip, port: 1000 + k }, destination: { address: '192.0.2.1', port: 80 } });
          names.add((await exchange(p.port, h)).data.toString());
        }
        assert.equal(names.size, 1, `${ip} kept its server`);
        byClient.set(ip, [...names][0] as string);
      }
      // Every connection came from 127.0.0.1: only the header addresses can spread them.
      assert.equal(new Set(byClient.values()).size, 2);
    } finally {
      await p.close();
      await a.close();
      await b.close();
    }
  });

  const rejected: [string, (c: net.Socket) => void, RegExp][] = [
    ['an HTTP request instead of a header', (c) => c.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /not a PROXY/],
    ['a malformed v1 line', (c) => c.end('PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n'), /invalid source port/],
    ['an endless v1 line', (c) => c.end(`PROXY UNKNOWN ${'x'.repeat(200)}`), /longer than 107/],
    ['a v2 header declaring 64 KiB', (c) => c.end(Buffer.concat([encodeProxyV2(null).subarray(0, 14), Buffer.from([0xff, 0xff])])), /exceeds/],
    ['EOF inside the header', (c) => c.end('PROXY TCP4 1.2.3.4'), /before sending a complete PROXY header/],
    ['silence', () => {}, /no complete PROXY header within 300 ms/],
  ];
  for (const [name, send, reason] of rejected) {
    it(`closes and logs a connection with ${name}`, async () => {
      const srv = await namedServer('s');
      const p = await startProxy([server('s', srv.port)], '', '    acceptProxy: true\n    timeouts: { headers: 300ms }');
      try {
        const c = await connect(p.port);
        const done = collect(c);
        send(c);
        const r = await done;
        assert.equal(r.data.length, 0);
        const [line] = await p.log.accessLines(1);
        assert.equal(line?.termination, 'proxy-header');
        assert.equal(line?.error, 'CORRAL_ERR_BAD_PROXY_HEADER');
        assert.match(String(line?.note), reason);
        assert.equal(line?.server, null);
        assert.equal(srv.sockets.length, 0, 'no server connection was opened');
        assert.equal(p.fe.counters.proxyHeaderErrors, 1);
      } finally {
        await p.close();
        await srv.close();
      }
    });
  }
});

describe('tcp mode: resets and errors', () => {
  it('closes the client when the server resets mid-stream, and keeps serving', async () => {
    const flaky = await startRawServer((s) => {
      s.write('partial answer');
      setTimeout(() => s.resetAndDestroy(), 50);
    });
    const echo = await startRawServer((s) => s.pipe(s));
    const p = await startProxy([server('flaky', flaky.port), server('echo', echo.port)], '    balance: first');
    try {
      const c = await connect(p.port);
      const r = await collect(c);
      assert.equal(r.data.toString(), 'partial answer');
      assert.equal(r.ended, false, 'an abort is not passed on as a clean end');
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.termination, 'server-reset');
      assert.equal(line?.error, 'CORRAL_ERR_SERVER_FAILED');
      assert.equal(p.backend.servers[0]?.counters.failures, 1);
      // The process is fine: the next connection works (the flaky server again, then taken out).
      p.backend.servers[0]?.setAdmin('maint');
      assert.equal((await exchange(p.port, 'still here')).data.toString(), 'still here');
    } finally {
      await p.close();
      await flaky.close();
      await echo.close();
    }
  });

  it('closes the server side when the client resets', async () => {
    let serverClosed: Promise<void> = Promise.resolve();
    const srv = await startRawServer((s) => {
      serverClosed = new Promise((r) => s.once('close', () => r()));
      s.write('hi');
    });
    const p = await startProxy([server('s', srv.port)]);
    try {
      const c = await connect(p.port);
      await firstData(c);
      c.resetAndDestroy();
      await serverClosed;
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.termination, 'client-reset');
    } finally {
      await p.close();
      await srv.close();
    }
  });

  it('drops a client that leaves while its connection is queued', async () => {
    const srv = await namedServer('s', 'hold');
    const p = await startProxy([server('s', srv.port)], '    maxConn: 1');
    try {
      const c1 = await connect(p.port);
      await firstData(c1);
      const c2 = await connect(p.port);
      await until(() => p.backend.queueLength === 1, 'queueing');
      // A reset: a mere FIN would keep it queued, since a half-closed client may still want its answer.
      c2.resetAndDestroy();
      await until(() => p.backend.queueLength === 0, 'the queue entry to go');
      const line = await p.log.wait((l) => l.msg === 'connection');
      assert.equal(line.termination, 'client-aborted');
      c1.destroy();
    } finally {
      await p.close();
      await srv.close();
    }
  });
});

describe('tcp mode: frontend limits and shutdown', () => {
  it('refuses connections beyond the frontend maxConn, and logs it', async () => {
    const srv = await namedServer('s', 'hold');
    const p = await startProxy([server('s', srv.port)], '', '    maxConn: 1');
    try {
      const c1 = await connect(p.port);
      await firstData(c1);
      const r = await collect(await connect(p.port));
      assert.equal(r.data.length, 0);
      await p.log.wait((l) => l.msg === 'connection refused: frontend maxConn reached');
      assert.equal(p.fe.counters.rejected, 1);
      c1.destroy();
    } finally {
      await p.close();
    }
    await srv.close();
  });

  it('close(graceMs) stops accepting, lets tunnels run, then destroys them', async () => {
    const srv = await namedServer('s', 'echo');
    const p = await startProxy([server('s', srv.port)]);
    const c = await connect(p.port);
    await firstData(c);
    const r = collect(c);
    const t0 = Date.now();
    const closing = p.fe.close(300);
    await new Promise((res) => setTimeout(res, 50));
    // Still tunnelling during the grace period...
    c.write('during grace');
    assert.equal((await firstData(c)).toString(), 'during grace');
    // ...but no new connections.
    await assert.rejects(connect(p.port), /ECONNREFUSED/);
    await closing;
    assert.ok(Date.now() - t0 >= 250);
    await r;
    const [line] = await p.log.accessLines(1);
    assert.equal(line?.termination, 'shutdown');
    assert.equal(p.backend.servers[0]?.active, 0);
    p.backend.close();
    await srv.close();
  });
});

describe('tcp mode: TLS towards servers (servers[].tls)', () => {
  /** A TLS server that echoes until the client's close, then answers `bye` (half-close inside TLS). */
  async function tlsEcho(names: string[] = ['localhost', '127.0.0.1']): Promise<{
    port: number;
    ca: string;
    sni: (string | false | null)[];
    handshakes: number;
    close(): Promise<void>;
  }> {
    const cert = makeCert(names);
    const sockets = new Set<tls.TLSSocket>();
    const state = { sni: [] as (string | false | null)[], handshakes: 0 };
    const srv = tls.createServer({ cert: readPem(cert.cert), key: readPem(cert.key), allowHalfOpen: true }, (s) => {
      sockets.add(s);
      state.handshakes++;
      state.sni.push(s.servername);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      s.on('data', (c: Buffer) => s.write(c));
      s.on('end', () => s.end('bye'));
    });
    // A handshake the client abandons (it refused our certificate) leaves a half-open TLS server's
    // socket open and silent forever (Node 20): close() destroys the raw sockets too.
    const raw = new Set<net.Socket>();
    srv.on('connection', (s: net.Socket) => {
      raw.add(s);
      s.on('close', () => raw.delete(s));
    });
    srv.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    return {
      port: (srv.address() as AddressInfo).port,
      ca: cert.cert,
      sni: state.sni,
      get handshakes() {
        return state.handshakes;
      },
      close: () =>
        new Promise((resolve) => {
          for (const s of sockets) s.destroy();
          for (const s of raw) s.destroy();
          srv.close(() => resolve());
        }),
    };
  }

  it('verifies the server against tls.ca and the servername, then tunnels both ways with half-close', async () => {
    const srv = await tlsEcho();
    const p = await startProxy([server('t', srv.port, `tls: { ca: "${srv.ca}", servername: localhost }`)]);
    try {
      const c = await connect(p.port);
      const got = collect(c);
      c.write('hello over ');
      assert.equal(await firstData(c), 'hello over ');
      c.end('tls'); // the FIN becomes a TLS close towards the server, which still answers
      const r = await got;
      assert.equal(r.data.toString(), 'hello over tlsbye');
      assert.equal(r.ended, true);
      assert.equal(r.error, null);
      assert.deepEqual(srv.sni, ['localhost']);
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.termination, 'client-closed');
      assert.equal(line?.server, 't');
      assert.equal(line?.bytesIn, 14);
      assert.equal(line?.bytesOut, 17);
      assert.equal(p.backend.servers[0]?.counters.failures, 0);
    } finally {
      await p.close();
      await srv.close();
    }
  });

  it('checks an IP address host against the certificate without sending it as SNI', async () => {
    const srv = await tlsEcho(['127.0.0.1']);
    const p = await startProxy([server('t', srv.port, `tls: { ca: "${srv.ca}" }`)]);
    try {
      const r = await exchange(p.port, 'by ip');
      assert.equal(r.data.toString(), 'by ipbye');
      assert.deepEqual(srv.sni, [false]);
    } finally {
      await p.close();
      await srv.close();
    }
  });

  it('fails closed without the CA: the client is closed and the failure counted', async () => {
    const srv = await tlsEcho();
    const p = await startProxy([server('t', srv.port, 'tls: true')]);
    try {
      const r = await exchange(p.port, 'secret');
      assert.equal(r.data.length, 0, 'nothing of the server reaches the client');
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.termination, 'connect-failed');
      assert.equal(line?.error, 'CORRAL_ERR_CONNECT_FAILED');
      assert.match(String(line?.note), /^t: TLS: .*self[- ]signed/i);
      const s = p.backend.servers[0];
      assert.equal(s?.counters.connectFailures, 1);
      assert.equal(s?.counters.failures, 1);
    } finally {
      await p.close();
      await srv.close();
    }
  });

  it('fails closed when the certificate does not name the servername, and redispatches to a good server', async () => {
    const bad = await tlsEcho(['other.example']);
    const good = await tlsEcho(['localhost']);
    const p = await startProxy(
      [
        server('bad', bad.port, `tls: { ca: "${bad.ca}", servername: localhost }`),
        server('good', good.port, `tls: { ca: "${good.ca}", servername: localhost }`),
      ],
      '    balance: first',
    );
    try {
      const r = await exchange(p.port, 'x');
      assert.equal(r.data.toString(), 'xbye');
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.server, 'good');
      assert.equal(line?.retries, 1);
      const redispatch = await p.log.wait((l) => l.msg === 'redispatching connection');
      assert.match(String(redispatch.reason), /TLS: .*(altnames|other\.example)/i);
      assert.equal(p.backend.servers[0]?.counters.connectFailures, 1);
    } finally {
      await p.close();
      await bad.close();
      await good.close();
    }
  });

  it('accepts any certificate with verify: false', async () => {
    const srv = await tlsEcho(['other.example']);
    const p = await startProxy([server('t', srv.port, 'tls: { verify: false }')]);
    try {
      assert.equal((await exchange(p.port, 'trusting')).data.toString(), 'trustingbye');
    } finally {
      await p.close();
      await srv.close();
    }
  });

  it('reads the CA once per generation: a removed CA file still serves this generation, fails the next closed', async () => {
    const srv = await tlsEcho();
    const yaml = `tls: { ca: "${srv.ca}", servername: localhost }`;
    const p = await startProxy([server('t', srv.port, yaml)]);
    // The next generation is parsed (the file exists then) but connects only after the file is gone.
    const next = await startProxy([server('t', srv.port, yaml)]);
    try {
      assert.equal((await exchange(p.port, 'one')).data.toString(), 'onebye');
      unlinkSync(srv.ca);
      assert.equal((await exchange(p.port, 'two')).data.toString(), 'twobye');
      const r = await exchange(next.port, 'three');
      assert.equal(r.data.length, 0);
      const [line] = await next.log.accessLines(1);
      assert.equal(line?.termination, 'connect-failed');
      assert.match(String(line?.note), /cannot use tls CA .*ENOENT/);
      assert.equal(srv.handshakes, 2, 'the failing generation never reached the server');
    } finally {
      await p.close();
      await next.close();
      await srv.close();
    }
  });

  it('times out a server that accepts TCP but never completes the handshake', async () => {
    const mute = await startRawServer(() => {});
    const p = await startProxy([server('mute', mute.port, 'tls: true')], '    timeouts: { connect: 200ms }');
    try {
      const r = await exchange(p.port, 'anyone?');
      assert.equal(r.data.length, 0);
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.error, 'CORRAL_ERR_CONNECT_TIMEOUT');
      assert.match(String(line?.note), /TLS handshake/);
    } finally {
      await p.close();
      await mute.close();
    }
  });
});

describe('tcp mode: bulk transfer', () => {
  it('moves 100 MB both ways through an echo server with backpressure', async () => {
    const echo = await startRawServer((s) => s.pipe(s));
    const p = await startProxy([server('e', echo.port)]);
    try {
      const total = 100 * 1024 * 1024;
      const chunk = randomBytes(64 * 1024);
      const c = await connect(p.port);
      const sentHash = createHash('sha256');
      const recvHash = createHash('sha256');
      let received = 0;
      c.on('data', (d: Buffer) => {
        received += d.length;
        recvHash.update(d);
      });
      const closed = new Promise<void>((res) => c.once('close', () => res()));
      c.once('end', () => c.end());
      for (let sent = 0; sent < total; sent += chunk.length) {
        sentHash.update(chunk);
        if (!c.write(chunk)) await new Promise((res) => c.once('drain', res));
      }
      c.end();
      await closed;
      assert.equal(received, total);
      assert.equal(recvHash.digest('hex'), sentHash.digest('hex'));
      const s = p.backend.servers[0];
      assert.equal(s?.counters.bytesIn, total);
      assert.equal(s?.counters.bytesOut, total);
      const [line] = await p.log.accessLines(1);
      assert.equal(line?.bytesIn, total);
      assert.equal(line?.bytesOut, total);
    } finally {
      await p.close();
      await echo.close();
    }
  });

  it('does not buffer a fast client in front of a stalled server', async () => {
    const sinks: net.Socket[] = [];
    let sunk = 0;
    const sink = await startRawServer((s) => {
      sinks.push(s);
      s.pause();
      s.on('data', (d: Buffer) => (sunk += d.length));
    });
    const p = await startProxy([server('sink', sink.port)]);
    try {
      const total = 32 * 1024 * 1024;
      const c = await connect(p.port);
      const done = collect(c);
      c.end(Buffer.alloc(total, 7)); // the client writes everything at once
      await until(() => p.fe.clients.size === 1 && (([...p.fe.clients][0] as Tunnel).client.isPaused()), 'the proxy to pause the client');
      const tunnel = [...p.fe.clients][0] as Tunnel;
      // Let the kernel buffers settle; the proxy must hold no more than a few high-water marks.
      await new Promise((res) => setTimeout(res, 200));
      const held = (tunnel.upstream?.writableLength ?? 0) + tunnel.client.readableLength;
      assert.ok(held < 1024 * 1024, `proxy holds ${held} bytes`);
      assert.ok(tunnel.bytesIn < total / 2, `proxy read ${tunnel.bytesIn} of ${total} bytes from the client`);
      (sinks[0] as net.Socket).resume();
      await until(() => sunk === total, 'every byte to reach the server', 20_000);
      (sinks[0] as net.Socket).end();
      await done;
    } finally {
      await p.close();
      await sink.close();
    }
  });
});

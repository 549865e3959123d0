/**
 * Test helpers: a cluster of peer nodes in this process on 127.0.0.1, port 0.
 */
import { PeerClient, type PeerClientOptions } from './peer-client.js';
import { PeerNode, type PeerNodeOptions } from './peer-node.js';
import { SecureConnection } from './connection.js';
import { splitId } from './membership.js';
import { F, msg, T, type Msg } from './wire.js';

export const TEST_KEY = 'test-cluster-key-0123456789';

export interface TestCluster {
  readonly nodes: PeerNode[];
  readonly ids: string[];
  client(options?: Partial<PeerClientOptions>): PeerClient;
  close(): Promise<void>;
}

/** `perNode(i)`: options for the i-th node only, over `options`. */
export async function startCluster(n: number, options: Partial<PeerNodeOptions> = {}, perNode: (i: number) => Partial<PeerNodeOptions> = () => ({})): Promise<TestCluster> {
  const nodes = Array.from({ length: n }, (_, i) => new PeerNode({ listen: { host: '127.0.0.1', port: 0 }, key: TEST_KEY, heartbeatInterval: 100, ...options, ...perNode(i) }));
  const addrs = await Promise.all(nodes.map((x) => x.listen()));
  const ids = addrs.map((a) => `127.0.0.1:${a.port}`);
  await Promise.all(nodes.map((x, i) => x.start(ids, ids[i])));
  const clients: PeerClient[] = [];
  return {
    nodes,
    ids,
    client(o = {}) {
      const c = new PeerClient({ peers: ids, key: TEST_KEY, ...o });
      clients.push(c);
      return c;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(nodes.map((x) => x.close()));
    },
  };
}

/** Waits until every node in `ids` sees exactly `ids` live and runs no hand-off. */
export async function converged(client: PeerClient, ids: readonly string[], timeoutMs = 10_000): Promise<void> {
  const want = [...ids].sort().join(',');
  await until(async () => {
    if (!ids.every((id) => client.membership.isLive(id))) return false;
    const stats = await client.nodeStats().catch(() => undefined);
    if (stats === undefined || stats.size !== ids.length) return false;
    return [...stats.values()].every(
      (s) => s.handoff?.running === false && (s.members ?? []).filter((m) => m.live).map((m) => m.id).sort().join(',') === want,
    );
  }, timeoutMs, `nodes agreeing on ${want}`);
}

/** Polls `pred` every 20 ms until true or `timeoutMs`. */
export async function until(pred: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Ports free right now on 127.0.0.1 (bound to 0, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const { createServer } = await import('node:net');
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<import('node:net').Server>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export interface PeerProcess {
  readonly id: string;
  readonly port: number;
  child: import('node:child_process').ChildProcess;
  /** JSON lines the node printed. */
  lines: Record<string, unknown>[];
  waitFor(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

export interface PeerProcesses {
  readonly ids: string[];
  readonly procs: PeerProcess[];
  /** (Re)starts node i from its config; resolves once it serves. */
  start(i: number): Promise<PeerProcess>;
  stop(): Promise<void>;
}

/** n session nodes as separate processes (dist/src/sessions/peer-main.js), each from its own YAML config. */
export async function startPeerProcesses(n: number, options: { replicas?: number; ttl?: string; key?: string } = {}): Promise<PeerProcesses> {
  const { spawn } = await import('node:child_process');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join, dirname } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const main = join(dirname(fileURLToPath(import.meta.url)), 'peer-main.js');
  const dir = mkdtempSync(join(tmpdir(), 'corral-sessions-'));
  const ports = await freePorts(n);
  const ids = ports.map((p) => `127.0.0.1:${p}`);
  const files = ports.map((p, i) => {
    const file = join(dir, `node${i}.yaml`);
    writeFileSync(
      file,
      [
        `node: { name: s${i} }`,
        'sessions:',
        '  store: peer',
        `  replicas: ${options.replicas ?? 2}`,
        `  listen: 127.0.0.1:${p}`,
        `  peers: [${ids.join(', ')}]`,
        `  ttl: ${options.ttl ?? '30m'}`,
        'cluster:',
        `  key: ${JSON.stringify(options.key ?? TEST_KEY)}`,
        '',
      ].join('\n'),
    );
    return file;
  });
  const procs: PeerProcess[] = [];
  const start = async (i: number): Promise<PeerProcess> => {
    const child = spawn(process.execPath, [...(process.env.CORRAL_PEER_NODE_ARGS ?? "").split(" ").filter(Boolean), main, files[i] as string], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
    let buf = '';
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let l: Record<string, unknown>;
        try {
          l = JSON.parse(text) as Record<string, unknown>;
        } catch {
          l = { text };
        }
        lines.push(l);
        for (const w of [...waiters]) {
          if (!w.pred(l)) continue;
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const p: PeerProcess = {
      id: ids[i] as string,
      port: ports[i] as number,
      child,
      lines,
      exited,
      waitFor(pred, timeoutMs = 15_000) {
        const found = lines.find(pred);
        if (found !== undefined) return Promise.resolve(found);
        return new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`node ${i}: no matching line in ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
          waiters.push({ pred, resolve: (l) => (clearTimeout(t), resolve(l)) });
          void exited.then((code) => (clearTimeout(t), reject(new Error(`node ${i} exited with ${code}; stderr: ${err}`))));
        });
      },
    };
    procs[i] = p;
    await p.waitFor((l) => l.event === 'sessions.started');
    return p;
  };
  await Promise.all(ports.map((_, i) => start(i)));
  return {
    ids,
    procs,
    start,
    async stop() {
      await Promise.all(
        procs.map(async (p) => {
          if (p.child.exitCode === null && p.child.signalCode === null) {
            p.child.kill('SIGKILL');
            await p.exited;
          }
        }),
      );
    },
  };
}

/** Reads the raw record a node holds (as another node would for read repair). */
export async function rawRecords(ids: readonly string[], key: string): Promise<Map<string, [string | null, number, string] | undefined>> {
  const out = new Map<string, [string | null, number, string] | undefined>();
  for (const id of ids) {
    const { host, port } = splitId(id);
    const peer = await SecureConnection.connect(host, port, { key: TEST_KEY, id: 'zz-inspector', role: 'peer' });
    peer.start();
    try {
      const r: Msg = await peer.request(msg(T.GET, { k: key, f: F.RAW | F.FORWARDED }), 2000);
      out.set(id, (r.f & F.FOUND) === 0 ? undefined : [r.v, r.n1, r.s]);
    } finally {
      peer.close();
    }
  }
  return out;
}

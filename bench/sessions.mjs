#!/usr/bin/env node
// Session-store benchmark: get/set through Corral's peer client against 3 peer nodes (R=2,
// separate processes) and through ioredis against a Redis started for the run — same client
// process, same run, interleaved rounds. Then the hand-off time for 100k sessions after a SIGKILL.
//
//   npm run bench:sessions            full run; writes bench/results/<date>-sessions.md
//   node bench/sessions.mjs --quick   smoke test (short rounds, 10k sessions for the hand-off)
//
// Environment: BENCH_SECONDS per measurement (5), BENCH_ROUNDS (3), BENCH_CONCURRENCY in-flight
// requests, a comma list (64,256), BENCH_KEYS (10000), BENCH_VALUE_BYTES (200),
// BENCH_HANDOFF_SESSIONS (100000).
// Needs a build (npm run build) and redis-server on PATH.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(ROOT, 'dist/src/sessions', p);
const { PeerClient } = await import(dist('peer-client.js'));
const { RedisStore } = await import(dist('redis-store.js'));
const { converged, freePorts, startPeerProcesses, TEST_KEY, until } = await import(dist('testing.js'));

const QUICK = process.argv.includes('--quick');
const num = (name, dflt) => (process.env[name] ? Number(process.env[name]) : dflt);
const SECONDS = num('BENCH_SECONDS', QUICK ? 1.5 : 5);
const ROUNDS = num('BENCH_ROUNDS', QUICK ? 1 : 3);
const LEVELS = (process.env.BENCH_CONCURRENCY ?? (QUICK ? '64' : '64,256')).split(',').map(Number);
let CONC = LEVELS[0];
const KEYS = num('BENCH_KEYS', 10_000);
const VALUE_BYTES = num('BENCH_VALUE_BYTES', 200);
const HANDOFF_N = num('BENCH_HANDOFF_SESSIONS', QUICK ? 10_000 : 100_000);
const TTL = 30 * 60_000;

const log = (...a) => console.error(...a);
const value = JSON.stringify({ cookie: { originalMaxAge: TTL, httpOnly: true, path: '/' }, user: 'x'.repeat(Math.max(0, VALUE_BYTES - 80)) });
const keys = Array.from({ length: KEYS }, (_, i) => `bench-${i.toString(36)}-${((i * 2654435761) >>> 0).toString(16)}`);

async function startRedis() {
  const [port] = await freePorts(1);
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const probe = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
  probe.on('error', () => {});
  for (let i = 0; i < 100; i++) {
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  probe.disconnect();
  return { port, child };
}

/**
 * Latencies go into a fixed log-linear histogram (exact below 1,024 µs, then 128 steps per power of
 * two: under 0.8 % error), not an array of every sample: a buffer that grows by hundreds of
 * thousands of entries per round changes how V8 collects the client's short-lived objects, and that
 * cost (about 3 µs per operation here) would be measured as the subjects'.
 */
class Histogram {
  counts = new Uint32Array(1024 + 32 * 128);
  n = 0;
  static bucket(us) {
    const v = Math.max(0, Math.floor(us));
    if (v < 1024) return v;
    const e = 31 - Math.clz32(v); // ≥ 10
    return 1024 + (e - 10) * 128 + ((v >>> (e - 7)) & 127);
  }
  static lower(b) {
    if (b < 1024) return b;
    const e = 10 + Math.floor((b - 1024) / 128);
    return (128 + ((b - 1024) % 128)) * 2 ** (e - 7);
  }
  add(ms) {
    this.counts[Histogram.bucket(ms * 1000)]++;
    this.n++;
  }
  /** The p-quantile in ms (the lower edge of its bucket). */
  quantile(p) {
    const want = Math.min(this.n, Math.floor(this.n * p) + 1);
    let seen = 0;
    for (let b = 0; b < this.counts.length; b++) {
      seen += this.counts[b];
      if (seen >= want) return Histogram.lower(b) / 1000;
    }
    return NaN;
  }
}

/** Runs `op` with CONC requests in flight for SECONDS; returns ops/s and latency percentiles (ms). */
async function measure(op) {
  const lat = new Histogram();
  let i = 0;
  let errors = 0;
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (performance.now() < end) {
        const k = keys[(i++ * 7919) % keys.length];
        const s = performance.now();
        try {
          await op(k);
        } catch {
          errors++;
        }
        lat.add(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { ops: lat.n / secs, p50: lat.quantile(0.5), p99: lat.quantile(0.99), errors };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const load0 = loadavg()[0];
  log(`sessions bench: ${ROUNDS} round(s) × ${SECONDS}s, ${LEVELS.join(' and ')} in flight, ${KEYS} keys of ${value.length} bytes`);
  const redis = await startRedis();
  const cluster = await startPeerProcesses(3, { replicas: 2 });
  const peer = new PeerClient({ peers: cluster.ids, key: TEST_KEY, replicas: 2 });
  const io = new Redis({ port: redis.port });
  const store = new RedisStore({ url: `redis://127.0.0.1:${redis.port}`, prefix: 'corral:bench:' });
  const results = {};
  try {
    await converged(peer, cluster.ids);
    for (let i = 0; i < KEYS; i += 500) {
      const batch = keys.slice(i, i + 500);
      await Promise.all(batch.flatMap((k) => [peer.set(k, value), io.set(k, value, 'PX', TTL), store.set(k, value)]));
    }
    const subjects = {
      'peer get (Corral client, R=2)': (k) => peer.get(k),
      'redis get (ioredis GET)': (k) => io.get(k),
      'redis store get (Corral RedisStore, Lua)': (k) => store.get(k),
      'peer set (Corral client, R=2)': (k) => peer.set(k, value),
      'redis set (ioredis SET PX)': (k) => io.set(k, value, 'PX', TTL),
      'redis store set (Corral RedisStore, Lua)': (k) => store.set(k, value),
    };
    // warm-up
    for (const op of Object.values(subjects)) await measure.call(null, op).catch(() => {});
    for (const level of LEVELS) {
      CONC = level;
      const res = (results[level] = {});
      for (const name of Object.keys(subjects)) res[name] = [];
      for (let r = 0; r < ROUNDS; r++) {
        for (const [name, op] of Object.entries(subjects)) {
          const m = await measure(op);
          res[name].push(m);
          log(`${level} in flight, round ${r + 1}  ${name.padEnd(44)} ${m.ops.toFixed(0).padStart(7)} ops/s  p50 ${m.p50.toFixed(2)} ms  p99 ${m.p99.toFixed(2)} ms${m.errors ? `  errors ${m.errors}` : ''}`);
        }
      }
    }
  } finally {
    await peer.close();
    io.disconnect();
    await store.close();
    await cluster.stop();
    redis.child.kill('SIGKILL');
  }
  const load1 = loadavg()[0];
  const handoff = await measureHandoff();
  report(results, handoff, [load0, load1]);
}

async function copies(c, ids) {
  const counts = new Map();
  for (const keys of await Promise.all(ids.map((id) => c.nodeKeys(id)))) for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  return counts;
}

async function measureHandoff() {
  log(`hand-off: ${HANDOFF_N} sessions on 3 nodes (R=2), SIGKILL one`);
  const cluster = await startPeerProcesses(3, { replicas: 2 });
  const c = new PeerClient({ peers: cluster.ids, key: TEST_KEY, replicas: 2, timeout: 10_000 });
  try {
    await converged(c, cluster.ids);
    const hk = Array.from({ length: HANDOFF_N }, (_, i) => `h-${i}`);
    const tw = performance.now();
    for (let i = 0; i < hk.length; i += 1000) await Promise.all(hk.slice(i, i + 1000).map((k) => c.set(k, value)));
    const writeMs = performance.now() - tw;
    const victim = cluster.procs[1];
    const survivors = cluster.ids.filter((id) => id !== victim.id);
    const tKill = performance.now();
    victim.child.kill('SIGKILL');
    await victim.exited;
    await until(async () => {
      const n = await copies(c, survivors);
      return hk.every((k) => n.get(k) === 2);
    }, 120_000, 'two copies of every key');
    const allCopiesMs = performance.now() - tKill;
    const stats = await c.nodeStats();
    const nodes = [...stats.values()].map((s) => ({ records: s.handoff.lastRecords, ms: s.handoff.lastDurationMs }));
    let lost = 0;
    for (let i = 0; i < hk.length; i += 2000) {
      const got = await Promise.all(hk.slice(i, i + 2000).map((k) => c.get(k)));
      lost += got.filter((e) => e?.value !== value).length;
    }
    const tJoin = performance.now();
    const back = await cluster.start(1);
    const ready = await back.waitFor((l) => l.event === 'sessions.ready', 120_000);
    await until(() => c.membership.isLive(victim.id), 30_000, 'rejoined node live');
    await until(async () => {
      const n = await copies(c, cluster.ids).catch(() => new Map());
      return hk.every((k) => n.get(k) === 2);
    }, 120_000, 'exactly two copies after the rejoin');
    const rejoinMs = performance.now() - tJoin;
    return { n: HANDOFF_N, writeMs, allCopiesMs, nodes, lost, caughtUp: ready.caughtUp, catchUpMs: ready.ms, rejoinMs };
  } finally {
    await c.close();
    await cluster.stop();
  }
}

function report(all, h, loads) {
  const sections = [];
  const ratios = [];
  for (const [level, results] of Object.entries(all)) {
    const best = (name) => median(results[name].map((m) => m.ops));
    const rows = Object.keys(results).map(
      (name) =>
        `| ${name} | ${best(name).toFixed(0)} | ${median(results[name].map((m) => m.p50)).toFixed(2)} | ${median(results[name].map((m) => m.p99)).toFixed(2)} | ${results[name].reduce((a, m) => a + m.errors, 0)} |`,
    );
    const ratio = (a, b) => (best(a) / best(b)).toFixed(2);
    // Each round measures the peer subject right before its Redis counterpart: the ratio within a
    // round is the least disturbed by load that comes and goes on a shared machine.
    const paired = (a, b) => results[a].map((m, i) => m.ops / results[b][i].ops);
    const show = (xs) => xs.map((x) => x.toFixed(2)).join(', ');
    const PG = 'peer get (Corral client, R=2)';
    const RG = 'redis get (ioredis GET)';
    const PS = 'peer set (Corral client, R=2)';
    const RS = 'redis set (ioredis SET PX)';
    const g = ratio(PG, RG);
    const st = ratio(PS, RS);
    ratios.push(`${level} in flight: get ${g}×, set ${st}×`);
    sections.push(`### ${level} requests in flight

| subject | ops/s | p50 ms | p99 ms | errors |
| --- | ---: | ---: | ---: | ---: |
${rows.join('\n')}

Ratio of the peer client to ioredis (ops/s): **get ${g}×, set ${st}×**.
Round by round (each pair measured back to back): get ${show(paired(PG, RG))}; set ${show(paired(PS, RS))}
(median get ${median(paired(PG, RG)).toFixed(2)}×, set ${median(paired(PS, RS)).toFixed(2)}×).
`);
  }
  const date = new Date().toISOString().slice(0, 10);
  const md = `# Sessions benchmark — ${date}${QUICK ? ' (quick)' : ''}

Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version};
load average ${loads[0].toFixed(2)} at the start, ${loads[1].toFixed(2)} at the end of the get/set rounds (other work shares this machine).
One client process drives every subject, interleaved, ${ROUNDS} round(s) of ${SECONDS} s each (medians shown),
${KEYS} keys, values of ${value.length} bytes.
Peer: 3 node processes (\`peer-main.js\`), R=2, TLS 1.2 with a per-connection pre-shared key (AES-256-GCM records); a set is acknowledged once both owners hold it
(the client sends a set to both owners and waits for both answers, against one round trip for Redis;
a set the owners disagree on goes through the coordinator). Latencies are kept in a log-linear histogram (under 0.8 % error).
Redis: a \`redis-server --save ""\` started for the run, one ioredis connection (pipelined by the concurrency),
no replication. "RedisStore" is Corral's \`redis\` store on the same server (versioned hash + Lua).

**Ratios to Redis: ${ratios.join('; ')}** (target ≥ 0.7×).

${sections.join('\n')}
## Hand-off after SIGKILL (${h.n.toLocaleString('en')} sessions, 3 nodes, R=2)

| measure | value |
| --- | ---: |
| write ${h.n.toLocaleString('en')} sessions | ${(h.writeMs / 1000).toFixed(2)} s |
| sessions lost after the kill | ${h.lost} |
| kill → every key on 2 live nodes (detection + transfer + verification scan) | ${(h.allCopiesMs / 1000).toFixed(2)} s |
| hand-off as timed by each survivor (records pushed, ms) | ${h.nodes.map((n) => `${n.records} in ${n.ms} ms`).join('; ')} |
| rejoin: records received while catching up / time before serving | ${h.caughtUp} / ${h.catchUpMs} ms |
| rejoin: process start → exactly 2 copies of every key | ${(h.rejoinMs / 1000).toFixed(2)} s |
`;
  const out = join(ROOT, 'bench', 'results', `${date}${QUICK ? '-quick' : ''}-sessions.md`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, md);
  process.stdout.write(md);
  log(`wrote ${out}`);
}

await main();
process.exit(0);

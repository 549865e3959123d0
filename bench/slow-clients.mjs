#!/usr/bin/env node
// Slow-client attacks against a running Corral node, with a probe that keeps
// measuring whether normal clients are still served.
//
//   npm run build && node bench/slow-clients.mjs
//
// What it does, all on 127.0.0.1 with ports picked by the system:
//   1. installs slowhttptest with apt-get if it is missing;
//   2. starts a small upstream (its own process) and `corral start` (workers: 1,
//      the default timeouts: headers 10s, idle 60s, client 50s) in front of it;
//   3. measures a baseline, then runs slowhttptest in slowloris (-H), slow body
//      (-B) and slow read (-X) mode for SLOW_SECONDS each, with SLOW_CONNS
//      connections opened at SLOW_RATE per second, while a probe sends one normal
//      request at a time on a new connection (success, failure, latency) and the
//      balancer's RSS and open file descriptors are sampled;
//   4. writes bench/results/<date>-slow-clients.md.
//
// Environment: SLOW_SECONDS (30), SLOW_CONNS (400), SLOW_RATE (200),
// SLOW_PROBE_TIMEOUT_MS (2000), SLOW_OUT (the report path).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { corralNodeFlags } from './lib/servers.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env.SLOW_SECONDS ?? 30);
const CONNS = Number(process.env.SLOW_CONNS ?? 400);
const RATE = Number(process.env.SLOW_RATE ?? 200);
const PROBE_TIMEOUT_MS = Number(process.env.SLOW_PROBE_TIMEOUT_MS ?? 2000);
const BASELINE_SECONDS = 10;
/** Size of the response slow read asks for. */
const BIG_BYTES = 1024 * 1024;

const work = mkdtempSync(join(tmpdir(), 'corral-slow-'));
let corral = null;
const children = new Set();

function log(msg) {
  process.stdout.write(`[slow-clients] ${msg}\n`);
}

async function cleanup() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone already
    }
  }
  if (corral !== null && corral.exitCode === null) {
    corral.kill('SIGKILL');
  }
  if (process.env.SLOW_KEEP === '1') log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    log(`${sig}: stopping`);
    void cleanup().then(() => process.exit(130));
  });
}

// ---- setup ---------------------------------------------------------------------

function ensureSlowhttptest() {
  if (spawnSync('sh', ['-c', 'command -v slowhttptest'], { stdio: 'ignore' }).status === 0) return;
  log('slowhttptest is missing: apt-get install -y slowhttptest');
  const root = process.getuid?.() === 0;
  const run = (args) => {
    const cmd = root ? 'apt-get' : 'sudo';
    const r = spawnSync(cmd, root ? args : ['apt-get', ...args], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    return r.status === 0;
  };
  if (!run(['install', '-y', 'slowhttptest'])) {
    run(['update']);
    if (!run(['install', '-y', 'slowhttptest'])) throw new Error('could not install slowhttptest');
  }
}

function slowhttptestVersion() {
  const r = spawnSync('slowhttptest', ['-h'], { encoding: 'utf8' });
  return /version ([\d.]+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
}

/**
 * A small upstream in its own process (so that it does not share an event loop
 * with the probe): `/` answers a few bytes, `/big` 1 MiB, POST bodies are read
 * before answering. Resolves with its port.
 */
async function startUpstream() {
  const code = `
const http = require('node:http');
const big = Buffer.alloc(${BIG_BYTES}, 0x61);
const server = http.createServer({ keepAliveTimeout: 65000 }, (req, res) => {
  req.on('error', () => {});
  res.on('error', () => {});
  req.resume();
  req.on('end', () => {
    if (req.url.startsWith('/big')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(big.length) });
      res.end(big);
    } else {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('ok');
    }
  });
});
server.on('clientError', (_err, socket) => socket.destroy());
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  return new Promise((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`upstream exited with ${c}`)));
    child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
  });
}

async function freePort() {
  const s = http.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise((r) => s.close(() => r()));
  return port;
}

function startCorral(port, upstreamPort) {
  const yaml = `# generated by bench/slow-clients.mjs; timeouts are the defaults (headers 10s, idle 60s, client 50s, server 50s)
node: { name: bench-slow }
workers: 1
frontends:
  - name: web
    listen: 127.0.0.1:${port}
    backend: app
backends:
  - name: app
    servers:
      - { name: up, address: 127.0.0.1:${upstreamPort} }
`;
  const file = join(work, 'corral.yaml');
  writeFileSync(file, yaml);
  const child = spawn(process.execPath, [...corralNodeFlags(ROOT), join(ROOT, 'dist/src/cli/main.js'), 'start', '-c', file], {
    cwd: work,
    env: { ...process.env, CORRAL_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  const keep = (d) => {
    for (const l of d.toString().split('\n')) if (l.trim() !== '') lines.push(l);
    if (lines.length > 2000) lines.splice(0, lines.length - 2000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.lines = lines;
  child.yaml = yaml;
  return child;
}

async function waitForPort(port, child, ms) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (child.exitCode !== null) throw new Error(`corral exited with ${child.exitCode}: ${child.lines.slice(-5).join(' | ')}`);
    const ok = await probeOnce(port, 500).then((r) => r.ok);
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`corral did not answer on ${port} within ${ms} ms`);
}

// ---- measuring -------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One GET on a new connection; ok when a 200 with the full body arrives within `timeoutMs`. */
function probeOnce(port, timeoutMs) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok, why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ok, ms: performance.now() - t0, why });
    };
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => finish(res.statusCode === 200 && body === 'ok', `status ${res.statusCode}`));
      res.on('error', (e) => finish(false, e.code ?? e.message));
    });
    req.on('error', (e) => finish(false, e.code ?? e.message));
    const timer = setTimeout(() => {
      req.destroy();
      finish(false, 'timeout');
    }, timeoutMs);
  });
}

/** Sends one request at a time until stopped; records every outcome. */
function startProbe(port) {
  const results = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      results.push(await probeOnce(port, PROBE_TIMEOUT_MS));
      await sleep(20);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return results;
    },
  };
}

/** Memory, descriptors and bytes written of a process, and the kernel's TCP buffer memory (all sockets). */
function procStats(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const wchar = Number(/^wchar:\s+(\d+)/m.exec(io)?.[1] ?? 0);
    const tcpPages = Number(/^TCP:.*\bmem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1] ?? 0);
    return { rss: kb('VmRSS') * 1024, hwm: kb('VmHWM') * 1024, fds: readdirSync(`/proc/${pid}/fd`).length, wchar, tcpMem: tcpPages * 4096 };
  } catch {
    return null;
  }
}

function startSampler(pid) {
  const samples = [];
  const take = () => {
    const s = procStats(pid);
    if (s !== null) samples.push(s);
  };
  take();
  const timer = setInterval(take, 200);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summarizeProbe(results) {
  const ok = results.filter((r) => r.ok);
  const failed = results.filter((r) => !r.ok);
  const lat = ok.map((r) => r.ms).sort((a, b) => a - b);
  const reasons = {};
  for (const f of failed) reasons[f.why] = (reasons[f.why] ?? 0) + 1;
  return {
    total: results.length,
    ok: ok.length,
    failed: failed.length,
    availability: results.length === 0 ? NaN : ok.length / results.length,
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
    max: lat.length === 0 ? NaN : lat[lat.length - 1],
    reasons,
  };
}

/** slowhttptest's CSV: Seconds,Closed,Pending,Connected,Service Available (one row a second). */
function readSlowCsv(path) {
  if (!existsSync(path)) return null;
  const rows = readFileSync(path, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
  const connected = rows.map((r) => Number(r[3] ?? 0));
  const available = rows.map((r) => Number(r[4] ?? 0));
  return {
    seconds: rows.length,
    maxConnected: Math.max(0, ...connected),
    meanConnected: connected.length === 0 ? 0 : connected.reduce((a, b) => a + b, 0) / connected.length,
    availableShare: available.length === 0 ? NaN : available.filter((v) => v > 0).length / available.length,
  };
}

function runSlowhttptest(mode, port) {
  const base = join(work, `slow-${mode.flag.slice(1)}`);
  const args = [
    mode.flag,
    '-c', String(CONNS),
    '-r', String(RATE),
    '-l', String(SECONDS),
    '-p', String(Math.ceil(PROBE_TIMEOUT_MS / 1000)),
    '-g', '-o', base,
    '-u', `http://127.0.0.1:${port}${mode.path}`,
    ...mode.args,
  ];
  log(`slowhttptest ${args.join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn('slowhttptest', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: work });
    children.add(child);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    // slowhttptest ends on its own after -l seconds; a hard stop a little later.
    const guard = setTimeout(() => child.kill('SIGINT'), (SECONDS + 30) * 1000);
    child.on('exit', (code) => {
      clearTimeout(guard);
      children.delete(child);
      const text = out.replace(/\x1b\[[0-9;]*m/g, '');
      const last = (re) => [...text.matchAll(re)].pop()?.[1];
      const exitLine = last(/Exit status:\s*(.*)/g)?.trim() ?? `exit code ${code}`;
      resolve({
        args,
        csv: readSlowCsv(`${base}.csv`),
        exitLine,
      });
    });
  });
}

/** Waits until the balancer holds at most `fds` descriptors again (its attack connections are gone). */
async function waitForFds(pid, fds, ms) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const s = procStats(pid);
    if (s === null || s.fds <= fds) return (Date.now() - t0) / 1000;
    await sleep(250);
  }
  return NaN;
}

// ---- main ------------------------------------------------------------------------

const MODES = [
  {
    name: 'slowloris',
    flag: '-H',
    path: '/',
    // A header line every 10 s, up to 24 random bytes each.
    args: ['-i', '10', '-x', '24'],
    what: 'heads that never complete: one more header line every 10 s',
  },
  {
    name: 'slow body',
    flag: '-B',
    path: '/',
    // Content-Length 8192, a few body bytes every 10 s.
    args: ['-i', '10', '-s', '8192', '-x', '10'],
    what: 'POST with Content-Length 8192, a few body bytes every 10 s',
  },
  {
    name: 'slow read',
    flag: '-X',
    path: '/big',
    // Each connection asks for 1 MiB three times (pipelined), advertises a 512–1024 byte window
    // and reads 32 bytes every 5 s.
    args: ['-k', '3', '-n', '5', '-w', '512', '-y', '1024', '-z', '32'],
    what: 'GET of 1 MiB ×3 (pipelined), 512–1024 B receive window, 32 B read every 5 s',
  },
];

async function main() {
  if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  ensureSlowhttptest();
  const upstreamPort = await startUpstream();
  const port = await freePort();
  corral = startCorral(port, upstreamPort);
  await waitForPort(port, corral, 20_000);
  const pid = corral.pid;
  log(`corral pid ${pid} on 127.0.0.1:${port}, upstream on ${upstreamPort}`);

  const phases = [];
  log(`baseline: ${BASELINE_SECONDS} s of probing without an attack`);
  {
    const sampler = startSampler(pid);
    const probe = startProbe(port);
    await sleep(BASELINE_SECONDS * 1000);
    phases.push({ name: 'baseline (no attack)', what: '—', probe: summarizeProbe(await probe.stop()), samples: sampler.stop(), slow: null, settle: 0 });
  }
  const baseFds = Math.max(...phases[0].samples.map((s) => s.fds));

  for (const mode of MODES) {
    log(`${mode.name}: ${SECONDS} s, ${CONNS} connections at ${RATE}/s`);
    const sampler = startSampler(pid);
    const probe = startProbe(port);
    const slow = await runSlowhttptest(mode, port);
    const results = await probe.stop();
    const samples = sampler.stop();
    const settle = await waitForFds(pid, baseFds + 5, 90_000);
    phases.push({ name: mode.name, flag: mode.flag, what: mode.what, probe: summarizeProbe(results), samples, slow, settle });
    const p = phases[phases.length - 1].probe;
    log(`${mode.name}: probe ${p.ok}/${p.total} ok, p99 ${p.p99?.toFixed(1)} ms; peak RSS ${mb(Math.max(...samples.map((s) => s.rss)))} MB; slowhttptest: ${slow.exitLine}`);
    if (corral.exitCode !== null) throw new Error(`corral exited during ${mode.name}: ${corral.lines.slice(-5).join(' | ')}`);
  }

  const hwm = procStats(pid)?.hwm ?? NaN;
  const t0 = Date.now();
  corral.kill('SIGTERM');
  const exitCode = await new Promise((r) => corral.once('exit', (code) => r(code)));
  const stopMs = Date.now() - t0;
  const warnings = corral.lines.filter((l) => /"level":(40|50|60)/.test(l));

  const out = process.env.SLOW_OUT ?? join(ROOT, 'bench/results', `${new Date().toISOString().slice(0, 10)}-slow-clients.md`);
  writeFileSync(out, report({ phases, hwm, stopMs, exitCode, warnings, yaml: corral.yaml }));
  log(`wrote ${out}`);
}

const mb = (b) => (b / 1048576).toFixed(1);
const fmt = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

function report({ phases, hwm, stopMs, exitCode, warnings, yaml }) {
  const gitRev = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', 'src'], { encoding: 'utf8' }).stdout.trim() !== '';
  const rows = phases.map((ph) => {
    const rss = ph.samples.map((s) => s.rss);
    const fds = ph.samples.map((s) => s.fds);
    const wrote = (ph.samples[ph.samples.length - 1]?.wchar ?? 0) - (ph.samples[0]?.wchar ?? 0);
    const p = ph.probe;
    const slow = ph.slow?.csv;
    return `| ${ph.name} | ${p.ok} / ${p.total} | ${fmt(p.availability * 100, 2)} % | ${fmt(p.p50, 2)} | ${fmt(p.p99, 2)} | ${fmt(p.max, 1)} | ${slow ? `${slow.seconds}, ${slow.maxConnected} / ${fmt(slow.meanConnected, 0)}` : '—'} | ${slow ? `${fmt(slow.availableShare * 100, 0)} %` : '—'} | ${mb(Math.min(...rss))} → ${mb(Math.max(...rss))} | ${Math.max(...fds)} | ${mb(wrote)} | ${mb(Math.max(...ph.samples.map((x) => x.tcpMem)))} |`;
  });
  const failures = phases
    .filter((ph) => ph.probe.failed > 0)
    .map((ph) => `- ${ph.name}: ${Object.entries(ph.probe.reasons).map(([k, v]) => `${v} × ${k}`).join(', ')}`);
  const attacks = phases.filter((ph) => ph.slow !== null).map((ph) => `| ${ph.name} | \`slowhttptest ${ph.slow.args.join(' ').replace(/-o \S+ /, '').replace(/127\.0\.0\.1:\d+/, '127.0.0.1:PORT')}\` | ${ph.what} | ${ph.slow.exitLine} |`);
  const cpu = cpus();
  return `# Slow clients against Corral — ${new Date().toISOString().slice(0, 10)}

Produced by \`node bench/slow-clients.mjs\` (commit ${gitRev}${dirty ? ', with uncommitted changes under src/' : ''}).
Corral runs \`corral start\` with one worker and the default timeouts, in front of a
small Node upstream; slowhttptest attacks it for ${SECONDS} s per mode with up to ${CONNS}
connections (${RATE} new per second) while a probe sends one ordinary \`GET /\` at a
time, each on a new connection, and counts a failure when no complete 200 arrives
within ${PROBE_TIMEOUT_MS} ms. RSS and open descriptors of the Corral process are sampled every
200 ms. Everything runs on 127.0.0.1 on the same machine.

## Machine

- CPU: ${cpu[0]?.model ?? 'unknown'} × ${cpu.length}; memory ${mb(totalmem())} MB; load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}
- Node ${process.version}; slowhttptest ${slowhttptestVersion()}
- Not pinned to a CPU: Corral, the upstream, the probe and slowhttptest share the machine (and whatever else ran on it).

## Results

| phase | probe ok / sent | availability | p50 ms | p99 ms | max ms | attack: ran s, connections held (max / mean) | slowhttptest's own probe: available | Corral RSS MB (min → max) | Corral fds max | Corral wrote MB | kernel TCP buffers MB (max, all sockets) |
|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Peak RSS of the Corral process over the whole run (VmHWM): **${mb(hwm)} MB**.
SIGTERM after the last attack: exited with ${exitCode} in ${stopMs} ms.
${failures.length > 0 ? `\nProbe failures:\n${failures.join('\n')}\n` : '\nNo probe request failed.\n'}
## Attacks

| mode | command | what each connection does | slowhttptest's verdict |
|---|---|---|---|
${attacks.join('\n')}

"attack" is slowhttptest's own record (its CSV, one row a second): for how many
seconds it held connections, and how many it held connected (max / mean). It opens
-c connections at -r per second and does not replace the ones the server closes: it
ends early with "No open connections left" when the server has closed them all.
"slowhttptest's own probe" is the share of seconds in which its probe connection got
an answer within ${Math.ceil(PROBE_TIMEOUT_MS / 1000)} s. "fds" counts both sides: client and upstream sockets.
"Corral wrote" is what the Corral process handed to the kernel in write calls during
the phase (\`wchar\` of /proc/PID/io: responses, logs). "kernel TCP buffers" is the
memory of all TCP sockets on the machine (/proc/net/sockstat), not Corral's RSS.

## Corral config

\`\`\`yaml
${yaml.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT').trim()}
\`\`\`

${warnings.length > 0 ? `## Corral warnings and errors (${warnings.length} lines, first 10)\n\n\`\`\`\n${warnings.slice(0, 10).join('\n')}\n\`\`\`\n` : ''}`;
}

main()
  .then(() => cleanup())
  .catch(async (err) => {
    console.error(`[slow-clients] ${err.stack ?? err}`);
    if (corral !== null) console.error(corral.lines.slice(-10).join('\n'));
    await cleanup();
    process.exit(1);
  });

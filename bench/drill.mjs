#!/usr/bin/env node
// Corral failover drill (issue 4, item 9): steady load, SIGKILL one server, restart it, measure.
//
//   node bench/drill.mjs            two runs (warmup 10s, then 0s), ~2.5 min in all
//   node bench/drill.mjs --keep     keep the temp dir (config, Corral's full log) for reading
//
// Environment: DRILL_WARMUPS ("10s,0s": one run per value), DRILL_CONCURRENCY (20).
// Other values than the defaults write <date>-drill-partial.md (ignored by git).
//
// Per run: three app servers (dist/src/demo/app-server.js), each its own child process on a free
// 127.0.0.1 port; Corral (`workers: 1`, CORRAL_LOG_LEVEL=info, so every request is in its access
// log) in front with one backend `app`: `retries: 3`, `serverHeader: X-Server`, an http check of
// /health with the default timings (interval 2s, timeout 1s, rise 2, fall 3) and the run's
// `warmup`. DRILL_CONCURRENCY keep-alive loops send GETs for the whole run. At T=10 s app2 is
// SIGKILLed, at T=30 s it is started again on the same port; the run ends at T=60 s, or 5 s after
// app2 answered again if that is later (at most T=90 s). Writes bench/results/<date>-drill.md.
//
// The script copies dist/ to a temp dir (running `npm run build` first if dist/ is missing or
// older than src/), so a rebuild during the drill cannot change the code under test. Every child
// is started in its own process group and killed on exit, on an error, or on Ctrl-C / SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, createWriteStream } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');

// ---- settings ---------------------------------------------------------------------------------

function settings() {
  const warmups = (process.env.DRILL_WARMUPS ?? '10s,0s').split(',').map((s) => s.trim()).filter(Boolean);
  for (const w of warmups) if (!/^\d+(ms|s|m)$/.test(w)) throw new Error(`DRILL_WARMUPS: not a duration: ${JSON.stringify(w)}`);
  const conc = Number(process.env.DRILL_CONCURRENCY ?? 20);
  if (!Number.isInteger(conc) || conc < 1 || conc > 1000) throw new Error('DRILL_CONCURRENCY must be an integer 1..1000');
  const full = warmups.join(',') === '10s,0s' && conc === 20;
  return { warmups, conc, full, keep: process.argv.includes('--keep') };
}

const KILL_AT = 10_000;
const RESTART_AT = 30_000;
const END_AT = 60_000;
const SERVE_AFTER = 5_000; // app2 must have served this long after it answered again
const HARD_END = 90_000;
const REQUEST_TIMEOUT = 10_000;

// ---- processes --------------------------------------------------------------------------------

const children = new Set();

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killGroup(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // gone
    }
  }
}

function killAll() {
  for (const c of children) killGroup(c, 'SIGKILL');
}

function waitExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((res) => {
    const t = setTimeout(() => res(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      res(true);
    });
  });
}

let tempDir = null;
let keepTemp = false;

function installCleanup() {
  process.on('exit', () => {
    killAll();
    if (tempDir !== null && !keepTemp) rmSync(tempDir, { recursive: true, force: true });
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\ndrill: ${sig}, stopping every child\n`);
      process.exit(130);
    });
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (msg) => process.stderr.write(`drill: ${msg}\n`);

async function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

// ---- build snapshot ---------------------------------------------------------------------------

function newestMtime(dir, ext) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p, ext));
    else if (e.name.endsWith(ext)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function ensureBuild() {
  const main = join(ROOT, 'dist', 'src', 'cli', 'main.js');
  const stale = !existsSync(main) || newestMtime(join(ROOT, 'src'), '.ts') > newestMtime(join(ROOT, 'dist', 'src'), '.js');
  if (!stale) return;
  say(existsSync(main) ? 'dist/ is older than src/: npm run build' : 'dist/ is missing: npm run build');
  const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm run build failed');
}

function snapshotBuild(dir) {
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return join(dir, 'dist');
}

function describeMachine() {
  let model = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) model = m[1].trim();
  } catch {
    // not Linux
  }
  let commit = 'unknown';
  const g = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  if (g.status === 0) commit = g.stdout.trim();
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' });
  const srcDirty = dirty.status === 0 && dirty.stdout.trim() !== '';
  return {
    model,
    cores: os.cpus().length,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    memGb: (os.totalmem() / 2 ** 30).toFixed(1),
    load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    commit: srcDirty ? `${commit} (src/ with uncommitted changes)` : commit,
  };
}

// ---- one run ----------------------------------------------------------------------------------

function configYaml(fePort, appPorts, warmup) {
  return `# failover drill: written by bench/drill.mjs
workers: 1
frontends:
  - name: web
    listen: 127.0.0.1:${fePort}
    mode: http
    backend: app
backends:
  - name: app
    balance: roundrobin
    serverHeader: X-Server
    retries: 3
    health:
      type: http
      path: /health
      # interval 2s, timeout 1s, rise 2, fall 3: the defaults
      warmup: ${warmup}
    servers:
${appPorts.map((p, i) => `      - { name: app${i + 1}, address: 127.0.0.1:${p} }`).join('\n')}
`;
}

function startApp(dist, name, port) {
  const child = track(
    spawn(process.execPath, [fileURLToPath(import.meta.url), '--app', name, String(port), dist], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      detached: true,
    }),
  );
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`${name} did not start on port ${port}`)), 10_000);
    child.once('message', (m) => {
      clearTimeout(t);
      res({ child, listening: m.listening });
    });
    child.once('exit', (code, sig) => {
      clearTimeout(t);
      rej(new Error(`${name} exited (${code ?? sig}) before listening on ${port}`));
    });
  });
}

/**
 * Starts Corral; collects its log lines (health lines whole, access lines in short form).
 * `preload`: a module imported first (see startCorralChecked).
 */
function startCorral(dist, cfgFile, logFile, preload) {
  const args = [...(preload ? ['--import', pathToFileURL(preload).href] : []), join(dist, 'src', 'cli', 'main.js'), 'start', '-c', cfgFile, '--drain-timeout', '3000'];
  const child = track(
    spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, CORRAL_LOG_LEVEL: 'info' },
    }),
  );
  const raw = createWriteStream(logFile);
  const state = { child, lines: [], access: [], health: [], stderr: '', closed: null, waiters: [] };
  child.stderr.on('data', (d) => {
    state.stderr += d;
    raw.write(d);
  });
  const rl = createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    raw.write(`${line}\n`);
    let j;
    try {
      j = JSON.parse(line);
    } catch {
      return;
    }
    const t = Date.parse(j.time);
    if (j.type === 'access') {
      state.access.push({ t, status: j.status, server: j.server, retries: j.retries, error: j.error, note: j.note, totalMs: j.totalMs, path: j.path });
      return;
    }
    const entry = { t, level: j.level, msg: j.msg, server: j.server, from: j.from, to: j.to, reason: j.reason, detail: j.detail, attempt: j.attempt };
    state.lines.push(entry);
    if (/^server \S+ is [A-Z]+/.test(j.msg ?? '')) state.health.push(entry);
    for (const w of state.waiters.slice()) w();
  });
  state.closed = new Promise((res) => rl.once('close', () => raw.end(res)));
  return state;
}

function waitFor(state, pred, ms, what) {
  return new Promise((res, rej) => {
    const check = () => {
      const hit = pred();
      if (!hit) return false;
      state.waiters = state.waiters.filter((w) => w !== check);
      clearTimeout(t);
      res(hit);
      return true;
    };
    const t = setTimeout(() => {
      state.waiters = state.waiters.filter((w) => w !== check);
      rej(new Error(`timed out waiting for ${what}; Corral stderr: ${state.stderr.trim() || '(empty)'}`));
    }, ms);
    if (!check()) state.waiters.push(check);
    state.child.once('exit', (code, sig) => rej(new Error(`Corral exited (${code ?? sig}) while waiting for ${what}: ${state.stderr.trim()}`)));
  });
}

/**
 * Starts Corral and waits until it listens with all three servers UP. If it exits with code 13
 * (Node: "unsettled top-level await") before that, it is started again with a preloaded ref'd
 * timer, and the run's report says so: `corral start` with `workers: 1` and active checks can
 * empty its event loop while it awaits the first round of (unref'd) health checks.
 */
async function startCorralChecked(dist, dir, cfgFile, tag) {
  const ready = (c) => () => new Set(c.health.filter((h) => h.to === 'up').map((h) => h.server)).size === 3 && c.lines.some((l) => l.msg === 'node started');
  let corral = startCorral(dist, cfgFile, join(dir, `corral-${tag}.log`));
  try {
    await waitFor(corral, ready(corral), 20_000, 'all three servers UP and "node started"');
    return { corral, workaround: null };
  } catch (err) {
    if (corral.child.exitCode !== 13) throw err;
  }
  const workaround = 'corral start exited with code 13 (unsettled top-level await) before listening; restarted with `node --import keep-alive.mjs` (a ref\'d no-op `setInterval`)';
  say(`  ${workaround}`);
  const keep = join(dir, 'keep-alive.mjs');
  writeFileSync(keep, 'setInterval(() => {}, 1 << 30);\n');
  corral = startCorral(dist, cfgFile, join(dir, `corral-${tag}.log`), keep);
  await waitFor(corral, ready(corral), 20_000, 'all three servers UP and "node started"');
  return { corral, workaround };
}

/** One GET through Corral on a keep-alive agent. */
function get(port, agent, path) {
  return new Promise((res) => {
    const start = Date.now();
    let done = false;
    const finish = (r) => {
      if (done) return;
      done = true;
      res({ start, end: Date.now(), ...r });
    };
    const req = http.request({ host: '127.0.0.1', port, path, agent, method: 'GET', timeout: REQUEST_TIMEOUT }, (resp) => {
      const server = resp.headers['x-server'] ?? null;
      resp.on('data', () => {});
      resp.on('end', () => finish({ status: resp.statusCode, server }));
      resp.on('error', (e) => finish({ status: resp.statusCode, server, error: e.code ?? e.message }));
      resp.on('aborted', () => finish({ status: resp.statusCode, server, error: 'RESPONSE_ABORTED' }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    req.on('error', (e) => finish({ status: null, server: null, error: e.code ?? e.message }));
    req.end();
  });
}

async function runDrill(dist, dir, warmup, conc) {
  const tag = `warmup-${warmup}`;
  const appPorts = [await freePort(), await freePort(), await freePort()];
  const fePort = await freePort();
  const cfgFile = join(dir, `corral-${tag}.yaml`);
  const cfg = configYaml(fePort, appPorts, warmup);
  writeFileSync(cfgFile, cfg);
  say(`run warmup ${warmup}: apps on ${appPorts.join(', ')}, Corral on ${fePort}`);

  const apps = [];
  for (let i = 0; i < 3; i++) apps.push(await startApp(dist, `app${i + 1}`, appPorts[i]));
  const { corral, workaround } = await startCorralChecked(dist, dir, cfgFile, tag);

  // Load.
  const records = [];
  let stopping = false;
  const agents = [];
  const t0 = Date.now();
  const loops = [];
  for (let i = 0; i < conc; i++) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    loops.push(
      (async () => {
        let n = 0;
        while (!stopping) records.push(await get(fePort, agent, `/drill/${i}/${n++}`));
      })(),
    );
  }
  const at = (ms) => sleep(Math.max(0, t0 + ms - Date.now()));

  await at(KILL_AT);
  const killAt = Date.now();
  killGroup(apps[1].child, 'SIGKILL');
  await waitExit(apps[1].child, 5000);
  say(`  T+${((killAt - t0) / 1000).toFixed(1)}s app2 SIGKILLed`);

  await at(RESTART_AT);
  const restartAt = Date.now();
  const app2b = await startApp(dist, 'app2', appPorts[1]);
  say(`  T+${((restartAt - t0) / 1000).toFixed(1)}s app2 restarted (listening after ${app2b.listening - restartAt} ms)`);

  // Until T=60 s, or until app2 has served for SERVE_AFTER after it answered again (at most T=90 s).
  const firstBack = () => records.find((r) => r.server === 'app2' && r.start >= restartAt);
  for (;;) {
    const now = Date.now() - t0;
    const fb = firstBack();
    if (now >= HARD_END) break;
    if (now >= END_AT && fb !== undefined && Date.now() >= fb.end + SERVE_AFTER) break;
    await sleep(100);
  }
  stopping = true;
  await Promise.all(loops);
  const loadEnd = Date.now();
  for (const a of agents) a.destroy();

  killGroup(corral.child, 'SIGTERM');
  if (!(await waitExit(corral.child, 8000))) killGroup(corral.child, 'SIGKILL');
  await corral.closed;
  for (const a of [apps[0], apps[2], app2b]) {
    killGroup(a.child, 'SIGTERM');
    if (!(await waitExit(a.child, 3000))) killGroup(a.child, 'SIGKILL');
  }

  return analyse({ warmup, conc, cfg, workaround, t0, killAt, restartAt, listeningAt: app2b.listening, loadEnd, records, corral });
}

// ---- analysis ---------------------------------------------------------------------------------

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function analyse(r) {
  const { records, corral, killAt, restartAt, t0 } = r;
  const app2 = corral.health.filter((h) => h.server === 'app2');
  const down = app2.find((h) => h.to === 'down' && h.t >= killAt);
  const warming = app2.find((h) => h.to === 'warming' && h.t >= restartAt);
  const up = app2.find((h) => h.to === 'up' && h.t >= restartAt);
  const detectEnd = down?.t ?? r.loadEnd;

  const failed = records.filter((x) => x.error !== undefined || x.status === null || x.status < 200 || x.status > 299);
  const access = corral.access;
  const inWindow = (t) => t >= killAt && t <= detectEnd;
  const windowAccess = access.filter((a) => inWindow(a.t));
  const retriedWindow = windowAccess.filter((a) => a.retries > 0);
  const retriedAll = access.filter((a) => a.retries > 0);
  const retriedLater = retriedAll.filter((a) => a.t > detectEnd);
  const redispatch = corral.lines.filter((l) => l.msg === 'redispatching request');
  const byReason = {};
  for (const l of redispatch) {
    const why = String(l.reason).replace(/ \[?[0-9a-f.:]+\]?:\d+$/i, ''); // drop the address
    byReason[why] = (byReason[why] ?? 0) + 1;
  }
  const accessBad = access.filter((a) => a.status < 200 || a.status > 299 || a.error !== undefined);

  const firstBack = records.find((x) => x.server === 'app2' && x.start >= restartAt);
  const app2Between = records.filter((x) => x.server === 'app2' && x.start > killAt && x.start < restartAt);
  const app2BeforeUp = up === undefined ? [] : records.filter((x) => x.server === 'app2' && x.start >= restartAt && x.end < up.t);

  const lat = records.map((x) => x.end - x.start).sort((a, b) => a - b);
  const latWindow = records.filter((x) => x.start >= killAt && x.start <= detectEnd).map((x) => x.end - x.start).sort((a, b) => a - b);
  const perServer = {};
  for (const x of records) perServer[x.server ?? '(none)'] = (perServer[x.server ?? '(none)'] ?? 0) + 1;
  let shareAfter = null;
  if (firstBack !== undefined) {
    const after = records.filter((x) => x.start >= firstBack.end && x.start < firstBack.end + SERVE_AFTER);
    shareAfter = after.length ? after.filter((x) => x.server === 'app2').length / after.length : null;
  }

  return {
    ...r,
    down,
    warming,
    up,
    detectMs: down ? down.t - killAt : null,
    failed,
    accessBad,
    windowAccess: windowAccess.length,
    retriedWindow,
    retriedAll,
    retriedLater,
    byReason,
    firstBack,
    app2Between,
    app2BeforeUp,
    toUpMs: up ? up.t - restartAt : null,
    toWarmingMs: warming ? warming.t - restartAt : null,
    warmingMs: warming && up ? up.t - warming.t : null,
    toFirstMs: firstBack ? firstBack.end - restartAt : null,
    total: records.length,
    seconds: (r.loadEnd - t0) / 1000,
    rps: records.length / ((r.loadEnd - t0) / 1000),
    lat: { p50: pct(lat, 50), p99: pct(lat, 99), max: lat.at(-1) },
    latWindow: { p50: pct(latWindow, 50), p99: pct(latWindow, 99), max: latWindow.at(-1) ?? NaN, n: latWindow.length },
    perServer,
    shareAfter,
  };
}

// ---- report -----------------------------------------------------------------------------------

const s1 = (ms) => (ms === null || ms === undefined || Number.isNaN(ms) ? '—' : `${(ms / 1000).toFixed(2)} s`);
const rel = (r, t) => `T+${((t - r.t0) / 1000).toFixed(2)}s`;

function failureDetail(r) {
  if (r.failed.length === 0) return [];
  const out = [`Failed requests in the run with warmup ${r.warmup} (client side, first 20):`, ''];
  out.push('| sent | took | status / error | X-Server |', '|---|---|---|---|');
  for (const f of r.failed.slice(0, 20)) out.push(`| ${rel(r, f.start)} | ${f.end - f.start} ms | ${f.status ?? ''} ${f.error ?? ''} | ${f.server ?? ''} |`);
  out.push('', 'Access-log lines with a non-2xx status or an error:', '');
  out.push('| logged | status | server | retries | error / note | totalMs |', '|---|---|---|---|---|---|');
  for (const a of r.accessBad.slice(0, 20)) out.push(`| ${rel(r, a.t)} | ${a.status} | ${a.server ?? ''} | ${a.retries} | ${a.error ?? ''} ${a.note ?? ''} | ${a.totalMs} |`);
  out.push('');
  return out;
}

function render(machine, runs, settings) {
  const date = localDate();
  const col = (f) => runs.map((r) => f(r)).join(' | ');
  const heads = runs.map((r) => `warmup ${r.warmup}`).join(' | ');
  const rows = [
    ['kill → DOWN log line (time to detect)', (r) => (r.down ? `**${s1(r.detectMs)}**` : 'not seen')],
    ['DOWN reason', (r) => (r.down ? r.down.msg.replace(/^server \S+ is DOWN: /, '') : '—')],
    ['requests failed (non-2xx or socket error)', (r) => `**${r.failed.length}** of ${r.total}`],
    ['requests in the detection window (access log)', (r) => String(r.windowAccess)],
    ['… that needed retries (`retries` > 0)', (r) => `${r.retriedWindow.length} (max ${Math.max(0, ...r.retriedWindow.map((a) => a.retries))} retries)`],
    ['retried requests after the DOWN line', (r) => String(r.retriedLater.length)],
    ['redispatches by reason', (r) => Object.entries(r.byReason).map(([k, v]) => `${k}: ${v}`).join(', ') || '—'],
    ['latency in the detection window p50 / p99 / max', (r) => `${r.latWindow.p50} / ${r.latWindow.p99} / ${r.latWindow.max} ms`],
    ['requests answered by app2 while it was dead', (r) => String(r.app2Between.length)],
    ['restart → app2 listening', (r) => s1(r.listeningAt - r.restartAt)],
    ['restart → WARMING log line', (r) => (r.warming ? s1(r.toWarmingMs) : 'none (no warming)')],
    ['restart → UP log line', (r) => (r.up ? `**${s1(r.toUpMs)}**` : 'not seen')],
    ['UP message', (r) => (r.up ? r.up.msg.replace(/^server \S+ is UP: /, '') : '—')],
    ['restart → app2\'s first answered request', (r) => `**${s1(r.toFirstMs)}**`],
    ['app2 requests before its UP line', (r) => String(r.app2BeforeUp.length)],
    ['warm-up held it back', (r) => (r.warming ? `yes: ${s1(r.warmingMs)} in \`warming\`` : 'no')],
    ['app2\'s share in the 5 s after it answered again', (r) => (r.shareAfter === null ? '—' : `${(r.shareAfter * 100).toFixed(1)} %`)],
    ['requests (load seconds)', (r) => `${r.total} (${r.seconds.toFixed(1)} s)`],
    ['req/s', (r) => r.rps.toFixed(0)],
    ['latency p50 / p99 / max (whole run)', (r) => `${r.lat.p50} / ${r.lat.p99} / ${r.lat.max} ms`],
    ['answered by app1 / app2 / app3', (r) => ['app1', 'app2', 'app3'].map((s) => r.perServer[s] ?? 0).join(' / ')],
  ];
  const L = [];
  L.push(`# Failover drill — ${date}`, '');
  L.push('Issue 4, item 9. `node bench/drill.mjs` (needs `npm run build`; the script builds when `dist/` is stale).', '');
  L.push('## Machine', '');
  L.push(`- CPU: ${machine.model}, ${machine.cores} cores`);
  L.push(`- Node ${machine.node}, ${machine.kernel}, ${machine.memGb} GiB RAM, load average at start ${machine.load}`);
  L.push(`- Corral at ${machine.commit}`);
  L.push('');
  L.push('## What happens', '');
  L.push(`- Three app servers (\`dist/src/demo/app-server.js\`), each its own child process on a free 127.0.0.1 port; Corral in front, \`workers: 1\`, \`CORRAL_LOG_LEVEL=info\` (access log on).`);
  L.push(`- ${settings.conc} keep-alive loops (node \`http.Agent\`, one socket each) send \`GET /drill/…\` back to back for the whole run; each request is recorded with its time, status or error, and \`X-Server\`.`);
  L.push(`- T=${KILL_AT / 1000} s: app2 is killed with SIGKILL. T=${RESTART_AT / 1000} s: app2 is started again on the same port. The run ends at T=${END_AT / 1000} s, or ${SERVE_AFTER / 1000} s after app2 answered again if that is later (at most T=${HARD_END / 1000} s).`);
  L.push('- Times of Corral events are the `time` field of its log lines (same clock as the drill). The detection window is kill → DOWN line.', '');
  L.push('Config (ports differ per run; the second run has `warmup: 0s`):', '');
  L.push('```yaml', runs[0].cfg.trimEnd(), '```', '');
  for (const r of runs) if (r.workaround) L.push(`**Workaround (run with warmup ${r.warmup})**: ${r.workaround}. Reported; not a Corral setting.`, '');
  L.push('Expected from docs/health.md with the defaults (interval 2s, timeout 1s, rise 2, fall 3; checks every 1 s while transitioning): a refused server is detected in 2–4 s; a restarted one is back in 1–3 s plus `warmup`.', '');
  L.push('## Results', '');
  L.push(`| | ${heads} |`, `|---|${runs.map(() => '---').join('|')}|`);
  for (const [name, f] of rows) L.push(`| ${name} | ${col(f)} |`);
  L.push('');
  L.push('## app2 health lines', '');
  for (const r of runs) {
    L.push(`warmup ${r.warmup} (kill at ${rel(r, r.killAt)}, restart at ${rel(r, r.restartAt)}):`, '');
    L.push('```');
    for (const h of r.corral.health.filter((h) => h.server === 'app2')) L.push(`${rel(r, h.t)}  ${h.msg}`);
    L.push('```', '');
  }
  const fails = runs.flatMap(failureDetail);
  if (fails.length) L.push('## Failures', '', ...fails);
  return L.join('\n');
}

function localDate() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

// ---- main -------------------------------------------------------------------------------------

async function main() {
  const st = settings();
  keepTemp = st.keep;
  installCleanup();
  ensureBuild();
  tempDir = mkdtempSync(join(os.tmpdir(), 'corral-drill-'));
  const dist = snapshotBuild(tempDir);
  const machine = describeMachine();
  const runs = [];
  try {
    for (const w of st.warmups) runs.push(await runDrill(dist, tempDir, w, st.conc));
  } catch (err) {
    keepTemp = true;
    say(`failed: ${err.stack ?? err}`);
    say(`logs kept in ${tempDir}`);
    process.exit(1);
  }
  const anomalies = runs.some((r) => r.failed.length > 0 || !r.down || !r.up || !r.firstBack);
  if (anomalies) keepTemp = true;
  mkdirSync(RESULTS, { recursive: true });
  const out = join(RESULTS, `${localDate()}-drill${st.full ? '' : '-partial'}.md`);
  writeFileSync(out, `${render(machine, runs, st)}\n`);
  for (const r of runs) {
    say(
      `warmup ${r.warmup}: detect ${s1(r.detectMs)}, failed ${r.failed.length}/${r.total}, retried in window ${r.retriedWindow.length}, ` +
        `restart→UP ${s1(r.toUpMs)}, restart→first app2 ${s1(r.toFirstMs)}, warming ${s1(r.warmingMs)}, ${r.rps.toFixed(0)} req/s`,
    );
  }
  say(`wrote ${out}`);
  if (keepTemp) say(`config and Corral's logs kept in ${tempDir}`);
}

// ---- child mode: one app server ---------------------------------------------------------------
// node drill.mjs --app NAME PORT DIST: serves until killed; exits when the drill's IPC channel goes.
if (process.argv[2] === '--app') {
  const [, , , name, port, dist] = process.argv;
  const { startAppServer } = await import(pathToFileURL(join(dist, 'src', 'demo', 'app-server.js')).href);
  await startAppServer(name, Number(port), '127.0.0.1');
  process.send?.({ listening: Date.now() });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
} else {
  await main();
}

#!/usr/bin/env node
// Corral benchmark: Corral next to HAProxy and nginx on this machine.
//
//   npm run bench                  full run (3 interleaved rounds × 10 s per measurement)
//   node bench/run.mjs --quick     smoke test (1 round × 5 s); report named <date>-quick.md
//   node bench/run.mjs --render bench/results/<date>-raw.csv   re-render a report from its CSV
//
// Environment: BENCH_ROUNDS (3), BENCH_DURATION seconds (10), BENCH_WARMUP seconds (3),
// BENCH_XFER_MB (1024), BENCH_SCENARIOS (comma list of l7-c50,l7-c200,l4-c50),
// BENCH_RETRIES (2: repeats of a measurement disturbed by other load or steal),
// BENCH_QUIET_WAIT (60: seconds to wait for a quiet machine before each measurement),
// BENCH_PATIENCE (1800: total seconds the run may spend on such waits and repeats).
//
// Layout (2 CPUs): wrk/curl and the upstream nginx on CPU 0; the proxy under
// test alone on CPU 1, on 127.0.0.1:8080. All traffic stays on 127.0.0.1.
import { cpus } from 'node:os';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  checkBody, cpu1Ticks, cpuDelta, cpuSnapshot, outsiderDelta, outsiderTicks, procTicks, runTransfer, runWrk,
} from './lib/measure.mjs';
import {
  checkpoint, installCleanup, log, makeTempDir, onCleanup, portOpen, processTree, run, sleep, stopProc, treeRssMb,
} from './lib/proc.mjs';
import {
  appendCsv, corralRatios, freeBase, localDate, readCsv, scenarioTable, startCsv, SCENARIOS,
} from './lib/report.mjs';
import {
  BULK_FILE, corralYaml, makeBulkFile, PROXY_PORT, proxyConfigs, startUpstream, stopProxy, UPSTREAM_PORT,
} from './lib/servers.mjs';
import { describeMachine, ensureBuild, ensureNginxStream, ensureTools, snapshotBuild } from './lib/setup.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(readHeader());
  process.exit(0);
}
const QUICK = argv.includes('--quick');
const renderIdx = argv.indexOf('--render');

const envNum = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
};

const OPTS = {
  rounds: QUICK ? 1 : envNum('BENCH_ROUNDS', 3),
  seconds: QUICK ? 5 : envNum('BENCH_DURATION', 10),
  warmup: envNum('BENCH_WARMUP', 3),
  // a measurement disturbed by other load or steal is repeated up to this many times
  // (a quick smoke test neither repeats nor waits unless asked to)
  retries: process.env.BENCH_RETRIES === '0' ? 0 : envNum('BENCH_RETRIES', QUICK ? 0 : 2),
  // seconds to wait for other load to go away before each measurement
  quietWait: process.env.BENCH_QUIET_WAIT === '0' ? 0 : envNum('BENCH_QUIET_WAIT', QUICK ? 0 : 60),
  // total seconds the run may spend on waiting for quiet and on repeats
  patience: process.env.BENCH_PATIENCE === '0' ? 0 : envNum('BENCH_PATIENCE', 1800),
  xferBytes: Math.round(envNum('BENCH_XFER_MB', 1024) * 1024 * 1024),
  scenarios: (process.env.BENCH_SCENARIOS || 'l7-c50,l7-c200,l4-c50').split(',').map((s) => s.trim()).filter(Boolean),
};

/** Percent of one CPU used by processes other than wrk, the upstream and the proxy above which a run counts as disturbed. */
const OTHER_LOAD_LIMIT = 15;
/** Steal time (% of both CPUs) above which a run counts as disturbed: the hypervisor gave our CPUs away. */
const STEAL_LIMIT = 10;

/** The measured scenarios: which proxy family, how many connections, and the bulk transfer done in the same slot. */
const PLAN = {
  'l7-c50': { family: 'http', conns: 50, xfer: 'l7-bulk' },
  'l7-c200': { family: 'http', conns: 200, xfer: null },
  'l4-c50': { family: 'tcp', conns: 50, xfer: 'l4-bulk' },
};

function readHeader() {
  return `${[
    'Corral benchmark: Corral next to HAProxy and nginx (see bench/README.md)',
    '  node bench/run.mjs            full run: 3 interleaved rounds x 10 s per measurement (15-45 min, longer on a busy machine)',
    '  node bench/run.mjs --quick    smoke test: 1 round x 5 s (report <date>-quick.md)',
    '  node bench/run.mjs --render FILE-raw.csv   re-render a report from its raw CSV',
    'env: BENCH_ROUNDS BENCH_DURATION BENCH_WARMUP BENCH_XFER_MB BENCH_SCENARIOS BENCH_RETRIES BENCH_QUIET_WAIT BENCH_PATIENCE',
  ].join('\n')}\n`;
}

function isFullRun(o) {
  return !QUICK && o.rounds >= 3 && o.seconds >= 10 && o.warmup >= 3 && Object.keys(PLAN).every((s) => o.scenarios.includes(s));
}

function rotate(list, by) {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

async function main() {
  if (renderIdx >= 0) return renderOnly(argv[renderIdx + 1]);
  for (const s of OPTS.scenarios) if (!PLAN[s]) throw new Error(`unknown scenario ${s}; known: ${Object.keys(PLAN).join(', ')}`);
  if (process.platform !== 'linux') throw new Error('the benchmark needs Linux (/proc, taskset)');
  if (cpus().length < 2) throw new Error('the benchmark needs at least 2 CPUs (load on CPU 0, proxy on CPU 1)');
  installCleanup();
  const startedAt = new Date();

  ensureTools(['wrk', 'haproxy', 'nginx', 'curl', 'taskset']);
  const buildNote = ensureBuild(ROOT);
  const stream = OPTS.scenarios.includes('l4-c50') ? ensureNginxStream() : { ok: false, how: 'not needed' };
  log(`nginx stream module: ${stream.ok ? stream.how : `unavailable (${stream.how})`}`);
  for (const port of [UPSTREAM_PORT, PROXY_PORT]) {
    if (await portOpen(port)) throw new Error(`127.0.0.1:${port} is already in use; stop whatever listens there first`);
  }

  mkdirSync(RESULTS, { recursive: true });
  const full = isFullRun(OPTS);
  const base = freeBase(RESULTS, localDate(startedAt) + (QUICK ? '-quick' : full ? '' : '-partial'));
  const csvPath = join(RESULTS, `${base}-raw.csv`);
  const mdPath = join(RESULTS, `${base}.md`);
  startCsv(csvPath);
  log(`raw results: ${csvPath}`);
  let complete = false;
  onCleanup(() => {
    // an unfinished run keeps its data, under a name that says so
    if (!complete && existsSync(csvPath)) renameSync(csvPath, csvPath.replace(/-raw\.csv$/, '-interrupted-raw.csv'));
  });

  const work = makeTempDir('corral-bench-');
  const build = snapshotBuild(ROOT, work);
  const probeYaml = join(work, 'probe.yaml');
  writeFileSync(probeYaml, corralYaml({}));
  const probe = run(process.execPath, [join(build.dir, 'dist/src/cli/main.js'), 'check', '-c', probeYaml]);
  if (probe.code !== 0) throw new Error(`the Corral build does not run: corral check exited ${probe.code}: ${(probe.stderr || probe.stdout).trim()}`);
  log(`measuring a snapshot of dist/ built ${build.builtAt.toISOString()} (copied to ${build.dir})`);
  const wwwDir = join(work, 'www');
  log(`creating the ${OPTS.xferBytes / 1048576} MiB transfer file in ${wwwDir}`);
  makeBulkFile(wwwDir, OPTS.xferBytes);
  const upstream = await startUpstream(work, wwwDir);
  const upBody = await checkBody(UPSTREAM_PORT);
  if (upBody) throw new Error(`upstream check failed: ${upBody}`);
  log(`upstream nginx pid ${upstream.pid} on 127.0.0.1:${UPSTREAM_PORT} (CPU 0)`);

  const configs = proxyConfigs({ work, build: build.dir, stream });
  const labels = {};
  for (const c of [...configs.http, ...configs.tcp]) labels[c.name] = c.label;
  const unsupported = new Map(); // config name -> n/a reason, decided once
  const details = new Map(); // config name -> longer explanation for the report
  const total = OPTS.rounds * OPTS.scenarios.reduce((n, s) => n + configs[PLAN[s].family].length, 0);
  let done = 0;

  for (let round = 1; round <= OPTS.rounds; round++) {
    for (const scenario of OPTS.scenarios) {
      const plan = PLAN[scenario];
      for (const cfg of rotate(configs[plan.family], round - 1)) {
        done++;
        const tag = `[${done}/${total}] round ${round} ${scenario} ${cfg.name}`;
        const key = { scenario, round, config: cfg.name, conns: plan.conns };
        const naRow = (note, flagged) => {
          appendCsv(csvPath, { ...key, kind: 'na', flagged: flagged ? 1 : 0, note });
          if (plan.xfer) appendCsv(csvPath, { ...key, scenario: plan.xfer, conns: 1, kind: 'na', flagged: flagged ? 1 : 0, note });
        };
        if (unsupported.has(cfg.name)) {
          naRow(unsupported.get(cfg.name), false);
          continue;
        }
        await checkpoint();
        const started = await cfg.start();
        if (started.na) {
          log(`${tag}: ${started.na}`);
          if (started.detail) details.set(cfg.name, started.detail);
          if (started.unsupported) unsupported.set(cfg.name, started.na);
          naRow(started.na, !started.unsupported);
          continue;
        }
        const proc = started.proc;
        try {
          const bad = await checkBody(cfg.port);
          if (bad) {
            log(`${tag}: body check failed: ${bad}`);
            naRow(`body check failed: ${bad}`, true);
            continue;
          }
          let died = false;
          for (let attempt = 1; ; attempt++) {
            log(`${tag}: warm-up ${OPTS.warmup}s, then ${OPTS.seconds}s with ${plan.conns} connections${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
            const m = await measureWrk(cfg, proc, plan.conns);
            await checkpoint();
            died = m.died;
            const last = attempt > OPTS.retries || !m.interference || died || patienceLeft() <= 0;
            if (!last) patienceUsed += (OPTS.warmup + OPTS.seconds + 5) * 1000;
            const notes = [started.note, m.interference, m.w.socketDetail && m.w.socketErrors ? `socket errors: ${m.w.socketDetail}` : '',
              died ? 'proxy exited during the run' : '', m.w.code !== 0 ? `wrk exit ${m.w.code}: ${m.w.raw.slice(-200)}` : '',
              m.w.requests === 0 ? 'no requests completed' : '', attempt > 1 ? `attempt ${attempt}` : '',
              last ? '' : 'left out: repeated'].filter(Boolean);
            appendCsv(csvPath, {
              ...key, kind: last ? 'wrk' : 'discarded', seconds: OPTS.seconds, requests: m.w.requests, rps: m.w.rps, p50_ms: m.w.p50,
              p99_ms: m.w.p99, non2xx: m.w.non2xx, socket_errors: m.w.socketErrors, rss_mb: m.rss, cpu0_busy_pct: m.cpu.cpu0,
              cpu1_busy_pct: m.cpu.cpu1, proxy_cpu_pct: m.proxyCpu, other_load_pct: m.foreign, steal_pct: m.cpu.steal,
              flagged: m.errors > 0 || died || m.w.requests === 0 || m.w.code !== 0 ? 1 : 0, note: notes.join('; '),
            });
            const pct = (x) => (Number.isFinite(x) ? `${x.toFixed(0)}%` : '-');
            log(`${tag}: ${Math.round(m.w.rps)} req/s, p50 ${m.w.p50} ms, p99 ${m.w.p99} ms, errors ${m.errors}, ` +
              `RSS ${Number.isFinite(m.rss) ? m.rss.toFixed(0) : '-'} MB, CPU0 ${pct(m.cpu.cpu0)} CPU1 ${pct(m.cpu.cpu1)} ` +
              `(proxy ${pct(m.proxyCpu)}) other ${pct(m.foreign)} steal ${m.cpu.steal.toFixed(1)}%${m.interference ? ` — ${m.interference}` : ''}${last ? '' : ', repeating'}`);
            if (last) break;
            await sleep(5000);
          }
          if (plan.xfer && !died) {
            const t = await runTransfer(cfg.port, `/files/${BULK_FILE}`);
            await checkpoint();
            const rssAfter = proc ? treeRssMb(proc.pid) : NaN;
            const wrong = t.httpCode !== 200 || t.bytes !== OPTS.xferBytes;
            appendCsv(csvPath, {
              ...key, scenario: plan.xfer, conns: 1, kind: 'xfer', seconds: t.seconds, bytes: t.bytes, http_code: t.httpCode,
              mb_per_s: t.mbps, rss_mb: rssAfter, socket_errors: wrong ? 1 : 0, flagged: wrong ? 1 : 0,
              note: wrong ? `expected ${OPTS.xferBytes} bytes with 200, got ${t.bytes} with ${t.httpCode} ${t.error}`.trim() : '',
            });
            log(`${tag}: ${(OPTS.xferBytes / 1048576).toFixed(0)} MiB transfer ${t.mbps.toFixed(0)} MB/s in ${t.seconds.toFixed(2)} s${wrong ? ' (WRONG SIZE/STATUS)' : ''}`);
          }
        } finally {
          await stopProxy(proc);
        }
      }
    }
  }
  await stopProc(upstream);
  complete = true;
  const finishedAt = new Date();
  const rows = readCsv(csvPath);
  const md = renderReport(rows, {
    labels, details, full, buildNote, stream, startedAt, finishedAt, csvName: basename(csvPath), opts: OPTS,
    buildAt: build.builtAt.toISOString(),
    machine: describeMachine(ROOT),
  });
  writeFileSync(mdPath, md);
  log(`report: ${mdPath}`);
  log(`took ${((finishedAt - startedAt) / 60000).toFixed(1)} min`);
  process.stdout.write(`\n${summaryLines(rows).join('\n')}\n\nreport: ${mdPath}\nraw:    ${csvPath}\n`);
}

/**
 * Warm-up, then one measured wrk run against a started config, with the CPU
 * and memory figures around it. `interference` is set when the CPUs were busy
 * with something other than the proxy (another job on a shared machine).
 */
async function measureWrk(cfg, proc, conns) {
  await waitForQuiet();
  await runWrk(cfg.port, { conns, seconds: OPTS.warmup, latency: false });
  const proxyPids = proc ? processTree(proc.pid) : [];
  const proxy0 = procTicks(proxyPids);
  const out0 = outsiderTicks(processTree(process.pid));
  const before = cpuSnapshot();
  const w = await runWrk(cfg.port, { conns, seconds: OPTS.seconds });
  const after = cpuSnapshot();
  const outsiders = outsiderDelta(out0, outsiderTicks(processTree(process.pid)));
  const proxyTicks = procTicks(proxyPids) - proxy0;
  const cpu = cpuDelta(before, after);
  const perCpu = cpu1Ticks(before, after);
  const proxyCpu = proc ? (100 * proxyTicks) / perCpu : NaN;
  const rss = proc ? treeRssMb(proc.pid) : NaN;
  // Both CPUs should hold only wrk, the upstream and the proxy (plus the kernel's
  // network work, which is not charged to processes). Anything else is another job.
  // Counted from the other processes' own CPU time, including children they reaped
  // during the window (so short-lived test processes count too).
  const foreign = (100 * outsiders) / perCpu;
  const reasons = [];
  if (foreign > OTHER_LOAD_LIMIT) reasons.push(`other processes used ~${foreign.toFixed(0)}% of a CPU`);
  if (cpu.steal > STEAL_LIMIT) reasons.push(`steal ${cpu.steal.toFixed(1)}%`);
  const interference = reasons.length ? `disturbed: ${reasons.join(', ')}` : '';
  return { w, cpu, proxyCpu, foreign, rss, died: Boolean(proc && proc.done), interference, errors: w.non2xx + w.socketErrors };
}

/**
 * Before a measurement: waits (up to BENCH_QUIET_WAIT seconds) until, over 2 s,
 * processes other than ours use at most OTHER_LOAD_LIMIT % of a CPU and steal
 * is at most STEAL_LIMIT %. Then measures anyway; the run's own check decides.
 */
async function waitForQuiet() {
  const deadline = Date.now() + OPTS.quietWait * 1000;
  const begun = Date.now();
  let said = false;
  for (;;) {
    const o0 = outsiderTicks(processTree(process.pid));
    const s0 = cpuSnapshot();
    await sleep(2000);
    const s1 = cpuSnapshot();
    const other = (100 * outsiderDelta(o0, outsiderTicks(processTree(process.pid)))) / cpu1Ticks(s0, s1);
    const { steal } = cpuDelta(s0, s1);
    if (other <= OTHER_LOAD_LIMIT && steal <= STEAL_LIMIT) {
      if (said) log(`quiet after ${((Date.now() - begun) / 1000).toFixed(0)} s`);
      return;
    }
    if (patienceLeft() <= 0) {
      if (!patienceNoted) log(`the ${OPTS.patience} s allowance for waiting and repeating is used up: measuring without waiting from now on`);
      patienceNoted = true;
      return;
    }
    if (Date.now() > deadline) {
      log(`still busy after ${OPTS.quietWait} s (other processes ~${other.toFixed(0)}% of a CPU, steal ${steal.toFixed(1)}%); measuring anyway`);
      return;
    }
    if (!said) log(`waiting for the machine to be quiet: other processes ~${other.toFixed(0)}% of a CPU, steal ${steal.toFixed(1)}%`);
    said = true;
    patienceUsed += 2000;
    await checkpoint();
  }
}

/** Time spent waiting for quiet and repeating disturbed runs, against the BENCH_PATIENCE allowance. */
let patienceUsed = 0;
let patienceNoted = false;
const patienceLeft = () => OPTS.patience * 1000 - patienceUsed;

function summaryLines(rows) {
  return corralRatios(rows).map((r) => `${r.scenario.padEnd(8)} ${r.config.padEnd(10)} ${r.text}`);
}

function renderOnly(csvPath) {
  if (!csvPath) throw new Error('--render needs the path of a <date>-raw.csv file');
  const rows = readCsv(csvPath);
  const configs = proxyConfigs({ work: '/nonexistent', build: '/nonexistent', stream: { ok: true } });
  const labels = {};
  for (const c of [...configs.http, ...configs.tcp]) labels[c.name] = c.label;
  const rounds = Math.max(...rows.map((r) => Number(r.round) || 0));
  const seconds = Math.max(...rows.filter((r) => r.kind === 'wrk').map((r) => Number(r.seconds) || 0));
  const scenarios = [...new Set(rows.map((r) => r.scenario))].filter((s) => PLAN[s]);
  const opts = { ...OPTS, rounds, seconds, scenarios };
  const full = !/-(quick|partial|interrupted)/.test(basename(csvPath)) && isFullRun(opts);
  const mdPath = csvPath.replace(/-raw\.csv$/, '.md');
  // Keep what only the original run knew (times, machine, build) from its report, if there is one.
  const old = existsSync(mdPath) ? readFileSync(mdPath, 'utf8') : '';
  const machineLines = /## Machine\n\n([\s\S]*?)\n\n## /.exec(old)?.[1]?.split('\n');
  const md = renderReport(rows, {
    labels, details: new Map(), full, stream: null, startedAt: null, finishedAt: null,
    buildNote: /^⚠ (npm run build failed[^\n]*)\.$/m.exec(old)?.[1] ?? '',
    timesLine: /^Started .*$/m.exec(old)?.[0],
    buildAt: /taken at the start \(built ([^)]+)\)/.exec(old)?.[1],
    quick: /-quick/.test(basename(csvPath)),
    csvName: basename(csvPath), opts, machine: machineLines ? null : describeMachine(ROOT), machineLines,
  });
  writeFileSync(mdPath, md);
  process.stdout.write(`${summaryLines(rows).join('\n')}\n\nreport: ${mdPath}\n`);
}

function renderReport(rows, ctx) {
  const { opts } = ctx;
  const day = ctx.startedAt ? localDate(ctx.startedAt) : ctx.csvName.slice(0, 10);
  const kind = ctx.full
    ? `**Full run**: ${opts.rounds} interleaved rounds × ${opts.seconds} s per measurement (${opts.warmup} s warm-up before each).`
    : QUICK || ctx.quick
      ? `**QUICK SMOKE TEST — not a benchmark result**: ${opts.rounds} round × ${opts.seconds} s per measurement. Use a full run for numbers.`
      : `**Partial run — not a full result**: ${opts.rounds} round(s) × ${opts.seconds} s per measurement, scenarios ${opts.scenarios.join(', ')}.`;
  const out = [`# Corral benchmark, ${day}`, '', kind, ''];
  if (ctx.startedAt) {
    out.push(`Started ${ctx.startedAt.toISOString()}, finished ${ctx.finishedAt.toISOString()} ` +
      `(${((ctx.finishedAt - ctx.startedAt) / 60000).toFixed(1)} min). Raw per-run data: \`${ctx.csvName}\`.`);
  } else if (ctx.timesLine) {
    out.push(ctx.timesLine);
  } else {
    out.push(`Re-rendered from \`${ctx.csvName}\` (machine details below collected at re-render time).`);
  }
  if (ctx.buildNote) out.push('', `⚠ ${ctx.buildNote}.`);
  const kept = rows.filter((r) => r.kind === 'wrk');
  const keptDisturbedCount = kept.filter((r) => /disturbed:/.test(r.note)).length;
  if (keptDisturbedCount > 0) {
    out.push('', `⚠ **${keptDisturbedCount} of the ${kept.length} wrk runs in the tables ran while other jobs were busy on this machine** ` +
      '(see Interference at the end). The "undisturbed" column shows the median of the clean runs alone; ratios built on disturbed runs are rough.');
  }
  out.push('', '## Machine', '', '| | |', '|---|---|');
  if (ctx.machineLines) out.push(...ctx.machineLines.filter((l) => l.startsWith('|') && !/^\| \| \|$|^\|---\|---\|$/.test(l)));
  else for (const [k, v] of ctx.machine) out.push(`| ${k} | ${v.replace(/\|/g, '\\|')} |`);

  out.push('', '## Method', '');
  out.push(
    `- **CPU 0**: the load generator (\`wrk -t1\`, or \`curl\` for transfers) and the upstream — nginx, 1 worker, answering \`hello world\\n\` on 127.0.0.1:${UPSTREAM_PORT} and serving a ${(opts.xferBytes / 1048576).toFixed(0)} MiB file (fallocate, page cache, sendfile). Both pinned with \`taskset -c 0\`.`,
    `- **CPU 1**: the proxy under test, alone, pinned with \`taskset -c 1\`, listening on 127.0.0.1:${PROXY_PORT}. One proxy at a time; a fresh process for every measurement. \`direct\` is wrk straight at the upstream (no proxy; CPU 1 idle).`,
    '- Proxies: HAProxy `nbthread 1`, `http-reuse always` (mode http) / mode tcp; nginx 1 worker with upstream `keepalive 64` (http) / the stream module (tcp); Corral from `dist/` with a generated YAML (one frontend → one backend → the upstream), `workers: 1` unless the row says otherwise, `CORRAL_LOG_LEVEL=warn` so the access log (info level) stays off.',
    `- Each measurement: start the proxy, check \`GET /\` returns \`hello world\`, warm up ${opts.warmup} s with the same wrk settings, then \`wrk -t1 -cN -d${opts.seconds}s --latency\`. In the c50 slots a single \`curl\` download of the file follows through the same proxy process (the bulk tables).`,
    `- Interleaved: round 1 runs every scenario over every config, then round 2, and so on (${opts.rounds} round(s)); the config order rotates by one each round. Tables show medians over rounds; min–max shows the spread.`,
    '- req/s, p50 and p99 come from wrk\'s latency distribution (p50/p99 are medians of the per-run values). Errors = non-2xx/3xx responses + socket errors (connect/read/write/timeout); a run with any is flagged ⚠. A transfer with the wrong size or status is flagged too.',
    '- RSS = VmRSS of the proxy process plus all its descendants (nginx/HAProxy master + worker, Corral workers), read from /proc at the end of the measured run (bulk tables: after the transfer).',
    '- CPU0 %/CPU1 % = busy share of each CPU over the measured window from /proc/stat (user+nice+system+irq+softirq); steal % over both CPUs. When CPU0 is near 100 % the load generator and upstream are the limit, not the proxy.',
    '- MB/s = bytes / curl total time / 10^6.',
  );
  out.push(
    '- proxy CPU % = CPU time the proxy processes themselves used over the window, as a share of one CPU. CPU1 % minus proxy CPU % is mostly the kernel\'s network work (softirq).',
    `- Before each measurement the harness waits (up to ${opts.quietWait} s) until, over 2 s, other processes use at most ${OTHER_LOAD_LIMIT}% of a CPU and steal is at most ${STEAL_LIMIT}%. Waits and repeats together may take at most ${opts.patience} s per run; after that it measures without waiting or repeating.`,
    `- Other load: the CPU time of every process outside the harness's own process tree (including children they reaped during the window, so short-lived test processes count), from /proc. When other processes (another job on a shared machine) took more than ${OTHER_LOAD_LIMIT}% of a CPU, or steal time exceeded ${STEAL_LIMIT}%, the measurement is repeated after 5 s (up to ${opts.retries} times); the disturbed attempt stays in the raw CSV as \`discarded\`, and is listed under "Interference".`,
  );
  if (ctx.stream && !ctx.stream.ok && opts.scenarios.includes('l4-c50')) out.push(`- nginx stream module unavailable: ${ctx.stream.how}.`);
  if (ctx.buildAt) out.push(`- Corral measured from a copy of \`dist/\` taken at the start (built ${ctx.buildAt}), so a rebuild during the run cannot change the code under test.`);
  out.push('', 'Configurations:', '');
  for (const [name, label] of Object.entries(ctx.labels)) out.push(`- \`${name}\`: ${label}`);

  out.push('', '## Results');
  const sections = [
    ['l7-c50', `wrk -t1 -c50 -d${opts.seconds}s --latency`],
    ['l7-c200', `wrk -t1 -c200 -d${opts.seconds}s --latency`],
    ['l7-bulk', `curl, one ${(opts.xferBytes / 1048576).toFixed(0)} MiB download per round through each HTTP proxy`],
    ['l4-c50', `wrk -t1 -c50 -d${opts.seconds}s --latency, HTTP requests through the TCP-mode proxies; ratios against HAProxy mode tcp and nginx stream`],
    ['l4-bulk', `curl, one ${(opts.xferBytes / 1048576).toFixed(0)} MiB download per round through each TCP proxy`],
  ];
  for (const [scenario, how] of sections) {
    const table = scenarioTable(rows, scenario);
    if (!table) continue;
    out.push('', `### ${SCENARIOS[scenario].title}`, '', `${how}.`, '', table);
  }

  const ratios = corralRatios(rows);
  if (ratios.length) {
    out.push('', '## Corral in one look', '');
    for (const r of ratios) out.push(`- ${r.scenario}, ${r.config}: ${r.text}`);
  }
  const naNotes = new Map();
  for (const r of rows.filter((x) => x.kind === 'na')) if (!naNotes.has(r.config)) naNotes.set(r.config, r.note);
  if (naNotes.size) {
    out.push('', '## Not measured', '');
    for (const [config, note] of naNotes) out.push(`- **${config}**: ${note}${ctx.details.has(config) ? ` — ${ctx.details.get(config)}` : ''}`);
  }
  const discarded = rows.filter((r) => r.kind === 'discarded');
  const keptDisturbed = rows.filter((r) => r.kind === 'wrk' && /disturbed:/.test(r.note));
  if (discarded.length || keptDisturbed.length) {
    out.push('', '## Interference', '',
      `Other processes used more than ${OTHER_LOAD_LIMIT}% of a CPU (another job on this machine), or steal exceeded ${STEAL_LIMIT}%, in ${discarded.length + keptDisturbed.length} measured run(s). ` +
      `${discarded.length} were repeated and left out of the tables; ${keptDisturbed.length} stayed in because the repeats ran out (up to ${opts.retries} repeat(s) per measurement).`, '');
    for (const r of [...discarded, ...keptDisturbed]) {
      out.push(`- ${r.kind === 'discarded' ? 'left out' : '**kept**'}: ${r.scenario} round ${r.round} \`${r.config}\`, ${Math.round(r.rps).toLocaleString('en-US')} req/s, ${/disturbed:[^;]*/.exec(r.note)[0]}`);
    }
  }
  const flagged = rows.filter((r) => String(r.flagged) === '1');
  if (flagged.length) {
    out.push('', '## Flagged runs', '', '| scenario | round | config | what |', '|---|---|---|---|');
    for (const r of flagged) {
      const what = r.kind === 'na' ? r.note : `${r.non2xx || 0} non-2xx, ${r.socket_errors || 0} socket errors${r.note ? `; ${r.note}` : ''}`;
      out.push(`| ${r.scenario} | ${r.round} | ${r.config} | ${String(what).replace(/\|/g, '/')} |`);
    }
  }
  out.push('', 'How to read this: see `bench/README.md`.', '');
  return out.join('\n');
}

main().then(
  () => process.exit(0),
  (err) => {
    log(`error: ${err.message}`);
    process.exitCode = 1;
    // cleanup runs from the exit handler
    process.exit(1);
  },
);

#!/usr/bin/env node
// Corral soak test: steady load plus many idle keep-alive clients, watching memory.
//
//   npm run bench:soak                     10 minutes
//   SOAK_SECONDS=60 node bench/soak.mjs    a short one
//
// Environment: SOAK_SECONDS (600), SOAK_IDLE (1000 idle connections), SOAK_CONNS (50 wrk connections),
// SOAK_SAMPLE_SECONDS (10).
//
// Layout as in run.mjs: upstream nginx, wrk and the idle-connection holder on
// CPU 0; Corral alone on CPU 1 on 127.0.0.1:8080. Writes bench/results/<date>-soak.md.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBody, cpu1Ticks, cpuDelta, cpuSnapshot, LOAD_CPU, outsiderDelta, outsiderTicks, runWrk } from './lib/measure.mjs';
import { installCleanup, launch, log, makeTempDir, portOpen, processTree, sleep, stopProc, treeRssMb, waitForPort } from './lib/proc.mjs';
import { freeBase, localDate } from './lib/report.mjs';
import { corralYaml, launchCorral, PROXY_PORT, startupComplaint, startUpstream, UPSTREAM_PORT } from './lib/servers.mjs';
import { describeMachine, ensureBuild, ensureTools, snapshotBuild } from './lib/setup.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');

function envNum(name, dflt) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return Math.round(n);
}

const SECONDS = envNum('SOAK_SECONDS', 600);
const IDLE = envNum('SOAK_IDLE', 1000);
const CONNS = envNum('SOAK_CONNS', 50);
const SAMPLE = envNum('SOAK_SAMPLE_SECONDS', 10);

/** Last JSON status line the idle-connection holder wrote. */
function holderStatus(proc) {
  try {
    const lines = readFileSync(proc.stdoutFile, 'utf8').trim().split('\n').filter(Boolean);
    return lines.length ? JSON.parse(lines.at(-1)) : null;
  } catch {
    return null;
  }
}

/** Least-squares slope of y over x. */
function slope(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  const num = points.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0);
  const den = points.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  return den === 0 ? NaN : num / den;
}

async function main() {
  if (process.platform !== 'linux') throw new Error('the soak test needs Linux (/proc, taskset)');
  if (cpus().length < 2) throw new Error('the soak test needs at least 2 CPUs');
  installCleanup();
  const startedAt = new Date();
  ensureTools(['wrk', 'nginx', 'taskset']);
  const buildNote = ensureBuild(ROOT);
  for (const port of [UPSTREAM_PORT, PROXY_PORT]) {
    if (await portOpen(port)) throw new Error(`127.0.0.1:${port} is already in use; stop whatever listens there first`);
  }
  const work = makeTempDir('corral-soak-');
  const build = snapshotBuild(ROOT, work);
  const wwwDir = join(work, 'www');
  mkdirSync(wwwDir, { recursive: true });
  const upstream = await startUpstream(work, wwwDir);

  // Idle connections must outlive the whole soak, so the frontend idle timeout is raised past its end.
  const idleTimeout = `${SECONDS + 300}s`;
  const yaml = corralYaml({ idleTimeout });
  const corral = launchCorral({ build: build.dir, dir: join(work, 'corral'), name: 'corral-soak', yaml, logDir: join(work, 'logs') });
  const state = await waitForPort(PROXY_PORT, corral, 20000);
  if (state !== 'open') throw new Error(`Corral did not start (${state}): ${startupComplaint(corral)}`);
  const bad = await checkBody(PROXY_PORT);
  if (bad) throw new Error(`Corral answered wrongly: ${bad}`);
  await sleep(1000);
  const rssStart = treeRssMb(corral.pid);
  log(`Corral pid ${corral.pid} up, RSS ${rssStart.toFixed(1)} MB; opening ${IDLE} idle keep-alive connections`);

  const holder = launch(
    'idle-clients',
    'taskset',
    ['-c', LOAD_CPU, process.execPath, join(ROOT, 'bench', 'lib', 'idle-clients.mjs'), String(IDLE), String(PROXY_PORT), String(SECONDS + 120)],
    { logDir: join(work, 'logs') },
  );
  const openDeadline = Date.now() + 30000;
  let hs = null;
  while (Date.now() < openDeadline) {
    await sleep(1000);
    hs = holderStatus(holder);
    if (hs && hs.idle >= IDLE) break;
    if (holder.done) break;
  }
  // the holder reports every 5 s; wait for a fresh line
  await sleep(5500);
  hs = holderStatus(holder);
  const rssIdle = treeRssMb(corral.pid);
  log(`idle connections: ${hs ? `${hs.open} open, ${hs.idle} answered` : 'no status'}; RSS ${rssIdle.toFixed(1)} MB; starting ${SECONDS}s of wrk -c${CONNS}`);

  const t0 = Date.now();
  const samples = [];
  const out0 = outsiderTicks(processTree(process.pid));
  const cpu0 = cpuSnapshot();
  const wrkDone = runWrk(PROXY_PORT, { conns: CONNS, seconds: SECONDS });
  let finished = false;
  wrkDone.then(() => (finished = true));
  while (!finished) {
    await Promise.race([sleep(SAMPLE * 1000), wrkDone]);
    if (finished) break;
    const st = holderStatus(holder);
    samples.push({ t: Math.round((Date.now() - t0) / 1000), rss: treeRssMb(corral.pid), open: st?.open ?? NaN, alive: !corral.done });
    const last = samples.at(-1);
    log(`t=${last.t}s RSS ${last.rss.toFixed(1)} MB, idle connections open ${last.open}${last.alive ? '' : ', CORRAL EXITED'}`);
  }
  const w = await wrkDone;
  const rssEnd = treeRssMb(corral.pid);
  const cpu1 = cpuSnapshot();
  const otherLoad = (100 * outsiderDelta(out0, outsiderTicks(processTree(process.pid)))) / cpu1Ticks(cpu0, cpu1);
  const steal = cpuDelta(cpu0, cpu1).steal;
  samples.push({ t: Math.round((Date.now() - t0) / 1000), rss: rssEnd, open: holderStatus(holder)?.open ?? NaN, alive: !corral.done });
  await stopProc(holder, 3000);
  const hsEnd = holderStatus(holder);
  await sleep(2000);
  const rssAfter = treeRssMb(corral.pid);
  const corralAlive = !corral.done;
  const corralErr = corral.done ? startupComplaint(corral) : '';
  const workerCount = processTree(corral.pid).length - 1;
  await stopProc(corral, 5000);
  await stopProc(upstream);
  const finishedAt = new Date();

  // Verdict on high-water marks, because V8 gives memory back in steps (RSS dips
  // after a major GC): the highest RSS of the second minute of load (the heap has
  // grown to its working size by then) against the highest RSS of the last minute.
  const lastT = samples.at(-1).t;
  const maxIn = (from, to) => {
    const xs = samples.filter((s) => s.t >= from && s.t < to).map((s) => s.rss);
    return xs.length ? Math.max(...xs) : NaN;
  };
  const refFrom = lastT >= 180 ? 60 : 0;
  const reference = maxIn(refFrom, refFrom + 60);
  const endLevel = maxIn(lastT - 60, lastT + 1);
  const peak = Math.max(...samples.map((s) => s.rss));
  const growth = endLevel - reference;
  const tooShort = SECONDS < 180;
  const grew = growth > Math.max(5, 0.1 * reference);
  const verdict = tooShort ? 'not judged (under 3 minutes of load)' : grew ? 'yes' : 'no';
  // trend of the per-minute high-water marks over the second half
  const minuteMax = [];
  for (let m = 0; m * 60 < lastT; m++) {
    const v = maxIn(m * 60, (m + 1) * 60 + (m * 60 + 60 >= lastT ? 1 : 0));
    if (Number.isFinite(v) && m * 60 >= lastT / 2) minuteMax.push([m, v]);
  }
  const slopeMbPerMin = slope(minuteMax);

  mkdirSync(RESULTS, { recursive: true });
  // soaks shorter than the default 10 minutes are smoke tests: named -soak-quick (not committed)
  const name = freeBase(RESULTS, `${localDate(startedAt)}-soak${SECONDS < 600 ? '-quick' : ''}`, ['.md']);
  const mdPath = join(RESULTS, `${name}.md`);
  const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');
  const out = [
    `# Corral soak test, ${localDate(startedAt)}${SECONDS < 600 ? ' (short run: smoke test, not a result)' : ''}`,
    '',
    `${SECONDS} s of \`wrk -t1 -c${CONNS}\` through Corral while a separate process held ${IDLE} idle keep-alive connections to it; Corral's RSS sampled every ${SAMPLE} s.`,
    `Started ${startedAt.toISOString()}, finished ${finishedAt.toISOString()} (${((finishedAt - startedAt) / 60000).toFixed(1)} min).`,
    buildNote ? `\n⚠ ${buildNote}.` : '',
    '',
    '## Result',
    '',
    '| | |',
    '|---|---|',
    `| RSS at start (idle, before any client) | ${f1(rssStart)} MB |`,
    `| RSS with ${IDLE} idle connections open, before load | ${f1(rssIdle)} MB |`,
    `| reference: highest RSS in t=${refFrom}–${refFrom + 60} s of load | ${f1(reference)} MB |`,
    `| peak RSS under load | ${f1(peak)} MB |`,
    `| highest RSS in the last minute of load | ${f1(endLevel)} MB |`,
    `| RSS at the end of the load | ${f1(rssEnd)} MB |`,
    `| RSS 2 s after load and idle clients stopped | ${f1(rssAfter)} MB |`,
    `| growth: last minute's highest − reference | ${f1(growth)} MB (${f1((100 * growth) / reference)} %) |`,
    `| trend of the per-minute highest RSS over the second half | ${Number.isFinite(slopeMbPerMin) ? slopeMbPerMin.toFixed(2) : '–'} MB/min |`,
    `| **grew?** | **${verdict}** (rule: last minute's highest more than max(5 MB, 10 %) above the reference) |`,
    `| load | ${Math.round(w.rps).toLocaleString('en-US')} req/s average, ${w.requests.toLocaleString('en-US')} requests, p50 ${w.p50} ms, p99 ${w.p99} ms |`,
    `| load errors | ${w.non2xx} non-2xx/3xx, ${w.socketErrors} socket errors${w.socketDetail ? ` (${w.socketDetail})` : ''}${w.non2xx + w.socketErrors > 0 ? ' ⚠' : ''} |`,
    `| idle connections | at start ${hs?.open ?? '?'} open; at the end ${hsEnd?.open ?? '?'} open; closed by the server and reopened ${hsEnd?.closedByServer ?? '?'} times; connection errors ${hsEnd?.errors ?? '?'} |`,
    `| machine | other processes used ${f1(otherLoad)} % of a CPU on average during the load (shared machine), steal ${f1(steal)} % |`,
    `| Corral | ${corralAlive ? 'ran to the end' : `EXITED during the soak: ${corralErr}`}; ${workerCount} child process(es) at the end |`,
    '',
    '## Setup',
    '',
    `- Corral (a copy of \`dist/\` built ${build.builtAt.toISOString()}) on CPU 1 (\`taskset -c 1\`), \`workers: 1\`, \`CORRAL_LOG_LEVEL=warn\`, one frontend 127.0.0.1:${PROXY_PORT} → one backend → nginx on 127.0.0.1:${UPSTREAM_PORT}; frontend \`timeouts.idle: ${idleTimeout}\` so that the idle clients are not cut during the run.`,
    `- On CPU 0: the upstream nginx (1 worker, \`hello world\\n\`), \`wrk -t1 -c${CONNS} -d${SECONDS}s --latency\`, and \`bench/lib/idle-clients.mjs\` (each of its ${IDLE} connections sends one \`GET /\`, reads the answer, then stays silent; one the server closes is reopened and counted).`,
    '- RSS = VmRSS of the Corral process and its descendants, from /proc.',
    '',
    '## Machine',
    '',
    '| | |',
    '|---|---|',
    ...describeMachine(ROOT).map(([k, v]) => `| ${k} | ${v.replace(/\|/g, '\\|')} |`),
    '',
    '## Samples',
    '',
    '| t (s) | RSS MB | idle connections open |',
    '|---|---|---|',
    ...samples.map((s) => `| ${s.t} | ${f1(s.rss)} | ${s.open}${s.alive ? '' : ' (Corral gone)'} |`),
    '',
  ];
  writeFileSync(mdPath, out.join('\n'));
  log(`report: ${mdPath}`);
  process.stdout.write(
    `\nsoak ${SECONDS}s: RSS start ${f1(rssStart)} MB, with idle ${f1(rssIdle)} MB, reference ${f1(reference)} MB, peak ${f1(peak)} MB, last minute ${f1(endLevel)} MB, end ${f1(rssEnd)} MB -> grew: ${verdict}\n` +
      `load ${Math.round(w.rps)} req/s, errors ${w.non2xx + w.socketErrors}; idle connections open at end ${hsEnd?.open ?? '?'}, reopened ${hsEnd?.closedByServer ?? '?'}\n` +
      `report: ${mdPath}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err) => {
    log(`error: ${err.message}`);
    process.exit(1);
  },
);

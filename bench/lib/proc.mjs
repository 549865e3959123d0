// Process bookkeeping for the benchmark harness.
//
// Every long-lived process the harness starts goes through `launch()`, which
// puts it in its own process group and records its pid. `stopProc()` ends one
// group; `cleanupAll()` (wired to exit and signals by `installCleanup()`)
// ends whatever is still recorded and removes the temp dirs we made. Nothing
// here ever signals a process the harness did not start.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** pid -> { name, child, exited: Promise<{code, signal}> } */
const running = new Map();
const tempDirs = [];
const hooks = [];
let cleanedUp = false;
let stopping = false;

/** True once a signal asked the harness to stop. */
export function isStopping() {
  return stopping;
}

/** Resolves normally, or never when stopping (the signal handler exits the process). */
export function checkpoint() {
  return stopping ? new Promise(() => {}) : Promise.resolve();
}

/** A synchronous function to run at cleanup (before temp dirs go). */
export function onCleanup(fn) {
  hooks.push(fn);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function log(msg) {
  const t = new Date().toTimeString().slice(0, 8);
  process.stderr.write(`[${t}] ${msg}\n`);
}

/** A private temp dir, removed at exit. */
export function makeTempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** `which`, without a shell. */
export function which(cmd) {
  const r = spawnSync('which', [cmd], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Runs a short command to completion; returns { code, stdout, stderr }. Inherit = show output live. */
export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    stdio: opts.inherit ? 'inherit' : 'pipe',
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    timeout: opts.timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

/**
 * Starts a long-lived process in its own process group, with stdout and
 * stderr going to files. Returns { pid, name, exited, stdoutFile, stderrFile }.
 */
export function launch(name, cmd, args, { env, logDir, cwd } = {}) {
  mkdirSync(logDir, { recursive: true });
  const stdoutFile = join(logDir, `${name}.out`);
  const stderrFile = join(logDir, `${name}.err`);
  const out = openSync(stdoutFile, 'w');
  const err = openSync(stderrFile, 'w');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', out, err], env: env ?? process.env, cwd });
  closeSync(out);
  closeSync(err);
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (e) => resolve({ code: -1, signal: null, error: e }));
  });
  let done = false;
  exited.then(() => {
    done = true;
  });
  const proc = { pid: child.pid, name, child, exited, stdoutFile, stderrFile, get done() { return done; } };
  if (child.pid !== undefined) running.set(child.pid, proc);
  return proc;
}

/**
 * Runs a process to completion (wrk, curl) in its own group, registered while
 * it runs so that a signal cleans it up too. Resolves { code, stdout, stderr }.
 * `timeoutMs` is a hard bound: the group is killed when it is reached.
 */
export function runTracked(cmd, args, { timeoutMs, env } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const entry = { pid: child.pid, name: cmd, child };
    if (child.pid !== undefined) running.set(child.pid, entry);
    let timer;
    if (timeoutMs) {
      timer = setTimeout(() => {
        killGroup(child.pid, 'SIGKILL');
        stderr += `\n(killed after ${timeoutMs} ms)`;
      }, timeoutMs);
    }
    let settled = false;
    const finish = (code) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      running.delete(child.pid);
      resolve({ code, stdout, stderr });
    };
    child.once('error', (e) => {
      stderr += String(e);
      finish(-1);
    });
    child.once('close', (code) => finish(code));
  });
}

function killGroup(pid, signal) {
  if (pid === undefined) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Ends a launched process and everything in its group: TERM, then KILL after graceMs. */
export async function stopProc(proc, graceMs = 5000) {
  if (!proc || proc.pid === undefined) return;
  killGroup(proc.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && (!proc.done || groupAlive(proc.pid))) await sleep(50);
  if (!proc.done || groupAlive(proc.pid)) {
    killGroup(proc.pid, 'SIGKILL');
    await Promise.race([proc.exited, sleep(2000)]);
  }
  running.delete(proc.pid);
}

/** Synchronous last resort: KILL every recorded group, remove temp dirs. */
export function cleanupAllSync() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const pid of running.keys()) killGroup(pid, 'SIGKILL');
  for (const fn of hooks) {
    try {
      fn();
    } catch {
      // best effort
    }
  }
  running.clear();
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}

/** TERM everything recorded (newest first), then the synchronous sweep. */
export async function cleanupAll() {
  const procs = [...running.values()].reverse();
  for (const p of procs) {
    if (p.exited) await stopProc(p, 3000);
    else killGroup(p.pid, 'SIGKILL');
  }
  cleanupAllSync();
}

/** Cleanup on normal exit, on SIGINT/SIGTERM/SIGHUP and on a crash. */
export function installCleanup() {
  process.on('exit', cleanupAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      log(`${sig}: stopping everything the benchmark started`);
      cleanupAll().finally(() => process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)));
    });
  }
  process.on('uncaughtException', (err) => {
    log(`fatal: ${err.stack ?? err}`);
    cleanupAll().finally(() => process.exit(1));
  });
  process.on('unhandledRejection', (err) => {
    log(`fatal: ${err?.stack ?? err}`);
    cleanupAll().finally(() => process.exit(1));
  });
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

/** Waits until the port accepts, or the process exits, or the time is up. Returns 'open' | 'exited' | 'timeout'. */
export async function waitForPort(port, proc, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && proc.done) return 'exited';
    if (await portOpen(port, 300)) return 'open';
    await sleep(100);
  }
  return 'timeout';
}

/** Waits until nothing accepts on the port any more. */
export async function waitForPortClosed(port, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await portOpen(port, 300))) return true;
    await sleep(100);
  }
  return false;
}

/** pid and all of its descendants (from /proc). */
export function processTree(rootPid) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // the command name may contain spaces and parentheses: fields start after the last ')'
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      // process went away while we looked
    }
  }
  const out = [];
  const todo = [rootPid];
  while (todo.length > 0) {
    const p = todo.pop();
    out.push(p);
    for (const c of children.get(p) ?? []) todo.push(c);
  }
  return out;
}

/** VmRSS of one process in kB, or 0 when gone. */
export function rssKb(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Summed VmRSS of a process and its descendants (nginx/haproxy master + workers, Corral workers), in MB. */
export function treeRssMb(rootPid) {
  const kb = processTree(rootPid).reduce((sum, p) => sum + rssKb(p), 0);
  return kb / 1024;
}

/** Command name of a pid (for reporting). */
export function commOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

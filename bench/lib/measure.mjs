// Load generation and the numbers taken around it: wrk runs (parsed),
// curl bulk transfers, per-CPU busy/steal from /proc/stat, a body check.
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { runTracked } from './proc.mjs';

/** CPU the load generator (and the upstream) run on; the proxy gets the other one. */
export const LOAD_CPU = '0';
export const PROXY_CPU = '1';

/** Raw jiffies per CPU line of /proc/stat: { cpu0: {busy, idle, steal, total}, ... }. */
export function cpuSnapshot() {
  const out = {};
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^(cpu\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    const [user, nice, system, idle, iowait, irq, softirq, steal = 0] = m[2].split(/\s+/).map(Number);
    const busy = user + nice + system + irq + softirq;
    out[m[1]] = { busy, idle: idle + iowait, steal, total: busy + idle + iowait + steal };
  }
  return out;
}

/** Busy % of CPU 0 and CPU 1, and steal % over both, between two snapshots. */
export function cpuDelta(a, b) {
  const d = (cpu, k) => (b[cpu]?.[k] ?? 0) - (a[cpu]?.[k] ?? 0);
  const pct = (num, den) => (den > 0 ? (100 * num) / den : NaN);
  return {
    cpu0: pct(d('cpu0', 'busy'), d('cpu0', 'total')),
    cpu1: pct(d('cpu1', 'busy'), d('cpu1', 'total')),
    steal: pct(d('cpu0', 'steal') + d('cpu1', 'steal'), d('cpu0', 'total') + d('cpu1', 'total')),
  };
}

/** CPU time (user+system, in clock ticks) used so far by the given pids. */
export function procTicks(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      sum += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15 of stat)
    } catch {
      // exited
    }
  }
  return sum;
}

/**
 * CPU ticks used so far by every user-space process outside the harness's own
 * process tree (kernel threads left out): pid -> { self, kids }, where `kids`
 * is the time of children that already exited and were reaped (cutime+cstime),
 * so that short-lived processes show up in their parent's figure.
 */
export function outsiderTicks(ours) {
  const mine = new Set(ours);
  const out = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (mine.has(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      if (pid === 2 || ppid === 2) continue; // kernel threads
      // fields 14-17 of stat: utime stime cutime cstime
      out.set(pid, { self: Number(f[11]) + Number(f[12]), kids: Number(f[13]) + Number(f[14]) });
    } catch {
      // exited
    }
  }
  return out;
}

/**
 * Ticks outsiders used between two outsiderTicks() maps. A process born in
 * between counts whole; one that ended in between is taken back out at its
 * starting figure, because its parent's reaped-children time now holds all of it.
 */
export function outsiderDelta(a, b) {
  let sum = 0;
  for (const [pid, t] of b) {
    const before = a.get(pid) ?? { self: 0, kids: 0 };
    sum += Math.max(0, t.self - before.self) + Math.max(0, t.kids - before.kids);
  }
  for (const [pid, t] of a) if (!b.has(pid)) sum -= t.self + t.kids;
  return Math.max(0, sum);
}

/** CPU 1 jiffies elapsed between two snapshots (same unit as procTicks). */
export function cpu1Ticks(a, b) {
  return (b.cpu1?.total ?? 0) - (a.cpu1?.total ?? 0);
}

/** "533.00us" | "1.20ms" | "2.01s" | "1.5m" -> milliseconds. */
export function toMs(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  return { us: v / 1000, ms: v, s: v * 1000, m: v * 60000 }[m[2]];
}

/** Pulls the numbers out of wrk's text output (with --latency). */
export function parseWrk(text) {
  const num = (re) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : 0;
  };
  const pct = (p) => {
    const m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(text);
    return m ? toMs(m[1]) : NaN;
  };
  const sock = /Socket errors:\s*connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = sock ? sock.slice(1, 5).map(Number).reduce((a, b) => a + b, 0) : 0;
  return {
    requests: num(/^\s*(\d+) requests in/m),
    rps: num(/^Requests\/sec:\s*([\d.]+)/m),
    p50: pct(50),
    p99: pct(99),
    non2xx: num(/Non-2xx or 3xx responses:\s*(\d+)/),
    socketErrors,
    socketDetail: sock ? `connect ${sock[1]} read ${sock[2]} write ${sock[3]} timeout ${sock[4]}` : '',
  };
}

/** wrk -t1 pinned to the load CPU. Resolves { ...parsed, raw, code }. */
export async function runWrk(port, { conns, seconds, latency = true, path = '/' }) {
  const args = ['-c', LOAD_CPU, 'wrk', '-t1', `-c${conns}`, `-d${seconds}s`];
  if (latency) args.push('--latency');
  args.push(`http://127.0.0.1:${port}${path}`);
  const r = await runTracked('taskset', args, { timeoutMs: (seconds + 30) * 1000 });
  const raw = r.stdout + (r.stderr ? `\n[stderr] ${r.stderr}` : '');
  return { ...parseWrk(r.stdout), raw, code: r.code };
}

/** One curl download pinned to the load CPU. Resolves { bytes, httpCode, seconds, mbps, error }. */
export async function runTransfer(port, path, maxSeconds = 180) {
  const r = await runTracked(
    'taskset',
    ['-c', LOAD_CPU, 'curl', '-s', '-o', '/dev/null', '--max-time', String(maxSeconds), '-w', '%{size_download} %{http_code} %{time_total}', `http://127.0.0.1:${port}${path}`],
    { timeoutMs: (maxSeconds + 10) * 1000 },
  );
  const [bytes, httpCode, seconds] = r.stdout.trim().split(/\s+/).map(Number);
  const ok = r.code === 0 && seconds > 0;
  return {
    bytes: bytes || 0,
    httpCode: httpCode || 0,
    seconds: seconds || NaN,
    mbps: ok ? bytes / seconds / 1e6 : NaN,
    error: r.code === 0 ? '' : `curl exit ${r.code} ${r.stderr.trim()}`.trim(),
  };
}

/** GET / and compare the body. Resolves '' when it is the expected body, else what went wrong. */
export function checkBody(port, expected = 'hello world\n', timeoutMs = 5000) {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        if (res.statusCode !== 200) resolve(`status ${res.statusCode}`);
        else if (body !== expected) resolve(`unexpected body ${JSON.stringify(body.slice(0, 80))}`);
        else resolve('');
      });
      res.on('error', (e) => resolve(e.message));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(e.message));
    req.end();
  });
}

// Raw per-run CSV and the markdown report made from it.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const CSV_COLUMNS = [
  'scenario', 'round', 'config', 'kind', 'conns', 'seconds', 'requests', 'rps', 'p50_ms', 'p99_ms',
  'non2xx', 'socket_errors', 'bytes', 'http_code', 'mb_per_s', 'rss_mb', 'cpu0_busy_pct', 'cpu1_busy_pct',
  'proxy_cpu_pct', 'other_load_pct', 'steal_pct', 'flagged', 'note',
];

/** Scenario ids, in report order, with their titles and the configs ratios are taken against. */
export const SCENARIOS = {
  'l7-c50': { kind: 'wrk', title: 'L7 HTTP keep-alive, 50 connections', haproxy: 'haproxy', nginx: 'nginx' },
  'l7-c200': { kind: 'wrk', title: 'L7 HTTP keep-alive, 200 connections', haproxy: 'haproxy', nginx: 'nginx' },
  'l7-bulk': { kind: 'xfer', title: 'L7 bulk transfer through the HTTP proxies (curl)', haproxy: 'haproxy', nginx: 'nginx' },
  'l4-c50': { kind: 'wrk', title: 'L4 small requests through the TCP proxies, 50 connections', haproxy: 'haproxy-tcp', nginx: 'nginx-stream' },
  'l4-bulk': { kind: 'xfer', title: 'L4 bulk transfer through the TCP proxies (curl)', haproxy: 'haproxy-tcp', nginx: 'nginx-stream' },
};

function csvCell(v) {
  if (v === undefined || v === null || (typeof v === 'number' && Number.isNaN(v))) return '';
  const s = typeof v === 'number' ? String(Math.round(v * 1000) / 1000) : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""').replace(/\n/g, ' ')}"` : s;
}

export function startCsv(path) {
  writeFileSync(path, `${CSV_COLUMNS.join(',')}\n`);
}

export function appendCsv(path, row) {
  appendFileSync(path, `${CSV_COLUMNS.map((c) => csvCell(row[c])).join(',')}\n`);
}

/** Parses the CSV written above (quoted cells allowed). */
export function readCsv(path) {
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  const head = splitCsvLine(lines.shift());
  return lines.map((line) => {
    const cells = splitCsvLine(line);
    const row = {};
    head.forEach((k, i) => {
      const v = cells[i] ?? '';
      row[k] = v !== '' && !Number.isNaN(Number(v)) && !['config', 'scenario', 'kind', 'note'].includes(k) ? Number(v) : v;
    });
    return row;
  });
}

function splitCsvLine(line) {
  const out = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** First free `<base>.md` / `<base>-2.md` / ... in dir, checking every companion suffix too. */
export function freeBase(dir, base, companions = ['.md', '-raw.csv']) {
  for (let n = 1; ; n++) {
    const b = n === 1 ? base : `${base}-${n}`;
    if (companions.every((c) => !existsSync(join(dir, b + c)))) return b;
  }
}

export function localDate(d = new Date()) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

export const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const fmtMs = (x) => (!Number.isFinite(x) ? '–' : x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(0));
const fmtRatio = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
const fmtPct = (x) => (Number.isFinite(x) ? x.toFixed(0) : '–');
const fmtMb = (x) => (Number.isFinite(x) && x > 0 ? x.toFixed(0) : '–');

/** Per-config medians for one scenario, in the order configs first appear. */
export function summarize(rows, scenario) {
  const mine = rows.filter((r) => r.scenario === scenario);
  const order = [...new Set(mine.map((r) => r.config))];
  return order.map((config) => {
    const all = mine.filter((r) => r.config === config);
    const ok = all.filter((r) => r.kind === 'wrk' || r.kind === 'xfer');
    const na = all.find((r) => r.kind === 'na');
    const value = (r) => (r.kind === 'xfer' ? r.mb_per_s : r.rps);
    const values = ok.map(value).filter(Number.isFinite);
    const errors = ok.reduce((s, r) => s + (r.non2xx || 0) + (r.socket_errors || 0), 0);
    return {
      config,
      runs: ok.length,
      na: ok.length === 0 && na ? na.note : '',
      failedRuns: all.filter((r) => r.kind === 'na').length,
      disturbed: ok.filter((r) => /disturbed:/.test(r.note)).length,
      clean: median(ok.filter((r) => !/disturbed:/.test(r.note)).map(value)),
      cleanRuns: ok.filter((r) => !/disturbed:/.test(r.note)).length,
      value: median(values),
      min: values.length ? Math.min(...values) : NaN,
      max: values.length ? Math.max(...values) : NaN,
      p50: median(ok.map((r) => r.p50_ms)),
      p99: median(ok.map((r) => r.p99_ms)),
      seconds: median(ok.map((r) => r.seconds)),
      rss: median(ok.map((r) => r.rss_mb)),
      cpu0: median(ok.map((r) => r.cpu0_busy_pct)),
      cpu1: median(ok.map((r) => r.cpu1_busy_pct)),
      proxyCpu: median(ok.map((r) => r.proxy_cpu_pct)),
      // CPU time of the proxy processes per request (µs): the most robust figure on a noisy machine.
      cpuPerReq: median(ok.filter((r) => r.kind === 'wrk' && r.rps > 0).map((r) => (r.proxy_cpu_pct * 1e4) / r.rps)),
      steal: median(ok.map((r) => r.steal_pct)),
      errors,
      flaggedRuns: all.filter((r) => String(r.flagged) === '1').length,
    };
  });
}

function shortNa(note) {
  if (/^n\/a \(workers not supported/.test(note)) return 'n/a (workers not supported in this build)';
  if (/^n\/a \(not supported in this build/.test(note)) return 'n/a (not supported in this build)';
  return note.length > 60 ? `${note.slice(0, 57)}…` : note;
}

function errorsCell(s) {
  if (s.flaggedRuns === 0) return String(s.errors);
  return `⚠ ${s.errors} (${s.flaggedRuns} flagged run${s.flaggedRuns > 1 ? 's' : ''})`;
}

/** One markdown table for a scenario. `labels` maps config name to a readable description. */
export function scenarioTable(rows, scenario) {
  const def = SCENARIOS[scenario];
  const stats = summarize(rows, scenario);
  if (stats.length === 0) return '';
  const ref = (name) => stats.find((s) => s.config === name && s.runs > 0)?.value;
  const hap = ref(def.haproxy);
  const ngx = ref(def.nginx);
  const label = (c) => `\`${c}\``;
  const out = [];
  if (def.kind === 'wrk') {
    out.push('| config | runs | median req/s | min–max req/s | p50 ms | p99 ms | ÷ HAProxy | ÷ nginx | RSS MB | errors | CPU0 % | CPU1 % | proxy CPU % | proxy CPU µs/req | steal % | undisturbed req/s (runs) |');
    out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const s of stats) {
      if (s.runs === 0) {
        out.push(`| ${label(s.config)} | 0 | ${shortNa(s.na)} | – | – | – | – | – | – | – | – | – | – | – | – | – |`);
        continue;
      }
      const cpu1 = fmtPct(s.cpu1);
      const runs = s.disturbed ? `${s.runs} (${s.disturbed} disturbed)` : String(s.runs);
      out.push(
        `| ${label(s.config)} | ${runs} | ${fmtInt(s.value)} | ${fmtInt(s.min)}–${fmtInt(s.max)} | ${fmtMs(s.p50)} | ${fmtMs(s.p99)} | ` +
          `${fmtRatio(s.value / hap)} | ${fmtRatio(s.value / ngx)} | ${s.config === 'direct' ? '–' : fmtMb(s.rss)} | ${errorsCell(s)} | ` +
          `${fmtPct(s.cpu0)} | ${cpu1} | ${s.config === 'direct' ? '– (no proxy)' : fmtPct(s.proxyCpu)} | ${s.config === 'direct' || !Number.isFinite(s.cpuPerReq) ? '–' : s.cpuPerReq.toFixed(1)} | ${Number.isFinite(s.steal) ? s.steal.toFixed(1) : '–'} | ` +
          `${s.cleanRuns ? `${fmtInt(s.clean)} (${s.cleanRuns})` : '– (0)'} |`,
      );
    }
  } else {
    out.push('| config | runs | median MB/s | min–max MB/s | median s | ÷ HAProxy | ÷ nginx | RSS MB after | errors |');
    out.push('|---|---|---|---|---|---|---|---|---|');
    for (const s of stats) {
      if (s.runs === 0) {
        out.push(`| ${label(s.config)} | 0 | ${shortNa(s.na)} | – | – | – | – | – | – |`);
        continue;
      }
      out.push(
        `| ${label(s.config)} | ${s.runs} | ${fmtInt(s.value)} | ${fmtInt(s.min)}–${fmtInt(s.max)} | ${fmtMs(s.seconds)} | ` +
          `${fmtRatio(s.value / hap)} | ${fmtRatio(s.value / ngx)} | ${s.config === 'direct' ? '–' : fmtMb(s.rss)} | ${errorsCell(s)} |`,
      );
    }
  }
  return out.join('\n');
}

/** Corral's ratios against HAProxy and nginx per scenario, for the summary line. */
export function corralRatios(rows) {
  const lines = [];
  for (const [scenario, def] of Object.entries(SCENARIOS)) {
    const stats = summarize(rows, scenario);
    const hapStats = stats.find((s) => s.config === def.haproxy && s.runs > 0);
    const hap = hapStats?.value;
    const ngx = stats.find((s) => s.config === def.nginx && s.runs > 0)?.value;
    for (const s of stats.filter((x) => x.config.startsWith('corral'))) {
      if (s.runs === 0) lines.push({ scenario, config: s.config, text: shortNa(s.na) });
      else {
        const unit = def.kind === 'xfer' ? 'MB/s' : 'req/s';
        lines.push({
          scenario,
          config: s.config,
          text:
            `${fmtInt(s.value)} ${unit}, ÷ HAProxy ${fmtRatio(s.value / hap)}, ÷ nginx ${fmtRatio(s.value / ngx)}` +
            `${def.kind === 'wrk' ? `, p50/p99 ${fmtMs(s.p50)}/${fmtMs(s.p99)} ms` : ''}, RSS ${fmtMb(s.rss)} MB` +
            `${s.flaggedRuns ? `, ⚠ ${s.flaggedRuns} flagged run(s)` : ''}` +
            `${def.kind === 'wrk' && s.disturbed ? `; undisturbed runs only: ${s.cleanRuns ? `${fmtInt(s.clean)} req/s (${s.cleanRuns})` : 'none'}` +
              `${s.cleanRuns && hapStats?.cleanRuns ? `, ÷ HAProxy ${fmtRatio(s.clean / hapStats.clean)} (HAProxy ${hapStats.cleanRuns} clean)` : ''}` : ''}`,
          vsHaproxy: s.value / hap,
        });
      }
    }
  }
  return lines;
}

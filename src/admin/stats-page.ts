/**
 * `GET /stats`: HAProxy's stats page, readable without JavaScript. One table
 * per backend, one row per server coloured by state, a totals row, and a
 * `<meta http-equiv="refresh">` for the auto-refresh. A pure function of a
 * status snapshot.
 */
import { age, escapeHtml as h, humanBytes, humanDuration } from './format.js';
import type { BackendStatus, ServerState, ServerStatus, StatusResponse } from './types.js';

export interface StatsPageOptions {
  /** Seconds between refreshes; 0 turns it off. */
  readonly refresh: number;
  readonly now?: number;
}

/** Row colours by state: background, and the text colour of the state cell. */
const STATE_STYLE: Record<ServerState, { bg: string; fg: string; label: string }> = {
  up: { bg: '#e3f6e3', fg: '#14701e', label: 'UP' },
  warming: { bg: '#fff6d5', fg: '#8a6500', label: 'WARMING' },
  drain: { bg: '#dfe9fb', fg: '#1f4f9c', label: 'DRAIN' },
  maint: { bg: '#ececec', fg: '#555555', label: 'MAINT' },
  down: { bg: '#fbe0e0', fg: '#a01818', label: 'DOWN' },
};

const CSS = `
body{font:13px/1.4 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.2em;color:#222}
h1{font-size:18px;margin:0 0 .3em}h2{font-size:15px;margin:1.4em 0 .4em}
.meta{color:#555;margin-bottom:.8em}.meta a{margin-right:1em}
table{border-collapse:collapse;margin-bottom:.6em}
th,td{border:1px solid #c8c8c8;padding:2px 7px;white-space:nowrap}
th{background:#f2f2f2;font-weight:600;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600;background:#f7f7f7}
td.state{font-weight:700}
.legend span{display:inline-block;padding:1px 8px;margin-right:6px;border:1px solid #c8c8c8}
.small{color:#666;font-size:12px}
`;

function stateRow(state: ServerState): string {
  return `style="background:${STATE_STYLE[state].bg}"`;
}

function serverRow(s: ServerStatus, now: number): string {
  const st = STATE_STYLE[s.state];
  const weight = s.effectiveWeight === s.weight ? `${s.weight}` : `${s.effectiveWeight}/${s.weight}`;
  const wTitle = `configured ${s.configWeight}${s.weightSource === 'runtime' ? `, set at run time to ${s.weight}` : ''}, effective ${s.effectiveWeight}`;
  const check =
    s.check === null
      ? '<span class="small">not reported</span>'
      : `${h(s.check.last ?? s.check.reason)}${s.check.durationMs === null ? '' : ` in ${Math.round(s.check.durationMs)}ms`}` +
        (s.check.detail !== null ? ` <span class="small">${h(s.check.detail)}</span>` : '');
  return (
    `<tr ${stateRow(s.state)}>` +
    `<td>${h(s.name)}${s.backup ? ' <span class="small">(backup)</span>' : ''}</td>` +
    `<td>${h(s.address)}</td>` +
    `<td class="state" style="color:${st.fg}" title="admin ${s.admin}, health ${s.health}">${st.label}</td>` +
    `<td class="n" title="${h(wTitle)}">${weight}${s.weightSource === 'runtime' ? '*' : ''}</td>` +
    `<td class="n">${s.active}</td><td class="n">${s.inactive}</td>` +
    `<td class="n">${s.total}</td>` +
    `<td class="n">${s.responses['2xx']}</td><td class="n">${s.responses['3xx']}</td><td class="n">${s.responses['4xx']}</td><td class="n">${s.responses['5xx']}</td>` +
    `<td class="n">${s.failures}</td><td class="n">${s.retries}</td>` +
    `<td class="n" title="${s.bytesIn} bytes">${humanBytes(s.bytesIn)}</td><td class="n" title="${s.bytesOut} bytes">${humanBytes(s.bytesOut)}</td>` +
    `<td>${check}</td>` +
    `<td title="${h(s.lastChange)}">${age(s.lastChange, now)} ago</td>` +
    '</tr>'
  );
}

function backendTable(b: BackendStatus, now: number): string {
  const sum = (f: (s: ServerStatus) => number): number => b.servers.reduce((n, s) => n + f(s), 0);
  const up = b.servers.filter((s) => s.state === 'up').length;
  return [
    `<h2 id="backend-${h(b.name)}">Backend ${h(b.name)} <span class="small">${h(b.balance)} · ${up}/${b.servers.length} up · queue ${b.queueLength}</span></h2>`,
    '<table>',
    '<tr><th>Server</th><th>Address</th><th>State</th><th title="effective/configured">Weight</th><th>Active</th><th title="idle pooled connections">Idle</th><th>Total</th><th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>Failures</th><th>Retries</th><th>Bytes in</th><th>Bytes out</th><th>Check</th><th>Last change</th></tr>',
    ...b.servers.map((s) => serverRow(s, now)),
    `<tr class="total"><td>Total</td><td></td><td>${up} up</td><td class="n">${sum((s) => (s.state === 'up' ? s.effectiveWeight : 0))}</td>` +
      `<td class="n">${sum((s) => s.active)}</td><td class="n">${sum((s) => s.inactive)}</td><td class="n">${sum((s) => s.total)}</td>` +
      `<td class="n">${sum((s) => s.responses['2xx'])}</td><td class="n">${sum((s) => s.responses['3xx'])}</td><td class="n">${sum((s) => s.responses['4xx'])}</td><td class="n">${sum((s) => s.responses['5xx'])}</td>` +
      `<td class="n">${sum((s) => s.failures)}</td><td class="n">${sum((s) => s.retries)}</td>` +
      `<td class="n">${humanBytes(sum((s) => s.bytesIn))}</td><td class="n">${humanBytes(sum((s) => s.bytesOut))}</td><td></td><td></td></tr>`,
    '</table>',
  ].join('\n');
}

export function renderStatsPage(status: StatusResponse, opts: StatsPageOptions): string {
  const now = opts.now ?? Date.now();
  const refresh = opts.refresh > 0 ? `<meta http-equiv="refresh" content="${Math.floor(opts.refresh)}">` : '';
  const frontends =
    status.frontends.length === 0
      ? ''
      : [
          '<h2>Frontends</h2><table>',
          '<tr><th>Frontend</th><th>Listen</th><th>Mode</th><th>Backend</th><th>Open</th><th>Connections</th><th>Requests</th><th>Rejected</th></tr>',
          ...status.frontends.map(
            (f) =>
              `<tr><td>${h(f.name)}</td><td>${h(f.listen)}</td><td>${f.mode}</td><td>${h(f.backend ?? '(routes)')}</td>` +
              `<td class="n">${f.current}</td><td class="n">${f.connections}</td><td class="n">${f.requests ?? ''}</td><td class="n">${f.rejected}</td></tr>`,
          ),
          '</table>',
        ].join('\n');
  const legend = (Object.keys(STATE_STYLE) as ServerState[])
    .map((s) => `<span style="background:${STATE_STYLE[s].bg};color:${STATE_STYLE[s].fg}">${STATE_STYLE[s].label}</span>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">${refresh}
<title>corral stats — ${h(status.node)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${CSS}</style></head>
<body>
<h1>corral stats — ${h(status.node)}</h1>
<div class="meta">role <b>${status.role === 'primary' ? 'ACTIVE' : 'STANDBY'}</b> (${status.role}) · generation ${status.generation} · up ${humanDuration(now - Date.parse(status.startedAt))} · ${h(status.time)}${opts.refresh > 0 ? ` · refreshes every ${Math.floor(opts.refresh)}s` : ''}</div>
<div class="meta"><a href="/">console</a><a href="/stats?refresh=0">stop refreshing</a><a href="/metrics">metrics</a><a href="/api/v1/status">status (JSON)</a></div>
<div class="legend">${legend}<span class="small" style="border:0">* weight set at run time</span></div>
${frontends}
${status.backends.map((b) => backendTable(b, now)).join('\n')}
</body></html>
`;
}

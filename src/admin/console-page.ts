/**
 * `GET /`: a minimal console: who the node is, a server summary, links to
 * the stats page and the API, and a live event list (`/console.js` reads
 * `/api/v1/events`; the page is useful without it too). The script is served
 * from its own path so the page's Content-Security-Policy can forbid inline
 * scripts.
 */
import { escapeHtml as h } from './format.js';
import type { StatusResponse } from './types.js';

export function renderConsolePage(status: StatusResponse): string {
  const rows = status.backends
    .map((b) => {
      const counts = new Map<string, number>();
      for (const s of b.servers) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
      const summary = [...counts].map(([st, n]) => `${n} ${st}`).join(', ');
      return `<li><a href="/stats#backend-${h(b.name)}">${h(b.name)}</a>: ${b.servers.length} servers (${h(summary)}), queue ${b.queueLength}</li>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>corral — ${h(status.node)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;max-width:60em}h1{font-size:20px}
#events{font:12px/1.5 ui-monospace,monospace;border:1px solid #ccc;padding:.5em;height:24em;overflow:auto;list-style:none;margin:0}
#events li{border-bottom:1px solid #eee}.muted{color:#777}</style></head>
<body>
<h1>corral — ${h(status.node)} <span class="muted">(${status.role === 'primary' ? 'ACTIVE' : 'STANDBY'})</span></h1>
<p><a href="/stats">Stats page</a> · <a href="/metrics">Prometheus metrics</a> · <a href="/api/v1/status">Status (JSON)</a> · <a href="/api/v1/config">Config (masked)</a></p>
<h2>Backends</h2>
<ul>
${rows}
</ul>
<h2>Live events</h2>
<p class="muted" id="conn">Live events need JavaScript; <code>curl -N /api/v1/events</code> shows the same stream.</p>
<ul id="events"></ul>
<script src="/console.js"></script>
</body></html>
`;
}

/** The console's script: recent events, then the live stream from the last one seen. */
export const CONSOLE_JS = `'use strict';
(function () {
  var list = document.getElementById('events');
  var conn = document.getElementById('conn');
  function describe(e) {
    switch (e.type) {
      case 'server-state': return e.backend + '/' + e.server + ' ' + e.from + ' \\u2192 ' + e.to + ' (' + e.source + ': ' + e.reason + ')';
      case 'server-weight': return e.backend + '/' + e.server + ' weight ' + e.from + ' \\u2192 ' + e.to + ' (' + e.cause + ')';
      case 'server-flapping': return e.backend + '/' + e.server + (e.flapping ? ' is flapping' : ' stopped flapping');
      case 'admin-action': return e.actor + ' set ' + e.backend + '/' + e.server + ' ' + e.action + ' ' + e.from + ' \\u2192 ' + e.to;
      case 'reload': return 'configuration reloaded: generation ' + e.generation + ', ' + e.reapplied + ' runtime change(s) re-applied';
      case 'role': return 'role ' + e.from + ' \\u2192 ' + e.to;
      default: return e.type;
    }
  }
  function add(e) {
    var li = document.createElement('li');
    li.textContent = e.at + '  ' + describe(e);
    list.insertBefore(li, list.firstChild);
    while (list.childNodes.length > 500) list.removeChild(list.lastChild);
  }
  var last = '';
  fetch('/api/v1/events/recent', { credentials: 'same-origin' })
    .then(function (r) { return r.json(); })
    .then(function (body) { body.events.forEach(function (e) { add(e); last = e.id; }); })
    .catch(function () {})
    .then(function () {
      var es = new EventSource('/api/v1/events' + (last ? '?since=' + encodeURIComponent(last) : ''));
      es.onopen = function () { conn.textContent = 'Connected: new events appear at the top.'; };
      es.onerror = function () { conn.textContent = 'Disconnected; retrying\\u2026'; };
      ['server-state', 'server-weight', 'server-flapping', 'admin-action', 'reload', 'role'].forEach(function (t) {
        es.addEventListener(t, function (m) { add(JSON.parse(m.data)); });
      });
    });
})();
`;

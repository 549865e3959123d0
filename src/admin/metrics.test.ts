import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { ParsedFamily } from 'parse-prometheus-text-format';
import { httpFarmYaml, request, startUpstream } from '../../test/support/farm.js';
import type { Upstream } from '../../test/support/farm.js';
import { LatencyHistograms } from './latency.js';
import { startAdminFarm } from './testing.js';
import type { AdminFarm } from './testing.js';

function family(families: ParsedFamily[], name: string): ParsedFamily {
  const f = families.find((x) => x.name === name);
  assert.ok(f !== undefined, `no metric family ${name}; have ${families.map((x) => x.name).join(', ')}`);
  return f;
}

function value(f: ParsedFamily, labels: Record<string, string>): number {
  const m = f.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  assert.ok(m !== undefined, `${f.name} has no sample ${JSON.stringify(labels)}: ${JSON.stringify(f.metrics)}`);
  return Number(m.value);
}

describe('GET /metrics', () => {
  let ups: Upstream[];
  let farm: AdminFarm;
  let families: ParsedFamily[];
  let text: string;

  before(async () => {
    ups = [
      await startUpstream('ok'),
      await startUpstream('broken', (_req, res) => {
        res.writeHead(503).end('no');
      }),
    ];
    farm = await startAdminFarm(`node: { name: m1 }\n${httpFarmYaml(ups.map((u) => u.port))}`, { server: { processMetrics: true } });
    for (let i = 0; i < 10; i++) await request(farm.lb, { method: 'POST', path: '/', body: 'ping', headers: { 'content-type': 'text/plain' } });
    await request(farm.url, { method: 'POST', path: '/api/v1/backends/app/servers/s2/state', headers: { 'content-type': 'application/json' }, body: '{"state":"drain"}' });
    // What the proxy's hot path does once per exchange.
    farm.latency.observe('app', 's1', 0.003);
    farm.latency.observe('app', 's1', 0.2);
    farm.latency.observe('app', 's1', 120);
    const r = await request(farm.url, { path: '/metrics' });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    text = r.body;
    families = parsePrometheusTextFormat(text);
  });
  after(async () => {
    await farm.close();
    for (const u of ups) await u.close();
  });

  it('parses with a real Prometheus text-format parser', () => {
    assert.ok(families.length > 20, `${families.length} families`);
    for (const f of families) assert.ok(f.help.length > 0, `${f.name} has help text`);
  });

  it('counts requests and responses by status class per server and backend', () => {
    const req = family(families, 'corral_server_requests_total');
    assert.equal(req.type, 'COUNTER');
    const s1 = value(req, { backend: 'app', server: 's1' });
    const s2 = value(req, { backend: 'app', server: 's2' });
    assert.equal(s1 + s2, 10);
    const resp = family(families, 'corral_server_responses_total');
    assert.equal(value(resp, { server: 's1', code: '2xx' }), s1);
    assert.equal(value(resp, { server: 's2', code: '5xx' }), s2);
    assert.equal(value(resp, { server: 's2', code: '2xx' }), 0);
    assert.equal(value(family(families, 'corral_backend_requests_total'), { backend: 'app' }), 10);
    assert.equal(value(family(families, 'corral_backend_responses_total'), { backend: 'app', code: '5xx' }), s2);
    assert.equal(value(family(families, 'corral_frontend_requests_total'), { frontend: 'web' }), 10);
    assert.ok(value(family(families, 'corral_server_bytes_out_total'), { server: 's1' }) > 0);
    assert.ok(value(family(families, 'corral_server_bytes_in_total'), { server: 's1' }) > 0);
  });

  it('exposes state, weights, connections, queue and node info as gauges', () => {
    const state = family(families, 'corral_server_state');
    assert.equal(state.type, 'GAUGE');
    assert.equal(value(state, { server: 's2', state: 'drain' }), 1);
    assert.equal(value(state, { server: 's2', state: 'up' }), 0);
    assert.equal(value(state, { server: 's1', state: 'up' }), 1);
    assert.equal(value(family(families, 'corral_server_up'), { server: 's2' }), 0);
    assert.equal(value(family(families, 'corral_backend_servers'), { backend: 'app', state: 'drain' }), 1);
    assert.equal(value(family(families, 'corral_server_weight'), { server: 's1' }), 1);
    assert.equal(value(family(families, 'corral_server_effective_weight'), { server: 's1' }), 1);
    assert.equal(value(family(families, 'corral_server_active_connections'), { server: 's1' }), 0);
    assert.equal(value(family(families, 'corral_backend_queue_length'), { backend: 'app' }), 0);
    assert.equal(value(family(families, 'corral_node_info'), { node: 'm1', role: 'primary' }), 1);
    assert.equal(value(family(families, 'corral_config_generation'), {}), 1);
    assert.ok(families.some((f) => f.name === 'process_cpu_user_seconds_total'), 'process metrics');
  });

  it('exposes latency histograms read from the hot-path arrays', () => {
    const h = family(families, 'corral_server_response_seconds');
    assert.equal(h.type, 'HISTOGRAM');
    // The parser folds every labelled series of a histogram into one; give it s1's lines alone, labels stripped.
    const name = 'corral_server_response_seconds';
    const s1 = text
      .split('\n')
      .filter((l) => l.startsWith(`# HELP ${name} `) || l.startsWith(`# TYPE ${name} `) || (l.startsWith(name) && l.includes('server="s1"')))
      .map((l) => l.replace('backend="app",server="s1",', '').replace('{backend="app",server="s1"}', ''));
    assert.ok(s1.length > 5, text);
    const [parsed] = parsePrometheusTextFormat(`${s1.join('\n')}\n`);
    const s = parsed?.metrics[0];
    assert.ok(s?.buckets !== undefined, JSON.stringify(parsed));
    assert.equal(Number(s.count), 3);
    assert.ok(Math.abs(Number(s.sum) - 120.203) < 1e-9);
    assert.equal(Number(s.buckets['0.001']), 0);
    assert.equal(Number(s.buckets['0.005']), 1);
    assert.equal(Number(s.buckets['0.25']), 2);
    assert.equal(Number(s.buckets['60']), 2);
    assert.equal(Number(s.buckets['+Inf']), 3);
  });
});

describe('LatencyHistograms', () => {
  it('counts into the first bucket whose bound is ≥ the value; snapshots are cumulative', () => {
    const h = new LatencyHistograms([0.1, 1]);
    h.observe('b', 's', 0.1);
    h.observe('b', 's', 0.5);
    h.observe('b', 's', 5);
    h.observe('b', 't', 0);
    const [s, t] = h.snapshot();
    assert.deepEqual(s, { backend: 'b', server: 's', cumulative: [1, 2], sum: 5.6, count: 3 });
    assert.deepEqual(t, { backend: 'b', server: 't', cumulative: [1, 1], sum: 0, count: 1 });
  });
});

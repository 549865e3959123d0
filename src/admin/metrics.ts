/**
 * `GET /metrics`: a prom-client registry whose collectors read one status
 * snapshot per scrape. Nothing here runs on the request path: the proxy
 * bumps plain counters (and `LatencyHistograms` arrays), the scrape reads
 * them.
 *
 * Counters are monotonic for the node's lifetime (server counters survive
 * reloads; frontend counters start again with a new generation, which
 * Prometheus' `rate()` treats as a reset).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Metric } from 'prom-client';
import type { AdminNode } from './admin-node.js';
import type { LatencyHistograms } from './latency.js';
import { SERVER_STATES } from './types.js';
import type { ResponseClasses, StatusResponse } from './types.js';

const CLASSES: readonly (keyof ResponseClasses)[] = ['1xx', '2xx', '3xx', '4xx', '5xx'];

/** A sample from another role (sessions, …), appended to the exposition as it is. */
export interface ExtraSample {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricsOptions {
  readonly node: AdminNode;
  /** Samples of other roles, read at scrape time. */
  readonly extra?: () => readonly ExtraSample[];
  readonly latency?: LatencyHistograms;
  /** Node.js process metrics (`process_*`, `nodejs_*`); default true. */
  readonly processMetrics?: boolean;
}

export interface Metrics {
  readonly contentType: string;
  /** The exposition text, from a fresh snapshot. */
  scrape(): Promise<string>;
}

/**
 * A histogram whose buckets are read from `LatencyHistograms` at scrape
 * time. prom-client's own Histogram is observed per call, which is what the
 * hot path must not do; the registry only needs `name` and `get()`.
 */
class SnapshotHistogram {
  readonly name: string;
  readonly help: string;
  /** The registry prints this verbatim (prom-client's typings call it an enum). */
  readonly type = 'histogram';
  readonly aggregator = 'sum' as const;
  private readonly source: LatencyHistograms;

  constructor(name: string, help: string, source: LatencyHistograms) {
    this.name = name;
    this.help = help;
    this.source = source;
  }

  collect(): void {}

  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: { metricName: string; labels: Record<string, string | number>; value: number }[] }> {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    const buckets = this.source.buckets;
    for (const h of this.source.snapshot()) {
      const labels = { backend: h.backend, server: h.server };
      for (let i = 0; i < buckets.length; i++) {
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: buckets[i] as number }, value: h.cumulative[i] as number });
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: h.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: h.count });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Prometheus text for samples, grouped by name (HELP and TYPE once per name). */
export function renderExtra(samples: readonly ExtraSample[]): string {
  const byName = new Map<string, ExtraSample[]>();
  for (const s of samples) {
    const list = byName.get(s.name);
    if (list === undefined) byName.set(s.name, [s]);
    else list.push(s);
  }
  let out = '';
  for (const [name, list] of byName) {
    const first = list[0] as ExtraSample;
    out += `# HELP ${name} ${first.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${first.type}\n`;
    for (const s of list) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      out += `${name}${labels === '' ? '' : `{${labels}}`} ${s.value}\n`;
    }
  }
  return out;
}

export function createMetrics(opts: MetricsOptions): Metrics {
  const registry = new Registry();
  /** The snapshot of the scrape in progress (set only while the collectors run). */
  let snap: StatusResponse | null = null;
  const current = (): StatusResponse => {
    if (snap === null) throw new Error('metrics collected outside a scrape');
    return snap;
  };

  /** A counter set from the snapshot at scrape time. */
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (s: StatusResponse, set: (labels: Record<L, string>, v: number) => void) => void): void => {
    const c: Counter<L> = new Counter<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        c.reset();
        fill(current(), (labels, v) => c.inc(labels as never, v));
      },
    });
  };
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (s: StatusResponse, set: (labels: Record<L, string>, v: number) => void) => void): void => {
    const g: Gauge<L> = new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        g.reset();
        fill(current(), (labels, v) => g.set(labels as never, v));
      },
    });
  };

  gauge('corral_node_info', 'The node: its name and role (always 1).', ['node', 'role'], (s, set) => set({ node: s.node, role: s.role }, 1));
  gauge('corral_config_generation', 'Configuration generation (1 at start, +1 per reload that changed something).', [], (s, set) => set({}, s.generation));

  // Frontends.
  gauge('corral_frontend_current_connections', 'Client connections open now.', ['frontend'], (s, set) => {
    for (const f of s.frontends) set({ frontend: f.name }, f.current);
  });
  counter('corral_frontend_connections_total', 'Client connections accepted.', ['frontend'], (s, set) => {
    for (const f of s.frontends) set({ frontend: f.name }, f.connections);
  });
  counter('corral_frontend_requests_total', 'Requests received (HTTP frontends).', ['frontend'], (s, set) => {
    for (const f of s.frontends) if (f.requests !== null) set({ frontend: f.name }, f.requests);
  });
  counter('corral_frontend_rejected_total', 'Client connections refused at maxConn.', ['frontend'], (s, set) => {
    for (const f of s.frontends) set({ frontend: f.name }, f.rejected);
  });
  counter('corral_frontend_responses_total', 'Responses sent to clients, by status class.', ['frontend', 'code'], (s, set) => {
    for (const f of s.frontends) if (f.responses !== null) for (const k of CLASSES) set({ frontend: f.name, code: k }, f.responses[k]);
  });

  // Backends (sums over their servers, HAProxy style, so dashboards need no sum()).
  gauge('corral_backend_queue_length', 'Requests waiting for a free server slot (maxConn).', ['backend'], (s, set) => {
    for (const b of s.backends) set({ backend: b.name }, b.queueLength);
  });
  counter('corral_backend_requests_total', 'Requests (HTTP) or connections (TCP) dispatched to the backend\'s servers, retries included.', ['backend'], (s, set) => {
    for (const b of s.backends) set({ backend: b.name }, b.servers.reduce((n, x) => n + x.total, 0));
  });
  counter('corral_backend_responses_total', 'Responses from the backend\'s servers, by status class.', ['backend', 'code'], (s, set) => {
    for (const b of s.backends) for (const k of CLASSES) set({ backend: b.name, code: k }, b.servers.reduce((n, x) => n + x.responses[k], 0));
  });
  gauge('corral_backend_servers', 'Servers of the backend, by state.', ['backend', 'state'], (s, set) => {
    for (const b of s.backends) for (const st of SERVER_STATES) set({ backend: b.name, state: st }, b.servers.filter((x) => x.state === st).length);
  });

  // Servers.
  const perServer = (name: string, help: string, kind: 'counter' | 'gauge', read: (x: StatusResponse['backends'][number]['servers'][number]) => number | null): void => {
    const fill = (s: StatusResponse, set: (l: Record<'backend' | 'server', string>, v: number) => void): void => {
      for (const b of s.backends) {
        for (const x of b.servers) {
          const v = read(x);
          if (v !== null) set({ backend: b.name, server: x.name }, v);
        }
      }
    };
    if (kind === 'counter') counter(name, help, ['backend', 'server'], fill);
    else gauge(name, help, ['backend', 'server'], fill);
  };
  perServer('corral_server_requests_total', 'Requests (HTTP) or connections (TCP) dispatched to the server, retries included.', 'counter', (x) => x.total);
  perServer('corral_server_connections_total', 'Connections opened to the server (keep-alive reuse makes it lower than requests).', 'counter', (x) => x.connects);
  counter('corral_server_responses_total', 'Responses from the server, by status class.', ['backend', 'server', 'code'], (s, set) => {
    for (const b of s.backends) for (const x of b.servers) for (const k of CLASSES) set({ backend: b.name, server: x.name, code: k }, x.responses[k]);
  });
  perServer('corral_server_failures_total', 'Connect failures, resets, timeouts and malformed responses.', 'counter', (x) => x.failures);
  perServer('corral_server_connect_failures_total', 'Failed connection attempts.', 'counter', (x) => x.connectFailures);
  perServer('corral_server_retries_total', 'Attempts that were retries of a failed connect.', 'counter', (x) => x.retries);
  perServer('corral_server_bytes_in_total', 'Bytes from clients to the server.', 'counter', (x) => x.bytesIn);
  perServer('corral_server_bytes_out_total', 'Bytes from the server to clients.', 'counter', (x) => x.bytesOut);
  perServer('corral_server_active_connections', 'Requests (HTTP) or tunnels (TCP) in flight.', 'gauge', (x) => x.active);
  perServer('corral_server_idle_connections', 'Idle pooled keep-alive connections.', 'gauge', (x) => x.inactive);
  perServer('corral_server_weight', 'Configured weight (or the one set at run time).', 'gauge', (x) => x.weight);
  perServer('corral_server_effective_weight', 'Weight the scheduler uses now (slow start and agents change it).', 'gauge', (x) => x.effectiveWeight);
  perServer('corral_server_up', '1 when the server takes new traffic (state up), else 0.', 'gauge', (x) => (x.state === 'up' ? 1 : 0));
  gauge('corral_server_state', 'The server\'s state: 1 for the current one, 0 for the others.', ['backend', 'server', 'state'], (s, set) => {
    for (const b of s.backends) for (const x of b.servers) for (const st of SERVER_STATES) set({ backend: b.name, server: x.name, state: st }, x.state === st ? 1 : 0);
  });
  perServer('corral_server_check_duration_seconds', 'Duration of the last health check.', 'gauge', (x) => (x.check?.durationMs == null ? null : x.check.durationMs / 1000));
  perServer('corral_server_last_change_timestamp_seconds', 'When the server\'s state last changed (Unix time).', 'gauge', (x) => Date.parse(x.lastChange) / 1000);

  if (opts.latency !== undefined) {
    const h = new SnapshotHistogram(
      'corral_server_response_seconds',
      'Time from a request\'s arrival to its server\'s response head (queue, connect and server time).',
      opts.latency,
    );
    registry.registerMetric(h as unknown as Metric);
  }
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });

  return {
    contentType: registry.contentType,
    async scrape() {
      const s = await opts.node.status();
      // One snapshot for the whole exposition: every collector runs synchronously inside metrics(),
      // before it returns its promise, so concurrent scrapes cannot mix snapshots.
      snap = s;
      const text = registry.metrics();
      snap = null;
      return opts.extra === undefined ? text : (await text) + renderExtra(opts.extra());
    },
  };
}

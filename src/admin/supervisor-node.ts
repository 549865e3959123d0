/**
 * The admin role in a supervisor (`workers: N`): an `AdminNode` whose reads
 * gather every worker's local snapshot over IPC and sum them, and whose
 * changes the supervisor records and broadcasts to every worker.
 *
 *   GET status ──► collect(): each serving worker answers with its
 *                  `nodeAdapter(node).status()` and latency histograms
 *                  (bounded wait; a worker that does not answer is left
 *                  out and `workers.answered` says so)
 *              ──► mergeStatuses (counters summed) ──► overlay the
 *                  supervisor's own view: weights set at run time and the
 *                  health checks (they run only here)
 *   POST/PUT  ──► the supervisor's model (synchronous, what the state
 *                  file records) ──► broadcast({backend, server, admin,
 *                  weight}) to every worker ──► weights also to the
 *                  supervisor's health monitor (slow start and agents
 *                  scale from it, and it tells the workers the effective
 *                  weight)
 *
 * Workers apply the same changes through their own `nodeAdapter`
 * (`src/workers/worker-admin.ts`); a worker started later gets `entries()`
 * when it is forked.
 */
import { formatAddress } from '../config/address.js';
import type { BackendConfig, CorralConfig, ServerConfig } from '../config/index.js';
import { checkStatusOf } from './admin-node.js';
import type { AdminNode, Change, HealthReport } from './admin-node.js';
import { AdminError } from './errors.js';
import { LatencyHistograms } from './latency.js';
import type { HistogramSnapshot } from './latency.js';
import { mergeStatuses } from './merge-status.js';
import type { AdminState, BackendStatus, CheckStatus, FrontendStatus, HealthState, Role, ServerState, ServerStatus, StatusResponse } from './types.js';

/**
 * One server's complete runtime override, as every worker applies it:
 * `weight: null` is the configured weight.
 */
export interface RuntimeOverride {
  readonly backend: string;
  readonly server: string;
  readonly admin: AdminState;
  readonly weight: number | null;
}

/** What one worker reports when asked. */
export interface WorkerReport {
  readonly status: StatusResponse;
  readonly latency: readonly HistogramSnapshot[];
}

/** How many workers a status covers. */
export interface WorkersAnswered {
  /** Workers the config asks for. */
  readonly expected: number;
  /** Workers that answered in time (their counters are in the sums). */
  readonly answered: number;
}

/** `GET /api/v1/status` of a supervisor: the sums, and how many workers they cover. */
export interface SupervisorStatus extends StatusResponse {
  readonly workers: WorkersAnswered;
}

export interface SupervisorNodeOptions {
  /** The supervisor's running configuration (it validates every reload first). */
  readonly config: () => CorralConfig;
  /** Its configuration generation (1 at start, +1 per reload that changed something). */
  readonly generation: () => number;
  /** Asks every serving worker for its report; resolves with those that answered in time, by worker id. */
  readonly collect: () => Promise<{ readonly expected: number; readonly reports: readonly { readonly worker: number; readonly report: WorkerReport }[] }>;
  /** Sends one server's override to every worker. */
  readonly broadcast: (override: RuntimeOverride) => void;
  /** The supervisor's health checks' view of a server. */
  readonly health?: (backend: string, server: string) => HealthReport | undefined;
  /** Where an admin weight goes besides the workers (the supervisor's health monitor). */
  readonly applyWeight?: (backend: string, server: string, weight: number) => void;
  readonly role?: () => Role;
}

/** The supervisor's `AdminNode`. */
export interface SupervisorAdminNode extends AdminNode {
  status(): Promise<SupervisorStatus>;
  server(backend: string, server: string): Promise<ServerStatus>;
  /** Latency histograms summed over the workers, as of the last `status()` (what `/metrics` reads right after it). */
  readonly latency: LatencyHistograms;
  /** Every override that differs from the config: what a new worker applies before it serves. */
  entries(): RuntimeOverride[];
  /**
   * The supervisor swapped in a new configuration: overrides of servers that
   * no longer exist are forgotten, and reload listeners run (the admin
   * server re-applies the state file and emits the `reload` event).
   */
  reloaded(generation: number): void;
  /**
   * A worker exited: its counters (as last read) stay in the sums, so
   * they do not go backwards when a replacement starts from zero; its gauges
   * (connections open, in flight, idle) are dropped.
   */
  workerExited(worker: number): void;
}

/** Histograms summed from the workers' snapshots; `snapshot()` returns the last sum. */
export class SummedLatency extends LatencyHistograms {
  private last: HistogramSnapshot[] = [];

  /** Replaces the sums with those of `parts` (bucket counts, sums and counts added per server). */
  set(parts: readonly (readonly HistogramSnapshot[])[]): void {
    const by = new Map<string, { backend: string; server: string; cumulative: number[]; sum: number; count: number }>();
    for (const part of parts) {
      for (const h of part) {
        const k = `${h.backend}/${h.server}`;
        const had = by.get(k);
        if (had === undefined) {
          by.set(k, { backend: h.backend, server: h.server, cumulative: [...h.cumulative], sum: h.sum, count: h.count });
          continue;
        }
        // Cumulative counts of the same buckets add up to the cumulative counts of the sum.
        for (let i = 0; i < had.cumulative.length; i++) had.cumulative[i] = (had.cumulative[i] as number) + (h.cumulative[i] ?? h.count);
        had.sum += h.sum;
        had.count += h.count;
      }
    }
    this.last = [...by.values()];
  }

  override snapshot(): HistogramSnapshot[] {
    return this.last;
  }
}

/** A departed worker's counters: gauges zeroed (nothing of it is open any more). */
function countersOnly(s: StatusResponse): StatusResponse {
  return {
    ...s,
    frontends: s.frontends.map((f) => ({ ...f, current: 0 })),
    backends: s.backends.map((b) => ({ ...b, queueLength: 0, servers: b.servers.map((x) => ({ ...x, active: 0, inactive: 0 })) })),
  };
}

/** The operator-facing state from the two inputs (as `RuntimeServer.state`). */
function stateOf(admin: AdminState, health: HealthState): ServerState {
  if (admin === 'maint') return 'maint';
  if (admin === 'drain' && health === 'up') return 'drain';
  return health;
}

const ZERO = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 } as const;
const key = (backend: string, server: string): string => `${backend}/${server}`;

/**
 * @example
 * const adminNode = supervisorAdminNode({
 *   config: () => current, generation: () => generation,
 *   collect: () => fleet.collect(1000), broadcast: (o) => fleet.broadcast({ type: 'admin', override: o }),
 *   health: (b, s) => monitor.status(b, s), applyWeight: (b, s, w) => monitor.setConfiguredWeight(b, s, w),
 * });
 * await startAdmin({ config: cfg.admin, node: adminNode, log, events, stateFile, latency: adminNode.latency });
 */
export function supervisorAdminNode(opts: SupervisorNodeOptions): SupervisorAdminNode {
  const startedAt = new Date().toISOString();
  const startedMs = Date.now();
  const overrides = new Map<string, { admin: AdminState; weight: number | null }>();
  const reloadListeners = new Set<(generation: number) => void>();
  const latency = new SummedLatency();
  /** Each live worker's last report, by worker id. */
  const lastReports = new Map<number, WorkerReport>();
  /** Counters of workers that exited, as last read (one summed report). */
  let departed: WorkerReport | null = null;
  const role = opts.role ?? ((): Role => 'primary');

  const find = (backend: string, server: string): { b: BackendConfig; s: ServerConfig } => {
    const b = opts.config().backends.find((x) => x.name === backend);
    if (b === undefined) throw new AdminError('CORRAL_ERR_ADMIN_NOT_FOUND', `no backend "${backend}"`);
    const s = b.servers.find((x) => x.name === server);
    if (s === undefined) throw new AdminError('CORRAL_ERR_ADMIN_NOT_FOUND', `no server "${server}" in backend "${backend}"`);
    return { b, s };
  };

  const checkOf = (b: BackendConfig, s: ServerConfig, fallback: CheckStatus | null): CheckStatus | null => {
    const h = opts.health?.(b.name, s.name);
    if (h === undefined) return fallback;
    return checkStatusOf(h);
  };

  /** Every configured server with zero counters: what a status says before any worker answers. */
  const skeleton = (config: CorralConfig): StatusResponse => {
    const frontends: FrontendStatus[] = config.frontends.map((f) => ({
      name: f.name,
      listen: formatAddress(f.listen),
      mode: f.mode,
      backend: f.backend ?? null,
      current: 0,
      connections: 0,
      requests: f.mode === 'http' ? 0 : null,
      rejected: 0,
      responses: null,
    }));
    const backends: BackendStatus[] = config.backends.map((b) => ({
      name: b.name,
      balance: b.balance,
      queueLength: 0,
      servers: b.servers.map((s): ServerStatus => {
        const o = overrides.get(key(b.name, s.name));
        const h = opts.health?.(b.name, s.name);
        const health: HealthState = h?.state ?? 'up';
        const admin = o?.admin ?? 'ready';
        return {
          name: s.name,
          address: formatAddress(s.address),
          backup: s.backup,
          state: stateOf(admin, health),
          admin,
          health,
          weight: o?.weight ?? s.weight,
          weightSource: o?.weight == null ? 'config' : 'runtime',
          configWeight: s.weight,
          effectiveWeight: o?.weight ?? s.weight,
          active: 0,
          inactive: 0,
          total: 0,
          connects: 0,
          responses: ZERO,
          failures: 0,
          connectFailures: 0,
          retries: 0,
          bytesIn: 0,
          bytesOut: 0,
          maxConn: s.maxConn ?? b.maxConn,
          lastChange: new Date(h?.lastChangeAt ?? startedMs).toISOString(),
          check: null,
        };
      }),
    }));
    return { ...identity(config.node.name), frontends, backends };
  };

  /** The fields that name this node and its generation, as of now. */
  const identity = (name: string) => {
    const r = role();
    return {
      node: name,
      role: r,
      generation: opts.generation(),
      startedAt,
      time: new Date().toISOString(),
      cluster: { members: [{ name, role: r, self: true }], primary: r === 'primary' ? name : null },
    };
  };

  const status = async (): Promise<SupervisorStatus> => {
    const { expected, reports } = await opts.collect();
    for (const r of reports) lastReports.set(r.worker, r.report);
    const live = reports.map((r) => r.report);
    latency.set([...live, ...(departed !== null ? [departed] : [])].map((r) => r.latency));
    const config = opts.config();
    // Live workers' snapshots come first: they decide states and addresses (the first that has a
    // server wins). The skeleton adds servers no worker reported (none answered, or not reloaded
    // yet) with the supervisor's view; departed workers add only their counters.
    const merged = mergeStatuses([...live.map((r) => r.status), skeleton(config), ...(departed !== null ? [departed.status] : [])]);
    // What the supervisor's configuration has (a worker still on an older generation, or a departed
    // one, may report servers that are gone).
    const backends = merged.backends.flatMap((mb) => {
      const bc = config.backends.find((x) => x.name === mb.name);
      if (bc === undefined) return [];
      return {
        ...mb,
        servers: mb.servers.flatMap((ms) => {
          const sc = bc.servers.find((x) => x.name === ms.name);
          if (sc === undefined) return [];
          const o = overrides.get(key(bc.name, sc.name));
          return {
            ...ms,
            weight: o?.weight ?? sc.weight,
            weightSource: o?.weight == null ? ('config' as const) : ('runtime' as const),
            configWeight: sc.weight,
            check: checkOf(bc, sc, ms.check),
          };
        }),
      };
    });
    return {
      ...merged,
      ...identity(config.node.name),
      frontends: merged.frontends.filter((f) => config.frontends.some((x) => x.name === f.name)),
      backends,
      workers: { expected, answered: reports.length },
    };
  };

  const broadcastOf = (backend: string, server: string): void => {
    const o = overrides.get(key(backend, server));
    opts.broadcast({ backend, server, admin: o?.admin ?? 'ready', weight: o?.weight ?? null });
  };

  /** Keeps only what differs from the config. */
  const record = (backend: string, server: string, admin: AdminState, weight: number | null): void => {
    if (admin === 'ready' && weight === null) overrides.delete(key(backend, server));
    else overrides.set(key(backend, server), { admin, weight });
  };

  return {
    get name() {
      return opts.config().node.name;
    },
    role,
    status,
    async server(backend, server) {
      find(backend, server);
      const s = await status();
      const found = s.backends.find((b) => b.name === backend)?.servers.find((x) => x.name === server);
      if (found === undefined) throw new AdminError('CORRAL_ERR_ADMIN_NOT_FOUND', `no server "${server}" in backend "${backend}"`);
      return found;
    },
    config: () => opts.config(),
    setServerState(backend, server, state): Change<AdminState> {
      find(backend, server);
      const had = overrides.get(key(backend, server));
      const from = had?.admin ?? 'ready';
      record(backend, server, state, had?.weight ?? null);
      broadcastOf(backend, server);
      return { changed: from !== state, from, to: state };
    },
    setServerWeight(backend, server, weight): Change<number> {
      const { s } = find(backend, server);
      const had = overrides.get(key(backend, server));
      const from = had?.weight ?? s.weight;
      record(backend, server, had?.admin ?? 'ready', weight === s.weight ? null : weight);
      opts.applyWeight?.(backend, server, weight);
      broadcastOf(backend, server);
      return { changed: from !== weight, from, to: weight };
    },
    configWeight(backend, server) {
      return find(backend, server).s.weight;
    },
    onReload(listener) {
      reloadListeners.add(listener);
      return () => reloadListeners.delete(listener);
    },
    latency,
    entries() {
      return [...overrides].map(([k, o]) => {
        const slash = k.indexOf('/');
        return { backend: k.slice(0, slash), server: k.slice(slash + 1), admin: o.admin, weight: o.weight };
      });
    },
    reloaded(generation) {
      const config = opts.config();
      for (const [k, o] of overrides) {
        const slash = k.indexOf('/');
        const s = config.backends.find((b) => b.name === k.slice(0, slash))?.servers.find((x) => x.name === k.slice(slash + 1));
        if (s === undefined) overrides.delete(k);
        else if (o.weight === s.weight) record(k.slice(0, slash), k.slice(slash + 1), o.admin, null);
      }
      // Frontend counters start over with a generation (as in one process).
      if (departed !== null) departed = { ...departed, status: { ...departed.status, frontends: [] } };
      for (const l of reloadListeners) l(generation);
    },
    workerExited(worker) {
      const last = lastReports.get(worker);
      lastReports.delete(worker);
      if (last === undefined) return;
      const mine: WorkerReport = { status: countersOnly(last.status), latency: last.latency };
      if (departed === null) departed = mine;
      else {
        const sum = new SummedLatency();
        sum.set([departed.latency, mine.latency]);
        departed = { status: mergeStatuses([departed.status, mine.status]), latency: sum.snapshot() };
      }
    },
  };
}

/**
 * What the admin role needs from a node, as one small interface, and its
 * implementation over the real `CorralNode`. Admin depends on the node,
 * never the other way: the node knows nothing of this file.
 */
import { formatAddress } from '../config/address.js';
import type { CorralConfig } from '../config/index.js';
import type { RuntimeBackend } from '../balancer/backend.js';
import type { RuntimeServer } from '../balancer/server.js';
import type { CorralNode, ReloadResult } from '../node.js';
import { AdminError } from './errors.js';
import type {
  AdminState,
  BackendStatus,
  CheckStatus,
  FrontendStatus,
  HealthState,
  ResponseClasses,
  Role,
  ServerStatus,
  StatusResponse,
} from './types.js';

/** The outcome of a runtime change. */
export interface Change<T> {
  readonly changed: boolean;
  readonly from: T;
  readonly to: T;
}

/**
 * The node as the admin role sees it. Changes throw `AdminError`
 * (`CORRAL_ERR_ADMIN_NOT_FOUND`) for an unknown backend or server.
 *
 * Reads may be asynchronous (a supervisor gathers its workers' counters);
 * changes are synchronous (the state they record is the caller's own).
 */
export interface AdminNode {
  readonly name: string;
  role(): Role;
  /** A snapshot of every frontend, backend and server (cheap: reads counters). */
  status(): StatusResponse | Promise<StatusResponse>;
  /** One server's status. */
  server(backend: string, server: string): ServerStatus | Promise<ServerStatus>;
  /** The running configuration (unmasked: mask before showing it). */
  config(): CorralConfig;
  /** Sets a server's administrative state; takes effect for the next request. */
  setServerState(backend: string, server: string, state: AdminState): Change<AdminState>;
  /** Sets a server's weight (0..256); takes effect for the next pick. */
  setServerWeight(backend: string, server: string, weight: number): Change<number>;
  /** The configured weight of a server (config file), to tell runtime overrides from it. */
  configWeight(backend: string, server: string): number;
  /**
   * Calls `listener` after every reload that swapped in a new generation,
   * before any request reaches it where the node allows (so runtime changes
   * re-applied there are never missed by a request). Returns an unsubscribe.
   */
  onReload(listener: (generation: number) => void): () => void;
}

/** An `AdminNode` over a node in this process: reads are synchronous. */
export interface LocalAdminNode extends AdminNode {
  status(): StatusResponse;
  server(backend: string, server: string): ServerStatus;
}

/** What the health role reports for a server (the shape of `HealthMonitor.status()`). */
export interface HealthReport {
  readonly state: HealthState;
  readonly reason: string;
  readonly detail: string | undefined;
  readonly lastCheck: string | undefined;
  readonly checkDurationMs: number | undefined;
  readonly lastCheckAt: number | undefined;
  readonly lastChangeAt: number;
}

export interface NodeAdapterOptions {
  /** The health checks' view of a server. Default: the node's monitor (`node.health.status`). */
  readonly health?: (backend: string, server: string) => HealthReport | undefined;
  /**
   * Where an admin weight goes. Default: the node's monitor
   * (`setConfiguredWeight`, so slow start and agents scale from it), or
   * straight to the balancer (`RuntimeBackend.setWeight`) without one.
   */
  readonly applyWeight?: (backend: RuntimeBackend, server: RuntimeServer, weight: number) => void;
  /** The node's role (default: always primary, until the cluster role exists). */
  readonly role?: () => Role;
  /**
   * Reload notifications. Default: the node's own `onReload(listener)` when it
   * has one, else the adapter wraps `node.reload` and calls listeners in the
   * same microtask run as the swap (no request can arrive in between).
   */
  readonly onReload?: (listener: (generation: number) => void) => () => void;
}

/** A frontend of any mode, read structurally (HTTP and TCP frontends differ in their counters). */
interface FrontendLike {
  readonly config: CorralConfig['frontends'][number];
  readonly counters: { readonly connections: number; readonly rejected: number; readonly requests?: number; readonly responses?: readonly number[] };
  readonly clients?: { readonly size: number };
}

/** A node that can announce reloads itself (the preferred hook). */
interface ReloadAnnouncer {
  onReload(listener: (generation: number) => void): () => void;
}

function classes(r: readonly number[]): ResponseClasses {
  return { '1xx': r[1] ?? 0, '2xx': r[2] ?? 0, '3xx': r[3] ?? 0, '4xx': r[4] ?? 0, '5xx': r[5] ?? 0 };
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/** The status API's `check` field from a health monitor's report. */
export function checkStatusOf(h: HealthReport): CheckStatus {
  return {
    health: h.state,
    reason: h.reason,
    detail: h.detail ?? null,
    last: h.lastCheck ?? null,
    durationMs: h.checkDurationMs ?? null,
    at: iso(h.lastCheckAt),
    changedAt: iso(h.lastChangeAt),
  };
}

/**
 * The admin view of a real `CorralNode`.
 *
 * @example
 * const adminNode = nodeAdapter(node, { health: (b, s) => monitor.status(b, s) });
 * await startAdmin({ config, node: adminNode, log, events });
 */
export function nodeAdapter(node: CorralNode, opts: NodeAdapterOptions = {}): LocalAdminNode {
  const startedAt = new Date().toISOString();
  /** Runtime weights by server object: a reload builds new servers, which start from the config again. */
  const runtimeWeights = new WeakMap<RuntimeServer, number>();
  const reloadListeners = new Set<(generation: number) => void>();

  const find = (backend: string, server: string): { b: RuntimeBackend; s: RuntimeServer } => {
    const b = node.backends.get(backend);
    if (b === undefined) throw new AdminError('CORRAL_ERR_ADMIN_NOT_FOUND', `no backend "${backend}"`);
    const s = b.byName.get(server);
    if (s === undefined) throw new AdminError('CORRAL_ERR_ADMIN_NOT_FOUND', `no server "${server}" in backend "${backend}"`);
    return { b, s };
  };

  // Default: the node's own health monitor (local mode); a supervisor's workers have none.
  const healthOf = opts.health ?? ((b: string, s: string): HealthReport | undefined => node.health?.status(b, s));
  const applyWeight =
    opts.applyWeight ??
    ((b: RuntimeBackend, s: RuntimeServer, weight: number): void => {
      // With a monitor, the admin weight is the configured weight slow start and agents scale from.
      const monitor = node.health;
      if (monitor !== null && monitor.status(b.name, s.name) !== undefined) monitor.setConfiguredWeight(b.name, s.name, weight);
      else if (s.weight !== weight) b.setWeight(s, weight);
    });

  const checkOf = (b: RuntimeBackend, s: RuntimeServer): CheckStatus | null => {
    const h = healthOf(b.name, s.name);
    if (h === undefined) {
      if (b.config.health.type !== 'none') return null;
      return { health: s.health, reason: 'NO_CHECK', detail: null, last: null, durationMs: null, at: null, changedAt: null };
    }
    return checkStatusOf(h);
  };

  const serverStatus = (b: RuntimeBackend, s: RuntimeServer): ServerStatus => {
    const runtime = runtimeWeights.get(s);
    const c = s.counters;
    const connects = (c as { readonly connects?: number }).connects;
    return {
      name: s.name,
      address: formatAddress(s.address),
      backup: s.backup,
      state: s.state,
      admin: s.admin,
      health: s.health,
      weight: runtime ?? s.configWeight,
      weightSource: runtime === undefined ? 'config' : 'runtime',
      configWeight: s.configWeight,
      effectiveWeight: s.weight,
      active: s.active,
      inactive: s.idle.length,
      total: c.total,
      connects: typeof connects === 'number' ? connects : null,
      responses: classes(c.responses),
      failures: c.failures,
      connectFailures: c.connectFailures,
      retries: c.retries,
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
      maxConn: s.maxConn,
      lastChange: new Date(s.lastChange).toISOString(),
      check: checkOf(b, s),
    };
  };

  const backendStatus = (b: RuntimeBackend): BackendStatus => ({
    name: b.name,
    balance: b.config.balance,
    queueLength: b.queueLength,
    servers: b.servers.map((s) => serverStatus(b, s)),
  });

  const frontendStatus = (f: FrontendLike, bound: ReadonlyMap<string, string>): FrontendStatus => ({
    name: f.config.name,
    listen: bound.get(f.config.name) ?? formatAddress(f.config.listen),
    mode: f.config.mode,
    backend: f.config.backend ?? null,
    current: f.clients?.size ?? 0,
    connections: f.counters.connections,
    requests: f.config.mode === 'http' ? (f.counters.requests ?? 0) : null,
    rejected: f.counters.rejected,
    responses: f.counters.responses === undefined ? null : classes(f.counters.responses),
  });

  const role = opts.role ?? ((): Role => 'primary');

  // Reload notifications: an explicit hook, the node's own, or a wrapper around reload().
  const fire = (generation: number): void => {
    for (const l of reloadListeners) l(generation);
  };
  const announcer = node as unknown as Partial<ReloadAnnouncer>;
  if (opts.onReload !== undefined) opts.onReload(fire);
  else if (typeof announcer.onReload === 'function') announcer.onReload.call(node, fire);
  else {
    const original = node.reload.bind(node);
    // The swap happens synchronously inside the reload; this continuation runs in the same
    // microtask run, before the event loop delivers any request to the new generation.
    node.reload = (config: CorralConfig): Promise<ReloadResult> =>
      original(config).then((r) => {
        if (r.changed) fire(r.generation);
        return r;
      });
  }

  return {
    name: node.config.node.name,
    role,
    status(): StatusResponse {
      const name = node.config.node.name;
      const r = role();
      // Where the frontends really listen (`port: 0` resolved).
      const bound = new Map(node.addresses.map((a) => [a.name, formatAddress({ host: a.address.address, port: a.address.port })]));
      return {
        node: name,
        role: r,
        generation: node.generation,
        startedAt,
        time: new Date().toISOString(),
        cluster: { members: [{ name, role: r, self: true }], primary: r === 'primary' ? name : null },
        frontends: [...node.frontends.values()].map((f) => frontendStatus(f as unknown as FrontendLike, bound)),
        backends: [...node.backends.values()].map(backendStatus),
      };
    },
    server(backend, server) {
      const { b, s } = find(backend, server);
      return serverStatus(b, s);
    },
    config: () => node.config,
    setServerState(backend, server, state) {
      const { b, s } = find(backend, server);
      const from = s.admin;
      const changed = s.setAdmin(state);
      // Queued requests may now have a server (ready), or lose their pinned one (maint).
      if (changed) b.drainQueue();
      return { changed, from, to: state };
    },
    setServerWeight(backend, server, weight) {
      const { b, s } = find(backend, server);
      const from = runtimeWeights.get(s) ?? s.configWeight;
      if (weight === s.configWeight) runtimeWeights.delete(s);
      else runtimeWeights.set(s, weight);
      applyWeight(b, s, weight);
      return { changed: from !== weight, from, to: weight };
    },
    configWeight(backend, server) {
      return find(backend, server).s.configWeight;
    },
    onReload(listener) {
      reloadListeners.add(listener);
      return () => reloadListeners.delete(listener);
    },
  };
}

/**
 * The admin role's side in a worker (`workers: N`): the supervisor serves
 * the admin API; each worker applies the runtime changes it broadcasts
 * through its own `nodeAdapter`, keeps them to re-apply after a reload, and
 * answers status requests with its local snapshot and latency histograms.
 */
import { nodeAdapter } from '../admin/admin-node.js';
import type { LocalAdminNode } from '../admin/admin-node.js';
import { AdminError } from '../admin/errors.js';
import type { LatencyHistograms } from '../admin/latency.js';
import type { RuntimeOverride, WorkerReport } from '../admin/supervisor-node.js';
import type { CorralNode } from '../node.js';

/** Parses the overrides a supervisor passes at fork (`CORRAL_ADMIN_STATE`); anything malformed is ignored. */
export function parseOverrides(text: string | undefined): RuntimeOverride[] {
  if (text === undefined || text === '') return [];
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(raw)) return [];
  return raw.filter(
    (x): x is RuntimeOverride =>
      typeof x === 'object' &&
      x !== null &&
      typeof (x as RuntimeOverride).backend === 'string' &&
      typeof (x as RuntimeOverride).server === 'string' &&
      ['ready', 'drain', 'maint'].includes((x as RuntimeOverride).admin) &&
      ((x as RuntimeOverride).weight === null || typeof (x as RuntimeOverride).weight === 'number'),
  );
}

export class WorkerAdmin {
  private readonly adapter: LocalAdminNode;
  private readonly latency: LatencyHistograms | undefined;
  /** The last override the supervisor sent per server, re-applied after every reload. */
  private readonly overrides = new Map<string, RuntimeOverride>();

  constructor(node: CorralNode, latency?: LatencyHistograms) {
    this.latency = latency;
    // Effective weights come from the supervisor's health monitor (its `weight` messages, which
    // follow slow start and agents); here an admin weight is only recorded for the status.
    this.adapter = nodeAdapter(node, { applyWeight: () => undefined });
    // Runs in the same microtask run as the reload's swap: no request reaches the new generation first.
    this.adapter.onReload(() => {
      for (const o of this.overrides.values()) this.applyOne(o);
    });
  }

  /** Applies (and remembers) one server's override; a server this generation lacks is skipped. */
  apply(o: RuntimeOverride): boolean {
    this.overrides.set(`${o.backend}/${o.server}`, o);
    return this.applyOne(o);
  }

  /** Applies a full list (fork, snapshot after a reload); returns how many servers it reached. */
  applyAll(list: readonly RuntimeOverride[]): number {
    let n = 0;
    for (const o of list) if (this.apply(o)) n++;
    return n;
  }

  /** This worker's share: its local status and latency histograms. */
  report(): WorkerReport {
    return { status: this.adapter.status(), latency: this.latency?.snapshot() ?? [] };
  }

  private applyOne(o: RuntimeOverride): boolean {
    try {
      this.adapter.setServerState(o.backend, o.server, o.admin);
      this.adapter.setServerWeight(o.backend, o.server, o.weight ?? this.adapter.configWeight(o.backend, o.server));
      return true;
    } catch (err) {
      if (err instanceof AdminError && err.code === 'CORRAL_ERR_ADMIN_NOT_FOUND') return false;
      throw err;
    }
  }
}

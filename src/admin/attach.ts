/**
 * One call for a composition root: the admin server over a running node,
 * with its state file beside the config.
 */
import type { AdminConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { CorralNode } from '../node.js';
import { nodeAdapter } from './admin-node.js';
import type { NodeAdapterOptions } from './admin-node.js';
import { startAdmin } from './admin-server.js';
import type { AdminServer, AdminServerOptions, RecentLogs } from './admin-server.js';
import { healthEventSource, mergeSources } from './events.js';
import type { AdminEventSource, HealthEvents } from './events.js';
import type { LatencyHistograms } from './latency.js';
import { stateFileFor } from './state-file.js';

/** Where `corral demo` and the CLI's `--admin` default look. */
export const DEFAULT_ADMIN_LISTEN = { host: '127.0.0.1', port: 9010 } as const;

export interface AttachAdminOptions {
  readonly node: CorralNode;
  readonly log: Logger;
  /** Default: the node's `admin` config; without either there is no admin server. */
  readonly config?: AdminConfig;
  /** The config file: the state file is `<name>.state.json` beside it. */
  readonly configFile?: string;
  /** An explicit state file (wins over `configFile`). */
  readonly stateFile?: string;
  /** Health overrides (default: the node's own monitor and `healthBus`). */
  readonly health?: {
    readonly bus?: HealthEvents;
    readonly status?: NodeAdapterOptions['health'];
    readonly applyWeight?: NodeAdapterOptions['applyWeight'];
  };
  readonly latency?: LatencyHistograms;
  readonly logs?: RecentLogs;
  /** More event sources (cluster roles, …). */
  readonly events?: AdminEventSource;
  /** Metrics of other roles (sessions), read at each scrape. */
  readonly extraMetrics?: AdminServerOptions['extraMetrics'];
  /** Fields of other roles in `/api/v1/status` (sessions), read at each request. */
  readonly extraStatus?: AdminServerOptions['extraStatus'];
}

/**
 * Starts the admin server for `node`, or resolves null when there is no
 * admin config.
 *
 * @example
 * const admin = await attachAdmin({ node, log, configFile: file, latency });
 * // on stop: await admin?.close();
 */
export async function attachAdmin(opts: AttachAdminOptions): Promise<AdminServer | null> {
  const config = opts.config ?? opts.node.config.admin;
  if (config === undefined) return null;
  const adminNode = nodeAdapter(opts.node, {
    ...(opts.health?.status !== undefined ? { health: opts.health.status } : {}),
    ...(opts.health?.applyWeight !== undefined ? { applyWeight: opts.health.applyWeight } : {}),
  });
  const sources: AdminEventSource[] = [healthEventSource(opts.health?.bus ?? opts.node.healthBus)];
  if (opts.events !== undefined) sources.push(opts.events);
  const stateFile = opts.stateFile ?? (opts.configFile !== undefined ? stateFileFor(opts.configFile) : undefined);
  return startAdmin({
    config,
    node: adminNode,
    log: opts.log,
    events: mergeSources(...sources),
    ...(stateFile !== undefined ? { stateFile } : {}),
    ...(opts.latency !== undefined ? { latency: opts.latency } : {}),
    ...(opts.logs !== undefined ? { logs: opts.logs } : {}),
    ...(opts.extraMetrics !== undefined ? { extraMetrics: opts.extraMetrics } : {}),
    ...(opts.extraStatus !== undefined ? { extraStatus: opts.extraStatus } : {}),
  });
}

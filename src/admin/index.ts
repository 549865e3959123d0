/**
 * The admin role: console, stats page, JSON API with persisted runtime
 * changes, Prometheus metrics, live events and `/healthz`. Depends on the
 * node; only the composition root (the CLI) imports it.
 */
export { startAdmin, type AdminServer, type AdminServerOptions, type RecentLogs } from './admin-server.js';
export { nodeAdapter, type AdminNode, type LocalAdminNode, type NodeAdapterOptions, type HealthReport, type Change } from './admin-node.js';
export {
  EventLog,
  EventFeed,
  noEvents,
  mergeSources,
  healthEventSource,
  type AdminEventSource,
  type HealthEvents,
} from './events.js';
export { LatencyHistograms, LATENCY_BUCKETS, type LatencyRecorder, type HistogramSnapshot } from './latency.js';
export { LogRing } from './log-ring.js';
export { mergeStatuses } from './merge-status.js';
export { RuntimeState, applyPersistedState, stateFileFor, writeFileAtomically, type StateDocument, type PersistedServer } from './state-file.js';
export { maskSecrets, maskUrl, MASK } from './mask.js';
export { AdminError, ADMIN_ERROR_CODES, type AdminErrorCode } from './errors.js';
export { authenticate, safeEqual, assertSafeListen } from './auth.js';
export { attachAdmin, DEFAULT_ADMIN_LISTEN, type AttachAdminOptions } from './attach.js';
export type * from './types.js';

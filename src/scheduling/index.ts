/**
 * Scheduling: pick a server for a request from a read-only view of a
 * backend. Pure — no I/O, no timers, no clock of its own — and imports
 * nothing else of Corral. Start with {@link createScheduler}.
 */
export type { BackendView, PickRequest, Scheduler, ServerView } from './types.js';
export { isAvailable, isPickable } from './pickable.js';
export {
  BALANCE_KINDS,
  createScheduler,
  type BalanceKind,
  type SchedulerOptions,
} from './create-scheduler.js';
export { withBackups } from './backups.js';
export { createRoundRobin } from './round-robin.js';
export { createLeastConn } from './least-conn.js';
export { createFirst } from './first.js';
export { createRandom, type RandomOptions } from './random.js';
export { createSourceHash, type SourceHashOptions } from './source-hash.js';
export { createHash } from './hash.js';
export {
  DEFAULT_LBLC_EXPIRE,
  DEFAULT_LBLC_MAX_ENTRIES,
  createLblc,
  type LblcOptions,
  type LblcScheduler,
} from './lblc.js';
export { DEFAULT_POINTS_PER_WEIGHT, HashRing, type HashRingOptions } from './hash-ring.js';
export { FNV_OFFSET, fnv1a, fnv1aDecimal, hashString, mix32 } from './hash32.js';

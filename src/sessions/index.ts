/**
 * Corral's session-state service (`corral/sessions`): the store contract and
 * its `memory`, `peer` and `redis` implementations.
 */
export type * from './types.js';
export { SessionError, SESSION_ERROR_CODES, type SessionErrorCode } from './errors.js';
export { MemoryStore, type MemoryStoreOptions } from './memory-store.js';
export { RedisStore, type RedisStoreOptions } from './redis-store.js';
export { PeerClient, type PeerClientOptions, type PeerAddress } from './peer-client.js';
export { PeerNode, type PeerNodeOptions, findSelf } from './peer-node.js';
export { type Membership } from './membership.js';
export { HashRing } from './ring.js';
export { CorralSessionStore, type CorralSessionStoreOptions, type ConflictPolicy } from './express-store.js';
export { startSessions, type SessionsRole, type SessionsRoleOptions } from './role.js';
export { sessionMetricSamples, type MetricSample } from './metrics.js';

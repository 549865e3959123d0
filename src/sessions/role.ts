/**
 * The `sessions` role built from a config: the store this node's users read
 * and write, and, for `peer`, the state-service node it runs. `src/node.ts`
 * wires it; admin reads `stats()`.
 */
import { formatAddress } from '../config/address.js';
import type { CorralConfig } from '../config/index.js';
import { MemoryStore } from './memory-store.js';
import { PeerClient } from './peer-client.js';
import { PeerNode } from './peer-node.js';
import { RedisStore } from './redis-store.js';
import type { SessionStats, SessionStore } from './types.js';

export interface SessionsRole {
  readonly store: SessionStore;
  /** The state-service node (`store: peer`). */
  readonly node: PeerNode | undefined;
  /** This node's view: the node's own counts for `peer`, the store's otherwise. */
  stats(): SessionStats;
  close(): Promise<void>;
}

export interface SessionsRoleOptions {
  readonly log?: (event: string, fields?: Record<string, unknown>) => void;
}

/** Starts the role; for `peer` it resolves once this node has caught up and serves. */
export async function startSessions(config: CorralConfig, options: SessionsRoleOptions = {}): Promise<SessionsRole | undefined> {
  const s = config.sessions;
  if (s === undefined) return undefined;
  const key = config.cluster?.key;
  if (s.store === 'memory') {
    const store = new MemoryStore({ ttl: s.ttl, maxValueBytes: s.maxValueBytes, maxEntries: s.maxEntries, maxBytes: s.maxBytes });
    return { store, node: undefined, stats: () => store.stats(), close: () => store.close() };
  }
  if (s.store === 'redis') {
    if (s.encrypt && key === undefined) throw new Error('sessions.encrypt needs cluster.key');
    const store = new RedisStore({ url: s.redis.url, prefix: s.redis.prefix, ttl: s.ttl, maxValueBytes: s.maxValueBytes, encryptKey: s.encrypt ? key : undefined });
    return { store, node: undefined, stats: () => store.stats(), close: () => store.close() };
  }
  if (key === undefined) throw new Error('sessions.store peer needs cluster.key (peers authenticate and encrypt with it)');
  if (s.listen === undefined) throw new Error('sessions.store peer needs sessions.listen');
  const peers = s.peers.map(formatAddress);
  const node = new PeerNode({ listen: s.listen, key, replicas: s.replicas, ttl: s.ttl, maxValueBytes: s.maxValueBytes, maxEntries: s.maxEntries, maxBytes: s.maxBytes, log: options.log });
  await node.listen();
  await node.start(peers);
  const store = new PeerClient({ peers, key, replicas: s.replicas, maxValueBytes: s.maxValueBytes, name: `${config.node.name}:local` });
  return {
    store,
    node,
    stats: () => node.stats(),
    async close() {
      await store.close();
      await node.close();
    },
  };
}

/**
 * The session store contract. Three implementations (`memory`, `peer`,
 * `redis`) run through one shared suite (`store-contract.ts`).
 *
 * Values are opaque strings (the express adapter stores JSON). Every key has
 * a version: the first write makes it 1 and every later write adds one, so a
 * caller that read version `v` can write with `setIfVersion(key, value, v)`
 * and lose cleanly instead of overwriting a concurrent change.
 */

/** Milliseconds since the epoch. */
export type EpochMs = number;

export interface SessionEntry {
  readonly value: string;
  /** Per-key version, ≥ 1. */
  readonly version: number;
  /** When the entry expires (ms since the epoch). */
  readonly expiresAt: EpochMs;
}

export interface SetOptions {
  /** Time to live in ms; the store's default (`sessions.ttl`) when absent. */
  readonly ttl?: number;
}

/** `ok: false` carries the version found (0 when the key is absent). */
export type CasResult = { readonly ok: true; readonly version: number } | { readonly ok: false; readonly version: number };

export interface SessionStats {
  readonly store: 'memory' | 'peer' | 'redis';
  /** Live sessions held (this node's copy for `peer`; keys under the prefix for `redis`, -1 until counted). */
  readonly sessions: number;
  /** Bytes of values held. */
  readonly bytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly sets: number;
  readonly conflicts: number;
  readonly destroys: number;
  /** Entries dropped to stay within the bounds (memory). */
  readonly evictions: number;
  readonly expired: number;
  /** Requests that failed with an error. */
  readonly errors: number;
  readonly replication?: ReplicationStats;
  readonly handoff?: HandoffStats;
  readonly members?: readonly MemberStats[];
}

export interface ReplicationStats {
  /** Writes waiting for replica acknowledgements now. */
  readonly inflight: number;
  /** Time from the coordinator's apply to the last replica's ack: last write, and an EWMA. */
  readonly lastLagMs: number;
  readonly avgLagMs: number;
  readonly replicated: number;
  readonly failures: number;
}

export interface HandoffStats {
  readonly running: boolean;
  /** Records still to send in the current hand-off. */
  readonly pending: number;
  /** Records sent in the current (or last) hand-off. */
  readonly sent: number;
  readonly lastDurationMs: number;
  readonly lastRecords: number;
  /** Hand-offs completed since start. */
  readonly completed: number;
}

export interface MemberStats {
  readonly id: string;
  readonly live: boolean;
  readonly self: boolean;
}

export interface SessionStore {
  readonly kind: 'memory' | 'peer' | 'redis';
  get(key: string): Promise<SessionEntry | undefined>;
  /** Stores the value; resolves with the new version. */
  set(key: string, value: string, options?: SetOptions): Promise<number>;
  /** Compare-and-set: writes only when the key's version is `expected` (0: only when absent). */
  setIfVersion(key: string, value: string, expected: number, options?: SetOptions): Promise<CasResult>;
  destroy(key: string): Promise<void>;
  /** Resets the TTL; resolves false when the key is absent. Does not change the version. */
  touch(key: string, options?: SetOptions): Promise<boolean>;
  all(): Promise<Map<string, SessionEntry>>;
  length(): Promise<number>;
  clear(): Promise<void>;
  /** A cheap snapshot of counters. */
  stats(): SessionStats;
  close(): Promise<void>;
}

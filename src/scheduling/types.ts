/**
 * Scheduling: pick a server for a request from a read-only view of a backend.
 *
 * Pure: no timers, no sockets, no clock of its own (the request carries
 * `now`). Schedulers keep only the bookkeeping their algorithm needs (smooth
 * round-robin counters, a hash ring, the LBLC table). `scheduling` imports
 * nothing else of Corral.
 */

/** What a scheduler may know about one server. The balancer's live server objects satisfy it. */
export interface ServerView {
  /** Stable index of the server within its backend (0..n-1, primaries and backups together). */
  readonly id: number;
  readonly name: string;
  /** Effective weight (slow start, agent and admin changes applied). 0 = takes no new traffic. */
  readonly weight: number;
  /** Requests/connections in flight on this server. */
  readonly active: number;
  /** Maximum concurrent requests; 0 = unlimited. A server with active >= maxConn is full. */
  readonly maxConn: number;
  /** Up and administratively ready (health, drain and maint already applied by the caller). */
  readonly eligible: boolean;
  readonly backup: boolean;
}

export interface BackendView {
  /** Non-backup servers in configuration order. The array is stable between picks. */
  readonly primaries: readonly ServerView[];
  /** Backup servers in configuration order. */
  readonly backups: readonly ServerView[];
  /** Bumped by the owner whenever any server's weight changes (hash rings rebuild on change). */
  readonly weightsVersion: number;
}

export interface PickRequest {
  readonly clientIp: string;
  readonly clientPort: number;
  /** Host header without port, lower-case ('' when absent). */
  readonly host: string;
  /** For balance: hash, the extracted key (undefined when the request lacks it). */
  readonly hashKey: string | undefined;
  /** Milliseconds, monotonic or wall clock, supplied by the caller. */
  readonly now: number;
  /** Server ids already tried for this request (retries go elsewhere). */
  readonly exclude?: ReadonlySet<number>;
}

export interface Scheduler {
  /** A server that is eligible, has weight > 0, is not full and not excluded; undefined if none. */
  pick(view: BackendView, request: PickRequest): ServerView | undefined;
}

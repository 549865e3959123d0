/**
 * A server of a backend at run time: its state, counters and pool of idle
 * keep-alive connections. Implements the scheduler's `ServerView` directly so
 * picking needs no per-request copies.
 */
import type { Socket } from 'node:net';
import type { Address, ServerConfig } from '../config/index.js';
import type { ServerView } from '../scheduling/index.js';

/** Health and administrative states (ARCHITECTURE.md). */
export type ServerState = 'up' | 'down' | 'warming' | 'drain' | 'maint';
export type AdminState = 'ready' | 'drain' | 'maint';
export type HealthState = 'up' | 'down' | 'warming';

/** Counters are plain numbers bumped on the hot path; observers read snapshots. */
export interface ServerCounters {
  /** Requests (HTTP) or connections (TCP) dispatched to the server. */
  total: number;
  /** Connect failures, resets, timeouts and malformed responses. */
  failures: number;
  /** Connections opened to the server (pooled HTTP connections are opened once, used many times). */
  connects: number;
  connectFailures: number;
  retries: number;
  bytesIn: number;
  bytesOut: number;
  /** Responses by status class: index 1..5 for 1xx..5xx. */
  responses: [number, number, number, number, number, number];
}

export interface UpstreamConnection {
  readonly socket: Socket;
  readonly server: RuntimeServer;
  /** Requests completed on this connection (0 = fresh). */
  uses: number;
  /** When it was put back into the pool (ms, performance clock). */
  idleSince: number;
  /** The exchange currently using it, or null while idle. */
  owner: UpstreamOwner | null;
  /** Reads stopped for backpressure. */
  paused: boolean;
  /** Inactivity limit checked by the backend's sweep (ms; 0: none) and the last activity (coarse clock). */
  timeoutMs: number;
  lastActive: number;
}

/** What an exchange exposes to the connection it owns. */
export interface UpstreamOwner {
  /** `ephemeral`: `chunk` is a view of the shared read buffer, valid only during the call (see io.ts). */
  onUpstreamData(chunk: Buffer, ephemeral: boolean): void;
  onUpstreamEnd(): void;
  onUpstreamError(err: Error): void;
  onUpstreamTimeout(): void;
}

/**
 * What a server keeps across configuration generations: a reload builds new
 * server objects, and those whose backend, name and address are unchanged
 * share this with their predecessor, so in-flight counts, counters, states
 * and pooled connections carry over.
 */
export class SharedServerState {
  active = 0;
  health: HealthState = 'up';
  admin: AdminState = 'ready';
  lastChange = Date.now();
  readonly counters: ServerCounters = {
    total: 0,
    failures: 0,
    connects: 0,
    connectFailures: 0,
    retries: 0,
    bytesIn: 0,
    bytesOut: 0,
    responses: [0, 0, 0, 0, 0, 0],
  };
  /** Idle keep-alive connections, most recently used last. */
  readonly idle: UpstreamConnection[] = [];
}

export class RuntimeServer implements ServerView {
  readonly id: number;
  readonly name: string;
  readonly backup: boolean;
  readonly address: Address;
  readonly config: ServerConfig;
  readonly shared: SharedServerState;
  readonly configWeight: number;
  readonly maxConn: number;
  /** Effective weight used by the schedulers. */
  weight: number;
  /** Scheduler eligibility: health up and admin ready (kept in sync by setters). */
  eligible = true;
  /** May keep serving clients already pinned to it (up and not in maintenance). */
  acceptsSticky = true;
  readonly counters: ServerCounters;
  /** Idle keep-alive connections, most recently used last. */
  readonly idle: UpstreamConnection[];
  /** Value of the sticky cookie that pins a client here ('' when the backend has none). */
  stickyValue = '';

  constructor(id: number, config: ServerConfig, backendMaxConn: number, shared: SharedServerState = new SharedServerState()) {
    this.id = id;
    this.name = config.name;
    this.backup = config.backup;
    this.address = config.address;
    this.config = config;
    this.configWeight = config.weight;
    this.weight = config.weight;
    this.maxConn = config.maxConn ?? backendMaxConn;
    this.shared = shared;
    this.counters = shared.counters;
    this.idle = shared.idle;
    this.eligible = shared.health === 'up' && shared.admin === 'ready';
    this.acceptsSticky = shared.health === 'up' && shared.admin !== 'maint';
  }

  /** Requests (or tunnels) in flight, across configuration generations. */
  get active(): number {
    return this.shared.active;
  }

  set active(n: number) {
    this.shared.active = n;
  }

  get health(): HealthState {
    return this.shared.health;
  }

  get admin(): AdminState {
    return this.shared.admin;
  }

  get lastChange(): number {
    return this.shared.lastChange;
  }

  get state(): ServerState {
    if (this.admin === 'maint') return 'maint';
    if (this.admin === 'drain' && this.health === 'up') return 'drain';
    return this.health;
  }

  setHealth(health: HealthState): boolean {
    if (health === this.health) return false;
    this.shared.health = health;
    this.refresh();
    return true;
  }

  setAdmin(admin: AdminState): boolean {
    if (admin === this.admin) return false;
    this.shared.admin = admin;
    this.refresh();
    return true;
  }

  private refresh(): void {
    this.eligible = this.health === 'up' && this.admin === 'ready';
    this.acceptsSticky = this.health === 'up' && this.admin !== 'maint';
    this.shared.lastChange = Date.now();
    if (this.admin === 'maint' || this.health === 'down') this.closeIdle();
  }

  /** Closes every idle pooled connection. */
  closeIdle(): void {
    for (const conn of this.idle.splice(0)) conn.socket.destroy();
  }
}

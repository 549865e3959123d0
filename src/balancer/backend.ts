/**
 * A backend at run time: its servers, scheduler, stickiness, FIFO queue for
 * servers at `maxConn`, and the connection pools towards its servers.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { BackendConfig } from '../config/index.js';
import { createScheduler } from '../scheduling/index.js';
import type { BackendView, PickRequest, Scheduler } from '../scheduling/index.js';
import { clock, onreadOption, Sweep, sweepResolution } from './io.js';
import { RuntimeServer, SharedServerState } from './server.js';
import type { UpstreamConnection } from './server.js';

/**
 * Requests that cannot be replayed (non-idempotent or with an unretained
 * body) only reuse a connection idle for less than this: servers close idle
 * keep-alive connections (Node's default after 5 s) and a request written to
 * a connection the server is closing fails with nothing to retry.
 */
const UNSAFE_REUSE_MAX_IDLE_MS = 1_000;
/** Largest number of requests waiting in one backend's queue. */
const MAX_QUEUE = 10_000;
/** Sweep the source-affinity table once it grows by this many entries. */
const SOURCE_SWEEP_EVERY = 1024;

export interface Waiter {
  /** Called with a server that has a free slot (already counted in `active`). */
  grant(server: RuntimeServer): void;
  /** Called when the queue timeout expires. */
  expire(): void;
  /** Pinned by stickiness to this server, or null. */
  readonly pinned: RuntimeServer | null;
  readonly request: PickRequest;
  timer: NodeJS.Timeout | null;
}

/** What live traffic says about a server (passive health); same values as health's `Outcome`. */
export type TrafficOutcome = 'ok' | '5xx' | 'connect-failure';

export type Dispatch =
  | { readonly kind: 'server'; readonly server: RuntimeServer; readonly setCookie: boolean }
  | { readonly kind: 'queued' }
  | { readonly kind: 'none' }
  | { readonly kind: 'full' };

export interface ConnectCallbacks {
  onConnect(conn: UpstreamConnection): void;
  onConnectError(err: Error, timedOut: boolean): void;
}

export class RuntimeBackend implements BackendView {
  readonly name: string;
  readonly config: BackendConfig;
  readonly servers: RuntimeServer[];
  readonly primaries: RuntimeServer[];
  readonly backups: RuntimeServer[];
  readonly byName = new Map<string, RuntimeServer>();
  weightsVersion = 0;
  /** Receives live-traffic outcomes when the backend has `outlier` set (null otherwise). */
  observe: ((server: RuntimeServer, outcome: TrafficOutcome) => void) | null = null;
  private readonly scheduler: Scheduler;
  private readonly queue: Waiter[] = [];
  private readonly stickyKey: Buffer | null;
  private readonly sourceTable: Map<string, { server: RuntimeServer; last: number }> | null;
  private sourceInserts = 0;

  /**
   * `previous`: the same-named backend of the generation being replaced;
   * servers with the same name and address carry its state over.
   */
  constructor(config: BackendConfig, stickySecret: Buffer, previous?: RuntimeBackend) {
    this.name = config.name;
    this.config = config;
    this.servers = config.servers.map((s, i) => {
      const old = previous?.byName.get(s.name);
      const same = old !== undefined && old.address.host === s.address.host && old.address.port === s.address.port && old.config.tls === s.tls;
      if (same) return new RuntimeServer(i, s, config.maxConn, old.shared);
      // A server that is checked (or tracks one) takes no traffic before its first passing check.
      const fresh = new SharedServerState();
      if (config.health.type !== 'none' || s.track !== undefined) fresh.health = 'down';
      return new RuntimeServer(i, s, config.maxConn, fresh);
    });
    this.primaries = this.servers.filter((s) => !s.backup);
    this.backups = this.servers.filter((s) => s.backup);
    for (const s of this.servers) this.byName.set(s.name, s);
    this.scheduler = createScheduler({
      balance: config.balance,
      hashSourcePort: config.hashSourcePort,
      lblcExpire: config.lblcExpire,
      allBackups: config.allBackups,
    });
    this.stickyKey = config.sticky?.cookie !== undefined ? stickySecret : null;
    if (this.stickyKey !== null) {
      for (const s of this.servers) s.stickyValue = `${s.name}.${this.sign(s.name)}`;
    }
    this.sourceTable = config.sticky?.source === true ? new Map() : null;
    this.sweep = new Sweep(sweepResolution(config.timeouts.server), this.live, (conn) => conn.socket.emit('timeout'));
  }

  get queueLength(): number {
    return this.queue.length;
  }

  /** Changes a server's configured weight at run time. */
  setWeight(server: RuntimeServer, weight: number): void {
    server.weight = weight;
    this.weightsVersion++;
    this.drainQueue();
  }

  private sign(serverName: string): string {
    return createHmac('sha256', this.stickyKey as Buffer)
      .update(`${this.name}\0${serverName}`)
      .digest('base64url')
      .slice(0, 22);
  }

  /** The server a valid sticky cookie value names, or undefined (constant-time signature check). */
  serverForCookie(value: string): RuntimeServer | undefined {
    const dot = value.lastIndexOf('.');
    if (dot <= 0) return undefined;
    const server = this.byName.get(value.slice(0, dot));
    if (server === undefined) return undefined;
    const given = Buffer.from(value.slice(dot + 1), 'latin1');
    const expected = Buffer.from(server.stickyValue.slice(dot + 1), 'latin1');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return server;
  }

  /**
   * Chooses a server for a request: a valid stickiness pin first, then the
   * scheduler (primaries, then backups). A chosen server's slot is taken
   * (`active++`) before returning.
   */
  dispatch(request: PickRequest, cookieValue: string | undefined, waiter: () => Waiter): Dispatch {
    let pinned: RuntimeServer | null = null;
    if (cookieValue !== undefined && this.stickyKey !== null) {
      const s = this.serverForCookie(cookieValue);
      if (s !== undefined && s.acceptsSticky && request.exclude?.has(s.id) !== true) pinned = s;
    } else if (this.sourceTable !== null) {
      const entry = this.sourceTable.get(request.clientIp);
      const timeout = this.config.sticky?.timeout ?? 0;
      if (
        entry !== undefined &&
        request.now - entry.last < timeout &&
        entry.server.acceptsSticky &&
        request.exclude?.has(entry.server.id) !== true
      ) {
        entry.last = request.now;
        pinned = entry.server;
      }
    }
    if (pinned !== null) {
      if (pinned.maxConn === 0 || pinned.active < pinned.maxConn) {
        pinned.active++;
        return { kind: 'server', server: pinned, setCookie: false };
      }
      return this.enqueue(waiter(), pinned);
    }
    const picked = this.scheduler.pick(this, request) as RuntimeServer | undefined;
    if (picked !== undefined) {
      picked.active++;
      this.remember(request, picked);
      return { kind: 'server', server: picked, setCookie: this.stickyKey !== null };
    }
    if (this.anyEligibleFull(request)) return this.enqueue(waiter(), null);
    return { kind: 'none' };
  }

  private remember(request: PickRequest, server: RuntimeServer): void {
    if (this.sourceTable === null) return;
    this.sourceTable.set(request.clientIp, { server, last: request.now });
    if (++this.sourceInserts >= SOURCE_SWEEP_EVERY) {
      this.sourceInserts = 0;
      const timeout = this.config.sticky?.timeout ?? 0;
      for (const [ip, entry] of this.sourceTable) {
        if (request.now - entry.last >= timeout) this.sourceTable.delete(ip);
      }
    }
  }

  private anyEligibleFull(request: PickRequest): boolean {
    const scan = (list: RuntimeServer[]): boolean =>
      list.some((s) => s.eligible && s.weight > 0 && s.maxConn > 0 && s.active >= s.maxConn && request.exclude?.has(s.id) !== true);
    return scan(this.primaries) || scan(this.backups);
  }

  private enqueue(w: Waiter, pinned: RuntimeServer | null): Dispatch {
    if (this.queue.length >= MAX_QUEUE) return { kind: 'full' };
    (w as { pinned: RuntimeServer | null }).pinned = pinned;
    this.queue.push(w);
    w.timer = setTimeout(() => {
      const i = this.queue.indexOf(w);
      if (i !== -1) this.queue.splice(i, 1);
      w.timer = null;
      w.expire();
    }, this.config.timeouts.queue);
    return { kind: 'queued' };
  }

  /** Removes a waiter (its client went away). */
  cancel(w: Waiter): void {
    const i = this.queue.indexOf(w);
    if (i !== -1) this.queue.splice(i, 1);
    if (w.timer !== null) clearTimeout(w.timer);
    w.timer = null;
  }

  /** Gives back a slot of `server`; hands it to the oldest waiter that can use it. */
  release(server: RuntimeServer): void {
    server.active--;
    if (this.queue.length > 0) this.drainQueue();
  }

  /** Serves queued requests in FIFO order while servers have free slots. */
  drainQueue(): void {
    for (let i = 0; i < this.queue.length; ) {
      const w = this.queue[i] as Waiter;
      let server: RuntimeServer | undefined;
      if (w.pinned !== null) {
        const p = w.pinned;
        if (!p.acceptsSticky) {
          // The pinned server went away while we waited: fall back to scheduling.
          (w as { pinned: RuntimeServer | null }).pinned = null;
          continue;
        }
        if (p.maxConn === 0 || p.active < p.maxConn) server = p;
      } else {
        server = this.scheduler.pick(this, w.request) as RuntimeServer | undefined;
        if (server === undefined && !this.anyEligibleFull(w.request)) {
          // Nothing left that could ever free up for it.
          this.queue.splice(i, 1);
          if (w.timer !== null) clearTimeout(w.timer);
          w.timer = null;
          w.expire();
          continue;
        }
      }
      if (server === undefined) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      if (w.timer !== null) clearTimeout(w.timer);
      w.timer = null;
      server.active++;
      if (w.pinned === null) this.remember(w.request, server);
      w.grant(server);
    }
  }

  /**
   * An idle pooled connection to `server` (most recently used first), or
   * null. `safeOnly` limits reuse to connections idle for a short time.
   */
  takeIdle(server: RuntimeServer, safeOnly: boolean): UpstreamConnection | null {
    while (server.idle.length > 0) {
      const conn = server.idle.pop() as UpstreamConnection;
      if (conn.socket.destroyed) continue;
      if (safeOnly && performance.now() - conn.idleSince > UNSAFE_REUSE_MAX_IDLE_MS) {
        server.idle.push(conn);
        return null;
      }
      return conn;
    }
    return null;
  }

  /** Returns a connection to its server's pool (most recently used is reused first). */
  putIdle(conn: UpstreamConnection): void {
    conn.owner = null;
    conn.uses++;
    conn.idleSince = performance.now();
    const server = conn.server;
    if (!server.acceptsSticky) {
      conn.socket.destroy();
      return;
    }
    // The sweep closes a pooled connection idle for `timeouts.server`.
    server.idle.push(conn);
  }

  /** Opens a new connection to `server`. Events are routed to the connection's owner. */
  connect(server: RuntimeServer, cb: ConnectCallbacks): void {
    const { host, port } = server.address;
    const sc = server.config;
    let socket: net.Socket;
    if (sc.tls) {
      const servername = sc.tlsServername ?? (net.isIP(host) === 0 ? host : undefined);
      socket = tls.connect({
        host,
        port,
        rejectUnauthorized: sc.tlsVerify,
        ALPNProtocols: ['http/1.1'],
        ...(servername !== undefined ? { servername } : {}),
        ...(sc.tlsCa !== undefined ? { ca: this.caFile(sc.tlsCa) } : {}),
      });
    } else {
      socket = net.connect({
        host,
        port,
        noDelay: true,
        onread: onreadOption((bytes) => {
          conn.lastActive = clock.now;
          if (conn.owner !== null) conn.owner.onUpstreamData(bytes, true);
          else dropIdle(); // bytes nobody asked for: the connection is unusable
        }),
      });
    }
    const conn: UpstreamConnection = { socket, server, uses: 0, idleSince: 0, owner: null, paused: false, timeoutMs: 0, lastActive: 0 };
    let connecting = true;
    socket.setTimeout(this.config.timeouts.connect);
    const dropIdle = (): void => {
      const i = server.idle.indexOf(conn);
      if (i !== -1) server.idle.splice(i, 1);
      socket.destroy();
    };
    if (sc.tls) socket.setNoDelay(true);
    socket.once(sc.tls ? 'secureConnect' : 'connect', () => {
      connecting = false;
      server.counters.connects++;
      // From here `timeouts.server` is checked by the backend's sweep (see `sweep`).
      socket.setTimeout(0);
      this.track(conn); // first: starting the sweep refreshes the clock
      conn.timeoutMs = this.config.timeouts.server;
      conn.lastActive = clock.now;
      cb.onConnect(conn);
    });
    if (sc.tls) {
      socket.on('data', (chunk: Buffer) => {
        conn.lastActive = clock.now;
        if (conn.owner !== null) conn.owner.onUpstreamData(chunk, false);
        else dropIdle();
      });
    }
    socket.on('end', () => {
      if (conn.owner !== null) conn.owner.onUpstreamEnd();
      else dropIdle();
    });
    socket.on('timeout', () => {
      if (connecting) {
        connecting = false;
        socket.destroy();
        cb.onConnectError(new Error('connect timeout'), true);
      } else if (conn.owner !== null) conn.owner.onUpstreamTimeout();
      else dropIdle();
    });
    socket.on('error', (err: Error) => {
      if (connecting) {
        connecting = false;
        cb.onConnectError(err, false);
      } else if (conn.owner !== null) conn.owner.onUpstreamError(err);
      else dropIdle();
    });
    socket.on('close', () => {
      this.live.delete(conn);
      if (connecting) {
        connecting = false;
        cb.onConnectError(new Error('connection closed while connecting'), false);
      } else if (conn.owner !== null) conn.owner.onUpstreamError(new Error('connection closed'));
      else dropIdle();
    });
  }

  /** Open connections to this backend's servers: `timeouts.server` is checked by a sweep over them (io.ts). */
  private readonly live = new Set<UpstreamConnection>();
  private readonly sweep: Sweep<UpstreamConnection>;

  private track(conn: UpstreamConnection): void {
    this.sweep.ensure();
    this.live.add(conn);
  }

  private readonly cas = new Map<string, Buffer>();

  /** A CA bundle, read once per generation. */
  private caFile(path: string): Buffer {
    let ca = this.cas.get(path);
    if (ca === undefined) {
      ca = readFileSync(path);
      this.cas.set(path, ca);
    }
    return ca;
  }

  /** Stops the backend: rejects queued requests and closes pooled connections. */
  close(): void {
    for (const w of this.queue.splice(0)) {
      if (w.timer !== null) clearTimeout(w.timer);
      w.expire();
    }
    for (const s of this.servers) s.closeIdle();
    if (this.live.size === 0) this.sweep.stop();
  }
}

/**
 * Outbound connections to every other session peer, redialled forever with
 * a capped backoff, and the liveness they imply: a peer is live while its
 * connection is up, it heartbeats within `heartbeatTimeout`, and its last
 * heartbeat said it is ready (caught up). A silent peer's connection is
 * closed, which fails its in-flight requests at once.
 */
import { SecureConnection, type Role, type StreamHandler } from './connection.js';
import { SessionError } from './errors.js';
import { splitId, type Membership } from './membership.js';
import { F, T, type Msg } from './wire.js';

/** Requests a client keeps on the wire per node before it batches the rest (see SecureConnection.sendWindow). */
const CLIENT_SEND_WINDOW = 4;

export interface LinksOptions {
  readonly key: string;
  readonly id: string;
  readonly role: Role;
  /** Bound on connect + handshake (default 1 s). */
  readonly connectTimeout?: number;
  /** A peer silent this long is dropped (default 3 s; nodes heartbeat every 250 ms). */
  readonly heartbeatTimeout?: number;
  readonly maxFrameBytes?: number;
  /** Messages a peer pushes other than heartbeats. */
  readonly onMessage?: (from: string, m: Msg, conn: SecureConnection) => void;
}

interface Link {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  conn: SecureConnection | undefined;
  ready: boolean;
  settled: boolean;
  failures: number;
  lastError: Error | undefined;
  timer: NodeJS.Timeout | undefined;
  /** The largest value the peer accepts, from its heartbeats (Infinity until heard). */
  valueLimit: number;
}

export class PeerLinks {
  readonly #o: LinksOptions;
  readonly #links = new Map<string, Link>();
  readonly #listeners = new Set<() => void>();
  readonly #waiters = new Set<() => void>();
  #watchdog: NodeJS.Timeout | undefined;
  #closed = false;
  #valueLimit = Infinity;
  /** Request ids unique across every connection of this set, so an answer can arrive on any of them. */
  #nextId = 1;
  readonly #ids = (): number => {
    const id = this.#nextId;
    this.#nextId = id >= 0xfffffff0 ? 1 : id + 1;
    return id;
  };

  constructor(ids: readonly string[], options: LinksOptions) {
    this.#o = options;
    for (const id of ids) {
      const { host, port } = splitId(id);
      this.#links.set(id, { id, host, port, conn: undefined, ready: false, settled: false, failures: 0, lastError: undefined, timer: undefined, valueLimit: Infinity });
    }
  }

  get ids(): string[] {
    return [...this.#links.keys()];
  }

  start(): void {
    for (const l of this.#links.values()) this.#dial(l);
    const hb = this.#o.heartbeatTimeout ?? 3000;
    this.#watchdog = setInterval(() => {
      const now = Date.now();
      for (const l of this.#links.values()) {
        if (l.conn !== undefined && now - l.conn.lastHeard > hb) l.conn.close(new SessionError('CORRAL_ERR_SESSION_TIMEOUT', `${l.id} silent for ${hb} ms`));
      }
    }, Math.max(50, Math.floor(hb / 4)));
    this.#watchdog.unref();
  }

  #changed(): void {
    for (const fn of this.#listeners) fn();
    this.#wake();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  #settle(l: Link): void {
    if (!l.settled) {
      l.settled = true;
      this.#wake();
    }
  }

  #dial(l: Link): void {
    if (this.#closed) return;
    l.timer = undefined;
    SecureConnection.connect(l.host, l.port, {
      key: this.#o.key,
      id: this.#o.id,
      role: this.#o.role,
      handshakeTimeout: this.#o.connectTimeout ?? 1000,
      maxFrameBytes: this.#o.maxFrameBytes,
    }).then(
      (conn) => {
        if (this.#closed) return conn.close();
        l.conn = conn;
        conn.idSource = this.#ids;
        // A client pipelines; between nodes, messages are mostly one-way and leave every tick.
        if (this.#o.role === 'client') conn.sendWindow = CLIENT_SEND_WINDOW;
        conn.onStray = (m) => this.#stray(conn, m);
        l.ready = false;
        l.failures = 0;
        l.lastError = undefined;
        conn.on('message', (m) => {
          if (m.t === T.HB) {
            // 0 (a node that does not say) leaves the limit unknown
            const limit = m.n1 > 0 ? m.n1 : Infinity;
            if (limit !== l.valueLimit) {
              l.valueLimit = limit;
              this.#valueLimit = Math.min(...[...this.#links.values()].map((x) => x.valueLimit));
            }
            const ready = (m.f & F.READY) !== 0;
            this.#settle(l);
            if (ready !== l.ready) {
              l.ready = ready;
              this.#changed();
            }
          } else this.#o.onMessage?.(l.id, m, conn);
        });
        conn.on('close', (err) => {
          const was = l.ready;
          l.conn = undefined;
          l.ready = false;
          l.lastError = err;
          if (was) this.#changed();
          else this.#wake();
          this.#retry(l, 50);
        });
        conn.start();
      },
      (err: Error) => {
        l.lastError = err;
        l.failures++;
        this.#settle(l);
        const auth = err instanceof SessionError && err.code === 'CORRAL_ERR_SESSION_AUTH';
        this.#retry(l, auth ? 2000 : Math.min(1000, 50 * 2 ** Math.min(l.failures, 5)));
      },
    );
  }

  #retry(l: Link, ms: number): void {
    if (this.#closed || l.timer !== undefined) return;
    l.timer = setTimeout(() => this.#dial(l), ms);
    l.timer.unref();
  }

  /**
   * A response whose request is not pending on the connection it came on: a
   * replica answering a write the client sent to the coordinator (whose id
   * the answer names in `s`). Ids are unique across these connections, so
   * it can only match the request it answers; anything else (an answer that
   * came after its timeout) is dropped.
   */
  #stray(from: SecureConnection, m: Msg): void {
    const hinted = this.#links.get(m.s)?.conn;
    if (hinted !== undefined && hinted !== from && hinted.settle(m)) return;
    for (const l of this.#links.values()) if (l.conn !== undefined && l.conn !== from && l.conn !== hinted && l.conn.settle(m)) return;
  }

  /**
   * The smallest value limit (`sessions.maxValueBytes`) any peer has announced; Infinity when none has. A client
   * checks values against it, so a set is refused before it leaves rather than stored by some owners only.
   */
  get valueLimit(): number {
    return this.#valueLimit;
  }

  isLive(id: string): boolean {
    const l = this.#links.get(id);
    return l !== undefined && l.ready && l.conn !== undefined && !l.conn.closed;
  }

  isConnected(id: string): boolean {
    const l = this.#links.get(id);
    return l?.conn !== undefined && !l.conn.closed;
  }

  conn(id: string): SecureConnection | undefined {
    const l = this.#links.get(id);
    return l?.conn !== undefined && !l.conn.closed ? l.conn : undefined;
  }

  lastError(id: string): Error | undefined {
    return this.#links.get(id)?.lastError;
  }

  liveIds(): string[] {
    return this.ids.filter((id) => this.isLive(id));
  }

  /** Closes the connection to a peer that failed a request; it is redialled. */
  fail(id: string, err: Error): void {
    this.#links.get(id)?.conn?.close(err);
  }

  request(id: string, m: Msg, timeoutMs: number, stream?: StreamHandler): Promise<Msg> {
    const c = this.conn(id);
    if (c === undefined) return Promise.reject(this.#noConnection(id));
    return c.request(m, timeoutMs, stream);
  }

  /** `request` with a callback. */
  call(id: string, m: Msg, timeoutMs: number, cb: (err: Error | undefined, r: Msg | undefined) => void): void {
    const c = this.conn(id);
    if (c === undefined) cb(this.#noConnection(id), undefined);
    else c.call(m, timeoutMs, cb);
  }

  #noConnection(id: string): Error {
    const last = this.lastError(id);
    return last instanceof SessionError && last.code === 'CORRAL_ERR_SESSION_AUTH'
      ? last
      : new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', `no connection to ${id}${last ? ` (${last.message})` : ''}`);
  }

  /** Resolves once `pred()` holds (checked on every change), or after `timeoutMs` regardless. */
  waitFor(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (pred()) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(ok);
      };
      this.#waiters.add(check);
    });
  }

  /** Drops every connection and forgets what was heard; allSettled() turns true again once each peer answered or failed anew. */
  redialAll(): void {
    for (const l of this.#links.values()) {
      l.settled = false;
      if (l.conn !== undefined) l.conn.close(new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', 'redialling'));
      else if (l.timer === undefined) this.#dial(l);
    }
  }

  /** Every link has either heard a first heartbeat or failed its first dial. */
  allSettled(): boolean {
    return [...this.#links.values()].every((l) => l.settled);
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#closed = true;
    if (this.#watchdog !== undefined) clearInterval(this.#watchdog);
    for (const l of this.#links.values()) {
      if (l.timer !== undefined) clearTimeout(l.timer);
      l.conn?.close();
    }
    this.#wake();
  }
}

/** Static membership: the configured peer list, liveness from heartbeats. */
export class StaticMembership implements Membership {
  readonly self: string | undefined;
  readonly members: readonly string[];
  readonly #links: PeerLinks;
  readonly #selfLive: () => boolean;

  constructor(members: readonly string[], links: PeerLinks, self?: string, selfLive: () => boolean = () => true) {
    this.members = members;
    this.#links = links;
    this.self = self;
    this.#selfLive = selfLive;
  }

  isLive(id: string): boolean {
    return id === this.self ? this.#selfLive() : this.#links.isLive(id);
  }

  onChange(listener: () => void): () => void {
    return this.#links.onChange(listener);
  }
}

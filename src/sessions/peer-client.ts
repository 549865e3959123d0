/**
 * The client of the `peer` store (and its partition resolver, seed 001): it
 * knows every peer, computes a key's owners itself from the same hash ring
 * the nodes use, and talks straight to them: a plain set to every live owner
 * at once, anything else to the first live owner, and when that owner fails
 * or times out, to the next owner within the same call.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { checkKey, checkValue, isSessionErrorCode, SessionError } from './errors.js';
import { PeerLinks } from './links.js';
import { joinId, type Membership } from './membership.js';
import { HashRing } from './ring.js';
import type { CasResult, SessionEntry, SessionStats, SessionStore, SetOptions } from './types.js';
import { F, msg, T, type Msg } from './wire.js';

export type PeerAddress = string | { readonly host: string; readonly port: number };

export interface PeerClientOptions {
  /** Every state-service address (`sessions.peers`), as `host:port` or `{ host, port }`. */
  readonly peers: readonly PeerAddress[];
  /** The shared secret (`cluster.key`). */
  readonly key: string;
  /** Copies of each session; must match the nodes' `sessions.replicas` (default 2). */
  readonly replicas?: number;
  /** Bound on one attempt against one node (default 2 s). */
  readonly timeout?: number;
  /** Bound on waiting for a first live peer (default 2 s). */
  readonly connectTimeout?: number;
  readonly maxValueBytes?: number;
  /** A label for this client in the peers' logs (a random suffix keeps each client's id unique). */
  readonly name?: string;
}

const toId = (p: PeerAddress): string => (typeof p === 'string' ? p : joinId(p.host, p.port));

export class PeerClient implements SessionStore {
  readonly kind = 'peer' as const;
  readonly #links: PeerLinks;
  readonly #ring: HashRing;
  readonly #replicas: number;
  readonly #timeout: number;
  readonly #connectTimeout: number;
  readonly #maxValueBytes: number;
  #closed = false;
  readonly #scratch: string[] = [];
  readonly #c = { hits: 0, misses: 0, sets: 0, conflicts: 0, destroys: 0, evictions: 0, expired: 0, errors: 0, failovers: 0 };
  readonly membership: Membership;

  constructor(options: PeerClientOptions) {
    const ids = [...new Set(options.peers.map(toId))];
    if (ids.length === 0) throw new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', 'no peers given');
    this.#ring = new HashRing(ids);
    this.#replicas = options.replicas ?? 2;
    this.#timeout = options.timeout ?? 2000;
    this.#connectTimeout = options.connectTimeout ?? 2000;
    this.#maxValueBytes = options.maxValueBytes ?? 1024 * 1024;
    this.#links = new PeerLinks(ids, {
      key: options.key,
      // Unique even when several clients share a name: a replica that answers a write directly finds the client by it.
      id: `${options.name ?? `client:${hostname()}:${process.pid}`}:${randomBytes(8).toString('hex')}`,
      role: 'client',
      connectTimeout: Math.min(this.#timeout, 1000),
      maxFrameBytes: this.#maxValueBytes + 96 * 1024,
    });
    const links = this.#links;
    this.membership = { self: undefined, members: this.#ring.members, isLive: (id) => links.isLive(id), onChange: (fn) => links.onChange(fn) };
    this.#links.start();
  }

  /** Resolves once at least one peer is live (bounded by `connectTimeout`); false if none is. */
  ready(timeoutMs = this.#connectTimeout): Promise<boolean> {
    return this.#links.waitFor(() => this.#links.liveIds().length > 0, timeoutMs);
  }

  readonly #isLive = (id: string): boolean => this.#links.isLive(id);

  async #owners(key: string): Promise<string[]> {
    if (this.#closed) throw new SessionError('CORRAL_ERR_SESSION_CLOSED', 'session client is closed');
    let owners = this.#ring.owners(key, this.#replicas, this.#isLive);
    if (owners.length === 0) {
      // Starting up, or every owner just failed: wait (bounded) for one to be live.
      await this.#links.waitFor(() => this.#ring.owners(key, this.#replicas, this.#isLive).length > 0 || (this.#links.allSettled() && this.#links.liveIds().length === 0), this.#connectTimeout);
      owners = this.#ring.owners(key, this.#replicas, this.#isLive);
    }
    if (owners.length === 0) {
      const auth = this.#ring.members.map((id) => this.#links.lastError(id)).find((e) => e instanceof SessionError && e.code === 'CORRAL_ERR_SESSION_AUTH');
      if (auth !== undefined) throw auth;
      throw new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', `no live session peer owns the key (peers: ${this.#ring.members.join(', ')})`);
    }
    return owners;
  }

  /**
   * Sends to the key's first live owner, failing over to the next ones, and
   * resolves with `map(response)`. The common case (an owner is live and
   * answers) makes one promise and no async frame.
   */
  #call<R>(key: string, m: Msg, map: (r: Msg, inDoubt: boolean) => R): Promise<R> {
    const owners = this.#closed ? [] : this.#ring.owners(key, this.#replicas, this.#isLive);
    const first = owners[0];
    const doubt = { inDoubt: false };
    if (first === undefined) return this.#callSlow(key, m, undefined, undefined, doubt).then((r) => map(r, doubt.inDoubt));
    return new Promise<R>((resolve, reject) => {
      this.#links.call(first, m, this.#timeout, (err, r) => {
        try {
          if (err === undefined && r !== undefined && r.t !== T.R_ERR) return resolve(map(r, false));
          // No answer (closed, timed out): the request may have been applied before the owner failed.
          if (err !== undefined) doubt.inDoubt = true;
          const failed = err !== undefined ? this.#retryable(err) : this.#settle(r as Msg);
          this.#callSlow(key, m, first, failed, doubt)
            .then((res) => map(res, doubt.inDoubt))
            .then(resolve, reject);
        } catch (e) {
          reject(e as Error);
        }
      });
    });
  }

  /** A peer's error reply: a retryable one is returned, any other thrown. */
  #settle(r: Msg): Error {
    const err = new SessionError(isSessionErrorCode(r.s) ? r.s : 'CORRAL_ERR_SESSION_UNAVAILABLE', r.v ?? 'peer error');
    return this.#retryable(err);
  }

  /** Returns errors worth trying the next owner for; throws the others. */
  #retryable(err: unknown): Error {
    if (err instanceof SessionError && err.code !== 'CORRAL_ERR_SESSION_UNAVAILABLE' && err.code !== 'CORRAL_ERR_SESSION_TIMEOUT' && err.code !== 'CORRAL_ERR_SESSION_PROTOCOL') {
      this.#c.errors++;
      throw err;
    }
    return err as Error;
  }

  /** After owner `tried` failed with `failed` (or none was live): every other owner in turn. */
  async #callSlow(key: string, m: Msg, tried: string | undefined, failed: Error | undefined, doubt: { inDoubt: boolean }): Promise<Msg> {
    const owners = (await this.#owners(key)).filter((o) => o !== tried);
    let last = failed;
    for (const [i, o] of owners.entries()) {
      if (tried !== undefined || i > 0) this.#c.failovers++;
      try {
        const r = await this.#links.request(o, { ...m }, this.#timeout);
        if (r.t === T.R_ERR) {
          last = this.#settle(r);
          continue;
        }
        return r;
      } catch (err) {
        // A slow owner is not dropped here (that would fail every request in flight on it); heartbeats decide liveness.
        doubt.inDoubt = true;
        last = this.#retryable(err);
      }
    }
    this.#c.errors++;
    throw last ?? new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', 'no owner answered');
  }

  /** Against this client's limit and the smallest any node has announced: every owner must be able to take the value. */
  #checkValue(value: string): void {
    const limit = Math.min(this.#maxValueBytes, this.#links.valueLimit);
    // a UTF-16 code unit is at most 3 UTF-8 bytes: count bytes only for long values
    if (value.length * 3 > limit) checkValue(value, limit);
  }

  get(key: string): Promise<SessionEntry | undefined> {
    try {
      checkKey(key);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.#call(key, msg(T.GET, { k: key }), (r) => {
      if ((r.f & F.FOUND) === 0) {
        this.#c.misses++;
        return undefined;
      }
      this.#c.hits++;
      return { value: r.v ?? '', version: r.n1, expiresAt: r.n2 };
    });
  }

  set(key: string, value: string, options?: SetOptions): Promise<number> {
    try {
      checkKey(key);
      this.#checkValue(value);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const ttl = options?.ttl ?? 0;
    // Reused: the owners are only walked synchronously below.
    const owners = this.#ring.owners(key, this.#replicas, this.#isLive, this.#scratch);
    if (owners.length < 2 || this.#closed) return this.#setOnCoordinator(key, value, ttl);
    return new Promise<number>((resolve, reject) => {
      let left = owners.length;
      let version = -1;
      let agreed = true;
      let fatal: Error | undefined;
      const fp = this.#ring.fingerprint(owners);
      const answered = (err: Error | undefined, r: Msg | undefined): void => {
        if (err !== undefined || r === undefined) agreed = false;
        else if (r.t === T.R_ERR) {
          agreed = false;
          try {
            this.#settle(r);
          } catch (e) {
            fatal = e as Error;
          }
        } else if (r.t !== T.R_OK || r.f !== 1 || (version !== -1 && r.n1 !== version)) agreed = false;
        else version = r.n1;
        if (--left > 0) return;
        if (fatal !== undefined) return reject(fatal);
        if (agreed) {
          this.#c.sets++;
          return resolve(version);
        }
        // An owner refused, failed or assigned another version (two writes crossed): the coordinator decides.
        this.#setOnCoordinator(key, value, ttl).then(resolve, reject);
      };
      for (const o of owners) this.#links.call(o, msg(T.SETALL, { k: key, v: value, n1: fp, n2: ttl }), this.#timeout, answered);
    });
  }

  /** A set decided by the key's first live owner, which replicates it before the answer. */
  #setOnCoordinator(key: string, value: string, ttl: number): Promise<number> {
    return this.#call(key, msg(T.SET, { k: key, v: value, f: F.DIRECT, n2: ttl }), (r) => {
      this.#c.sets++;
      return r.n1;
    });
  }

  setIfVersion(key: string, value: string, expected: number, options?: SetOptions): Promise<CasResult> {
    try {
      checkKey(key);
      this.#checkValue(value);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.#call(key, msg(T.SET, { k: key, v: value, f: F.CAS | F.DIRECT, n1: expected, n2: options?.ttl ?? 0 }), (r, inDoubt): CasResult => {
      if (r.t === T.R_CAS_FAIL) {
        if (inDoubt) {
          // The owner that failed may have applied this very write before the one that answered saw it:
          // a conflict now does not prove that the write was not applied.
          this.#c.errors++;
          throw new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', 'an owner failed with the write in flight: it may or may not have been applied');
        }
        this.#c.conflicts++;
        return { ok: false, version: r.n1 };
      }
      this.#c.sets++;
      return { ok: true, version: r.n1 };
    });
  }

  async destroy(key: string): Promise<void> {
    checkKey(key);
    await this.#call(key, msg(T.DEL, { k: key, f: F.DIRECT }), () => undefined);
    this.#c.destroys++;
  }

  async touch(key: string, options?: SetOptions): Promise<boolean> {
    checkKey(key);
    return this.#call(key, msg(T.TOUCH, { k: key, n2: options?.ttl ?? 0 }), (r) => r.f === 1);
  }

  /** Runs a request on every live node. */
  async #everyLive<R>(fn: (id: string) => Promise<R>): Promise<Map<string, R>> {
    if (this.#closed) throw new SessionError('CORRAL_ERR_SESSION_CLOSED', 'session client is closed');
    if (this.#links.liveIds().length === 0) await this.ready();
    const live = this.#links.liveIds();
    if (live.length === 0) throw new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', 'no live session peer');
    const out = new Map<string, R>();
    await Promise.all(live.map(async (id) => out.set(id, await fn(id))));
    return out;
  }

  async all(): Promise<Map<string, SessionEntry>> {
    const best = new Map<string, { v: string | null; n: number; e: number; o: string }>();
    await this.#everyLive((id) =>
      this.#links.request(id, msg(T.ALL), 60_000, {
        item: (m) => {
          const cur = best.get(m.k);
          if (cur === undefined || m.n1 > cur.n || (m.n1 === cur.n && m.s > cur.o)) best.set(m.k, { v: m.v, n: m.n1, e: m.n2, o: m.s });
        },
      }),
    );
    const now = Date.now();
    const out = new Map<string, SessionEntry>();
    for (const [k, r] of best) if (r.v !== null && r.e > now) out.set(k, { value: r.v, version: r.n, expiresAt: r.e });
    return out;
  }

  async length(): Promise<number> {
    return (await this.all()).size;
  }

  async clear(): Promise<void> {
    await this.#everyLive((id) => this.#links.request(id, msg(T.CLEAR), this.#timeout));
  }

  /** Each live node's own stats. */
  async nodeStats(): Promise<Map<string, SessionStats & Record<string, unknown>>> {
    const raw = await this.#everyLive((id) => this.#links.request(id, msg(T.STATS), this.#timeout));
    const out = new Map<string, SessionStats & Record<string, unknown>>();
    for (const [id, r] of raw) out.set(id, JSON.parse(r.s) as SessionStats & Record<string, unknown>);
    return out;
  }

  /** The keys one node holds (live sessions, not tombstones): for tests and operators. */
  async nodeKeys(id: string): Promise<string[]> {
    const keys: string[] = [];
    await this.#links.request(id, msg(T.DUMP), 60_000, { item: (m) => (m.f & F.TOMB) === 0 && keys.push(m.k) });
    return keys;
  }

  stats(): SessionStats {
    return {
      store: 'peer',
      sessions: -1,
      bytes: -1,
      ...this.#c,
      members: this.#ring.members.map((id) => ({ id, live: this.#links.isLive(id), self: false })),
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#links.close();
  }
}

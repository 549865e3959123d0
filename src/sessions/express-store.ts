/**
 * `CorralSessionStore`: an express-session `Store` (also usable with
 * @fastify/session) over any session store, by default a `PeerClient`.
 *
 * The resave race (two requests of one user load version v, both change
 * the session, the second save silently wins) is closed with
 * compare-and-set: `get` remembers the version it read (on the cookie
 * object, which express-session's change hash ignores) and `set` writes
 * only if that is still the stored version. On a conflict the default,
 * `merge`, redoes the write as a three-way merge of top-level properties:
 * properties this request changed are applied on top of what is stored
 * now; if both requests changed the same property, the save fails with
 * CORRAL_ERR_SESSION_CONFLICT. A save that changed nothing never conflicts.
 * (@fastify/session rebuilds the cookie object on every request, so the mark
 * is lost there and its saves are plain last-writer-wins `set`s.)
 *
 * @example
 *   app.use(session({
 *     store: new CorralSessionStore({ peers: ['10.0.0.11:42425', '10.0.0.12:42425'], key: process.env.CORRAL_CLUSTER_KEY }),
 *     secret: process.env.SESSION_SECRET, resave: false, saveUninitialized: false,
 *   }));
 */
import { EventEmitter } from 'node:events';
import type { SessionData, Store as ExpressStore } from 'express-session';
import { SessionError } from './errors.js';
import { PeerClient, type PeerAddress, type PeerClientOptions } from './peer-client.js';
import type { SessionStore } from './types.js';

// express-session's Store supplies regenerate/load/createSession; without express-session installed
// (e.g. with @fastify/session) an EventEmitter is enough.
let Base = EventEmitter as unknown as typeof ExpressStore;
try {
  Base = (await import('express-session')).default.Store;
} catch {
  // express-session is an optional peer
}

type Json = Record<string, unknown>;
export type ConflictPolicy = 'merge' | 'error' | 'overwrite' | ((stored: Json, mine: Json) => Json);

export interface CorralSessionStoreOptions extends Partial<Omit<PeerClientOptions, 'peers' | 'key'>> {
  /** State-service addresses; with `key`, the store is a PeerClient. */
  readonly peers?: readonly PeerAddress[];
  readonly key?: string;
  /** Any other store (MemoryStore, RedisStore, a shared PeerClient). */
  readonly store?: SessionStore;
  /** TTL when the session cookie has no expiry (ms); the store's default otherwise. */
  readonly ttl?: number;
  /** What `set` does when another request saved first (default 'merge'). */
  readonly onConflict?: ConflictPolicy;
}

type Cb<T = unknown> = (err?: unknown, result?: T) => void;

/** Marks on the cookie object: its JSON (express-session's Cookie#toJSON) and the change hash leave them out. */
const VERSION = 'corralVersion';
const BODY = 'corralBody';

interface Marked {
  [VERSION]?: number;
  [BODY]?: string;
  expires?: Date | string | null;
  maxAge?: number | null;
}

function withoutCookie(sess: Json): string {
  return JSON.stringify(sess, function (this: unknown, k, v: unknown) {
    return this === sess && k === 'cookie' ? undefined : v;
  });
}

function serialize(sess: Json): string {
  return JSON.stringify(sess, (k, v: unknown) => (k === VERSION || k === BODY ? undefined : v));
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export class CorralSessionStore extends Base {
  readonly store: SessionStore;
  readonly #ttl: number | undefined;
  readonly #onConflict: ConflictPolicy;
  readonly #owned: boolean;
  conflicts = 0;
  merges = 0;

  constructor(options: CorralSessionStoreOptions) {
    super();
    if (options.store !== undefined) {
      this.store = options.store;
      this.#owned = false;
    } else {
      if (options.peers === undefined || options.key === undefined) throw new TypeError('CorralSessionStore needs { peers, key } or { store }');
      this.store = new PeerClient({ ...options, peers: options.peers, key: options.key });
      this.#owned = true;
    }
    this.#ttl = options.ttl;
    this.#onConflict = options.onConflict ?? 'merge';
  }

  #ttlOf(sess: Json): number | undefined {
    const c = sess.cookie as Marked | undefined;
    if (c?.expires !== undefined && c.expires !== null) {
      const t = new Date(c.expires).getTime() - Date.now();
      if (Number.isFinite(t)) return Math.max(1000, t);
    }
    if (typeof c?.maxAge === 'number') return Math.max(1000, c.maxAge);
    return this.#ttl;
  }

  override get(sid: string, cb: Cb<SessionData | null>): void {
    this.store.get(sid).then((e) => {
      if (e === undefined) return cb(null, null);
      let sess: Json;
      try {
        sess = JSON.parse(e.value) as Json;
      } catch (err) {
        return cb(err);
      }
      if (typeof sess.cookie === 'object' && sess.cookie !== null) {
        const c = sess.cookie as Marked;
        c[VERSION] = e.version;
        c[BODY] = withoutCookie(sess);
      }
      cb(null, sess as unknown as SessionData);
    }, cb);
  }

  override set(sid: string, session: SessionData, cb: Cb = () => {}): void {
    this.#save(sid, session as unknown as Json).then(() => cb(null), cb);
  }

  async #save(sid: string, sess: Json): Promise<void> {
    const ttl = this.#ttlOf(sess);
    const opts = ttl === undefined ? {} : { ttl };
    const mark = (typeof sess.cookie === 'object' && sess.cookie !== null ? sess.cookie : undefined) as Marked | undefined;
    const expected = mark?.[VERSION];
    const value = serialize(sess);
    if (typeof expected !== 'number' || this.#onConflict === 'overwrite') {
      const v = await this.store.set(sid, value, opts);
      if (mark !== undefined) {
        mark[VERSION] = v;
        mark[BODY] = withoutCookie(sess);
      }
      return;
    }
    let want = expected;
    let next = value;
    for (let attempt = 0; attempt < 5; attempt++) {
      const r = await this.store.setIfVersion(sid, next, want, opts);
      if (r.ok) {
        if (mark !== undefined) {
          mark[VERSION] = r.version;
          mark[BODY] = withoutCookie(JSON.parse(next) as Json);
        }
        return;
      }
      this.conflicts++;
      const body = withoutCookie(sess);
      if (body === mark?.[BODY]) {
        // This request changed nothing: the other save stands; keep its expiry fresh.
        await this.store.touch(sid, opts);
        return;
      }
      const current = r.version === 0 ? undefined : await this.store.get(sid);
      if (current === undefined) {
        // destroyed (or expired) meanwhile: do not resurrect it behind the other request's back
        throw new SessionError('CORRAL_ERR_SESSION_CONFLICT', `session ${sid} was destroyed by another request`);
      }
      const stored = JSON.parse(current.value) as Json;
      let merged: Json;
      if (this.#onConflict === 'error') {
        throw new SessionError('CORRAL_ERR_SESSION_CONFLICT', `session ${sid} changed since it was read (version ${expected}, now ${current.version})`);
      } else if (typeof this.#onConflict === 'function') {
        merged = this.#onConflict(stored, JSON.parse(value) as Json);
      } else {
        merged = threeWay(JSON.parse(mark?.[BODY] ?? '{}') as Json, JSON.parse(value) as Json, stored, sid);
      }
      this.merges++;
      next = serialize(merged);
      want = current.version;
    }
    throw new SessionError('CORRAL_ERR_SESSION_CONFLICT', `session ${sid} kept changing under concurrent saves`);
  }

  override destroy(sid: string, cb: Cb = () => {}): void {
    this.store.destroy(sid).then(() => cb(null), cb);
  }

  override touch(sid: string, session: SessionData, cb: Cb = () => {}): void {
    const ttl = this.#ttlOf(session as unknown as Json);
    this.store.touch(sid, ttl === undefined ? {} : { ttl }).then(() => cb(null), cb);
  }

  override all(cb: Cb<Record<string, SessionData>>): void {
    this.store.all().then((m) => {
      const out: Record<string, SessionData> = {};
      for (const [sid, e] of m) {
        try {
          out[sid] = JSON.parse(e.value) as SessionData;
        } catch {
          // not a session written by this adapter
        }
      }
      cb(null, out);
    }, cb);
  }

  override length(cb: Cb<number>): void {
    this.store.length().then((n) => cb(null, n), cb);
  }

  override clear(cb: Cb = () => {}): void {
    this.store.clear().then(() => cb(null), cb);
  }

  /** Closes the underlying client when this store created it. */
  async close(): Promise<void> {
    if (this.#owned) await this.store.close();
  }
}

/** Applies the top-level properties `mine` changed relative to `base` onto `stored`. */
function threeWay(base: Json, mine: Json, stored: Json, sid: string): Json {
  const out: Json = { ...stored, cookie: mine.cookie };
  for (const k of new Set([...Object.keys(base), ...Object.keys(mine)])) {
    if (k === 'cookie' || same(mine[k], base[k])) continue;
    if (!same(stored[k], base[k]) && !same(stored[k], mine[k])) {
      throw new SessionError('CORRAL_ERR_SESSION_CONFLICT', `session ${sid}: property "${k}" was changed by two requests at once`);
    }
    if (k in mine) out[k] = mine[k];
    else delete out[k];
  }
  return out;
}

/**
 * The `redis` store: one hash per session under a key prefix
 * (`v` value, `n` version), TTL by Redis expiry, compare-and-set in a Lua
 * script, and optional AES-256-GCM value encryption with a key derived from
 * `cluster.key`.
 *
 * Redis going away is never silent: commands fail fast with
 * CORRAL_ERR_SESSION_UNAVAILABLE (no offline queue; a bounded wait for the
 * reconnect) and the client reconnects on its own when Redis returns.
 */
import { Redis } from 'ioredis';
import { ValueSealer } from './crypto.js';
import { checkKey, checkValue, SessionError } from './errors.js';
import type { CasResult, SessionEntry, SessionStats, SessionStore, SetOptions } from './types.js';

export interface RedisStoreOptions {
  readonly url?: string;
  readonly prefix?: string;
  readonly ttl?: number;
  readonly maxValueBytes?: number;
  /** Encrypt values with a key derived from this secret (`sessions.encrypt` with `cluster.key`). */
  readonly encryptKey?: string;
  /** Bound on one command, and on waiting for a reconnect (default 2 s). */
  readonly timeout?: number;
}

// KEYS[1] key; ARGV value, ttl ms, expected version (-1: any). Returns {written 0|1, version}.
const SET_LUA = `
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local want = tonumber(ARGV[3])
if want >= 0 and n ~= want then return {0, n} end
n = n + 1
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'n', n)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, n}`;

// Returns nil or {value, version, pttl}.
const GET_LUA = `
local r = redis.call('HMGET', KEYS[1], 'v', 'n')
if not r[2] then return nil end
return {r[1], r[2], redis.call('PTTL', KEYS[1])}`;

interface Scripts {
  corralSet(key: string, value: string, ttl: number, expected: number): Promise<[number, number]>;
  corralGet(key: string): Promise<[string, string, number] | null>;
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

export class RedisStore implements SessionStore {
  readonly kind = 'redis' as const;
  readonly redis: Redis;
  readonly #scripts: Scripts;
  readonly #prefix: string;
  readonly #ttl: number;
  readonly #maxValueBytes: number;
  readonly #timeout: number;
  readonly #sealer: ValueSealer | undefined;
  #closed = false;
  #count = -1;
  readonly #c = { hits: 0, misses: 0, sets: 0, conflicts: 0, destroys: 0, evictions: 0, expired: 0, errors: 0 };

  constructor(options: RedisStoreOptions = {}) {
    this.#prefix = options.prefix ?? 'corral:sess:';
    this.#ttl = options.ttl ?? 30 * 60_000;
    this.#maxValueBytes = options.maxValueBytes ?? 1024 * 1024;
    this.#timeout = options.timeout ?? 2000;
    this.#sealer = options.encryptKey === undefined ? undefined : new ValueSealer(options.encryptKey);
    this.redis = new Redis(options.url ?? 'redis://127.0.0.1:6379', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: this.#timeout,
      connectTimeout: this.#timeout,
      retryStrategy: (times) => Math.min(50 * times, 1000),
      lazyConnect: false,
    });
    // Errors reach callers through their commands; the connection's own 'error' events must not crash the process.
    this.redis.on('error', () => {});
    this.redis.defineCommand('corralSet', { numberOfKeys: 1, lua: SET_LUA });
    this.redis.defineCommand('corralGet', { numberOfKeys: 1, lua: GET_LUA });
    this.#scripts = this.redis as unknown as Scripts;
  }

  /** Waits (bounded) for a usable connection. */
  async #ready(): Promise<void> {
    if (this.#closed) throw new SessionError('CORRAL_ERR_SESSION_CLOSED', 'redis store is closed');
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.redis.off('ready', onReady);
        reject(new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', `redis is unreachable (status ${this.redis.status})`));
      }, this.#timeout);
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.redis.once('ready', onReady);
    });
  }

  async #run<T>(op: () => Promise<T>): Promise<T> {
    try {
      await this.#ready();
      return await op();
    } catch (err) {
      this.#c.errors++;
      if (err instanceof SessionError) throw err;
      const msg = (err as Error).message ?? String(err);
      const code = /timed out/i.test(msg) ? 'CORRAL_ERR_SESSION_TIMEOUT' : 'CORRAL_ERR_SESSION_UNAVAILABLE';
      throw new SessionError(code, `redis: ${msg}`, { cause: err });
    }
  }

  #seal(key: string, value: string): string {
    return this.#sealer === undefined ? value : this.#sealer.seal(value, key);
  }

  #open(key: string, stored: string): string | undefined {
    if (this.#sealer === undefined) return stored;
    try {
      return this.#sealer.open(stored, key);
    } catch {
      // A value that does not decrypt (tampered, or written with another key) is never handed out.
      this.#c.errors++;
      return undefined;
    }
  }

  async get(key: string): Promise<SessionEntry | undefined> {
    checkKey(key);
    const r = await this.#run(() => this.#scripts.corralGet(this.#prefix + key));
    const value = r === null ? undefined : this.#open(key, r[0]);
    if (r === null || value === undefined) {
      this.#c.misses++;
      return undefined;
    }
    this.#c.hits++;
    const pttl = Number(r[2]);
    return { value, version: Number(r[1]), expiresAt: pttl < 0 ? Number.MAX_SAFE_INTEGER : Date.now() + pttl };
  }

  async set(key: string, value: string, options?: SetOptions): Promise<number> {
    const r = await this.#write(key, value, -1, options);
    return r.version;
  }

  async setIfVersion(key: string, value: string, expected: number, options?: SetOptions): Promise<CasResult> {
    return this.#write(key, value, expected, options);
  }

  async #write(key: string, value: string, expected: number, options?: SetOptions): Promise<CasResult> {
    checkKey(key);
    checkValue(value, this.#maxValueBytes);
    const stored = this.#seal(key, value);
    const ttl = Math.max(1, Math.round(options?.ttl ?? this.#ttl));
    const [written, version] = await this.#run(() => this.#scripts.corralSet(this.#prefix + key, stored, ttl, expected));
    if (written === 1) {
      this.#c.sets++;
      return { ok: true, version: Number(version) };
    }
    this.#c.conflicts++;
    return { ok: false, version: Number(version) };
  }

  async destroy(key: string): Promise<void> {
    checkKey(key);
    await this.#run(() => this.redis.del(this.#prefix + key));
    this.#c.destroys++;
  }

  async touch(key: string, options?: SetOptions): Promise<boolean> {
    checkKey(key);
    const ttl = Math.max(1, Math.round(options?.ttl ?? this.#ttl));
    return (await this.#run(() => this.redis.pexpire(this.#prefix + key, ttl))) === 1;
  }

  async #keys(): Promise<string[]> {
    return this.#run(async () => {
      const out: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${escapeGlob(this.#prefix)}*`, 'COUNT', 1000);
        cursor = next;
        out.push(...keys);
      } while (cursor !== '0');
      return out;
    });
  }

  async all(): Promise<Map<string, SessionEntry>> {
    const keys = await this.#keys();
    const out = new Map<string, SessionEntry>();
    for (let i = 0; i < keys.length; i += 500) {
      const batch = keys.slice(i, i + 500);
      const rows = await this.#run(() => Promise.all(batch.map((k) => this.#scripts.corralGet(k))));
      const now = Date.now();
      rows.forEach((r, j) => {
        if (r === null) return;
        const key = (batch[j] as string).slice(this.#prefix.length);
        const value = this.#open(key, r[0]);
        if (value === undefined) return;
        const pttl = Number(r[2]);
        out.set(key, { value, version: Number(r[1]), expiresAt: pttl < 0 ? Number.MAX_SAFE_INTEGER : now + pttl });
      });
    }
    return out;
  }

  async length(): Promise<number> {
    this.#count = (await this.#keys()).length;
    return this.#count;
  }

  async clear(): Promise<void> {
    const keys = await this.#keys();
    for (let i = 0; i < keys.length; i += 500) {
      const batch = keys.slice(i, i + 500);
      await this.#run(() => this.redis.unlink(...batch));
    }
  }

  stats(): SessionStats {
    return { store: 'redis', sessions: this.#count, bytes: -1, ...this.#c };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.redis.disconnect();
  }
}

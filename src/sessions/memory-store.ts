/**
 * The embedded `memory` store: one process, TTL expiry, and an LRU bound on
 * entries and bytes. Evictions are counted so an operator sees when the bound
 * bites.
 */
import { checkKey, checkValue, SessionError } from './errors.js';
import type { CasResult, SessionEntry, SessionStats, SessionStore, SetOptions } from './types.js';

export interface MemoryStoreOptions {
  /** Default TTL in ms (`sessions.ttl`, 30 min). */
  readonly ttl?: number;
  readonly maxValueBytes?: number;
  /** LRU bound on the number of entries (default unlimited). */
  readonly maxEntries?: number;
  /** LRU bound on the bytes of keys and values (default unlimited). */
  readonly maxBytes?: number;
  /** How often expired entries are swept (default 5 s). */
  readonly sweepInterval?: number;
  readonly now?: () => number;
}

interface Slot {
  value: string;
  version: number;
  expiresAt: number;
  bytes: number;
}

export class MemoryStore implements SessionStore {
  readonly kind = 'memory' as const;
  readonly #ttl: number;
  readonly #maxValueBytes: number;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  /** Insertion order is recency order: the first entry is the least recently used. */
  readonly #map = new Map<string, Slot>();
  #bytes = 0;
  #closed = false;
  readonly #sweeper: NodeJS.Timeout;
  readonly #c = { hits: 0, misses: 0, sets: 0, conflicts: 0, destroys: 0, evictions: 0, expired: 0, errors: 0 };

  constructor(options: MemoryStoreOptions = {}) {
    this.#ttl = options.ttl ?? 30 * 60_000;
    this.#maxValueBytes = options.maxValueBytes ?? 1024 * 1024;
    this.#maxEntries = options.maxEntries ?? Infinity;
    this.#maxBytes = options.maxBytes ?? Infinity;
    this.#now = options.now ?? Date.now;
    this.#sweeper = setInterval(() => this.sweep(), options.sweepInterval ?? 5000);
    this.#sweeper.unref();
  }

  #live(key: string): Slot | undefined {
    const slot = this.#map.get(key);
    if (slot === undefined) return undefined;
    if (slot.expiresAt <= this.#now()) {
      this.#remove(key, slot);
      this.#c.expired++;
      return undefined;
    }
    return slot;
  }

  #remove(key: string, slot: Slot): void {
    this.#map.delete(key);
    this.#bytes -= slot.bytes;
  }

  #check(): void {
    if (this.#closed) throw new SessionError('CORRAL_ERR_SESSION_CLOSED', 'memory store is closed');
  }

  async get(key: string): Promise<SessionEntry | undefined> {
    this.#check();
    checkKey(key);
    const slot = this.#live(key);
    if (slot === undefined) {
      this.#c.misses++;
      return undefined;
    }
    this.#c.hits++;
    // bump recency
    this.#map.delete(key);
    this.#map.set(key, slot);
    return { value: slot.value, version: slot.version, expiresAt: slot.expiresAt };
  }

  async set(key: string, value: string, options?: SetOptions): Promise<number> {
    this.#check();
    checkKey(key);
    const bytes = checkValue(value, this.#maxValueBytes);
    const cur = this.#live(key);
    return this.#write(key, value, bytes, (cur?.version ?? 0) + 1, options);
  }

  async setIfVersion(key: string, value: string, expected: number, options?: SetOptions): Promise<CasResult> {
    this.#check();
    checkKey(key);
    const bytes = checkValue(value, this.#maxValueBytes);
    const cur = this.#live(key);
    const version = cur?.version ?? 0;
    if (version !== expected) {
      this.#c.conflicts++;
      return { ok: false, version };
    }
    return { ok: true, version: this.#write(key, value, bytes, version + 1, options) };
  }

  #write(key: string, value: string, valueBytes: number, version: number, options?: SetOptions): number {
    const old = this.#map.get(key);
    if (old !== undefined) this.#remove(key, old);
    const slot: Slot = { value, version, expiresAt: this.#now() + (options?.ttl ?? this.#ttl), bytes: valueBytes + Buffer.byteLength(key) };
    this.#map.set(key, slot);
    this.#bytes += slot.bytes;
    this.#c.sets++;
    this.#evict(key);
    return version;
  }

  /** Drops least recently used entries (never `keep`, the one just written) until within bounds. */
  #evict(keep: string): void {
    if (this.#map.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) return;
    for (const [key, slot] of this.#map) {
      if (this.#map.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) break;
      if (key === keep) continue;
      this.#remove(key, slot);
      this.#c.evictions++;
    }
  }

  async destroy(key: string): Promise<void> {
    this.#check();
    checkKey(key);
    const slot = this.#map.get(key);
    if (slot !== undefined) this.#remove(key, slot);
    this.#c.destroys++;
  }

  async touch(key: string, options?: SetOptions): Promise<boolean> {
    this.#check();
    checkKey(key);
    const slot = this.#live(key);
    if (slot === undefined) return false;
    slot.expiresAt = this.#now() + (options?.ttl ?? this.#ttl);
    return true;
  }

  async all(): Promise<Map<string, SessionEntry>> {
    this.#check();
    const out = new Map<string, SessionEntry>();
    const now = this.#now();
    for (const [key, s] of this.#map) {
      if (s.expiresAt > now) out.set(key, { value: s.value, version: s.version, expiresAt: s.expiresAt });
    }
    return out;
  }

  async length(): Promise<number> {
    this.sweep();
    return this.#map.size;
  }

  async clear(): Promise<void> {
    this.#check();
    this.#map.clear();
    this.#bytes = 0;
  }

  /** Removes expired entries; called on a timer. */
  sweep(): void {
    const now = this.#now();
    for (const [key, slot] of this.#map) {
      if (slot.expiresAt <= now) {
        this.#remove(key, slot);
        this.#c.expired++;
      }
    }
  }

  stats(): SessionStats {
    return { store: 'memory', sessions: this.#map.size, bytes: this.#bytes, ...this.#c };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
  }
}

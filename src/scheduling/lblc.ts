import { leastConnIndex } from './least-conn.js';
import { isAvailable, isPickable } from './pickable.js';
import type { BackendView, PickRequest, Scheduler, ServerView } from './types.js';

/** Idle time after which a host's entry is forgotten: 6 minutes, as LVS's ENTRY_TIMEOUT and Corral's `lblcExpire` default. */
export const DEFAULT_LBLC_EXPIRE = 6 * 60 * 1000;
/** Table bound: 16384 hosts, LVS's `max_size` (1024 buckets × 16) beyond which it prunes. */
export const DEFAULT_LBLC_MAX_ENTRIES = 16384;
/** Picks between two sweeps of the table's expired head. */
const SWEEP_EVERY = 256;

export interface LblcOptions {
  /** Milliseconds a host's entry survives without use (default 6 min). */
  readonly expire?: number;
  /** Most hosts remembered (default 16384); the least recently used goes first. */
  readonly maxEntries?: number;
}

/**
 * Locality-based least connection, after LVS `ip_vs_lblc.c`, keyed on
 * `request.host` so that one site's requests stay on one server (and in its
 * caches).
 *
 * A table maps host → server. A host whose server is still pickable stays
 * there unless that server is *overloaded* (LVS `is_overloaded`): its
 * `active` exceeds its `weight` **and** some other pickable server is below
 * half load (`active × 2 < weight`, strictly, as LVS writes it). Otherwise —
 * new host, server gone, or overloaded — the host goes to the weighted
 * least-connection server ({@link createLeastConn}'s rule) and the table
 * records it.
 *
 * A retry that merely excludes the host's server is served by least
 * connection without rewriting the entry: one failed attempt does not move
 * a site.
 *
 * Entries idle for more than `expire` ms count as absent. The table is
 * pruned lazily: every 256 picks its least-recently-used head is swept of
 * expired entries, and an insert into a full table evicts the least recently
 * used host. The table is kept in use order (a hit moves its entry to the
 * back), so both are O(1) amortized; the only allocation is one entry per
 * new host (an evicted entry is reused).
 *
 * Picks among `view.primaries` only; {@link createScheduler} adds backups.
 *
 * @example
 * ```ts
 * const lblc = createLblc({ expire: 60_000 });
 * lblc.pick(view, { ...request, host: 'shop.example', now }); // same server until it overloads or the host idles 60 s
 * ```
 */
export function createLblc(options: LblcOptions = {}): LblcScheduler {
  const expire = options.expire ?? DEFAULT_LBLC_EXPIRE;
  const maxEntries = options.maxEntries ?? DEFAULT_LBLC_MAX_ENTRIES;
  if (!(expire >= 0)) throw new RangeError(`expire must be >= 0 ms, got ${expire}`);
  if (!(maxEntries >= 1) || !Number.isInteger(maxEntries)) {
    throw new RangeError(`maxEntries must be an integer >= 1, got ${maxEntries}`);
  }
  return new Lblc(expire, maxEntries);
}

/** An LBLC scheduler; `size` is for stats and tests. */
export interface LblcScheduler extends Scheduler {
  /** Hosts currently remembered (expired ones included until swept). */
  readonly size: number;
}

interface Entry {
  host: string;
  /** The server's `id`, and where it sat in the list last time (a hint). */
  id: number;
  position: number;
  lastUsed: number;
}

class Lblc implements LblcScheduler {
  /** host → entry, least recently used first (Map iteration order). */
  private readonly table = new Map<string, Entry>();
  /** Least-connection tie-break cursor. */
  private next = 0;
  private picksSinceSweep = 0;

  constructor(
    private readonly expire: number,
    private readonly maxEntries: number,
  ) {}

  /** Hosts currently remembered (expired ones included until swept). */
  get size(): number {
    return this.table.size;
  }

  pick(view: BackendView, request: PickRequest): ServerView | undefined {
    const list = view.primaries;
    const now = request.now;
    if (++this.picksSinceSweep >= SWEEP_EVERY) this.sweep(now);

    let entry = this.table.get(request.host);
    if (entry !== undefined && now - entry.lastUsed > this.expire) {
      this.table.delete(entry.host);
      entry = undefined;
    }
    if (entry !== undefined) {
      const position = this.locate(list, entry);
      const server = position < 0 ? undefined : list[position]!;
      if (server !== undefined && isAvailable(server) && !isOverloaded(list, server, request)) {
        if (isPickable(server, request)) {
          entry.position = position;
          entry.lastUsed = now;
          this.touch(entry);
          return server;
        }
        // Excluded for this retry only: serve elsewhere, keep the entry.
        const other = this.leastConn(list, request);
        return other < 0 ? undefined : list[other];
      }
    }

    const position = this.leastConn(list, request);
    if (position < 0) return undefined;
    const chosen = list[position]!;
    if (entry === undefined) {
      this.insert(request.host, chosen.id, position, now);
    } else {
      entry.id = chosen.id;
      entry.position = position;
      entry.lastUsed = now;
      this.touch(entry);
    }
    return chosen;
  }

  /** Weighted least connection with a rotating tie-break; a position or -1. */
  private leastConn(list: readonly ServerView[], request: PickRequest): number {
    const best = leastConnIndex(list, request, this.next);
    if (best >= 0) this.next = best + 1 === list.length ? 0 : best + 1;
    return best;
  }

  /** Position of the entry's server in `list`, -1 if it is gone. */
  private locate(list: readonly ServerView[], entry: Entry): number {
    if (list[entry.position]?.id === entry.id) return entry.position;
    for (let i = 0; i < list.length; i++) {
      if (list[i]!.id === entry.id) return i;
    }
    return -1;
  }

  /** Moves `entry` to the most-recently-used end. */
  private touch(entry: Entry): void {
    this.table.delete(entry.host);
    this.table.set(entry.host, entry);
  }

  private insert(host: string, id: number, position: number, now: number): void {
    let entry: Entry | undefined;
    if (this.table.size >= this.maxEntries) {
      this.sweep(now);
      if (this.table.size >= this.maxEntries) {
        // Evict the least recently used host and reuse its entry.
        entry = this.table.values().next().value;
        if (entry !== undefined) this.table.delete(entry.host);
      }
    }
    if (entry === undefined) {
      entry = { host, id, position, lastUsed: now };
    } else {
      entry.host = host;
      entry.id = id;
      entry.position = position;
      entry.lastUsed = now;
    }
    this.table.set(host, entry);
  }

  /**
   * Drops expired entries from the least-recently-used end, stopping at the
   * first live one. With a non-decreasing clock that is every expired entry;
   * if the clock stepped back, stragglers expire on lookup or by eviction.
   */
  private sweep(now: number): void {
    this.picksSinceSweep = 0;
    for (const entry of this.table.values()) {
      if (now - entry.lastUsed <= this.expire) break;
      this.table.delete(entry.host);
    }
  }
}

/**
 * LVS `is_overloaded`: `server` has more active connections than its weight
 * and another pickable server is under half load (`active × 2 < weight`).
 */
function isOverloaded(
  list: readonly ServerView[],
  server: ServerView,
  request: PickRequest,
): boolean {
  if (server.active <= server.weight) return false;
  for (let i = 0; i < list.length; i++) {
    const other = list[i]!;
    if (other !== server && other.active * 2 < other.weight && isPickable(other, request)) {
      return true;
    }
  }
  return false;
}

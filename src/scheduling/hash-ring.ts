import { FNV_OFFSET, fnv1a, fnv1aDecimal, mix32 } from './hash32.js';
import { isPickable } from './pickable.js';
import type { PickRequest, ServerView } from './types.js';

/** Ring points per unit of weight unless told otherwise. */
export const DEFAULT_POINTS_PER_WEIGHT = 40;
/** Upper bound on one server's points, whatever its weight. */
const MAX_POINTS_PER_SERVER = 1 << 16;
/** Packing: point hash × 2^20 + position, exact in a double (2^52 < 2^53). */
const POSITION_SCALE = 1 << 20;

export interface HashRingOptions {
  /**
   * Virtual nodes per unit of weight (default 40). A server of weight `w`
   * gets `max(1, round(w × pointsPerWeight))` points. Its share of the key
   * space then has a relative standard deviation of about
   * `sqrt((1 - p) / (w × pointsPerWeight))` around its weight share `p`:
   * ~16 % for weight 1 at 40 points, ~3 % for weight 32.
   */
  readonly pointsPerWeight?: number;
}

/**
 * A consistent-hash ring over one list of servers, shared by `source` and
 * `hash` balancing.
 *
 * Server `s` owns the points `hash(s.name + '#' + j)` for
 * `j < round(weight × pointsPerWeight)`. Points depend on the server's name
 * and weight only, so adding, removing or reweighting one server adds or
 * removes that server's points and nothing else. A key goes to the owner of
 * the first point at or clockwise after `hash(key)` (binary search),
 * skipping points of servers that are not pickable right now: an ineligible,
 * full or excluded server's keys spread over the others while every other
 * key keeps its server, and they come back when it does.
 *
 * The ring is built lazily and rebuilt only when the server list changes
 * (names or point counts) — a new array or a new `weightsVersion` triggers a
 * comparison, not a rebuild. Eligibility never rebuilds it.
 *
 * @example
 * ```ts
 * const ring = new HashRing();
 * ring.pick(view.primaries, view.weightsVersion, hashString(request.clientIp), request);
 * ```
 */
export class HashRing {
  private readonly pointsPerWeight: number;
  private servers: readonly ServerView[] | undefined;
  private weightsVersion = Number.NaN;
  /** Names and point counts the ring was built from, by position. */
  private names: string[] = [];
  private counts = new Uint32Array(0);
  /** Point hashes, ascending, and the position of each point's server. */
  private hashes = new Uint32Array(0);
  private owners = new Uint32Array(0);
  private buildCount = 0;

  constructor(options: HashRingOptions = {}) {
    const k = options.pointsPerWeight ?? DEFAULT_POINTS_PER_WEIGHT;
    if (!(k > 0) || !Number.isFinite(k)) {
      throw new RangeError(`pointsPerWeight must be a positive number, got ${k}`);
    }
    this.pointsPerWeight = k;
  }

  /** Points on the ring as last built. */
  get size(): number {
    return this.hashes.length;
  }

  /** How many times the ring has been (re)built; for tests and stats. */
  get builds(): number {
    return this.buildCount;
  }

  /**
   * The server for `keyHash` among `servers`: the owner of the first point
   * clockwise from it whose server is pickable; undefined iff no server in
   * `servers` is pickable.
   */
  pick(
    servers: readonly ServerView[],
    weightsVersion: number,
    keyHash: number,
    request: PickRequest,
  ): ServerView | undefined {
    // Whole pool unusable (the common "fall to backups" case): answer in
    // O(n) instead of walking every point.
    let anyPickable = false;
    for (let i = 0; i < servers.length; i++) {
      if (isPickable(servers[i]!, request)) {
        anyPickable = true;
        break;
      }
    }
    if (!anyPickable) return undefined;

    this.sync(servers, weightsVersion);
    const hashes = this.hashes;
    const owners = this.owners;
    const n = hashes.length;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid]! < keyHash) lo = mid + 1;
      else hi = mid;
    }
    for (let step = 0; step < n; step++) {
      const at = lo + step < n ? lo + step : lo + step - n;
      const server = servers[owners[at]!]!;
      if (isPickable(server, request)) return server;
    }
    // Only reachable if a weight rose from 0 without a weightsVersion bump:
    // the server is pickable but has no points yet.
    for (let i = 0; i < servers.length; i++) {
      if (isPickable(servers[i]!, request)) return servers[i];
    }
    return undefined;
  }

  private pointsFor(weight: number): number {
    if (!(weight > 0)) return 0;
    const points = Math.round(weight * this.pointsPerWeight);
    return Math.min(MAX_POINTS_PER_SERVER, Math.max(1, points));
  }

  private sync(servers: readonly ServerView[], weightsVersion: number): void {
    if (servers === this.servers && weightsVersion === this.weightsVersion) return;
    if (!this.builtFrom(servers)) this.build(servers);
    this.servers = servers;
    this.weightsVersion = weightsVersion;
  }

  private builtFrom(servers: readonly ServerView[]): boolean {
    if (servers.length !== this.names.length) return false;
    for (let i = 0; i < servers.length; i++) {
      const server = servers[i]!;
      if (server.name !== this.names[i]) return false;
      if (this.pointsFor(server.weight) !== this.counts[i]) return false;
    }
    return true;
  }

  private build(servers: readonly ServerView[]): void {
    if (servers.length >= POSITION_SCALE) {
      throw new RangeError(`a hash ring holds at most ${POSITION_SCALE - 1} servers`);
    }
    const names: string[] = new Array<string>(servers.length);
    const counts = new Uint32Array(servers.length);
    let total = 0;
    for (let i = 0; i < servers.length; i++) {
      const server = servers[i]!;
      names[i] = server.name;
      counts[i] = this.pointsFor(server.weight);
      total += counts[i]!;
    }
    // Sorting hash × 2^20 + position orders points by hash and breaks the
    // (rare) equal hashes by configuration order, which removals preserve.
    const packed = new Float64Array(total);
    let k = 0;
    for (let i = 0; i < servers.length; i++) {
      const base = fnv1a(fnv1a(FNV_OFFSET, names[i]!), '#');
      for (let j = 0; j < counts[i]!; j++) {
        packed[k++] = mix32(fnv1aDecimal(base, j)) * POSITION_SCALE + i;
      }
    }
    packed.sort();
    const hashes = new Uint32Array(total);
    const owners = new Uint32Array(total);
    for (let p = 0; p < total; p++) {
      const position = packed[p]! % POSITION_SCALE;
      owners[p] = position;
      hashes[p] = (packed[p]! - position) / POSITION_SCALE;
    }
    this.names = names;
    this.counts = counts;
    this.hashes = hashes;
    this.owners = owners;
    this.buildCount++;
  }
}

/**
 * Consistent hashing of session keys onto nodes. Every node (and every
 * client) builds the same ring from the same member list, so all of them
 * agree on a key's owners: walking clockwise from the key's point, the first
 * `replicas` distinct members that are live.
 *
 * When one member dies, the surviving owners of its keys keep their place
 * in the walk and the replacement comes after them; so the first live owner
 * of a key always held it before the change.
 */

/** FNV-1a over UTF-16 code units, finished with murmur3's fmix32. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class HashRing {
  readonly members: readonly string[];
  readonly #points: Uint32Array;
  readonly #owner: number[];
  /** Two independent hashes of each member id, for fingerprint(). */
  readonly #idHash = new Map<string, readonly [number, number]>();
  /** Scratch for owners(); the walk is synchronous, so one per ring suffices. */
  readonly #seen: Uint8Array;

  constructor(members: readonly string[], vnodes = 128) {
    this.members = [...new Set(members)].sort();
    const pts: [number, number][] = [];
    this.members.forEach((m, idx) => {
      for (let v = 0; v < vnodes; v++) pts.push([hash32(`${m}#${v}`), idx]);
    });
    pts.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.#points = Uint32Array.from(pts.map((p) => p[0]));
    this.#owner = pts.map((p) => p[1]);
    this.#seen = new Uint8Array(this.members.length);
    for (const m of this.members) this.#idHash.set(m, [hash32(m), hash32(`${m}\u0000fingerprint`)]);
  }

  /**
   * A 53-bit fingerprint of an ordered list of members (an owner list), so
   * two parties can check that they chose the same owners without sending
   * the ids. -1 when a member is not on this ring.
   */
  fingerprint(ids: readonly string[]): number {
    let a = 0x811c9dc5;
    let b = 0x01000193;
    for (const id of ids) {
      const h = this.#idHash.get(id);
      if (h === undefined) return -1;
      a = Math.imul(a ^ h[0], 0x9e3779b1);
      b = Math.imul(b ^ h[1], 0x85ebca6b);
      a ^= a >>> 15;
      b ^= b >>> 13;
    }
    return (a >>> 11) * 0x100000000 + (b >>> 0);
  }

  /** The first `count` distinct members (passing `live`) clockwise from the key; into `out` when given (emptied first). */
  owners(key: string, count: number, live: (id: string) => boolean = () => true, out: string[] = []): string[] {
    let found = 0;
    const n = this.#points.length;
    if (n === 0) {
      out.length = 0;
      return out;
    }
    const h = hash32(key);
    // first point ≥ h
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#points[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    const seen = this.#seen;
    seen.fill(0);
    let distinct = 0;
    for (let i = 0; i < n && found < count && distinct < this.members.length; i++) {
      const idx = this.#owner[(lo + i) % n] as number;
      if (seen[idx] === 1) continue;
      seen[idx] = 1;
      distinct++;
      const id = this.members[idx] as string;
      // indexed stores, not push after a truncation: a reused array keeps its backing store
      if (live(id)) out[found++] = id;
    }
    if (out.length !== found) out.length = found;
    return out;
  }
}

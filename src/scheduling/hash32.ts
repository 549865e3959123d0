/**
 * 32-bit string hashing for the hash ring: FNV-1a, fed piecewise so keys
 * such as `ip:port` hash without building the string, then murmur3's
 * `fmix32` finalizer. FNV-1a alone spreads keys that differ in their last
 * character (10.0.0.1, 10.0.0.2, …) poorly over the high bits a ring sorts
 * on; the finalizer makes every input bit reach every output bit.
 *
 * Strings are hashed by UTF-16 code unit, which equals byte-wise FNV-1a for
 * ASCII (host names, IP literals, decimal numbers).
 */

/** FNV-1a 32-bit offset basis: the state before any input. */
export const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Continues FNV-1a state `hash` with the code units of `text`. */
export function fnv1a(hash: number, text: string): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/**
 * Continues FNV-1a state `hash` with the decimal digits of `value` (a
 * non-negative integer), exactly as `fnv1a(hash, String(value))` would.
 */
export function fnv1aDecimal(hash: number, value: number): number {
  let divisor = 1;
  while (divisor * 10 <= value) divisor *= 10;
  let h = hash;
  for (; divisor >= 1; divisor /= 10) {
    h ^= 48 + (Math.floor(value / divisor) % 10);
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/** murmur3's 32-bit finalizer: full avalanche over an FNV state. */
export function mix32(hash: number): number {
  let h = hash;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The ring hash of a whole string: `mix32(fnv1a(FNV_OFFSET, text))`.
 *
 * @example
 * ```ts
 * hashString('10.0.0.1') === mix32(fnv1a(FNV_OFFSET, '10.0.0.1')); // true
 * ```
 */
export function hashString(text: string): number {
  return mix32(fnv1a(FNV_OFFSET, text));
}

/**
 * Requests in flight by id, for a connection's hot path. A `Map` with one
 * insert and one delete per request keeps rebuilding its hash table (it
 * does not reuse deleted slots), a few hundred bytes of garbage per request
 * at 100,000 requests a second. Ids here are nonzero 32-bit integers handed
 * out in sequence, so `id & mask` spreads them evenly: open addressing with
 * linear probing and backward-shift deletion, at most half full, allocates
 * only when it grows.
 */
export class IdTable<V> {
  #keys = new Uint32Array(64);
  #vals: (V | undefined)[] = new Array<V | undefined>(64).fill(undefined);
  #mask = 63;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  #find(id: number): number {
    if (id === 0) return -1; // 0 marks an empty slot
    const keys = this.#keys;
    const mask = this.#mask;
    for (let i = id & mask; ; i = (i + 1) & mask) {
      const k = keys[i] as number;
      if (k === id) return i;
      if (k === 0) return -1;
    }
  }

  get(id: number): V | undefined {
    const i = this.#find(id);
    return i < 0 ? undefined : this.#vals[i];
  }

  has(id: number): boolean {
    return this.#find(id) >= 0;
  }

  /** `id` must be an integer in 1 … 2^32 − 1. */
  set(id: number, v: V): void {
    if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff) throw new RangeError(`id ${id} out of range`);
    if ((this.#size + 1) * 2 > this.#keys.length) this.#grow();
    const keys = this.#keys;
    const mask = this.#mask;
    let i = id & mask;
    while (keys[i] !== 0 && keys[i] !== id) i = (i + 1) & mask;
    if (keys[i] === 0) this.#size++;
    keys[i] = id;
    this.#vals[i] = v;
  }

  delete(id: number): boolean {
    let i = this.#find(id);
    if (i < 0) return false;
    const keys = this.#keys;
    const vals = this.#vals;
    const mask = this.#mask;
    // Backward shift: pull later entries of the probe run into the hole when their home slot allows it.
    for (let j = (i + 1) & mask; keys[j] !== 0; j = (j + 1) & mask) {
      const home = (keys[j] as number) & mask;
      if (((j - home) & mask) >= ((j - i) & mask)) {
        keys[i] = keys[j] as number;
        vals[i] = vals[j];
        i = j;
      }
    }
    keys[i] = 0;
    vals[i] = undefined;
    this.#size--;
    return true;
  }

  #grow(): void {
    const oldKeys = this.#keys;
    const oldVals = this.#vals;
    const n = oldKeys.length * 2;
    this.#keys = new Uint32Array(n);
    this.#vals = new Array<V | undefined>(n).fill(undefined);
    this.#mask = n - 1;
    this.#size = 0;
    for (let i = 0; i < oldKeys.length; i++) if (oldKeys[i] !== 0) this.set(oldKeys[i] as number, oldVals[i] as V);
  }

  /** A snapshot of the entries (safe to delete from the table while walking it). */
  entries(): [number, V][] {
    const out: [number, V][] = [];
    for (let i = 0; i < this.#keys.length; i++) if (this.#keys[i] !== 0) out.push([this.#keys[i] as number, this.#vals[i] as V]);
    return out;
  }

  clear(): void {
    this.#keys.fill(0);
    this.#vals.fill(undefined);
    this.#size = 0;
  }
}

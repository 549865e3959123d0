/**
 * The contract every session store honours, as one suite run against each
 * implementation (memory-store.test.ts, redis-store.test.ts, peer.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionError } from './errors.js';
import type { SessionStore } from './types.js';

export interface ContractOptions {
  /** Default TTL the store must be built with. */
  readonly ttl: number;
  readonly maxValueBytes: number;
}

export interface ContractHarness {
  readonly store: SessionStore;
  close(): Promise<void>;
}

export const CONTRACT: ContractOptions = { ttl: 60_000, maxValueBytes: 64 * 1024 };

let seq = 0;
const k = (name: string): string => `contract-${process.pid}-${++seq}-${name}`;

export function storeContract(name: string, make: (options: ContractOptions) => Promise<ContractHarness>): void {
  describe(`${name} store contract`, () => {
    let h: ContractHarness;
    let s: SessionStore;
    before(async () => {
      h = await make(CONTRACT);
      s = h.store;
      await s.clear();
    });
    after(async () => {
      await h.close();
    });

    it('get of an absent key is undefined', async () => {
      assert.equal(await s.get(k('absent')), undefined);
    });

    it('set then get returns the value with version 1 and a future expiry', async () => {
      const key = k('set');
      const t0 = Date.now();
      assert.equal(await s.set(key, '{"user":"ann"}'), 1);
      const e = await s.get(key);
      assert.ok(e);
      assert.equal(e.value, '{"user":"ann"}');
      assert.equal(e.version, 1);
      assert.ok(e.expiresAt >= t0 + CONTRACT.ttl - 1000 && e.expiresAt <= Date.now() + CONTRACT.ttl + 1000, `expiresAt ${e.expiresAt}`);
    });

    it('every set bumps the version', async () => {
      const key = k('bump');
      assert.equal(await s.set(key, 'a'), 1);
      assert.equal(await s.set(key, 'b'), 2);
      assert.equal(await s.set(key, 'c'), 3);
      assert.equal((await s.get(key))?.value, 'c');
      assert.equal((await s.get(key))?.version, 3);
    });

    it('stores unicode and empty values unchanged', async () => {
      const key = k('uni');
      const v = 'ünïcødé ✓ 🐎 "quoted" \\ \n';
      await s.set(key, v);
      assert.equal((await s.get(key))?.value, v);
      const key2 = k('empty');
      await s.set(key2, '');
      assert.equal((await s.get(key2))?.value, '');
    });

    it('setIfVersion writes only on the expected version', async () => {
      const key = k('cas');
      assert.deepEqual(await s.setIfVersion(key, 'x', 1), { ok: false, version: 0 });
      assert.deepEqual(await s.setIfVersion(key, 'first', 0), { ok: true, version: 1 });
      assert.deepEqual(await s.setIfVersion(key, 'again', 0), { ok: false, version: 1 });
      assert.deepEqual(await s.setIfVersion(key, 'second', 1), { ok: true, version: 2 });
      // the resave race: two requests read version 2, both save; exactly one wins
      const [a, b] = await Promise.all([s.setIfVersion(key, 'from-a', 2), s.setIfVersion(key, 'from-b', 2)]);
      assert.equal([a, b].filter((r) => r.ok).length, 1);
      const loser = a.ok ? b : a;
      assert.equal(loser.version, 3);
      const e = await s.get(key);
      assert.equal(e?.version, 3);
      assert.equal(e?.value, a.ok ? 'from-a' : 'from-b');
    });

    it('destroy removes the key; a destroyed key reads absent and can be created again with version 0', async () => {
      const key = k('destroy');
      await s.set(key, 'v');
      await s.set(key, 'v2');
      await s.destroy(key);
      assert.equal(await s.get(key), undefined);
      assert.equal(await s.touch(key), false);
      await s.destroy(key); // idempotent
      const r = await s.setIfVersion(key, 'reborn', 0);
      assert.equal(r.ok, true);
      assert.equal((await s.get(key))?.value, 'reborn');
    });

    it('entries expire after their TTL', async () => {
      const key = k('ttl');
      const keep = k('ttl-keep');
      await s.set(key, 'short', { ttl: 150 });
      await s.set(keep, 'long');
      assert.equal((await s.get(key))?.value, 'short');
      await sleep(400);
      assert.equal(await s.get(key), undefined);
      assert.equal((await s.get(keep))?.value, 'long');
      assert.deepEqual(await s.setIfVersion(key, 'new', 0), { ok: true, version: (await s.get(key))?.version ?? -1 });
    });

    it('touch extends the TTL without changing the version', async () => {
      const key = k('touch');
      await s.set(key, 'v', { ttl: 300 });
      await sleep(150);
      assert.equal(await s.touch(key, { ttl: 1000 }), true);
      await sleep(300);
      const e = await s.get(key);
      assert.equal(e?.value, 'v');
      assert.equal(e?.version, 1);
      assert.equal(await s.touch(k('touch-absent')), false);
    });

    it('refuses an oversized value with a typed error and stores nothing', async () => {
      const key = k('big');
      const big = 'x'.repeat(CONTRACT.maxValueBytes + 1);
      await assert.rejects(s.set(key, big), (e: unknown) => e instanceof SessionError && e.code === 'CORRAL_ERR_SESSION_TOO_LARGE');
      await assert.rejects(s.setIfVersion(key, big, 0), (e: unknown) => e instanceof SessionError && e.code === 'CORRAL_ERR_SESSION_TOO_LARGE');
      assert.equal(await s.get(key), undefined);
      // multi-byte characters count as bytes
      const wide = 'é'.repeat(CONTRACT.maxValueBytes / 2 + 1);
      await assert.rejects(s.set(key, wide), (e: unknown) => e instanceof SessionError && e.code === 'CORRAL_ERR_SESSION_TOO_LARGE');
      // a value of exactly the limit is fine, and an existing value survives a refused write
      await s.set(key, 'y'.repeat(CONTRACT.maxValueBytes));
      await assert.rejects(s.set(key, big));
      assert.equal((await s.get(key))?.value.length, CONTRACT.maxValueBytes);
    });

    it('refuses an empty key', async () => {
      await assert.rejects(s.set('', 'v'), (e: unknown) => e instanceof SessionError && e.code === 'CORRAL_ERR_SESSION_BAD_KEY');
    });

    it('all, length and clear see every live session', async () => {
      await s.clear();
      assert.equal(await s.length(), 0);
      const keys = Array.from({ length: 25 }, (_, i) => k(`all-${i}`));
      await Promise.all(keys.map((key, i) => s.set(key, `v${i}`)));
      await s.destroy(keys[0] as string);
      await s.set(k('all-expiring'), 'gone', { ttl: 100 });
      await sleep(250);
      const all = await s.all();
      assert.equal(all.size, 24);
      assert.equal(all.get(keys[3] as string)?.value, 'v3');
      assert.equal(all.has(keys[0] as string), false);
      assert.equal(await s.length(), 24);
      await s.clear();
      assert.equal(await s.length(), 0);
      assert.equal(await s.get(keys[5] as string), undefined);
    });

    it('many concurrent writes to distinct keys all land', async () => {
      const keys = Array.from({ length: 300 }, (_, i) => k(`many-${i}`));
      await Promise.all(keys.map((key) => s.set(key, key)));
      const got = await Promise.all(keys.map((key) => s.get(key)));
      assert.deepEqual(got.map((e) => e?.value), keys);
    });

    it('stats count hits and misses', async () => {
      const before = s.stats();
      const key = k('stats');
      await s.set(key, 'v');
      await s.get(key);
      await s.get(k('stats-miss'));
      const st = s.stats();
      assert.equal(st.store, s.kind);
      assert.ok(st.hits >= before.hits + 1);
      assert.ok(st.misses >= before.misses + 1);
      assert.ok(st.sets >= before.sets + 1);
    });
  });
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from './memory-store.js';
import { storeContract } from './store-contract.js';

storeContract('memory', async (o) => {
  const store = new MemoryStore({ ttl: o.ttl, maxValueBytes: o.maxValueBytes });
  return { store, close: () => store.close() };
});

describe('memory store bounds', () => {
  it('evicts the least recently used entry past maxEntries and counts it', async () => {
    const s = new MemoryStore({ maxEntries: 3 });
    await s.set('a', '1');
    await s.set('b', '2');
    await s.set('c', '3');
    await s.get('a'); // a is now the most recent; b the least
    await s.set('d', '4');
    assert.equal(await s.get('b'), undefined);
    assert.equal((await s.get('a'))?.value, '1');
    assert.equal((await s.get('d'))?.value, '4');
    assert.equal(s.stats().evictions, 1);
    assert.equal(s.stats().sessions, 3);
    await s.close();
  });

  it('evicts past maxBytes and keeps the byte count exact', async () => {
    const s = new MemoryStore({ maxBytes: 100 });
    for (let i = 0; i < 10; i++) await s.set(`k${i}`, 'x'.repeat(18)); // 20 bytes each
    const st = s.stats();
    assert.equal(st.sessions, 5);
    assert.equal(st.bytes, 100);
    assert.equal(st.evictions, 5);
    assert.equal(await s.get('k0'), undefined);
    assert.equal((await s.get('k9'))?.value.length, 18);
    await s.set('k9', 'y'); // shrink: bytes follow
    assert.equal(s.stats().bytes, 83);
    await s.destroy('k9');
    assert.equal(s.stats().bytes, 80);
    await s.close();
  });

  it('expires by a fake clock and the sweep counts expiries', async () => {
    let now = 1_000;
    const s = new MemoryStore({ ttl: 100, now: () => now });
    await s.set('a', '1');
    await s.set('b', '2', { ttl: 500 });
    now += 100;
    assert.equal(await s.get('a'), undefined);
    now += 300;
    assert.equal((await s.get('b'))?.expiresAt, 1_500);
    now += 100;
    s.sweep();
    assert.equal(s.stats().sessions, 0);
    assert.equal(s.stats().expired, 2);
    await s.close();
  });

  it('a closed store refuses calls', async () => {
    const s = new MemoryStore();
    await s.close();
    await assert.rejects(s.get('a'), { code: 'CORRAL_ERR_SESSION_CLOSED' });
  });
});

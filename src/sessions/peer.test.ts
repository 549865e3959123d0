import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionError } from './errors.js';
import { HashRing } from './ring.js';
import { storeContract } from './store-contract.js';
import { converged, startCluster, until } from './testing.js';

storeContract('peer (3 nodes, R=2)', async (o) => {
  const cluster = await startCluster(3, { ttl: o.ttl, maxValueBytes: o.maxValueBytes });
  const store = cluster.client({ maxValueBytes: o.maxValueBytes });
  assert.ok(await store.ready());
  await converged(store, cluster.ids);
  return { store, close: () => cluster.close() };
});

describe('peer store replication', () => {
  it('keeps every write on both owners and nowhere else', async () => {
    const cluster = await startCluster(3);
    const c = cluster.client();
    try {
      await converged(c, cluster.ids);
      const keys = Array.from({ length: 200 }, (_, i) => `r-${i}`);
      await Promise.all(keys.map((k) => c.set(k, `v-${k}`)));
      const held = new Map<string, string[]>();
      for (const id of cluster.ids) for (const k of await c.nodeKeys(id)) held.set(k, [...(held.get(k) ?? []), id]);
      const ring = new HashRing(cluster.ids);
      for (const k of keys) assert.deepEqual((held.get(k) ?? []).sort(), ring.owners(k, 2).sort(), k);
    } finally {
      await cluster.close();
    }
  });

  it('fails over to the replica within one call when the first owner dies, and hands off to restore two copies', async () => {
    const cluster = await startCluster(3);
    const c = cluster.client();
    try {
      await converged(c, cluster.ids);
      const keys = Array.from({ length: 300 }, (_, i) => `f-${i}`);
      await Promise.all(keys.map((k) => c.set(k, k)));
      const victim = 1;
      const dead = cluster.ids[victim] as string;
      await (cluster.nodes[victim] as (typeof cluster.nodes)[number]).close();
      // reads right away: no key lost
      const got = await Promise.all(keys.map((k) => c.get(k)));
      assert.deepEqual(got.map((e) => e?.value), keys);
      // hand-off: each key is again on 2 live nodes
      const live = cluster.ids.filter((id) => id !== dead);
      await until(async () => {
        const counts = new Map<string, number>();
        for (const id of live) for (const k of await c.nodeKeys(id)) counts.set(k, (counts.get(k) ?? 0) + 1);
        return keys.every((k) => counts.get(k) === 2);
      }, 5000, 'two copies of every key');
    } finally {
      await cluster.close();
    }
  });

  it('a destroyed session does not come back from a stale copy', async () => {
    const cluster = await startCluster(3);
    const c = cluster.client();
    try {
      await converged(c, cluster.ids);
      await c.set('gone', 'secret');
      await c.destroy('gone');
      const ring = new HashRing(cluster.ids);
      const [first] = ring.owners('gone', 2);
      // kill the first owner: the read goes to the other owner, which holds the tombstone
      await cluster.nodes[cluster.ids.indexOf(first as string)]?.close();
      await until(() => !c.membership.isLive(first as string), 3000, 'owner down');
      assert.equal(await c.get('gone'), undefined);
      assert.equal((await c.all()).has('gone'), false);
    } finally {
      await cluster.close();
    }
  });

  it('a client pointed at no live peer gets an error within its bound, not a hang', async () => {
    const cluster = await startCluster(1);
    const id = cluster.ids[0] as string;
    await cluster.close();
    const { PeerClient } = await import('./peer-client.js');
    const c = new PeerClient({ peers: [id, '127.0.0.1:1'], key: 'k', timeout: 300, connectTimeout: 500 });
    const t0 = Date.now();
    await assert.rejects(c.get('x'), (e: unknown) => e instanceof SessionError && e.code === 'CORRAL_ERR_SESSION_UNAVAILABLE');
    await assert.rejects(c.set('x', 'v'), (e: unknown) => e instanceof SessionError && e.code === 'CORRAL_ERR_SESSION_UNAVAILABLE');
    assert.ok(Date.now() - t0 < 2500, `${Date.now() - t0} ms`);
    await c.close();
  });

  it('a rejoining node catches up before it serves', async () => {
    const cluster = await startCluster(3);
    const c = cluster.client();
    try {
      await converged(c, cluster.ids);
      const keys = Array.from({ length: 500 }, (_, i) => `j-${i}`);
      await Promise.all(keys.map((k) => c.set(k, k)));
      const idx = 2;
      const id = cluster.ids[idx] as string;
      await cluster.nodes[idx]?.close();
      await until(() => !c.membership.isLive(id), 3000, 'node down');
      await Promise.all(keys.slice(0, 100).map((k) => c.set(k, `${k}-v2`))); // written while it was away
      await c.destroy('j-7');
      const { PeerNode } = await import('./peer-node.js');
      const { port } = (await import('./membership.js')).splitId(id);
      const again = new PeerNode({ listen: { host: '127.0.0.1', port }, key: (await import('./testing.js')).TEST_KEY, heartbeatInterval: 100 });
      cluster.nodes[idx] = again;
      await again.start(cluster.ids, id);
      assert.equal(again.ready, true);
      const ring = new HashRing(cluster.ids);
      const mine = keys.filter((k) => k !== 'j-7' && ring.owners(k, 2).includes(id));
      await until(() => c.membership.isLive(id), 3000, 'rejoined node live for the client');
      const held = new Set(await c.nodeKeys(id));
      for (const k of mine) assert.ok(held.has(k), `${k} caught up`);
      assert.equal(held.has('j-7'), false);
      for (const k of keys.slice(0, 100)) if (k !== 'j-7') assert.equal((await c.get(k))?.value, `${k}-v2`);
      assert.equal(await c.get('j-7'), undefined);
      // once every node agrees again, each key is on exactly its two owners
      await until(async () => {
        const counts = new Map<string, number>();
        for (const n of cluster.ids) for (const k of await c.nodeKeys(n)) counts.set(k, (counts.get(k) ?? 0) + 1);
        return keys.every((k) => k === 'j-7' || counts.get(k) === 2);
      }, 5000, 'exactly two copies');
    } finally {
      await cluster.close();
    }
  });
});

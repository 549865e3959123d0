/**
 * The memory bounds of a peer node (`sessions.maxEntries`, `sessions.maxBytes`):
 * least recently used sessions are evicted and counted; tombstones never are.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SecureConnection } from './connection.js';
import { splitId } from './membership.js';
import { parseConfig } from '../config/index.js';
import { sessionMetricSamples } from './metrics.js';
import { startSessions } from './role.js';
import { converged, freePorts, startCluster, TEST_KEY } from './testing.js';
import { msg, T } from './wire.js';

describe('peer node memory bounds', () => {
  it('maxEntries evicts the least recently used session; a read or a touch makes a session recent', async () => {
    const cluster = await startCluster(1, { replicas: 1, maxEntries: 3 });
    const c = cluster.client({ replicas: 1 });
    try {
      await converged(c, cluster.ids);
      for (const k of ['a', 'b', 'c']) await c.set(k, k);
      assert.equal((await c.get('a'))?.value, 'a'); // a is now more recent than b and c
      await c.set('d', 'd'); // evicts b
      assert.equal(await c.get('b'), undefined);
      assert.ok(await c.touch('c')); // c is now more recent than a
      await c.set('e', 'e'); // evicts a
      assert.deepEqual(await Promise.all(['a', 'b', 'c', 'd', 'e'].map(async (k) => (await c.get(k))?.value)), [undefined, undefined, 'c', 'd', 'e']);
      const s = cluster.nodes[0]?.stats();
      assert.equal(s?.sessions, 3);
      assert.equal(s?.evictions, 2);
      const m = new Map(sessionMetricSamples(s as NonNullable<typeof s>).map((x) => [x.name, x.value]));
      assert.equal(m.get('corral_sessions_evictions_total'), 2);
    } finally {
      await cluster.close();
    }
  });

  it('maxBytes bounds the bytes of keys and values held', async () => {
    const cluster = await startCluster(1, { replicas: 1, maxBytes: 1000 });
    const c = cluster.client({ replicas: 1 });
    try {
      await converged(c, cluster.ids);
      const v = 'x'.repeat(96);
      for (let i = 0; i < 50; i++) await c.set(`k${i.toString().padStart(3, '0')}`, v); // 100 bytes each with its key
      const s = cluster.nodes[0]?.stats();
      assert.equal(s?.bytes, 1000);
      assert.equal(s?.sessions, 10);
      assert.equal(s?.evictions, 40);
      assert.equal((await c.get('k049'))?.value, v);
      assert.equal(await c.get('k039'), undefined);
    } finally {
      await cluster.close();
    }
  });

  it('never evicts a tombstone: a destroyed session does not come back from a stale copy', async () => {
    const cluster = await startCluster(1, { replicas: 1, maxEntries: 2 });
    const c = cluster.client({ replicas: 1 });
    try {
      await converged(c, cluster.ids);
      await c.set('gone', 'secret');
      await c.destroy('gone');
      for (const k of ['a', 'b', 'c', 'd']) await c.set(k, k);
      const s = cluster.nodes[0]?.stats();
      assert.equal(s?.tombstones, 1, 'the tombstone is kept');
      assert.equal(s?.sessions, 2);
      assert.equal(s?.evictions, 2);
      // a stale copy of the destroyed session arrives (a replica that missed the destroy)
      const { host, port } = splitId(cluster.ids[0] as string);
      const peer = await SecureConnection.connect(host, port, { key: TEST_KEY, id: 'zz-stale-peer', role: 'peer' });
      peer.start();
      try {
        const r = await peer.request(msg(T.PUT, { k: 'gone', v: 'secret', n1: 1, n2: Date.now() + 60_000, s: 'zz-stale-peer' }), 2000);
        assert.equal(r.f, 0, 'the stale copy loses to the tombstone');
      } finally {
        peer.close();
      }
      assert.equal(await c.get('gone'), undefined);
    } finally {
      await cluster.close();
    }
  });

  it('bounds every node of a replicated cluster; the most recent sessions are on both owners', async () => {
    const cluster = await startCluster(3, { maxEntries: 100 });
    const c = cluster.client();
    try {
      await converged(c, cluster.ids);
      const keys = Array.from({ length: 400 }, (_, i) => `b-${i}`);
      for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => c.set(k, `v-${k}`)));
      const stats = cluster.nodes.map((n) => n.stats());
      for (const s of stats) assert.ok(s.sessions <= 100, `${s.node} holds ${s.sessions}`);
      assert.ok(stats.reduce((n, s) => n + s.evictions, 0) >= 400 * 2 - 300);
      const recent = keys.slice(-40);
      const got = await Promise.all(recent.map(async (k) => (await c.get(k))?.value));
      assert.deepEqual(got, recent.map((k) => `v-${k}`));
      for (const k of recent) {
        let held = 0;
        for (const id of cluster.ids) if ((await c.nodeKeys(id)).includes(k)) held++;
        assert.equal(held, 2, k);
      }
    } finally {
      await cluster.close();
    }
  });

  it('takes sessions.maxEntries and sessions.maxBytes from the config (memory and peer)', async () => {
    const [port] = await freePorts(1);
    for (const yaml of [
      'sessions:\n  store: memory\n  maxEntries: 2\n  maxBytes: 1000000\n',
      `sessions:\n  store: peer\n  replicas: 1\n  listen: 127.0.0.1:${port}\n  peers: [127.0.0.1:${port}]\n  maxEntries: 2\n  maxBytes: 1000000\ncluster:\n  key: ${TEST_KEY}\n`,
    ]) {
      const r = parseConfig(yaml, 'corral.yaml', {});
      assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
      assert.equal(r.config.sessions?.maxEntries, 2);
      assert.equal(r.config.sessions?.maxBytes, 1_000_000);
      const role = await startSessions(r.config);
      assert.ok(role);
      try {
        for (const k of ['a', 'b', 'c']) await role.store.set(k, k);
        assert.equal(await role.store.get('a'), undefined, role.store.kind);
        assert.equal(role.stats().evictions, 1, role.store.kind);
      } finally {
        await role.close();
      }
    }
  });
});

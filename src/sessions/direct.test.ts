/**
 * Writes answered by the replica (client → coordinator → replica → client):
 * the paths where the replica cannot answer, holds a newer record, or goes
 * away with writes unacknowledged.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SecureConnection } from './connection.js';
import { splitId } from './membership.js';
import { HashRing } from './ring.js';
import { converged, startCluster, TEST_KEY, until } from './testing.js';
import { F, msg, T } from './wire.js';

/** A key whose owners (all nodes live) are `first` then `second`. */
function keyOwnedBy(ids: readonly string[], first: string, second: string, prefix = 'k'): string {
  const ring = new HashRing(ids);
  for (let i = 0; ; i++) {
    const k = `${prefix}-${i}`;
    const o = ring.owners(k, 2);
    if (o[0] === first && o[1] === second) return k;
  }
}

describe('peer store: writes answered by the replica', () => {
  it('a client connected to the coordinator alone is answered by the coordinator', async () => {
    const cluster = await startCluster(3);
    const c = cluster.client();
    try {
      await converged(c, cluster.ids);
      const [a, b] = cluster.ids as [string, string];
      const key = keyOwnedBy(cluster.ids, a, b);
      const { host, port } = splitId(a);
      const raw = await SecureConnection.connect(host, port, { key: TEST_KEY, id: 'lonely-client', role: 'client' });
      raw.start();
      try {
        const r = await raw.request(msg(T.SET, { k: key, v: 'hello', f: F.DIRECT }), 2000);
        assert.equal(r.t, T.R_OK);
        assert.equal(r.n1, 1);
        const d = await raw.request(msg(T.DEL, { k: key, f: F.DIRECT }), 2000);
        assert.equal(d.t, T.R_OK);
      } finally {
        raw.close();
      }
      // both owners hold the tombstone: nothing to read anywhere
      assert.equal(await c.get(key), undefined);
      for (const id of [a, b]) assert.equal((await c.nodeKeys(id)).includes(key), false);
      await until(async () => (await c.nodeStats()).get(a)?.replication?.inflight === 0, 2000, 'no write in flight');
    } finally {
      await cluster.close();
    }
  });

  it('a replica holding a newer record makes the coordinator decide again (set and compare-and-set)', async () => {
    const cluster = await startCluster(3);
    const c = cluster.client();
    try {
      await converged(c, cluster.ids);
      const [a, b] = cluster.ids as [string, string];
      const key = keyOwnedBy(cluster.ids, a, b, 'newer');
      assert.equal(await c.set(key, 'v1'), 1);
      // Plant a newer record on the replica only (as a healed partition would leave it).
      const { host, port } = splitId(b);
      const peer = await SecureConnection.connect(host, port, { key: TEST_KEY, id: 'zz-test-peer', role: 'peer' });
      peer.start();
      const plant = (n: number, v: string): Promise<unknown> => peer.request(msg(T.PUT, { k: key, v, n1: n, n2: Date.now() + 60_000, s: 'zz-test-peer' }), 2000);
      try {
        await plant(5, 'planted');
        // Sent to both owners, the set gets versions 2 and 6: they differ, so the coordinator decides. It holds 2 and
        // decides 3; the replica refuses (it holds 6); the coordinator adopts 6 and decides 7.
        assert.equal(await c.set(key, 'mine'), 7);
        assert.deepEqual(await c.get(key).then((e) => [e?.value, e?.version]), ['mine', 7]);
        assert.deepEqual(await peer.request(msg(T.GET, { k: key, f: F.RAW | F.FORWARDED }), 2000).then((r) => [r.v, r.n1]), ['mine', 7]);
        await plant(10, 'planted again');
        // A compare-and-set against the version the coordinator held loses to the replica's newer record.
        assert.deepEqual(await c.setIfVersion(key, 'late', 7), { ok: false, version: 10 });
        assert.deepEqual(await c.setIfVersion(key, 'on time', 10), { ok: true, version: 11 });
        assert.equal((await c.get(key))?.value, 'on time');
      } finally {
        peer.close();
      }
      await until(async () => [...(await c.nodeStats()).values()].every((s) => s.replication?.inflight === 0), 2000, 'no write in flight');
    } finally {
      await cluster.close();
    }
  });

  it('writes in flight when the replica goes away are acknowledged only once a live owner besides the coordinator holds them', async (t) => {
    const cluster = await startCluster(3);
    const c = cluster.client({ timeout: 5000 });
    try {
      await converged(c, cluster.ids);
      const victim = 1;
      const dead = cluster.ids[victim] as string;
      const keys = Array.from({ length: 3000 }, (_, i) => `fly-${i}`);
      const acked: string[] = [];
      const writes = keys.map((k) => c.set(k, `v-${k}`).then(() => acked.push(k), () => undefined));
      setImmediate(() => void cluster.nodes[victim]?.close());
      await Promise.all(writes);
      assert.ok(acked.length > 0);
      const redone = [...(await c.nodeStats()).values()].reduce((n, s) => n + (s.replication?.failures ?? 0), 0);
      t.diagnostic(`${acked.length} of ${keys.length} writes acknowledged; ${redone} redone after the replica closed`);
      const live = cluster.ids.filter((id) => id !== dead);
      await until(() => !c.membership.isLive(dead), 3000, 'victim down');
      // every acknowledged write reads back, and after the hand-off is on both live nodes it belongs to
      const got = await Promise.all(acked.map(async (k) => (await c.get(k))?.value));
      assert.deepEqual(acked.filter((k, i) => got[i] !== `v-${k}`), []);
      await until(async () => {
        const counts = new Map<string, number>();
        for (const id of live) for (const k of await c.nodeKeys(id)) counts.set(k, (counts.get(k) ?? 0) + 1);
        return acked.every((k) => counts.get(k) === 2);
      }, 10_000, 'two copies of every acknowledged write');
      await until(async () => [...(await c.nodeStats()).values()].every((s) => s.replication?.inflight === 0), 2000, 'no write in flight');
    } finally {
      await cluster.close();
    }
  });

  it('counts each set once (sent to both owners) and each destroy once (a direct write, also counted as replicated)', async () => {
    const cluster = await startCluster(3);
    const c = cluster.client();
    try {
      await converged(c, cluster.ids);
      const keys = Array.from({ length: 300 }, (_, i) => `count-${i}`);
      await Promise.all(keys.map((k) => c.set(k, 'v')));
      await Promise.all(keys.slice(0, 30).map((k) => c.destroy(k)));
      await until(async () => {
        const s = [...(await c.nodeStats()).values()];
        return s.every((x) => x.replication?.inflight === 0) && s.reduce((n, x) => n + (x.replication?.replicated ?? 0), 0) >= 30;
      }, 3000, 'every direct write acknowledged');
      const s = [...(await c.nodeStats()).values()];
      assert.equal(s.reduce((n, x) => n + x.sets, 0), 300);
      assert.equal(s.reduce((n, x) => n + x.destroys, 0), 30);
      assert.equal(s.reduce((n, x) => n + (x.replication?.replicated ?? 0), 0), 30);
    } finally {
      await cluster.close();
    }
  });

  it('two clients with the same name each get their own answers', async () => {
    const cluster = await startCluster(3);
    const a = cluster.client({ name: 'web' });
    const b = cluster.client({ name: 'web' });
    try {
      await converged(a, cluster.ids);
      await converged(b, cluster.ids);
      const keys = Array.from({ length: 400 }, (_, i) => `same-${i}`);
      const results = await Promise.all(
        keys.flatMap((k, i) => [
          a.set(`${k}-a`, `a-${i}`).then((v) => ['a', v]),
          b.setIfVersion(`${k}-b`, `b-${i}`, 0).then((r) => ['b', r.ok ? r.version : -1]),
          a.get(`${k}-b`).then(() => ['get', 1]),
        ]),
      );
      assert.deepEqual(results.filter(([, v]) => v !== 1), []);
      const got = await Promise.all(keys.map(async (k) => [(await b.get(`${k}-a`))?.value, (await a.get(`${k}-b`))?.value]));
      assert.deepEqual(got, keys.map((_, i) => [`a-${i}`, `b-${i}`]));
    } finally {
      await cluster.close();
    }
  });

  for (const victim of ['replica', 'coordinator'] as const) {
    it(`compare-and-set increments from two clients stay exact while the ${victim} of the key goes away`, async (t) => {
      const cluster = await startCluster(3);
      const clients = [cluster.client({ timeout: 3000 }), cluster.client({ timeout: 3000 })];
      try {
        for (const c of clients) await converged(c, cluster.ids);
        const [a, b] = cluster.ids as [string, string];
        const key = keyOwnedBy(cluster.ids, a, b, 'counter');
        const c0 = clients[0] as (typeof clients)[number];
        assert.equal(await c0.set(key, '0'), 1);
        const versions = new Set<number>();
        let ok = 0;
        let failed = 0;
        let stop = false;
        const worker = async (c: (typeof clients)[number]): Promise<void> => {
          while (!stop) {
            try {
              const e = await c.get(key);
              assert.ok(e !== undefined, 'the counter never disappears');
              const r = await c.setIfVersion(key, String(Number(e.value) + 1), e.version);
              if (r.ok) {
                assert.equal(versions.has(r.version), false, `version ${r.version} acknowledged twice`);
                versions.add(r.version);
                ok++;
              }
            } catch (err) {
              if (err instanceof assert.AssertionError) throw err;
              failed++;
            }
          }
        };
        const running = clients.flatMap((c) => [worker(c), worker(c)]);
        await new Promise((r) => setTimeout(r, 300));
        await cluster.nodes[cluster.ids.indexOf(victim === 'replica' ? b : a)]?.close();
        await new Promise((r) => setTimeout(r, 700));
        stop = true;
        await Promise.all(running);
        const final = Number((await c0.get(key))?.value);
        t.diagnostic(`${ok} increments acknowledged, ${failed} failed (outcome unknown), counter ${final}`);
        assert.ok(ok > 0);
        assert.ok(final >= ok && final <= ok + failed, `counter ${final} after ${ok} acknowledged and ${failed} failed increments`);
      } finally {
        await cluster.close();
      }
    });
  }
});

/**
 * Plain sets sent by the client to every owner (SETALL): each owner assigns
 * its next version, and the client takes the coordinator path whenever the
 * owners refuse or disagree.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HashRing } from './ring.js';
import { SecureConnection } from './connection.js';
import { splitId } from './membership.js';
import { converged, rawRecords, startCluster, TEST_KEY, until } from './testing.js';
import { msg, T } from './wire.js';

const replicated = async (c: { nodeStats(): Promise<Map<string, { replication?: { replicated: number } }>> }): Promise<number> =>
  [...(await c.nodeStats()).values()].reduce((n, s) => n + (s.replication?.replicated ?? 0), 0);

describe('peer store: sets sent to every owner', () => {
  it('both owners assign the same version and hold the same record; no node replicates anything', async () => {
    const cluster = await startCluster(3);
    const c = cluster.client();
    try {
      await converged(c, cluster.ids);
      const ring = new HashRing(cluster.ids);
      const key = 'fan-1';
      const owners = ring.owners(key, 2);
      assert.equal(await c.set(key, 'one'), 1);
      assert.equal(await c.set(key, 'two'), 2);
      const recs = await rawRecords(cluster.ids, key);
      const origin = recs.get(owners[0] as string)?.[2] ?? '';
      assert.match(origin, /^client:/, 'the origin is the writing client');
      for (const id of cluster.ids) assert.deepEqual(recs.get(id), owners.includes(id) ? ['two', 2, origin] : undefined, id);
      assert.equal(await replicated(c), 0);
    } finally {
      await cluster.close();
    }
  });

  it('owners that see other owners than the client refuse, and the coordinator writes the key where the nodes place it', async () => {
    const cluster = await startCluster(3, { replicas: 2 });
    // A client that believes in three copies sends to all three nodes; each node sees two owners and refuses.
    const c = cluster.client({ replicas: 3 });
    try {
      await converged(c, cluster.ids);
      const key = 'fan-refused';
      assert.equal(await c.set(key, 'v'), 1);
      const owners = new HashRing(cluster.ids).owners(key, 2);
      const recs = await rawRecords(cluster.ids, key);
      for (const id of cluster.ids) assert.deepEqual(recs.get(id), owners.includes(id) ? ['v', 1, owners[0]] : undefined, id);
      // the replica acknowledges direct writes in batches: the count follows shortly after the answer
      await until(async () => (await replicated(c)) === 1, 2000, 'the write counted as replicated by the coordinator');
    } finally {
      await cluster.close();
    }
  });
  it('an owner refuses a value over its own limit with TOO_LARGE and stores nothing', async () => {
    const cluster = await startCluster(3, { maxValueBytes: 100 });
    try {
      const ring = new HashRing(cluster.ids);
      const owners = ring.owners('fan-big', 2);
      const { host, port } = splitId(owners[0] as string);
      const raw = await SecureConnection.connect(host, port, { key: TEST_KEY, id: 'client:raw', role: 'client' });
      raw.start();
      try {
        await until(async () => (await raw.request(msg(T.SETALL, { k: 'fan-probe', v: 'x', n1: ring.fingerprint(ring.owners('fan-probe', 2)) }), 2000)).f === 1, 5000, 'the node ready');
        const r = await raw.request(msg(T.SETALL, { k: 'fan-big', v: 'x'.repeat(200), n1: ring.fingerprint(owners) }), 2000);
        assert.deepEqual([r.t, r.s], [T.R_ERR, 'CORRAL_ERR_SESSION_TOO_LARGE']);
      } finally {
        raw.close();
      }
      const recs = await rawRecords(cluster.ids, 'fan-big');
      for (const id of cluster.ids) assert.equal(recs.get(id), undefined, id);
    } finally {
      await cluster.close();
    }
  });

  it('with nodes of different limits, the client refuses what the smallest would, before any owner stores it', async () => {
    // node 2 takes at most 300 bytes, the others 1,000; the client itself allows 1 MiB
    const cluster = await startCluster(3, { maxValueBytes: 1000 }, (i) => (i === 2 ? { maxValueBytes: 300 } : {}));
    const c = cluster.client();
    try {
      await converged(c, cluster.ids);
      const ring = new HashRing(cluster.ids);
      const small = cluster.ids[2] as string;
      // a key owned by a node that would take the value and by one that would not
      let n = 0;
      while (!(ring.owners(`fan-mixed-${n}`, 2)[1] === small)) n++;
      const key = `fan-mixed-${n}`;
      await assert.rejects(c.set(key, 'x'.repeat(500)), { code: 'CORRAL_ERR_SESSION_TOO_LARGE' });
      await assert.rejects(c.setIfVersion(key, 'x'.repeat(500), 0), { code: 'CORRAL_ERR_SESSION_TOO_LARGE' });
      for (const [id, rec] of await rawRecords(cluster.ids, key)) assert.equal(rec, undefined, `${id} holds nothing`);
      assert.equal(await c.set(key, 'x'.repeat(250)), 1);
      const recs = await rawRecords(cluster.ids, key);
      for (const id of ring.owners(key, 2)) assert.equal(recs.get(id)?.[0], 'x'.repeat(250), id);
    } finally {
      await cluster.close();
    }
  });

  for (const op of ['destroy', 'setIfVersion'] as const) {
    it(`a set that reached only the second owner (its client died) does not pass for a later ${op}`, async () => {
      const cluster = await startCluster(3);
      const c = cluster.client();
      try {
        await converged(c, cluster.ids);
        const ring = new HashRing(cluster.ids);
        const key = `fan-ghost-${op}`;
        const owners = ring.owners(key, 2) as [string, string];
        assert.equal(await c.set(key, 'v0'), 1);
        const { host, port } = splitId(owners[1]);
        const dying = await SecureConnection.connect(host, port, { key: TEST_KEY, id: 'client:dying', role: 'client' });
        dying.start();
        const r = await dying.request(msg(T.SETALL, { k: key, v: 'ghost', n1: ring.fingerprint(owners) }), 2000);
        dying.close();
        assert.deepEqual([r.f, r.n1], [1, 2]);
        if (op === 'destroy') await c.destroy(key);
        else assert.equal((await c.setIfVersion(key, 'mine', 1)).ok, false, 'the ghost is version 2: a compare-and-set against 1 loses');
        await until(async () => {
          const recs = await rawRecords(owners, key);
          return JSON.stringify(recs.get(owners[0])) === JSON.stringify(recs.get(owners[1]));
        }, 2000, 'both owners holding the same record');
        // With the first owner gone, the second answers: what it holds is what was acknowledged.
        await cluster.nodes[cluster.ids.indexOf(owners[0])]?.close();
        await until(() => !c.membership.isLive(owners[0]), 5000, 'first owner down');
        assert.equal((await c.get(key))?.value, op === 'destroy' ? undefined : 'ghost');
      } finally {
        await cluster.close();
      }
    });
  }
});

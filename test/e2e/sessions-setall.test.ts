/**
 * Crossing plain sets of one key from two clients against three node
 * processes: the owners may receive them in different orders, assign
 * different versions, and the client then lets the coordinator decide.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PeerClient } from '../../src/sessions/peer-client.js';
import { HashRing } from '../../src/sessions/ring.js';
import { converged, rawRecords, startPeerProcesses, TEST_KEY } from '../../src/sessions/testing.js';

describe('peer store: crossing sets (3 processes, R=2)', () => {
  it('leave both owners with the acknowledged write of the highest version, and no version acknowledged twice', { timeout: 60_000 }, async (t) => {
    const cluster = await startPeerProcesses(3, { replicas: 2 });
    const a = new PeerClient({ peers: cluster.ids, key: TEST_KEY, name: 'a' });
    const b = new PeerClient({ peers: cluster.ids, key: TEST_KEY, name: 'b' });
    try {
      await converged(a, cluster.ids);
      await converged(b, cluster.ids);
      const key = 'crossing';
      const acked = new Map<number, string>();
      const writer = async (c: PeerClient, name: string): Promise<void> => {
        for (let i = 0; i < 200; i++) {
          const value = `${name}-${i}`;
          const version = await c.set(key, value);
          assert.equal(acked.has(version), false, `version ${version} acknowledged twice`);
          acked.set(version, value);
        }
      };
      await Promise.all([...Array.from({ length: 8 }, (_, w) => writer(a, `a${w}`)), ...Array.from({ length: 8 }, (_, w) => writer(b, `b${w}`))]);
      assert.equal(acked.size, 16 * 200);
      const top = Math.max(...acked.keys());
      const owners = new HashRing(cluster.ids).owners(key, 2);
      const recs = await rawRecords(owners, key);
      const [first, second] = owners.map((id) => recs.get(id));
      assert.deepEqual(first?.slice(0, 2), [acked.get(top), top]);
      assert.deepEqual(second, first);
      t.diagnostic(`${acked.size} sets; highest version ${top} (versions skipped where owners disagreed and the coordinator decided)`);
    } finally {
      await a.close();
      await b.close();
      await cluster.stop();
    }
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from './memory-store.js';
import { sessionMetricSamples } from './metrics.js';
import { converged, startCluster } from './testing.js';

describe('session metrics', () => {
  it('follow the memory store counters', async () => {
    const s = new MemoryStore({ maxEntries: 1 });
    await s.set('a', 'x');
    await s.set('b', 'y');
    await s.get('b');
    await s.get('a');
    const m = new Map(sessionMetricSamples(s.stats()).map((x) => [x.name, x]));
    assert.equal(m.get('corral_sessions')?.value, 1);
    assert.equal(m.get('corral_sessions_evictions_total')?.value, 1);
    assert.equal(m.get('corral_sessions_hits_total')?.value, 1);
    assert.equal(m.get('corral_sessions_misses_total')?.value, 1);
    assert.deepEqual(m.get('corral_sessions')?.labels, { store: 'memory' });
    assert.equal(m.has('corral_sessions_handoff_running'), false);
    await s.close();
  });

  it('cover replication, hand-off, members and security on a peer node', async () => {
    const cluster = await startCluster(3);
    try {
      const c = cluster.client();
      await converged(c, cluster.ids);
      await c.set('k', 'v');
      const samples = cluster.nodes.flatMap((n) => sessionMetricSamples(n.stats()));
      const names = new Set(samples.map((x) => x.name));
      for (const n of ['corral_sessions_replication_lag_seconds', 'corral_sessions_handoff_pending', 'corral_sessions_member_up', 'corral_sessions_auth_failures_total', 'corral_sessions_ready']) {
        assert.ok(names.has(n), n);
      }
      assert.equal(samples.filter((x) => x.name === 'corral_sessions').reduce((a, x) => a + x.value, 0), 2);
      assert.equal(samples.filter((x) => x.name === 'corral_sessions_member_up').length, 9);
      for (const x of samples) {
        assert.match(x.name, /^corral_sessions(_[a-z]+)*$/);
        if (x.type === 'counter') assert.match(x.name, /_total$/);
      }
    } finally {
      await cluster.close();
    }
  });
});

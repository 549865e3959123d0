import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HashRing } from './ring.js';

const nodes = ['10.0.0.1:42425', '10.0.0.2:42425', '10.0.0.3:42425'];
const keys = Array.from({ length: 30_000 }, (_, i) => `sess-${i}-${(i * 7919).toString(36)}`);

describe('hash ring', () => {
  it('spreads keys evenly (each node within ±15% of its share)', () => {
    const ring = new HashRing(nodes);
    const counts = new Map<string, number>();
    for (const k of keys) {
      const [o] = ring.owners(k, 1);
      counts.set(o as string, (counts.get(o as string) ?? 0) + 1);
    }
    for (const n of nodes) {
      const share = (counts.get(n) ?? 0) / keys.length;
      assert.ok(Math.abs(share - 1 / 3) < 0.05, `${n}: ${share}`);
    }
  });

  it('gives distinct owners, the same for every ring built from the same members in any order', () => {
    const a = new HashRing(nodes);
    const b = new HashRing([...nodes].reverse());
    for (const k of keys.slice(0, 1000)) {
      const o = a.owners(k, 2);
      assert.equal(new Set(o).size, 2);
      assert.deepEqual(b.owners(k, 2), o);
    }
  });

  it('when a node dies only its keys move, and the surviving owner comes first', () => {
    const ring = new HashRing(nodes);
    const dead = nodes[1] as string;
    for (const k of keys.slice(0, 5000)) {
      const before = ring.owners(k, 2);
      const after = ring.owners(k, 2, (id) => id !== dead);
      if (!before.includes(dead)) assert.deepEqual(after, before);
      else {
        const survivor = before.find((id) => id !== dead);
        assert.equal(after[0], survivor);
        assert.equal(after.length, 2);
      }
    }
  });

  it('returns fewer owners than asked when too few are live', () => {
    const ring = new HashRing(nodes);
    assert.deepEqual(ring.owners('k', 2, (id) => id === nodes[2]), [nodes[2]]);
    assert.deepEqual(ring.owners('k', 2, () => false), []);
    assert.equal(ring.owners('k', 5).length, 3);
  });
});

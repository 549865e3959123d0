import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { agentWeight, effectiveWeight, MAX_WEIGHT, nextRampChangeAt, slowStartFactor, weightAt } from './weight.js';

test('agent weight: percent of configured, absolute, load', () => {
  assert.equal(agentWeight(32, undefined), 32);
  assert.equal(agentWeight(32, { kind: 'percent', percent: 75 }), 24);
  assert.equal(agentWeight(32, { kind: 'percent', percent: 0 }), 0);
  assert.equal(agentWeight(200, { kind: 'percent', percent: 500 }), MAX_WEIGHT);
  assert.equal(agentWeight(32, { kind: 'absolute', weight: 40 }), 40);
  assert.equal(agentWeight(32, { kind: 'load', load: 0 }), 32);
  assert.equal(agentWeight(32, { kind: 'load', load: 0.25 }), 24);
  assert.equal(agentWeight(32, { kind: 'load', load: 1 }), 1, 'a fully loaded server keeps weight 1');
  assert.equal(agentWeight(32, { kind: 'load', load: 7.5 }), 1);
  assert.equal(agentWeight(0, { kind: 'load', load: 0 }), 0, 'configured 0 stays 0');
});

test('slow start: linear from a small weight to full', () => {
  assert.equal(slowStartFactor(undefined, 100, 10_000), 1);
  assert.equal(slowStartFactor(0, 5000, 0), 1);
  assert.equal(slowStartFactor(0, 2500, 10_000), 0.25);
  assert.equal(slowStartFactor(0, 10_000, 10_000), 1);
  assert.equal(weightAt(32, 0, 0, 10_000), 1, 'starts at 1, not 0');
  assert.equal(weightAt(32, 0, 2500, 10_000), 8);
  assert.equal(weightAt(32, 0, 5000, 10_000), 16);
  assert.equal(weightAt(32, 0, 9999, 10_000), 32);
  assert.equal(weightAt(32, 0, 20_000, 10_000), 32);
  assert.equal(weightAt(0, 0, 10, 10_000), 0);
  // Regression: base × (elapsed / slowStart) rounded above an exact step (108 over 46602 ms at 863 ms).
  assert.equal(weightAt(108, 0, 863, 46_602), 2);
  assert.equal(nextRampChangeAt(108, 0, 500, 46_602), 864);
});

test('effective weight: drain is 0; ramp applies to the agent weight', () => {
  const inputs = { configured: 40, directive: { kind: 'percent', percent: 50 } as const, drained: false, rampStart: 0, slowStart: 1000 };
  assert.equal(effectiveWeight(inputs, 500), 10);
  assert.equal(effectiveWeight(inputs, 2000), 20);
  assert.equal(effectiveWeight({ ...inputs, drained: true }, 2000), 0);
});

test('property: the ramp is monotonic, within 1..base, and nextRampChangeAt finds every change', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 256 }), fc.integer({ min: 1, max: 600_000 }), (base, slowStart) => {
      let now = 0;
      let prev = weightAt(base, 0, now, slowStart);
      let changes = 0;
      for (let guard = 0; guard < 1000; guard++) {
        const at = nextRampChangeAt(base, 0, now, slowStart);
        if (at === undefined) break;
        assert.ok(at > now);
        // Nothing changes strictly between now and at.
        assert.equal(weightAt(base, 0, at - 1 > now ? at - 1 : now, slowStart), prev);
        now = at;
        const w = weightAt(base, 0, now, slowStart);
        assert.ok(w >= prev && w >= 1 && w <= base);
        if (w !== prev) changes++;
        prev = w;
      }
      assert.equal(weightAt(base, 0, now, slowStart), base);
      assert.ok(changes <= base);
    }),
  );
});

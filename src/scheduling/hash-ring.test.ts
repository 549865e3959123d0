import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashString } from './hash32.js';
import { HashRing } from './hash-ring.js';
import type { PickRequest, ServerView } from './types.js';

type Server = { -readonly [K in keyof ServerView]: ServerView[K] };
const request: PickRequest = { clientIp: '10.0.0.1', clientPort: 1, host: '', hashKey: undefined, now: 0 };

function farm(weights: readonly number[]): Server[] {
  return weights.map((weight, id) => ({
    id,
    name: `app${id + 1}`,
    weight,
    active: 0,
    maxConn: 0,
    eligible: true,
    backup: false,
  }));
}

function owners(ring: HashRing, servers: readonly ServerView[], version: number, keys: number): string[] {
  const out: string[] = [];
  for (let k = 0; k < keys; k++) out.push(ring.pick(servers, version, hashString(`key-${k}`), request)?.name ?? '-');
  return out;
}

test('builds lazily, with round(weight × 40) points per server', () => {
  const ring = new HashRing();
  assert.equal(ring.builds, 0);
  const servers = farm([1, 2, 0, 0.5]);
  ring.pick(servers, 0, 123, request);
  assert.equal(ring.builds, 1);
  assert.equal(ring.size, 40 + 80 + 0 + 20);
  assert.equal(new HashRing({ pointsPerWeight: 3 }).pick(servers, 0, 1, request) !== undefined, true);
  assert.throws(() => new HashRing({ pointsPerWeight: 0 }), RangeError);
});

test('rebuilds only when names or point counts change', () => {
  const ring = new HashRing();
  const servers = farm([1, 1, 1]);
  ring.pick(servers, 0, 1, request);
  ring.pick(servers, 0, 2, request);
  servers[1]!.eligible = false; // health never rebuilds
  ring.pick(servers, 0, 3, request);
  ring.pick(servers, 1, 4, request); // version bump, same weights
  ring.pick(farm([1, 1, 1]), 1, 5, request); // same servers, new array
  assert.equal(ring.builds, 1);
  servers[1]!.eligible = true;
  servers[1]!.weight = 2;
  ring.pick(servers, 2, 6, request);
  assert.equal(ring.builds, 2);
  assert.equal(ring.size, 160);
});

test('skipping an ineligible server moves only its keys, and they come back', () => {
  const ring = new HashRing();
  const servers = farm([1, 1, 1, 1]);
  const before = owners(ring, servers, 0, 2000);
  servers[2]!.eligible = false;
  const during = owners(ring, servers, 0, 2000);
  let moved = 0;
  for (let k = 0; k < before.length; k++) {
    if (before[k] === 'app3') {
      assert.notEqual(during[k], 'app3');
      moved++;
    } else {
      assert.equal(during[k], before[k]);
    }
  }
  assert.ok(moved > 300 && moved < 700, `${moved} of 2000 keys were on a quarter of the ring`);
  servers[2]!.eligible = true;
  assert.deepEqual(owners(ring, servers, 0, 2000), before);
  assert.equal(ring.builds, 1);
});

test('nothing pickable gives undefined without a walk; a lone survivor takes every key', () => {
  const ring = new HashRing();
  const servers = farm([1, 1, 1]);
  for (const s of servers) s.eligible = false;
  assert.equal(ring.pick(servers, 0, 42, request), undefined);
  assert.equal(ring.builds, 0);
  servers[1]!.eligible = true;
  assert.deepEqual(new Set(owners(ring, servers, 0, 200)), new Set(['app2']));
});

test('a weight raised from 0 without a version bump still gets traffic (stale ring fallback)', () => {
  const ring = new HashRing();
  const servers = farm([0, 1]);
  assert.equal(ring.pick(servers, 0, 1, request)?.name, 'app2'); // built without app1
  servers[1]!.eligible = false;
  servers[0]!.weight = 1; // contract broken: no weightsVersion bump
  assert.equal(ring.pick(servers, 0, 1, request)?.name, 'app1');
  assert.equal(ring.builds, 1);
});

test('doc example weights 32 each: shares within ±10 % of a quarter', () => {
  const ring = new HashRing();
  const servers = farm([32, 32, 32, 32]);
  const counts = new Map<string, number>();
  for (const name of owners(ring, servers, 0, 40000)) counts.set(name, (counts.get(name) ?? 0) + 1);
  for (const [name, n] of counts) assert.ok(Math.abs(n / 10000 - 1) < 0.1, `${name}: ${n}`);
});

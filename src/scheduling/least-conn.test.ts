import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLeastConn, leastConnIndex } from './least-conn.js';
import type { PickRequest, ServerView } from './types.js';

type Server = { -readonly [K in keyof ServerView]: ServerView[K] };
const request: PickRequest = { clientIp: '10.0.0.1', clientPort: 1, host: '', hashKey: undefined, now: 0 };

function farm(weights: readonly number[], active: readonly number[] = []): Server[] {
  return weights.map((weight, id) => ({
    id,
    name: String.fromCharCode(97 + id),
    weight,
    active: active[id] ?? 0,
    maxConn: 0,
    eligible: true,
    backup: false,
  }));
}

test('picks the lowest (active + 1) / weight', () => {
  // 2/3 < 1/1
  assert.equal(leastConnIndex(farm([3, 1], [1, 0]), request, 0), 0);
  // 4/3 > 1/1
  assert.equal(leastConnIndex(farm([3, 1], [3, 0]), request, 0), 1);
  // 11/10 > 1/1
  assert.equal(leastConnIndex(farm([10, 1], [10, 0]), request, 0), 1);
  // ties go to the first at or after the start
  assert.equal(leastConnIndex(farm([1, 1]), request, 1), 1);
  assert.equal(leastConnIndex(farm([1, 1]), request, 7), 0);
});

test('ties rotate instead of always going to the first', () => {
  const servers = farm([1, 1, 1]);
  const lc = createLeastConn();
  const view = { primaries: servers, backups: [], weightsVersion: 0 };
  let seen = '';
  for (let i = 0; i < 6; i++) seen += lc.pick(view, request)?.name; // completes instantly: active stays 0
  assert.equal(seen, 'abcabc');
});

test('without completions, connections pile up in proportion to weight', () => {
  const servers = farm([2, 1]);
  const lc = createLeastConn();
  const view = { primaries: servers, backups: [], weightsVersion: 0 };
  let seen = '';
  for (let i = 0; i < 6; i++) {
    const s = servers[lc.pick(view, request)!.id]!;
    s.active++;
    seen += s.name;
  }
  assert.equal(seen, 'abaaba');
  assert.deepEqual(servers.map((s) => s.active), [4, 2]);
});

test('full, ineligible and excluded servers are skipped; none left gives undefined', () => {
  const servers = farm([1, 1, 1]);
  servers[0]!.eligible = false;
  servers[1]!.maxConn = 1;
  servers[1]!.active = 1;
  const lc = createLeastConn();
  const view = { primaries: servers, backups: [], weightsVersion: 0 };
  assert.equal(lc.pick(view, request)?.name, 'c');
  assert.equal(lc.pick(view, { ...request, exclude: new Set([2]) }), undefined);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRandom } from './random.js';
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

/** Replays `values`, then fails: each pick must use exactly the draws we expect. */
function script(values: readonly number[]): () => number {
  let i = 0;
  return () => {
    assert.ok(i < values.length, 'more random draws than expected');
    return values[i++]!;
  };
}

test('draws are weighted: with weights 1,3, 0.2 of 4 lands on a, 0.5 of 3 (a removed) on b', () => {
  const view = { primaries: farm([1, 3]), backups: [], weightsVersion: 0 };
  // idle: tie, the first draw wins
  assert.equal(createRandom({ random: script([0.2, 0.5]) }).pick(view, request)?.name, 'a');
  // 0.3 × 4 = 1.2 ≥ 1 → b first; then only a is left
  assert.equal(createRandom({ random: script([0.3, 0.99]) }).pick(view, request)?.name, 'b');
});

test('the less loaded of the two draws wins, by active / weight', () => {
  // a: 2/1, b: 3/3 → b
  const view = { primaries: farm([1, 3], [2, 3]), backups: [], weightsVersion: 0 };
  assert.equal(createRandom({ random: script([0, 0]) }).pick(view, request)?.name, 'b');
  // a: 1/1, b: 3/3 → tie, first draw (a)
  const tie = { primaries: farm([1, 3], [1, 3]), backups: [], weightsVersion: 0 };
  assert.equal(createRandom({ random: script([0, 0]) }).pick(tie, request)?.name, 'a');
});

test('the second draw is distinct and skips unpickable servers', () => {
  const servers = farm([1, 1, 1, 1], [5, 0, 0, 0]);
  servers[1]!.eligible = false;
  const view = { primaries: servers, backups: [], weightsVersion: 0 };
  // both draws at 0: first a, then (a skipped, b unpickable) c; c is idle → c
  assert.equal(createRandom({ random: script([0, 0]) }).pick(view, request)?.name, 'c');
});

test('a lone pickable server is returned without drawing; none gives undefined', () => {
  const servers = farm([1, 1]);
  servers[0]!.weight = 0;
  const view = { primaries: servers, backups: [], weightsVersion: 0 };
  assert.equal(createRandom({ random: script([]) }).pick(view, request)?.name, 'b');
  servers[1]!.eligible = false;
  assert.equal(createRandom({ random: script([]) }).pick(view, request), undefined);
});

test('a draw at the very end (rounding, or a generator returning 1) lands on the last pickable server', () => {
  const view = { primaries: farm([1, 1]), backups: [], weightsVersion: 0 };
  assert.equal(createRandom({ random: script([1, 1]) }).pick(view, request)?.name, 'b');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRoundRobin } from './round-robin.js';
import type { BackendView, PickRequest, ServerView } from './types.js';

type Server = { -readonly [K in keyof ServerView]: ServerView[K] };
const request: PickRequest = { clientIp: '10.0.0.1', clientPort: 1, host: '', hashKey: undefined, now: 0 };

function farm(weights: readonly number[]): Server[] {
  return weights.map((weight, id) => ({
    id,
    name: String.fromCharCode(97 + id),
    weight,
    active: 0,
    maxConn: 0,
    eligible: true,
    backup: false,
  }));
}

function names(view: BackendView, picks: number, req: PickRequest = request): string {
  const rr = createRoundRobin();
  let out = '';
  for (let i = 0; i < picks; i++) out += rr.pick(view, req)?.name ?? '-';
  return out;
}

test('weights 5,1,1 interleave as nginx does: a a b a c a a', () => {
  const view = { primaries: farm([5, 1, 1]), backups: [], weightsVersion: 0 };
  assert.equal(names(view, 14), 'aabacaa'.repeat(2));
});

test('equal weights take turns; weights 2,1 give a b a', () => {
  assert.equal(names({ primaries: farm([1, 1, 1]), backups: [], weightsVersion: 0 }, 6), 'abcabc');
  assert.equal(names({ primaries: farm([2, 1]), backups: [], weightsVersion: 0 }, 6), 'abaaba');
});

test('unpickable servers are skipped and the rest keep their proportions', () => {
  const servers = farm([5, 1, 1, 3]);
  servers[3]!.eligible = false;
  assert.equal(names({ primaries: servers, backups: [], weightsVersion: 0 }, 7), 'aabacaa');
  const excluded = { ...request, exclude: new Set([0]) };
  assert.equal(names({ primaries: servers, backups: [], weightsVersion: 0 }, 4, excluded), 'bcbc');
});

test('nothing pickable gives undefined', () => {
  const servers = farm([0, 1]);
  servers[1]!.maxConn = 1;
  servers[1]!.active = 1;
  assert.equal(createRoundRobin().pick({ primaries: servers, backups: [], weightsVersion: 0 }, request), undefined);
  assert.equal(createRoundRobin().pick({ primaries: [], backups: [], weightsVersion: 0 }, request), undefined);
});

test('a new primaries array starts a fresh cycle', () => {
  const rr = createRoundRobin();
  const first = { primaries: farm([5, 1, 1]), backups: [], weightsVersion: 0 };
  rr.pick(first, request);
  rr.pick(first, request);
  const second = { primaries: farm([1, 1]), backups: [], weightsVersion: 0 };
  assert.equal(rr.pick(second, request)?.name, 'a');
  assert.equal(rr.pick(second, request)?.name, 'b');
});

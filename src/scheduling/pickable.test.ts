import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAvailable, isPickable } from './pickable.js';
import type { PickRequest, ServerView } from './types.js';

const request: PickRequest = { clientIp: '10.0.0.1', clientPort: 1, host: '', hashKey: undefined, now: 0 };
const ok: ServerView = { id: 3, name: 'a', weight: 1, active: 0, maxConn: 0, eligible: true, backup: false };

test('a healthy server with weight and free slots is pickable', () => {
  assert.equal(isPickable(ok, request), true);
  assert.equal(isPickable({ ...ok, maxConn: 2, active: 1 }, request), true);
  assert.equal(isPickable({ ...ok, backup: true }, request), true);
});

test('ineligible, zero-weight, full and excluded servers are not', () => {
  assert.equal(isPickable({ ...ok, eligible: false }, request), false);
  assert.equal(isPickable({ ...ok, weight: 0 }, request), false);
  assert.equal(isPickable({ ...ok, maxConn: 2, active: 2 }, request), false);
  assert.equal(isPickable({ ...ok, maxConn: 2, active: 3 }, request), false);
  assert.equal(isPickable(ok, { ...request, exclude: new Set([3]) }), false);
  assert.equal(isPickable(ok, { ...request, exclude: new Set([2, 4]) }), true);
});

test('isAvailable ignores the exclude set', () => {
  assert.equal(isAvailable(ok), true);
  assert.equal(isAvailable({ ...ok, maxConn: 1, active: 1 }), false);
});

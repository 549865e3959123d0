import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHash } from './hash.js';
import type { BackendView, PickRequest, ServerView } from './types.js';

const request: PickRequest = { clientIp: '10.0.0.1', clientPort: 40000, host: '', hashKey: 'alice', now: 0 };
const view: BackendView = {
  primaries: [5, 1, 1].map(
    (weight, id): ServerView => ({
      id,
      name: String.fromCharCode(97 + id),
      weight,
      active: 0,
      maxConn: 0,
      eligible: true,
      backup: false,
    }),
  ),
  backups: [],
  weightsVersion: 0,
};

test('the same key reaches the same server; different keys spread', () => {
  const hash = createHash();
  const alice = hash.pick(view, request);
  for (let i = 0; i < 20; i++) assert.equal(hash.pick(view, { ...request, clientIp: `10.0.0.${i}` }), alice);
  const seen = new Set<string>();
  for (let i = 0; i < 300; i++) seen.add(hash.pick(view, { ...request, hashKey: `user-${i}` })!.name);
  assert.equal(seen.size, 3);
  assert.ok(hash.pick(view, { ...request, hashKey: '' }) !== undefined, 'the empty string is a key');
});

test('requests without a key fall back to smooth weighted round robin', () => {
  const hash = createHash();
  let seen = '';
  for (let i = 0; i < 7; i++) {
    seen += hash.pick(view, { ...request, hashKey: undefined })!.name;
    hash.pick(view, request); // keyed requests do not disturb the fallback's cycle
  }
  assert.equal(seen, 'aabacaa');
});

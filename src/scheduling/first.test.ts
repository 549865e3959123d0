import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createFirst } from './first.js';
import type { PickRequest, ServerView } from './types.js';

type Server = { -readonly [K in keyof ServerView]: ServerView[K] };
const request: PickRequest = { clientIp: '10.0.0.1', clientPort: 1, host: '', hashKey: undefined, now: 0 };

test('fills servers in configuration order up to their maxConn', () => {
  const servers: Server[] = [0, 1, 2].map((id) => ({
    id,
    name: String.fromCharCode(97 + id),
    weight: 1,
    active: 0,
    maxConn: 2,
    eligible: true,
    backup: false,
  }));
  const view = { primaries: servers, backups: [], weightsVersion: 0 };
  const first = createFirst();
  let seen = '';
  for (let i = 0; i < 7; i++) {
    const s = first.pick(view, request);
    if (s === undefined) {
      seen += '-';
      continue;
    }
    servers[s.id]!.active++;
    seen += s.name;
  }
  assert.equal(seen, 'aabbcc-');
  servers[0]!.active = 1; // one of a's requests finished
  assert.equal(first.pick(view, request)?.name, 'a');
  assert.equal(first.pick(view, { ...request, exclude: new Set([0]) }), undefined);
});

test('skips ineligible and zero-weight servers', () => {
  const servers: ServerView[] = [
    { id: 0, name: 'a', weight: 0, active: 0, maxConn: 0, eligible: true, backup: false },
    { id: 1, name: 'b', weight: 1, active: 0, maxConn: 0, eligible: false, backup: false },
    { id: 2, name: 'c', weight: 1, active: 9, maxConn: 0, eligible: true, backup: false },
  ];
  assert.equal(createFirst().pick({ primaries: servers, backups: [], weightsVersion: 0 }, request)?.name, 'c');
});

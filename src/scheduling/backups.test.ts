import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BALANCE_KINDS, createScheduler } from './create-scheduler.js';
import type { BackendView, PickRequest, ServerView } from './types.js';

type Server = { -readonly [K in keyof ServerView]: ServerView[K] };
const request: PickRequest = { clientIp: '10.0.0.1', clientPort: 1, host: 'h', hashKey: 'k', now: 0 };

function backend(primaries: readonly number[], backups: readonly number[]): { servers: Server[]; view: BackendView } {
  const servers = [...primaries, ...backups].map((weight, id) => ({
    id,
    name: id < primaries.length ? `p${id}` : `b${id - primaries.length}`,
    weight,
    active: 0,
    maxConn: 0,
    eligible: true,
    backup: id >= primaries.length,
  }));
  return {
    servers,
    view: { primaries: servers.slice(0, primaries.length), backups: servers.slice(primaries.length), weightsVersion: 0 },
  };
}

function sequence(pick: () => ServerView | undefined, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(pick()?.name ?? '-');
  return out.join(' ');
}

test('backups serve only when no primary is pickable; by default the first pickable backup', () => {
  const { servers, view } = backend([1, 1], [1, 1, 1]);
  const s = createScheduler({ balance: 'roundrobin' });
  assert.equal(sequence(() => s.pick(view, request), 4), 'p0 p1 p0 p1');
  servers[0]!.eligible = false;
  servers[1]!.maxConn = 1;
  servers[1]!.active = 1;
  assert.equal(sequence(() => s.pick(view, request), 3), 'b0 b0 b0');
  servers[2]!.eligible = false;
  assert.equal(sequence(() => s.pick(view, request), 2), 'b1 b1');
  assert.equal(s.pick(view, { ...request, exclude: new Set([3]) })?.name, 'b2');
});

test('allBackups balances over every backup with its own state', () => {
  const { servers, view } = backend([1, 1], [2, 1]);
  const s = createScheduler({ balance: 'roundrobin', allBackups: true });
  assert.equal(s.pick(view, request)?.name, 'p0');
  servers[0]!.eligible = false;
  servers[1]!.eligible = false;
  assert.equal(sequence(() => s.pick(view, request), 6), 'b0 b1 b0 b0 b1 b0');
  servers[0]!.eligible = true;
  servers[1]!.eligible = true;
  // the primaries' cycle resumes where it was: p0 was last, p1 is owed
  assert.equal(sequence(() => s.pick(view, request), 2), 'p1 p0');
});

test('every balance kind falls back the same way and returns undefined when nothing is left', () => {
  for (const balance of BALANCE_KINDS) {
    for (const allBackups of [false, true]) {
      const { servers, view } = backend([1, 1], [1]);
      const s = createScheduler({ balance, allBackups, random: () => 0.5 });
      assert.equal(s.pick(view, request)?.backup, false, balance);
      servers[0]!.eligible = false;
      servers[1]!.weight = 0;
      assert.equal(s.pick(view, request)?.name, 'b0', balance);
      servers[2]!.eligible = false;
      assert.equal(s.pick(view, request), undefined, balance);
    }
  }
});

test('an unknown balance is refused', () => {
  assert.throws(() => createScheduler({ balance: 'fastest' as never }), RangeError);
});

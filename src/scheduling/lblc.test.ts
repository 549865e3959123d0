import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLblc } from './lblc.js';
import type { BackendView, PickRequest, ServerView } from './types.js';

type Server = { -readonly [K in keyof ServerView]: ServerView[K] };

function farm(weights: readonly number[]): { servers: Server[]; view: BackendView } {
  const servers = weights.map((weight, id) => ({
    id,
    name: String.fromCharCode(97 + id),
    weight,
    active: 0,
    maxConn: 0,
    eligible: true,
    backup: false,
  }));
  return { servers, view: { primaries: servers, backups: [], weightsVersion: 0 } };
}

function at(host: string, now: number, exclude?: ReadonlySet<number>): PickRequest {
  return { clientIp: '10.0.0.1', clientPort: 1, host, hashKey: undefined, now, ...(exclude ? { exclude } : {}) };
}

test('a new host goes to the least-connection server and stays there while it is not overloaded', () => {
  const { servers, view } = farm([4, 4, 4]);
  servers[0]!.active = 2;
  const lblc = createLblc();
  assert.equal(lblc.pick(view, at('shop.example', 0))?.name, 'b');
  servers[1]!.active = 4; // busier than a and c, but not above its weight
  assert.equal(lblc.pick(view, at('shop.example', 1))?.name, 'b');
  assert.equal(lblc.pick(view, at('blog.example', 2))?.name, 'c');
  assert.equal(lblc.size, 2);
});

test('an overloaded server keeps its host unless another server is under half load', () => {
  const { servers, view } = farm([4, 4]);
  const lblc = createLblc();
  assert.equal(lblc.pick(view, at('shop.example', 0))?.name, 'a');
  servers[0]!.active = 9; // above its weight 4
  servers[1]!.active = 2; // exactly half load: not below it
  assert.equal(lblc.pick(view, at('shop.example', 1))?.name, 'a');
  servers[1]!.active = 1; // 1 × 2 < 4: under half load
  assert.equal(lblc.pick(view, at('shop.example', 2))?.name, 'b');
  servers[0]!.active = 0; // the table now says b
  assert.equal(lblc.pick(view, at('shop.example', 3))?.name, 'b');
});

test('a host whose server goes down moves and stays moved', () => {
  const { servers, view } = farm([1, 1]);
  const lblc = createLblc();
  assert.equal(lblc.pick(view, at('h', 0))?.name, 'a');
  servers[0]!.eligible = false;
  assert.equal(lblc.pick(view, at('h', 1))?.name, 'b');
  servers[0]!.eligible = true;
  assert.equal(lblc.pick(view, at('h', 2))?.name, 'b');
});

test('a retry excluding the host\'s server goes elsewhere without rewriting the entry', () => {
  const { view } = farm([1, 1]);
  const lblc = createLblc();
  assert.equal(lblc.pick(view, at('h', 0))?.name, 'a');
  assert.equal(lblc.pick(view, at('h', 1, new Set([0])))?.name, 'b');
  assert.equal(lblc.pick(view, at('h', 2))?.name, 'a');
  assert.equal(lblc.pick(view, at('h', 3, new Set([0, 1]))), undefined);
});

test('an entry idle for more than expire ms is forgotten; exactly expire is kept', () => {
  const { servers, view } = farm([1, 1]);
  const lblc = createLblc({ expire: 1000 });
  assert.equal(lblc.pick(view, at('h', 0))?.name, 'a');
  servers[0]!.active = 1; // b is now the least loaded, a is not overloaded
  assert.equal(lblc.pick(view, at('h', 1000))?.name, 'a');
  assert.equal(lblc.pick(view, at('h', 2000))?.name, 'a');
  assert.equal(lblc.pick(view, at('h', 3001))?.name, 'b');
});

test('expired entries are swept lazily', () => {
  const { view } = farm([1]);
  const lblc = createLblc({ expire: 10 });
  for (let i = 0; i < 100; i++) lblc.pick(view, at(`host-${i}`, 0));
  assert.equal(lblc.size, 100);
  for (let i = 0; i < 256; i++) lblc.pick(view, at('busy', 100));
  assert.equal(lblc.size, 1);
});

test('a full table evicts the least recently used host', () => {
  const { servers, view } = farm([1, 1]);
  const lblc = createLblc({ maxEntries: 2 });
  assert.equal(lblc.pick(view, at('x', 0))?.name, 'a');
  assert.equal(lblc.pick(view, at('y', 1))?.name, 'b');
  assert.equal(lblc.pick(view, at('x', 2))?.name, 'a'); // x is now the most recent
  assert.equal(lblc.pick(view, at('z', 3))?.name, 'a'); // evicts y (tie: the cursor is back at a)
  assert.equal(lblc.size, 2);
  servers[1]!.active = 1; // y, if remembered, would stay on b
  assert.equal(lblc.pick(view, at('y', 4))?.name, 'a');
  assert.throws(() => createLblc({ maxEntries: 0 }), RangeError);
  assert.throws(() => createLblc({ expire: -1 }), RangeError);
});

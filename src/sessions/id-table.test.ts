import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { IdTable } from './id-table.js';

describe('IdTable', () => {
  it('behaves like a Map under any sequence of sets, gets and deletes', () => {
    const id = fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 0xffffffff }));
    const op = fc.oneof(
      fc.record({ t: fc.constant('set' as const), id, v: fc.integer() }),
      fc.record({ t: fc.constant('del' as const), id }),
      fc.record({ t: fc.constant('get' as const), id }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const table = new IdTable<number>();
        const model = new Map<number, number>();
        for (const o of ops) {
          if (o.t === 'set') {
            table.set(o.id, o.v);
            model.set(o.id, o.v);
          } else if (o.t === 'del') assert.equal(table.delete(o.id), model.delete(o.id));
          else assert.equal(table.get(o.id), model.get(o.id));
          assert.equal(table.size, model.size);
        }
        for (const [k, v] of model) assert.equal(table.get(k), v);
        assert.deepEqual(new Map(table.entries()), model);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps working as sequential ids wrap past an entry that stays (a long stream among short requests)', () => {
    const table = new IdTable<string>();
    table.set(5, 'stream');
    for (let id = 6; id < 200_000; id++) {
      table.set(id, 'r');
      if (id - 40 > 5) assert.equal(table.delete(id - 40), true);
    }
    assert.equal(table.get(5), 'stream');
    assert.ok(table.size <= 42, `size ${table.size}`);
  });

  it('refuses ids outside 1 … 2^32 − 1', () => {
    const table = new IdTable<number>();
    assert.throws(() => table.set(0, 1), RangeError);
    assert.throws(() => table.set(2 ** 32, 1), RangeError);
    assert.throws(() => table.set(1.5, 1), RangeError);
  });
});

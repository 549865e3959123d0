import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FNV_OFFSET, fnv1a, fnv1aDecimal, hashString, mix32 } from './hash32.js';

test('FNV-1a 32 matches the reference vectors', () => {
  // http://www.isthe.com/chongo/src/fnv/test_fnv.c
  assert.equal(fnv1a(FNV_OFFSET, ''), 0x811c9dc5);
  assert.equal(fnv1a(FNV_OFFSET, 'a'), 0xe40c292c);
  assert.equal(fnv1a(FNV_OFFSET, 'foobar'), 0xbf9cf968);
  assert.equal(fnv1a(fnv1a(FNV_OFFSET, 'foo'), 'bar'), 0xbf9cf968);
});

test('fnv1aDecimal hashes the decimal digits without building the string', () => {
  for (const n of [0, 1, 9, 10, 99, 100, 443, 8080, 65535, 1234567]) {
    assert.equal(fnv1aDecimal(FNV_OFFSET, n), fnv1a(FNV_OFFSET, String(n)));
    assert.equal(fnv1aDecimal(fnv1a(FNV_OFFSET, '10.0.0.1:'), n), fnv1a(FNV_OFFSET, `10.0.0.1:${n}`));
  }
});

test('mix32 is murmur3 fmix32', () => {
  assert.equal(mix32(0), 0);
  assert.equal(mix32(1), 0x514e28b7);
  assert.equal(hashString('10.0.0.1'), mix32(fnv1a(FNV_OFFSET, '10.0.0.1')));
});

test('neighbouring keys land far apart', () => {
  const a = hashString('10.0.0.1');
  const b = hashString('10.0.0.2');
  let bits = 0;
  for (let x = (a ^ b) >>> 0; x !== 0; x >>>= 1) bits += x & 1;
  assert.ok(bits >= 8, `only ${bits} bits differ`);
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatDuration, parseDuration } from './duration.js';
import { ConfigValueError } from './errors.js';

describe('parseDuration', () => {
  const cases: [string, number][] = [
    ['0s', 0],
    ['500ms', 500],
    ['2s', 2_000],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1m30s', 90_000],
    ['1h1m1s1ms', 3_661_001],
    ['90s', 90_000],
    ['6m', 360_000],
  ];
  for (const [text, ms] of cases) {
    it(`reads ${text} as ${ms}ms`, () => assert.equal(parseDuration(text), ms));
  }

  const rejected: [string, RegExp][] = [
    ['5', /needs a unit/],
    ['0', /needs a unit/],
    ['-5s', /cannot be negative/],
    ['-5', /cannot be negative/],
    ['1.5s', /fractions are not allowed.*1500ms/],
    ['', /expected a duration/],
    ['abc', /expected a duration such as 500ms/],
    ['5x', /expected a duration/],
    ['5 s', /expected a duration/],
    ['1S', /expected a duration/],
    ['30s1m', /largest to smallest/],
    ['1s1s', /largest to smallest/],
    ['99999999999999999d', /too large/],
  ];
  for (const [text, message] of rejected) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseDuration(text), (e: unknown) => {
        assert.ok(e instanceof ConfigValueError);
        assert.equal(e.code, 'CORRAL_ERR_CONFIG');
        assert.match(e.message, message);
        assert.ok(e.message.includes(JSON.stringify(text)), 'the message quotes the input');
        return true;
      });
    });
  }
});

describe('formatDuration', () => {
  it('writes the canonical form', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(1_500), '1s500ms');
    assert.equal(formatDuration(86_400_000 + 1), '1d1ms');
  });

  it('rejects negative and fractional milliseconds', () => {
    assert.throws(() => formatDuration(-1), ConfigValueError);
    assert.throws(() => formatDuration(1.5), ConfigValueError);
  });

  it('round-trips every millisecond count', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (ms) => {
        assert.equal(parseDuration(formatDuration(ms)), ms);
      }),
    );
  });

  it('round-trips every canonical string', () => {
    const term = (unit: string, max: number) =>
      fc.option(fc.integer({ min: 1, max }).map((n) => `${n}${unit}`), { nil: '' });
    const canonical = fc
      .tuple(term('d', 10_000), term('h', 23), term('m', 59), term('s', 59), term('ms', 999))
      .map((parts) => parts.join(''))
      .filter((text) => text !== '');
    fc.assert(fc.property(canonical, (text) => assert.equal(formatDuration(parseDuration(text)), text)));
  });
});

import { ConfigValueError } from './errors.js';
import type { Duration } from './types.js';

/** Units from largest to smallest; a duration names each at most once, in this order. */
const UNITS = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
] as const;

const EXPECTED = 'expected a duration such as 500ms, 2s, 1m30s or 1h (units d, h, m, s, ms)';

// `ms` is tried before `m` so that `5ms` is not read as five minutes and a stray `s`.
const TERM = /(\d+)(ms|d|h|m|s)/y;

/**
 * Parses a duration string into milliseconds.
 *
 * A duration is one or more `<integer><unit>` terms, largest unit first,
 * each unit at most once: `500ms`, `2s`, `1m30s`, `1h`, `1d12h`.
 * Bare numbers, fractions, negative values and unknown units are rejected.
 *
 * @throws {ConfigValueError} with a message saying what is expected.
 * @example
 * parseDuration('1m30s'); // 90000
 */
export function parseDuration(text: string): Duration {
  const fail = (reason: string): ConfigValueError =>
    new ConfigValueError(`${reason}, got ${JSON.stringify(text)}`);

  if (text.startsWith('-')) throw fail('a duration cannot be negative');
  if (/^\+?\d+(\.\d+)?$/.test(text)) throw fail(`a duration needs a unit: ${EXPECTED}`);
  if (text.length === 0) throw fail(EXPECTED);

  let total = 0;
  let lastRank = -1;
  let pos = 0;
  while (pos < text.length) {
    TERM.lastIndex = pos;
    const m = TERM.exec(text);
    if (m === null) {
      TERM.lastIndex = pos;
      if (/\d+[.,]\d/y.test(text)) {
        throw fail('fractions are not allowed; use a smaller unit (1500ms, not 1.5s)');
      }
      throw fail(EXPECTED);
    }
    const rank = UNITS.findIndex(([unit]) => unit === m[2]);
    const unit = UNITS[rank];
    if (unit === undefined) throw fail(EXPECTED); // unreachable: TERM only matches known units
    if (rank <= lastRank) throw fail('units must go from largest to smallest, each at most once (1m30s)');
    lastRank = rank;
    total += Number(m[1]) * unit[1];
    pos = TERM.lastIndex;
  }
  if (!Number.isSafeInteger(total)) throw fail('duration is too large');
  return total;
}

/**
 * Formats milliseconds as the shortest canonical duration string, the
 * inverse of {@link parseDuration}: `parseDuration(formatDuration(ms)) === ms`.
 *
 * @throws {ConfigValueError} when `ms` is not a non-negative safe integer.
 * @example
 * formatDuration(90_000); // '1m30s'
 * formatDuration(0);      // '0s'
 */
export function formatDuration(ms: Duration): string {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new ConfigValueError(`expected a whole number of milliseconds ≥ 0, got ${ms}`);
  }
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of UNITS) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}

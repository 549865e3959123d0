import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { OutlierConfig } from '../config/index.js';
import { ejectionTime, maxEjected, OutlierCore, OutlierEjector, type OutlierEvent } from './outlier.js';

const config: OutlierConfig = { consecutive5xx: 3, consecutiveConnectFailures: 2, ejectFor: 1000, maxEjectFor: 5000, maxEjectedPercent: 50 };
const servers = (n: number): { name: string }[] => Array.from({ length: n }, (_, i) => ({ name: `s${i}` }));
function core(n = 4, c: Partial<OutlierConfig> = {}): OutlierCore {
  return new OutlierCore([{ name: 'app', outlier: { ...config, ...c }, servers: servers(n) as never }]);
}

test('consecutive 5xx eject; a good answer in between resets the count', () => {
  const o = core();
  assert.equal(o.record('app', 's0', '5xx', 0), undefined);
  assert.equal(o.record('app', 's0', '5xx', 0), undefined);
  assert.equal(o.record('app', 's0', 'ok', 0), undefined);
  assert.equal(o.record('app', 's0', '5xx', 0), undefined);
  assert.equal(o.record('app', 's0', '5xx', 0), undefined);
  const e = o.record('app', 's0', '5xx', 10)!;
  assert.deepEqual(e, { kind: 'eject', backend: 'app', server: 's0', reason: 'OUTLIER_5XX', failures: 3, ejections: 1, durationMs: 1000, until: 1010, at: 10 });
  assert.equal(o.isEjected('app', 's0'), true);
  assert.equal(o.record('app', 's0', '5xx', 20), undefined, 'outcomes while ejected are ignored');
});

test('consecutive connect failures eject; a 5xx means the connect worked', () => {
  const o = core();
  o.record('app', 's1', 'connect-failure', 0);
  o.record('app', 's1', '5xx', 0);
  assert.equal(o.record('app', 's1', 'connect-failure', 0), undefined);
  assert.equal(o.record('app', 's1', 'connect-failure', 0)?.reason, 'OUTLIER_CONNECT');
});

test('servers return on time; repeat ejections double up to maxEjectFor; service forgives', () => {
  const o = core(4, { consecutive5xx: 1 });
  const durations: number[] = [];
  let now = 0;
  for (let i = 0; i < 5; i++) {
    const e = o.record('app', 's0', '5xx', now)!;
    durations.push(e.durationMs);
    assert.deepEqual(o.tick(e.until - 1), []);
    const back = o.tick(e.until);
    assert.equal(back.length, 1);
    assert.equal(back[0]!.kind, 'return');
    now = e.until;
  }
  assert.deepEqual(durations, [1000, 2000, 4000, 5000, 5000]);
  // Three ejectFor periods in service forgive three steps: the next is the 3rd in a row (4000).
  now += 3000;
  assert.equal(o.record('app', 's0', '5xx', now)!.durationMs, 4000);
  assert.equal(o.nextReturnAt(), now + 4000);
});

test('maxEjectedPercent caps ejections, at least one; a lone server is never ejected', () => {
  assert.equal(maxEjected(1, 100), 0);
  assert.equal(maxEjected(2, 10), 1);
  assert.equal(maxEjected(10, 10), 1);
  assert.equal(maxEjected(10, 35), 3);
  assert.equal(maxEjected(10, 0), 0);
  const o = core(4, { consecutive5xx: 1, maxEjectedPercent: 50 });
  assert.ok(o.record('app', 's0', '5xx', 0));
  assert.ok(o.record('app', 's1', '5xx', 0));
  assert.equal(o.record('app', 's2', '5xx', 0), undefined, 'cap reached');
  assert.equal(o.isEjected('app', 's2'), false);
  o.tick(1000);
  assert.ok(o.record('app', 's2', '5xx', 1000), 'retried on the next failure once there is room');
  const lone = core(1, { consecutive5xx: 1, maxEjectedPercent: 100 });
  assert.equal(lone.record('app', 's0', '5xx', 0), undefined);
});

test('backends without outlier config, unknown servers: nothing happens', () => {
  const o = new OutlierCore([{ name: 'plain', servers: servers(3) as never }]);
  assert.equal(o.enabled('plain'), false);
  assert.equal(o.record('plain', 's0', '5xx', 0), undefined);
  assert.equal(o.record('nope', 's0', '5xx', 0), undefined);
});

test('property: never more than maxEjected servers out; every ejection ends with one return', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 0, max: 100 }),
      fc.array(fc.tuple(fc.nat(11), fc.constantFrom('ok', '5xx', 'connect-failure') as fc.Arbitrary<'ok' | '5xx' | 'connect-failure'>, fc.integer({ min: 0, max: 3000 })), { maxLength: 300 }),
      (n, pct, seq) => {
        const o = core(n, { consecutive5xx: 2, consecutiveConnectFailures: 1, maxEjectedPercent: pct });
        let now = 0;
        let out = 0;
        for (const [i, outcome, dt] of seq) {
          now += dt;
          out -= o.tick(now).length;
          if (o.record('app', `s${i % n}`, outcome, now)?.kind === 'eject') out++;
          assert.ok(out <= maxEjected(n, pct));
          let count = 0;
          for (let k = 0; k < n; k++) if (o.isEjected('app', `s${k}`)) count++;
          assert.equal(count, out);
        }
        out -= o.tick(Number.MAX_SAFE_INTEGER).length;
        assert.equal(out, 0);
      },
    ),
  );
});

test('ejection time: doubling capped', () => {
  assert.equal(ejectionTime(config, 1), 1000);
  assert.equal(ejectionTime(config, 3), 4000);
  assert.equal(ejectionTime(config, 60), 5000);
});

test('ejector: returns the server on time with a real timer', async () => {
  const events: OutlierEvent[] = [];
  let resolveReturn: () => void;
  const returned = new Promise<void>((r) => (resolveReturn = r));
  const ej = new OutlierEjector(
    [{ name: 'app', outlier: { ...config, consecutive5xx: 1, ejectFor: 50 }, servers: servers(3) as never }],
    (e) => {
      events.push(e);
      if (e.kind === 'return') resolveReturn();
    },
    () => performance.now(),
  );
  const t0 = performance.now();
  const keepAlive = setInterval(() => {}, 1000); // the ejector's timer is unref'ed
  ej.record('app', 's2', '5xx');
  await returned;
  clearInterval(keepAlive);
  assert.ok(performance.now() - t0 >= 49);
  assert.deepEqual(events.map((e) => `${e.kind} ${e.server}`), ['eject s2', 'return s2']);
  ej.stop();
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { CheckResult, Reason } from './reasons.js';
import {
  admissionDueAt,
  describeTransition,
  initialState,
  isTransitioning,
  next,
  type Health,
  type MachineParams,
  type MachineState,
  type Step,
} from './state-machine.js';

const OK: CheckResult = { reason: { code: 'L7_OK' }, durationMs: 3 };
const REFUSED: CheckResult = { reason: { code: 'L4_REFUSED' }, durationMs: 1 };
const S503: CheckResult = { reason: { code: 'L7_STATUS', status: 503 }, durationMs: 4 };

const base: MachineParams = { rise: 2, fall: 3, warmup: 0, flapWindow: 60_000, flapThreshold: 3, flapHold: 0 };

/** Feeds results one per `every` ms from `start`; returns every step. */
function run(params: MachineParams, state: MachineState, results: readonly CheckResult[], every = 1000, start = 1000): { state: MachineState; steps: Step[]; now: number } {
  const steps: Step[] = [];
  let now = start;
  for (const r of results) {
    const step = next(state, { kind: 'check', result: r }, now, params);
    steps.push(step);
    state = step.state;
    now += every;
  }
  return { state, steps, now };
}

const healths = (steps: readonly Step[]): Health[] => steps.map((s) => s.state.health);
const transitions = (steps: readonly Step[]): string[] =>
  steps.flatMap((s) => (s.transition === undefined ? [] : [`${s.transition.from}>${s.transition.to}`]));

/** A server that has been checked once and is up, at the top of the counter. */
function upServer(params: MachineParams): MachineState {
  return next(initialState(params, 0, { checked: true }), { kind: 'check', result: OK }, 0, params).state;
}

/** A checked server that is down with the counter at 0. */
function downServer(params: MachineParams): MachineState {
  return next(initialState(params, 0, { checked: true }), { kind: 'check', result: REFUSED }, 0, params).state;
}

test('initial state: checked servers start down one pass short of rise; unchecked ones up', () => {
  const s = initialState(base, 5, { checked: true });
  assert.equal(s.health, 'down');
  assert.equal(s.counter, base.rise - 1);
  assert.equal(s.checked, false);
  assert.deepEqual(s.reason, { code: 'INIT' });
  const n = initialState(base, 5, { checked: false });
  assert.equal(n.health, 'up');
  assert.deepEqual(n.reason, { code: 'NO_CHECK' });
  const carried = initialState(base, 5, { checked: true, carried: 'up' });
  assert.equal(carried.health, 'up');
  assert.equal(carried.counter, base.rise + base.fall - 1);
});

test('the first pass admits at once, without warm-up', () => {
  const params = { ...base, warmup: 10_000 };
  const { steps } = run(params, initialState(params, 0, { checked: true }), [OK]);
  assert.equal(steps[0]!.transition?.to, 'up');
  assert.equal(steps[0]!.transition?.cause, 'first-check');
});

test('a first failure keeps the server down; it then needs rise passes and warm-up', () => {
  const params = { ...base, warmup: 5000 };
  const { steps } = run(params, initialState(params, 0, { checked: true }), [REFUSED, OK, OK, OK, OK, OK, OK, OK]);
  assert.deepEqual(healths(steps), ['down', 'down', 'warming', 'warming', 'warming', 'warming', 'warming', 'up']);
  assert.equal(steps[0]!.transition, undefined, 'down → down is no transition');
});

test('HAProxy counter: fall consecutive failures take an up server down', () => {
  const { steps } = run(base, upServer(base), [REFUSED, REFUSED, REFUSED]);
  assert.deepEqual(healths(steps), ['up', 'up', 'down']);
  assert.deepEqual(steps.map((s) => s.state.counter), [3, 2, 0]);
  const t = steps[2]!.transition!;
  assert.equal(t.cause, 'fall');
  assert.equal(t.count, 3);
  assert.equal(describeTransition(t), 'DOWN: L4_REFUSED after 3 failures');
});

test('HAProxy counter: a pass while going down restores the top of the counter', () => {
  const { steps } = run(base, upServer(base), [REFUSED, REFUSED, OK, REFUSED, REFUSED, OK]);
  assert.deepEqual(healths(steps), ['up', 'up', 'up', 'up', 'up', 'up']);
  assert.deepEqual(steps.map((s) => s.state.counter), [3, 2, 4, 3, 2, 4]);
});

test('HAProxy counter: rise consecutive passes bring a down server up; a failure restarts the count', () => {
  const { steps } = run(base, downServer(base), [OK, REFUSED, OK, OK]);
  assert.deepEqual(healths(steps), ['down', 'down', 'down', 'up']);
  assert.deepEqual(steps.map((s) => s.state.counter), [1, 0, 1, 4]);
  assert.equal(describeTransition(steps[3]!.transition!), 'UP: L7_OK after 2 successes');
});

test('rise 1 / fall 1 flips on every result', () => {
  const p = { ...base, rise: 1, fall: 1 };
  const { steps } = run(p, upServer(p), [REFUSED, OK, S503, OK]);
  assert.deepEqual(healths(steps), ['down', 'up', 'down', 'up']);
  assert.equal(describeTransition(steps[2]!.transition!), 'DOWN: L7_STATUS 503 after 1 failure');
});

test('warm-up: rise passes lead to warming; admission after staying healthy for the whole warm-up', () => {
  const params = { ...base, warmup: 5000 };
  const start = downServer(params);
  const { steps } = run(params, start, [OK, OK, OK, OK, OK, OK, OK, OK], 1000, 1000);
  // rise reached at t=2000; admitted by the first pass at or after t=7000.
  assert.deepEqual(healths(steps), ['down', 'warming', 'warming', 'warming', 'warming', 'warming', 'up', 'up']);
  const warming = steps[1]!.state;
  assert.equal(admissionDueAt(warming, params), 7000);
  const admitted = steps[6]!.transition!;
  assert.equal(admitted.cause, 'warmed-up');
  assert.equal(admitted.heldMs, 5000);
  assert.equal(describeTransition(admitted), 'UP: L7_OK after 5000ms of warm-up');
});

test('warm-up: any failure sends the server back down and restarts the clock', () => {
  const params = { ...base, warmup: 5000 };
  const { steps } = run(params, downServer(params), [OK, OK, OK, OK, S503, OK, OK, OK, OK, OK, OK, OK]);
  assert.deepEqual(transitions(steps), ['down>warming', 'warming>down', 'down>warming', 'warming>up']);
  assert.equal(steps[4]!.transition!.cause, 'failed-warming');
  assert.equal(describeTransition(steps[4]!.transition!), 'DOWN: L7_STATUS 503 during warm-up');
  // Second streak: warming at t=7000 (index 6), admitted at t=12000 (index 11).
  assert.equal(steps[6]!.state.warmingSince, 7000);
  assert.equal(steps[11]!.state.health, 'up');
});

test('flapping is announced once and holds a server back until it is stable for flapHold', () => {
  const params = { ...base, rise: 1, fall: 1, warmup: 0, flapThreshold: 3, flapWindow: 60_000, flapHold: 10_000 };
  let state = upServer(params);
  const notices: string[] = [];
  const seen: string[] = [];
  let now = 1000;
  // Up 2 s, down 2 s, ten times over.
  for (let cycle = 0; cycle < 10; cycle++) {
    for (const r of [REFUSED, REFUSED, OK, OK]) {
      const step = next(state, { kind: 'check', result: r }, now, params);
      if (step.notice !== undefined) notices.push(step.notice.kind);
      if (step.transition !== undefined) seen.push(step.transition.to);
      state = step.state;
      now += 1000;
    }
  }
  assert.deepEqual(notices, ['flapping'], 'announced once');
  // Admitted twice before the third fall marks it flapping, then never again.
  assert.equal(seen.filter((h) => h === 'up').length, 2);
  assert.equal(state.flapping, true);
  // Then it stays healthy: admitted after flapHold, with a "stable" notice.
  let admittedAt: number | undefined;
  for (let i = 0; i < 15; i++) {
    const step = next(state, { kind: 'check', result: OK }, now, params);
    if (step.notice !== undefined) notices.push(step.notice.kind);
    if (step.transition?.to === 'up') admittedAt = now;
    state = step.state;
    now += 1000;
  }
  assert.deepEqual(notices, ['flapping', 'stable']);
  assert.equal(state.health, 'up');
  assert.equal(state.flapping, false);
  assert.ok(admittedAt !== undefined);
});

test('falls spread wider than the flap window are no flapping', () => {
  const params = { ...base, rise: 1, fall: 1, flapWindow: 10_000, flapThreshold: 3, flapHold: 30_000 };
  let state = upServer(params);
  let now = 0;
  for (let i = 0; i < 10; i++) {
    for (const r of [REFUSED, OK]) {
      const step = next(state, { kind: 'check', result: r }, now, params);
      assert.equal(step.notice, undefined);
      state = step.state;
      now += 3000; // one fall every 6 s: at most 2 per 10 s window
    }
  }
  assert.equal(state.flapping, false);
  assert.ok(state.falls.length <= params.flapThreshold);
});

test('track input mirrors the tracked health and is emitted once per change', () => {
  let state = initialState(base, 0, { checked: true });
  const reason: Reason = { code: 'TRACKED', target: 'app/app1', cause: { code: 'L4_REFUSED' } };
  const s1 = next(state, { kind: 'track', health: 'up', reason }, 10, base);
  assert.equal(s1.transition?.to, 'up');
  assert.equal(s1.transition?.cause, 'tracked');
  state = s1.state;
  const s2 = next(state, { kind: 'track', health: 'up', reason }, 20, base);
  assert.equal(s2.transition, undefined);
  const s3 = next(s2.state, { kind: 'track', health: 'warming', reason }, 30, base);
  assert.equal(s3.transition?.to, 'warming');
  assert.equal(s3.state.warmingSince, 30);
  assert.equal(describeTransition(s3.transition!), 'WARMING: TRACKED app/app1 L4_REFUSED');
});

test('isTransitioning: between states only', () => {
  const up = upServer(base);
  assert.equal(isTransitioning(up, base), false);
  const goingDown = next(up, { kind: 'check', result: REFUSED }, 1, base).state;
  assert.equal(isTransitioning(goingDown, base), true);
  const down = downServer(base);
  assert.equal(isTransitioning(down, base), false);
  const goingUp = next(down, { kind: 'check', result: OK }, 1, base).state;
  assert.equal(isTransitioning(goingUp, base), true);
});

// --- properties ---------------------------------------------------------

const paramsArb = fc.record({
  rise: fc.integer({ min: 1, max: 5 }),
  fall: fc.integer({ min: 1, max: 5 }),
  warmup: fc.integer({ min: 0, max: 20_000 }),
  flapWindow: fc.integer({ min: 1000, max: 120_000 }),
  flapThreshold: fc.integer({ min: 2, max: 5 }),
  flapHold: fc.integer({ min: 0, max: 30_000 }),
});
const resultArb = fc.constantFrom<CheckResult>(OK, REFUSED, S503, { reason: { code: 'L4_TIMEOUT' }, durationMs: 1000 });
const stepsArb = fc.array(fc.tuple(resultArb, fc.integer({ min: 1, max: 5000 })), { maxLength: 200 });

test('property: the counter stays in 0..rise+fall-1, up/warming only at rise or above', () => {
  fc.assert(
    fc.property(paramsArb, stepsArb, (params, seq) => {
      let state = initialState(params, 0, { checked: true });
      let now = 0;
      for (const [r, dt] of seq) {
        now += dt;
        state = next(state, { kind: 'check', result: r }, now, params).state;
        assert.ok(state.counter >= 0 && state.counter <= params.rise + params.fall - 1);
        if (state.health !== 'down') assert.ok(state.counter >= params.rise);
        if (state.health === 'down') assert.ok(state.counter < params.rise);
      }
    }),
  );
});

test('property: transitions are real changes and go along the diagram', () => {
  const allowed = new Set(['down>up', 'down>warming', 'warming>up', 'warming>down', 'up>down']);
  fc.assert(
    fc.property(paramsArb, stepsArb, (params, seq) => {
      let state = initialState(params, 0, { checked: true });
      let now = 0;
      for (const [r, dt] of seq) {
        now += dt;
        const step = next(state, { kind: 'check', result: r }, now, params);
        if (step.transition !== undefined) {
          assert.notEqual(step.transition.from, step.transition.to);
          assert.ok(allowed.has(`${step.transition.from}>${step.transition.to}`));
          assert.equal(step.transition.from, state.health);
          assert.equal(step.state.since, now);
        } else {
          assert.equal(step.state.health, state.health);
        }
        state = step.state;
      }
    }),
  );
});

test('property: an up server goes down exactly after `fall` consecutive failures', () => {
  fc.assert(
    fc.property(paramsArb, fc.array(fc.boolean(), { maxLength: 100 }), (params, oks) => {
      let state = upServer(params);
      let failures = 0;
      let now = 0;
      for (const ok of oks) {
        now += 1000;
        if (state.health !== 'up') break;
        const step = next(state, { kind: 'check', result: ok ? OK : REFUSED }, now, params);
        failures = ok ? 0 : failures + 1;
        assert.equal(step.state.health === 'down', failures >= params.fall);
        state = step.state;
      }
    }),
  );
});

test('property: a server whose healthy streaks are shorter than warm-up is never admitted', () => {
  // Results alternate between runs of passes and runs of failures; every run
  // of passes lasts less than the warm-up, so the server never goes up.
  const runsArb = fc.array(fc.tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 10 })), { minLength: 1, maxLength: 30 });
  fc.assert(
    fc.property(paramsArb, fc.integer({ min: 50, max: 2000 }), runsArb, (p, every, runs) => {
      const params = { ...p, warmup: Math.max(p.warmup, 1) };
      let state = downServer(params);
      let now = 0;
      for (const [passes, failures] of runs) {
        // The streak runs from the rise-th pass to the last: (n − rise) × every < warmup.
        const n = Math.min(passes, params.rise - 1 + Math.ceil(params.warmup / every));
        for (let i = 0; i < n; i++) {
          now += every;
          state = next(state, { kind: 'check', result: OK }, now, params).state;
          assert.notEqual(state.health, 'up', `admitted at ${now}`);
        }
        for (let i = 0; i < failures; i++) {
          now += every;
          state = next(state, { kind: 'check', result: REFUSED }, now, params).state;
          assert.equal(state.health, 'down');
        }
      }
    }),
  );
});

test('property: once flapping, a server alternating faster than flapHold is never admitted, and the notice comes once', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 2, max: 4 }),
      fc.integer({ min: 100, max: 1000 }),
      fc.integer({ min: 20, max: 60 }),
      (rise, fall, flapThreshold, every, cycles) => {
        const params: MachineParams = { rise, fall, warmup: 0, flapWindow: 1_000_000, flapThreshold, flapHold: (rise + 2) * every };
        let state = upServer(params);
        let now = 0;
        let notices = 0;
        let upsAfterFlapping = 0;
        for (let c = 0; c < cycles; c++) {
          // `rise + 1` passes: enough to rise, shorter than flapHold; then `fall` failures.
          for (let i = 0; i < rise + 1; i++) {
            now += every;
            const step = next(state, { kind: 'check', result: OK }, now, params);
            if (state.flapping && step.state.health === 'up') upsAfterFlapping++;
            if (step.notice !== undefined) notices++;
            state = step.state;
          }
          for (let i = 0; i < fall; i++) {
            now += every;
            const step = next(state, { kind: 'check', result: REFUSED }, now, params);
            if (step.notice !== undefined) notices++;
            state = step.state;
          }
        }
        assert.equal(notices, 1);
        assert.equal(upsAfterFlapping, 0);
      },
    ),
  );
});

test('property: next is pure (same input, same output; the input state is not mutated)', () => {
  fc.assert(
    fc.property(paramsArb, stepsArb, (params, seq) => {
      let state = initialState(params, 0, { checked: true });
      let now = 0;
      for (const [r, dt] of seq) {
        now += dt;
        const frozen = JSON.stringify(state);
        const a = next(state, { kind: 'check', result: r }, now, params);
        const b = next(state, { kind: 'check', result: r }, now, params);
        assert.deepEqual(a, b);
        assert.equal(JSON.stringify(state), frozen);
        state = a.state;
      }
    }),
  );
});

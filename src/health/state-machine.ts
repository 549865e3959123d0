/**
 * A server's health as a pure function of check results and time: no
 * timers, no sockets. The shell (`monitor.ts`) feeds it and acts on the
 * transitions it returns.
 *
 * The counter is HAProxy's (`include/haproxy/check-t.h`, `check.c`): it runs
 * from 0 to `rise + fall - 1`; `0..rise-1` is bad, `rise..rise+fall-1` good.
 * A pass while bad counts up and, on reaching `rise`, jumps to the top; a
 * pass while good goes back to the top. A failure while good counts down and,
 * on falling below `rise`, drops to 0; a failure while bad drops to 0. So a
 * server needs `rise` passes in a row to come up and `fall` failures in a row
 * to go down.
 *
 * On top of the counter:
 * - warm-up: reaching `rise` leads to `warming`, not `up`; the server is
 *   admitted by the first pass at least `warmup` after the streak began. Any
 *   failure while warming sends it straight back to `down` (counter 0), so
 *   the clock restarts after the next `rise` passes.
 * - flap detection: every fall (up → down or warming → down) is remembered;
 *   `flapThreshold` falls within `flapWindow` mark the server as flapping,
 *   once. While flapping, admission needs a healthy streak of
 *   `max(warmup, flapHold)`, so a server flapping faster than that is never
 *   admitted. Admission clears the flag (announced once as `stable`).
 * - the first check result ever: servers start `down` with the counter at
 *   `rise - 1` (see `initialState`), so one pass admits them at once, without
 *   warm-up: nothing is known against them, and a balancer restart should not
 *   keep a healthy farm out for the warm-up. One failure keeps them down, and
 *   from then on they rise like any other server.
 */
import { formatReason, passed, type CheckResult, type Reason } from './reasons.js';

/** Health states (the administrative `drain`/`maint` are the balancer's). */
export type Health = 'up' | 'down' | 'warming';

export interface MachineParams {
  /** Consecutive passes that bring a server up (≥ 1). */
  readonly rise: number;
  /** Consecutive failures that take it down (≥ 1). */
  readonly fall: number;
  /** Healthy time required in `warming` before admission (ms, 0 = none). */
  readonly warmup: number;
  /** Falls counted within this window (ms) … */
  readonly flapWindow: number;
  /** … mark the server as flapping when they reach this number (≥ 2). */
  readonly flapThreshold: number;
  /** Healthy time a flapping server needs before admission (ms). */
  readonly flapHold: number;
}

export interface MachineState {
  readonly health: Health;
  /** HAProxy's health counter, `0..rise+fall-1`. */
  readonly counter: number;
  /** When `health` last changed (ms). */
  readonly since: number;
  /** While warming: when the current healthy streak began. */
  readonly warmingSince: number | undefined;
  /** Whether any result has been seen (the first one may admit at once). */
  readonly checked: boolean;
  /** The last input's reason, and how long that check took. */
  readonly reason: Reason;
  readonly durationMs: number | undefined;
  readonly consecutiveSuccesses: number;
  readonly consecutiveFailures: number;
  /** Times of recent falls, oldest first, at most `flapThreshold` of them. */
  readonly falls: readonly number[];
  readonly flapping: boolean;
}

export type MachineInput =
  /** One active check's result. */
  | { readonly kind: 'check'; readonly result: CheckResult }
  /** `track`: take the tracked server's health as is. */
  | { readonly kind: 'track'; readonly health: Health; readonly reason: Reason };

export interface Transition {
  readonly from: Health;
  readonly to: Health;
  readonly reason: Reason;
  readonly durationMs: number | undefined;
  /** What caused it, for log lines. */
  readonly cause: 'first-check' | 'rise' | 'fall' | 'warmed-up' | 'failed-warming' | 'tracked';
  /** Consecutive passes (rise, warmed-up, first-check) or failures (fall, failed-warming). */
  readonly count: number;
  /** The healthy time that was required (warming → up). */
  readonly heldMs?: number;
}

export interface Step {
  readonly state: MachineState;
  /** Set when `health` changed. */
  readonly transition?: Transition;
  /** Flapping began (set once per episode) or ended with an admission. */
  readonly notice?: { readonly kind: 'flapping'; readonly falls: number; readonly windowMs: number; readonly holdMs: number } | { readonly kind: 'stable' };
}

/**
 * The state a server starts in. `checked` servers (`health.type` other than
 * `none`) start `down` one pass short of `rise`; servers without checks start
 * `up`. `carried` continues a previous generation's health (a reload): `up`
 * starts at the top of the counter, anything else as a never-checked server.
 */
export function initialState(params: MachineParams, now: number, opts: { checked: boolean; carried?: Health | undefined }): MachineState {
  const top = params.rise + params.fall - 1;
  const base = {
    since: now,
    warmingSince: undefined,
    durationMs: undefined,
    consecutiveSuccesses: 0,
    consecutiveFailures: 0,
    falls: [],
    flapping: false,
  } as const;
  if (!opts.checked) return { ...base, health: 'up', counter: top, checked: true, reason: { code: 'NO_CHECK' } };
  if (opts.carried === 'up') return { ...base, health: 'up', counter: top, checked: true, reason: { code: 'INIT' } };
  return { ...base, health: 'down', counter: params.rise - 1, checked: false, reason: { code: 'INIT' } };
}

/** The healthy time required in `warming` before admission. */
export function requiredHold(state: MachineState, params: MachineParams): number {
  return state.flapping ? Math.max(params.warmup, params.flapHold) : params.warmup;
}

/** While warming: when a pass would admit the server (the shell checks then). */
export function admissionDueAt(state: MachineState, params: MachineParams): number | undefined {
  if (state.health !== 'warming' || state.warmingSince === undefined) return undefined;
  return state.warmingSince + requiredHold(state, params);
}

/**
 * Whether the server is between states (counting towards a rise, a fall or
 * an admission): the shell checks it more often then.
 */
export function isTransitioning(state: MachineState, params: MachineParams): boolean {
  switch (state.health) {
    case 'up':
      return state.counter < params.rise + params.fall - 1;
    case 'down':
      return state.counter > 0;
    case 'warming':
      return true;
  }
}

/** The next state after one input at time `now`. Pure. */
export function next(state: MachineState, input: MachineInput, now: number, params: MachineParams): Step {
  if (input.kind === 'track') return track(state, input.health, input.reason, now, params);
  const { reason, durationMs } = input.result;
  const ok = passed(reason);
  const top = params.rise + params.fall - 1;
  const counted: MachineState = {
    ...state,
    checked: true,
    reason,
    durationMs,
    consecutiveSuccesses: ok ? state.consecutiveSuccesses + 1 : 0,
    consecutiveFailures: ok ? 0 : state.consecutiveFailures + 1,
  };
  const move = (to: Health, patch: Partial<MachineState>, cause: Transition['cause'], extra: Partial<Transition> = {}): Step => {
    const moved: MachineState = { ...counted, ...patch, health: to, since: now };
    const transition: Transition = {
      from: state.health,
      to,
      reason,
      durationMs,
      cause,
      count: ok ? counted.consecutiveSuccesses : counted.consecutiveFailures,
      ...extra,
    };
    return { state: moved, transition };
  };

  switch (state.health) {
    case 'up': {
      if (ok) return { state: { ...counted, counter: top } };
      const counter = state.counter - 1;
      if (counter >= params.rise) return { state: { ...counted, counter } };
      return withFall(move('down', { counter: 0, warmingSince: undefined }, 'fall'), now, params);
    }
    case 'down': {
      if (!ok) return { state: { ...counted, counter: 0 } };
      const counter = state.counter + 1;
      if (counter < params.rise) return { state: { ...counted, counter } };
      if (!state.checked) return move('up', { counter: top }, 'first-check');
      const hold = requiredHold(state, params);
      if (hold <= 0) return move('up', { counter: top }, 'rise');
      return move('warming', { counter: top, warmingSince: now }, 'rise');
    }
    case 'warming': {
      if (!ok) return withFall(move('down', { counter: 0, warmingSince: undefined }, 'failed-warming'), now, params);
      const since = state.warmingSince ?? now;
      const hold = requiredHold(state, params);
      if (now - since < hold) return { state: { ...counted, counter: top } };
      const step = move('up', { counter: top, warmingSince: undefined, flapping: false, falls: [] }, 'warmed-up', { heldMs: hold });
      return state.flapping ? { ...step, notice: { kind: 'stable' } } : step;
    }
  }
}

/** Records a fall and raises the flapping notice when the threshold is reached. */
function withFall(step: Step, now: number, params: MachineParams): Step {
  const recent = step.state.falls.filter((t) => now - t < params.flapWindow);
  recent.push(now);
  const falls = recent.slice(-params.flapThreshold);
  if (step.state.flapping || falls.length < params.flapThreshold) return { ...step, state: { ...step.state, falls } };
  return {
    ...step,
    state: { ...step.state, falls, flapping: true },
    notice: {
      kind: 'flapping',
      falls: falls.length,
      windowMs: params.flapWindow,
      holdMs: Math.max(params.warmup, params.flapHold),
    },
  };
}

function track(state: MachineState, health: Health, reason: Reason, now: number, params: MachineParams): Step {
  const top = params.rise + params.fall - 1;
  const ok = health !== 'down';
  const updated: MachineState = {
    ...state,
    checked: true,
    reason,
    counter: ok ? top : 0,
    warmingSince: health === 'warming' ? (state.health === 'warming' ? state.warmingSince : now) : undefined,
  };
  if (health === state.health) return { state: updated };
  return {
    state: { ...updated, health, since: now },
    transition: { from: state.health, to: health, reason, durationMs: undefined, cause: 'tracked', count: 0 },
  };
}

/** A transition as one nanny-style phrase: `DOWN: L4_REFUSED after 3 failures`. */
export function describeTransition(t: Transition): string {
  const what = formatReason(t.reason);
  const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;
  switch (t.cause) {
    case 'first-check':
      return `${t.to.toUpperCase()}: ${what} on the first check`;
    case 'rise':
      return `${t.to.toUpperCase()}: ${what} after ${plural(t.count, 'success', 'successes')}`;
    case 'fall':
      return `DOWN: ${what} after ${plural(t.count, 'failure', 'failures')}`;
    case 'failed-warming':
      return `DOWN: ${what} during warm-up`;
    case 'warmed-up':
      return `UP: ${what} after ${t.heldMs ?? 0}ms of warm-up`;
    case 'tracked':
      return `${t.to.toUpperCase()}: ${what}`;
  }
}

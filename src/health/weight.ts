/**
 * Effective weight, pure: the configured weight, replaced or scaled by what
 * the agent last said, ramped by slow start after an admission.
 */

/** The largest weight a server can have (as in HAProxy and the config). */
export const MAX_WEIGHT = 256;

/** What an agent reply said about the weight. */
export type WeightDirective =
  /** `75%`: that share of the configured weight. */
  | { readonly kind: 'percent'; readonly percent: number }
  /** `weight:40`: this weight, whatever is configured. */
  | { readonly kind: 'absolute'; readonly weight: number }
  /**
   * A bare number: the server's load, 0 idle, 1 fully loaded (a load
   * average divided by the number of cores, say). The weight is the
   * configured one times `1 − load`, clamped to 0..1, and at least 1, so
   * that a farm where every server is loaded still takes traffic.
   */
  | { readonly kind: 'load'; readonly load: number };

const clampWeight = (w: number): number => Math.min(MAX_WEIGHT, Math.max(0, Math.round(w)));

/** The weight before slow start: the configured one, or what the agent asks for. */
export function agentWeight(configured: number, directive: WeightDirective | undefined): number {
  if (directive === undefined) return clampWeight(configured);
  switch (directive.kind) {
    case 'percent':
      return clampWeight((configured * directive.percent) / 100);
    case 'absolute':
      return clampWeight(directive.weight);
    case 'load': {
      if (configured <= 0) return 0;
      const free = Math.min(1, Math.max(0, 1 - directive.load));
      return Math.max(1, clampWeight(configured * free));
    }
  }
}

/**
 * Slow start: the share of its weight a server gets `now`, having been
 * admitted at `rampStart`: grows linearly from 0 to 1 over `slowStart` ms.
 * 1 without slow start or without an admission to ramp from.
 */
export function slowStartFactor(rampStart: number | undefined, now: number, slowStart: number): number {
  if (rampStart === undefined || slowStart <= 0) return 1;
  const elapsed = now - rampStart;
  if (elapsed >= slowStart) return 1;
  return Math.max(0, elapsed / slowStart);
}

/**
 * The weight at `now` of a server whose full weight is `base`, during slow
 * start: `ceil(base × factor)` and at least 1 (so the ramp starts small, not
 * at nothing); `base` once the ramp is over; 0 stays 0.
 */
export function weightAt(base: number, rampStart: number | undefined, now: number, slowStart: number): number {
  if (base <= 0) return 0;
  if (slowStartFactor(rampStart, now, slowStart) >= 1) return base;
  // (base × elapsed) / slowStart rather than base × (elapsed / slowStart): exact at the steps.
  const elapsed = Math.max(0, now - rampStart!);
  return Math.min(base, Math.max(1, Math.ceil((base * elapsed) / slowStart)));
}

/** When the ramp's weight next changes (ms), or undefined when it has ended. */
export function nextRampChangeAt(base: number, rampStart: number | undefined, now: number, slowStart: number): number | undefined {
  if (rampStart === undefined || slowStart <= 0 || base <= 0 || now - rampStart >= slowStart) return undefined;
  const current = weightAt(base, rampStart, now, slowStart);
  if (current >= base) return rampStart + slowStart;
  // weightAt becomes current + 1 once base × elapsed / slowStart exceeds current.
  const at = rampStart + Math.floor((slowStart * current) / base) + 1;
  return Math.min(rampStart + slowStart, Math.max(now + 1, at));
}

export interface WeightInputs {
  /** The configured weight, or the one an administrator set since. */
  readonly configured: number;
  readonly directive: WeightDirective | undefined;
  /** The agent said `drain`: no new traffic. */
  readonly drained: boolean;
  /** Start of the current slow-start ramp (the last admission), if any. */
  readonly rampStart: number | undefined;
  readonly slowStart: number;
}

/** The weight the balancer should use at `now`. */
export function effectiveWeight(inputs: WeightInputs, now: number): number {
  if (inputs.drained) return 0;
  return weightAt(agentWeight(inputs.configured, inputs.directive), inputs.rampStart, now, inputs.slowStart);
}

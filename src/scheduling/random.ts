import { isPickable } from './pickable.js';
import type { BackendView, PickRequest, Scheduler, ServerView } from './types.js';

export interface RandomOptions {
  /** Uniform numbers in [0, 1); default `Math.random`. Inject a seeded one in tests. */
  readonly random?: () => number;
}

/**
 * Weighted power of two random choices (traefik's `p2c`, HAProxy's
 * `random(2)`): draw two distinct pickable servers, each with probability
 * proportional to its weight (the second among the rest), and take the one
 * with the lower `active / weight`; on a tie the first draw wins.
 *
 * With idle servers every pick is the first draw, so traffic follows the
 * weights; under load the busier of the two draws is avoided, which bounds
 * how far any server falls behind without global coordination. A lone
 * pickable server is returned without drawing.
 *
 * Picks among `view.primaries` only; {@link createScheduler} adds backups.
 *
 * @example
 * ```ts
 * const p2c = createRandom(); // or createRandom({ random: seededRng }) in tests
 * p2c.pick(view, request);
 * ```
 */
export function createRandom(options: RandomOptions = {}): Scheduler {
  return new PowerOfTwoChoices(options.random ?? Math.random);
}

class PowerOfTwoChoices implements Scheduler {
  constructor(private readonly random: () => number) {}

  pick(view: BackendView, request: PickRequest): ServerView | undefined {
    const list = view.primaries;
    let total = 0;
    let count = 0;
    let last = -1;
    for (let i = 0; i < list.length; i++) {
      const server = list[i]!;
      if (!isPickable(server, request)) continue;
      total += server.weight;
      count++;
      last = i;
    }
    if (count === 0) return undefined;
    if (count === 1) return list[last];
    const a = list[this.draw(list, request, total, -1)]!;
    const b = list[this.draw(list, request, total - a.weight, a.id)]!;
    // b.active / b.weight < a.active / a.weight, weights > 0.
    return b.active * a.weight < a.active * b.weight ? b : a;
  }

  /** A pickable server other than `skipId`, with probability ∝ weight out of `total`. */
  private draw(
    list: readonly ServerView[],
    request: PickRequest,
    total: number,
    skipId: number,
  ): number {
    let r = this.random() * total;
    let last = -1;
    for (let i = 0; i < list.length; i++) {
      const server = list[i]!;
      if (server.id === skipId || !isPickable(server, request)) continue;
      last = i;
      r -= server.weight;
      if (r < 0) return i;
    }
    return last; // r landed on the very end through rounding
  }
}

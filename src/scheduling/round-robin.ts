import { isPickable } from './pickable.js';
import type { BackendView, PickRequest, Scheduler, ServerView } from './types.js';

/**
 * Smooth weighted round robin, as nginx does it
 * (`ngx_http_upstream_get_peer`): on each pick every pickable server's
 * `current` grows by its weight, the largest `current` wins (first in order
 * on a tie) and gives back the sum of the weights.
 *
 * The result is interleaved, not bursty: weights 5, 1, 1 give
 * `a a b a c a a`, and with integer weights and a steady set of pickable
 * servers any `sum(weights)` consecutive picks contain each server exactly
 * `weight` times. Servers skipped by a pick keep their `current`.
 *
 * Picks among `view.primaries` only; {@link createScheduler} adds backups.
 * State is per position in the primaries array and starts afresh when the
 * view hands over a different array (a new configuration generation).
 *
 * @example
 * ```ts
 * const rr = createRoundRobin();
 * rr.pick(view, request); // the server owed the most turns
 * ```
 */
export function createRoundRobin(): Scheduler {
  return new SmoothRoundRobin();
}

class SmoothRoundRobin implements Scheduler {
  private servers: readonly ServerView[] | undefined;
  /** nginx's `current_weight`, by position in `servers`. */
  private current = new Float64Array(0);

  pick(view: BackendView, request: PickRequest): ServerView | undefined {
    const list = view.primaries;
    if (list !== this.servers) {
      this.servers = list;
      this.current = new Float64Array(list.length);
    }
    const current = this.current;
    let total = 0;
    let best = -1;
    let bestCurrent = 0;
    for (let i = 0; i < list.length; i++) {
      const server = list[i]!;
      if (!isPickable(server, request)) continue;
      const c = current[i]! + server.weight;
      current[i] = c;
      total += server.weight;
      if (best < 0 || c > bestCurrent) {
        best = i;
        bestCurrent = c;
      }
    }
    if (best < 0) return undefined;
    current[best] = bestCurrent - total;
    return list[best];
  }
}

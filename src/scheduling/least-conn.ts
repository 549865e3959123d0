import { isPickable } from './pickable.js';
import type { BackendView, PickRequest, Scheduler, ServerView } from './types.js';

/**
 * Weighted least connections: the pickable server with the lowest
 * `(active + 1) / weight`, i.e. the lowest load once this request is on it.
 * Loads are compared by cross-multiplication, never divided. Ties go to the
 * first tied server at or after a cursor that moves past each pick, so
 * equal servers take turns instead of the first one taking everything.
 *
 * Invariant (picks without completions, from all idle): for any two pickable
 * servers `active_i / weight_i <= (active_j + 1) / weight_j`, so no server is
 * more than one request ahead of its share.
 *
 * Picks among `view.primaries` only; {@link createScheduler} adds backups.
 *
 * @example
 * ```ts
 * const lc = createLeastConn();
 * // weights 3, 1 with 1 and 0 active: (1+1)/3 < (0+1)/1, so the first
 * lc.pick(view, request);
 * ```
 */
export function createLeastConn(): Scheduler {
  return new LeastConn();
}

class LeastConn implements Scheduler {
  private next = 0;

  pick(view: BackendView, request: PickRequest): ServerView | undefined {
    const list = view.primaries;
    const best = leastConnIndex(list, request, this.next);
    if (best < 0) return undefined;
    this.next = best + 1 === list.length ? 0 : best + 1;
    return list[best];
  }
}

/**
 * Position of the pickable server with the lowest `(active + 1) / weight`,
 * scanning from `start` (wrapping) so that ties go to the first after it;
 * -1 when nothing is pickable. `start` outside the array counts as 0.
 */
export function leastConnIndex(
  list: readonly ServerView[],
  request: PickRequest,
  start: number,
): number {
  const n = list.length;
  const from = start >= 0 && start < n ? start : 0;
  let best = -1;
  let bestLoad = 0;
  let bestWeight = 1;
  for (let k = 0; k < n; k++) {
    const i = from + k < n ? from + k : from + k - n;
    const server = list[i]!;
    if (!isPickable(server, request)) continue;
    const load = server.active + 1;
    // load / weight < bestLoad / bestWeight, both weights > 0.
    if (best < 0 || load * bestWeight < bestLoad * server.weight) {
      best = i;
      bestLoad = load;
      bestWeight = server.weight;
    }
  }
  return best;
}

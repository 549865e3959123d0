import { isPickable } from './pickable.js';
import type { BackendView, PickRequest, Scheduler, ServerView } from './types.js';

/**
 * HAProxy's `balance first`: the first pickable server in configuration
 * order, so traffic fills one server up to its `maxConn` before the next one
 * gets any, and idle servers can be powered down. Weights only matter as
 * "0 = none". Without `maxConn` everything goes to the first pickable server.
 *
 * Picks among `view.primaries` only; {@link createScheduler} adds backups
 * (and uses this same rule for them unless `allBackups` is set).
 *
 * @example
 * ```ts
 * createFirst().pick(view, request); // view.primaries[0] unless it is full, down or excluded
 * ```
 */
export function createFirst(): Scheduler {
  return FIRST;
}

const FIRST: Scheduler = {
  pick(view: BackendView, request: PickRequest): ServerView | undefined {
    return firstPickable(view.primaries, request);
  },
};

/** The first pickable server of `list`, in order; undefined if none. */
export function firstPickable(
  list: readonly ServerView[],
  request: PickRequest,
): ServerView | undefined {
  for (let i = 0; i < list.length; i++) {
    const server = list[i]!;
    if (isPickable(server, request)) return server;
  }
  return undefined;
}

import type { PickRequest, ServerView } from './types.js';

/**
 * Whether `server` may take a new request at all, ignoring the request's
 * `exclude` set: eligible, weight above 0 and not full.
 *
 * LBLC uses it to tell "excluded for this retry" from "unusable".
 */
export function isAvailable(server: ServerView): boolean {
  return (
    server.eligible &&
    server.weight > 0 &&
    (server.maxConn === 0 || server.active < server.maxConn)
  );
}

/**
 * Whether a scheduler may hand `server` to `request`: eligible, weight above
 * 0, not full (`maxConn === 0` or `active < maxConn`) and not in
 * `request.exclude`. Every scheduler picks only servers for which this holds.
 *
 * @example
 * ```ts
 * isPickable({ id: 0, name: 'a', weight: 1, active: 2, maxConn: 2, eligible: true, backup: false }, req);
 * // false: the server is full
 * ```
 */
export function isPickable(server: ServerView, request: PickRequest): boolean {
  return (
    isAvailable(server) &&
    (request.exclude === undefined || !request.exclude.has(server.id))
  );
}

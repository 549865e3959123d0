import { hashString } from './hash32.js';
import { HashRing, type HashRingOptions } from './hash-ring.js';
import { createRoundRobin } from './round-robin.js';
import type { BackendView, PickRequest, Scheduler, ServerView } from './types.js';

/**
 * `balance: hash`: consistent hashing ({@link HashRing}) of
 * `request.hashKey`, the header, cookie, path or query value the balancer
 * extracted (`hashOn`). The same key reaches the same server while that
 * server is pickable.
 *
 * **Fallback:** a request without a key (`hashKey === undefined`, e.g. the
 * header is absent) is balanced by smooth weighted round robin, with its own
 * state, so keyless traffic spreads by weight instead of piling onto one
 * server. The empty string is a key like any other.
 *
 * Picks among `view.primaries` only; {@link createScheduler} adds backups.
 *
 * @example
 * ```ts
 * const byUser = createHash();
 * byUser.pick(view, { ...request, hashKey: 'alice' }); // alice's server
 * byUser.pick(view, { ...request, hashKey: undefined }); // round robin
 * ```
 */
export function createHash(options: HashRingOptions = {}): Scheduler {
  return new KeyHash(new HashRing(options), createRoundRobin());
}

class KeyHash implements Scheduler {
  constructor(
    private readonly ring: HashRing,
    private readonly fallback: Scheduler,
  ) {}

  pick(view: BackendView, request: PickRequest): ServerView | undefined {
    const key = request.hashKey;
    if (key === undefined) return this.fallback.pick(view, request);
    return this.ring.pick(view.primaries, view.weightsVersion, hashString(key), request);
  }
}

import { FNV_OFFSET, fnv1a, fnv1aDecimal, mix32 } from './hash32.js';
import { HashRing, type HashRingOptions } from './hash-ring.js';
import type { BackendView, PickRequest, Scheduler, ServerView } from './types.js';

export interface SourceHashOptions extends HashRingOptions {
  /**
   * Hash `clientIp:clientPort` instead of `clientIp` (default false): spreads
   * one client's connections, keeps each connection's own retries stable.
   */
  readonly includePort?: boolean;
}

/**
 * Source-address affinity on a consistent-hash ring ({@link HashRing}): the
 * key is `request.clientIp`, or `clientIp:clientPort` with
 * `{ includePort: true }`. A client keeps its server while that server is
 * pickable; when it is not, only its clients move.
 *
 * The key is hashed in place (no string is built per pick). The IP is hashed
 * as given, so callers should normalize it (`::ffff:10.0.0.1` and
 * `10.0.0.1` are different keys).
 *
 * Picks among `view.primaries` only; {@link createScheduler} adds backups.
 *
 * @example
 * ```ts
 * const source = createSourceHash();
 * source.pick(view, { ...request, clientIp: '10.0.0.7' }); // same server every time
 * ```
 */
export function createSourceHash(options: SourceHashOptions = {}): Scheduler {
  return new SourceHash(new HashRing(options), options.includePort === true);
}

class SourceHash implements Scheduler {
  constructor(
    private readonly ring: HashRing,
    private readonly includePort: boolean,
  ) {}

  pick(view: BackendView, request: PickRequest): ServerView | undefined {
    let h = fnv1a(FNV_OFFSET, request.clientIp);
    if (this.includePort) h = fnv1aDecimal(fnv1a(h, ':'), request.clientPort);
    return this.ring.pick(view.primaries, view.weightsVersion, mix32(h), request);
  }
}

import { withBackups } from './backups.js';
import { createFirst } from './first.js';
import { createHash } from './hash.js';
import { createLblc } from './lblc.js';
import { createLeastConn } from './least-conn.js';
import { createRandom } from './random.js';
import { createRoundRobin } from './round-robin.js';
import { createSourceHash } from './source-hash.js';
import type { Scheduler } from './types.js';

/** A backend's `balance` setting (the same names as the configuration's). */
export type BalanceKind =
  | 'roundrobin'
  | 'leastconn'
  | 'source'
  | 'hash'
  | 'lblc'
  | 'random'
  | 'first';

/** Every {@link BalanceKind}, in documentation order. */
export const BALANCE_KINDS: readonly BalanceKind[] = Object.freeze([
  'roundrobin',
  'leastconn',
  'source',
  'hash',
  'lblc',
  'random',
  'first',
]);

export interface SchedulerOptions {
  readonly balance: BalanceKind;
  /** `source`: hash `clientIp:clientPort` rather than `clientIp` (default false). */
  readonly hashSourcePort?: boolean;
  /** `lblc`: ms a host's entry survives unused (default 6 min). */
  readonly lblcExpire?: number;
  /**
   * When no primary is pickable: false (default) sends everything to the
   * first pickable backup in order; true balances over all backups with the
   * same algorithm as the primaries (its own instance and state).
   */
  readonly allBackups?: boolean;
  /** `random`: the [0, 1) source; default `Math.random`. */
  readonly random?: () => number;
}

/**
 * The scheduler for one backend: the `balance` algorithm over
 * `view.primaries`, and only when no primary is pickable, the backups —
 * the first pickable one in order, or with `allBackups` the same algorithm
 * over all of them. Returns undefined iff no server at all is pickable.
 *
 * Create one per backend (and per configuration generation): schedulers keep
 * per-backend state.
 *
 * @example
 * ```ts
 * const scheduler = createScheduler({ balance: 'leastconn', allBackups: true });
 * const server = scheduler.pick(view, { clientIp, clientPort, host, hashKey: undefined, now });
 * if (server === undefined) {
 *   // 503: no server available
 * }
 * ```
 */
export function createScheduler(options: SchedulerOptions): Scheduler {
  const primary = createAlgorithm(options);
  const backup = options.allBackups === true ? createAlgorithm(options) : createFirst();
  return withBackups(primary, backup);
}

function createAlgorithm(options: SchedulerOptions): Scheduler {
  const balance = options.balance;
  switch (balance) {
    case 'roundrobin':
      return createRoundRobin();
    case 'leastconn':
      return createLeastConn();
    case 'source':
      return createSourceHash({ includePort: options.hashSourcePort === true });
    case 'hash':
      return createHash();
    case 'lblc':
      return createLblc(options.lblcExpire === undefined ? {} : { expire: options.lblcExpire });
    case 'random':
      return createRandom(options.random === undefined ? {} : { random: options.random });
    case 'first':
      return createFirst();
    default: {
      const unknown: never = balance;
      throw new RangeError(`unknown balance ${String(unknown)}`);
    }
  }
}

/**
 * The health event bus: one typed emitter carrying every server state
 * change, weight change and flapping notice, each emitted once. The admin
 * role streams it; nothing on it steers the balancer (that is `HealthSink`).
 */
import { EventEmitter } from 'node:events';
import type { Reason } from './reasons.js';
import type { Health } from './state-machine.js';

export interface ServerStateEvent {
  readonly backend: string;
  readonly server: string;
  readonly from: Health;
  readonly to: Health;
  /** Why, typed: `{ code: 'L7_STATUS', status: 503 }`, `{ code: 'OUTLIER_5XX' }`, … */
  readonly reason: Reason;
  /** The same as a log line: `server app/app1 is DOWN: L4_REFUSED after 3 failures`. */
  readonly message: string;
  /** Duration of the check that caused it, when a check did. */
  readonly checkDurationMs: number | undefined;
  /** When (ms since the epoch). */
  readonly at: number;
}

export interface ServerWeightEvent {
  readonly backend: string;
  readonly server: string;
  readonly from: number;
  readonly to: number;
  readonly cause: 'slow-start' | 'agent' | 'admin';
  readonly at: number;
}

export interface ServerFlappingEvent {
  readonly backend: string;
  readonly server: string;
  /** true: flapping began (falls within windowMs); false: admitted again after holding healthy for holdMs. */
  readonly flapping: boolean;
  readonly falls: number;
  readonly windowMs: number;
  readonly holdMs: number;
  readonly at: number;
}

export interface HealthEventMap {
  'server-state': [ServerStateEvent];
  'server-weight': [ServerWeightEvent];
  'server-flapping': [ServerFlappingEvent];
}

/**
 * A typed `EventEmitter`: `bus.on('server-state', (e) => …)` knows `e`'s
 * type. Listeners run synchronously; one that throws is logged by the
 * monitor and does not stop the others' events.
 */
export class HealthBus extends EventEmitter<HealthEventMap> {}

/**
 * Admin events: the sources that feed them (health, the node, the admin's
 * own actions) and the bounded log that numbers them, keeps the recent ones
 * for `Last-Event-ID` replay and fans them out to subscribers.
 */
import { randomBytes } from 'node:crypto';
import type { AdminEvent, AdminEventBody, ServerState } from './types.js';

/** Something that produces admin events (health, cluster roles, …). */
export interface AdminEventSource {
  /** Calls `listener` for every event from now on; returns an unsubscribe. */
  subscribe(listener: (event: AdminEventBody) => void): () => void;
}

/** A source you push events into (composition roots, tests). */
export class EventFeed implements AdminEventSource {
  private readonly listeners = new Set<(event: AdminEventBody) => void>();

  subscribe(listener: (event: AdminEventBody) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: AdminEventBody): void {
    for (const l of this.listeners) l(event);
  }
}

/** A source that never emits. */
export const noEvents: AdminEventSource = { subscribe: () => () => undefined };

/** Several sources as one. */
export function mergeSources(...sources: AdminEventSource[]): AdminEventSource {
  return {
    subscribe(listener) {
      const offs = sources.map((s) => s.subscribe(listener));
      return () => {
        for (const off of offs) off();
      };
    },
  };
}

/**
 * The health bus as the admin reads it: structurally the `HealthBus` of
 * src/health (an `EventEmitter` with these events), so admin does not depend
 * on the health role's internals.
 */
export interface HealthEvents {
  on(event: 'server-state', listener: (e: HealthStateEvent) => void): unknown;
  on(event: 'server-weight', listener: (e: HealthWeightEvent) => void): unknown;
  on(event: 'server-flapping', listener: (e: HealthFlappingEvent) => void): unknown;
  off(event: 'server-state', listener: (e: HealthStateEvent) => void): unknown;
  off(event: 'server-weight', listener: (e: HealthWeightEvent) => void): unknown;
  off(event: 'server-flapping', listener: (e: HealthFlappingEvent) => void): unknown;
}

export interface HealthStateEvent {
  readonly backend: string;
  readonly server: string;
  readonly from: 'up' | 'down' | 'warming';
  readonly to: 'up' | 'down' | 'warming';
  readonly reason: unknown;
  readonly message: string;
  readonly checkDurationMs: number | undefined;
}

export interface HealthWeightEvent {
  readonly backend: string;
  readonly server: string;
  readonly from: number;
  readonly to: number;
  readonly cause: 'slow-start' | 'agent' | 'admin';
}

export interface HealthFlappingEvent {
  readonly backend: string;
  readonly server: string;
  readonly flapping: boolean;
  readonly falls: number;
}

/** Formats a health reason (`{code: 'L7_STATUS', status: 503}` → `L7_STATUS 503`). */
function reasonText(reason: unknown): string {
  if (typeof reason !== 'object' || reason === null) return String(reason);
  const r = reason as { code?: unknown; status?: unknown; target?: unknown; cause?: unknown };
  if (r.code === 'L7_STATUS') return `L7_STATUS ${String(r.status)}`;
  if (r.code === 'TRACKED') return `TRACKED ${String(r.target)} ${reasonText(r.cause)}`;
  return String(r.code);
}

/**
 * Health events as admin events. Weight changes caused by the admin are
 * dropped here: the admin emits its own, with the actor.
 */
export function healthEventSource(bus: HealthEvents): AdminEventSource {
  return {
    subscribe(listener) {
      const onState = (e: HealthStateEvent): void =>
        listener({
          type: 'server-state',
          backend: e.backend,
          server: e.server,
          from: e.from as ServerState,
          to: e.to as ServerState,
          source: 'health',
          reason: reasonText(e.reason),
          message: e.message,
          checkDurationMs: e.checkDurationMs ?? null,
        });
      const onWeight = (e: HealthWeightEvent): void => {
        if (e.cause === 'admin') return;
        listener({ type: 'server-weight', backend: e.backend, server: e.server, from: e.from, to: e.to, cause: e.cause });
      };
      const onFlap = (e: HealthFlappingEvent): void =>
        listener({ type: 'server-flapping', backend: e.backend, server: e.server, flapping: e.flapping, falls: e.falls });
      bus.on('server-state', onState);
      bus.on('server-weight', onWeight);
      bus.on('server-flapping', onFlap);
      return () => {
        bus.off('server-state', onState);
        bus.off('server-weight', onWeight);
        bus.off('server-flapping', onFlap);
      };
    },
  };
}

/**
 * The numbered, bounded event log. Ids are `<boot>-<seq>`: a client that
 * reconnects with an id of this run gets what followed it; with an id of an
 * earlier run (the node restarted) or one that fell out of the buffer, it
 * gets everything still buffered and `replay()` reports the gap.
 */
export class EventLog {
  readonly capacity: number;
  /** Distinguishes this run's ids from a previous run's. */
  readonly boot: string;
  private seq = 0;
  private readonly ring: AdminEvent[] = [];
  private readonly listeners = new Set<(event: AdminEvent) => void>();

  constructor(capacity = 1000, boot = randomBytes(4).toString('hex')) {
    this.capacity = capacity;
    this.boot = boot;
  }

  /** Numbers, stores and fans out one event. A listener that throws does not stop the others. */
  publish(body: AdminEventBody, at: number = Date.now()): AdminEvent {
    const event = { ...body, id: `${this.boot}-${++this.seq}`, at: new Date(at).toISOString() } as AdminEvent;
    this.ring.push(event);
    if (this.ring.length > this.capacity) this.ring.shift();
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // a broken subscriber must not lose the event for the others
      }
    }
    return event;
  }

  subscribe(listener: (event: AdminEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The last `limit` events, oldest first. */
  recent(limit = this.capacity): AdminEvent[] {
    return this.ring.slice(Math.max(0, this.ring.length - limit));
  }

  /**
   * What a client that last saw `lastId` missed. `gap`: events were lost in
   * between (an id of another run, or older than the buffer).
   */
  replay(lastId: string): { events: AdminEvent[]; gap: boolean } {
    const m = /^([0-9a-f]+)-(\d+)$/.exec(lastId.trim());
    if (m === null || m[1] !== this.boot) return { events: this.ring.slice(), gap: true };
    const seen = Number(m[2]);
    if (seen >= this.seq) return { events: [], gap: false };
    const first = this.ring[0];
    const firstSeq = first === undefined ? this.seq + 1 : Number(first.id.slice(this.boot.length + 1));
    return { events: this.ring.filter((e) => Number(e.id.slice(this.boot.length + 1)) > seen), gap: seen + 1 < firstSeq };
  }
}

/**
 * Passive outlier ejection (Envoy's outlier detection, simplified): the
 * outcomes of live traffic eject a server that keeps failing.
 *
 * - `consecutive5xx` 5xx responses in a row, or `consecutiveConnectFailures`
 *   failed connects in a row, eject a server. A good response resets both
 *   counts; a 5xx resets the connect count (the connect worked).
 * - The n-th ejection in a row lasts `ejectFor × 2^(n−1)`, at most
 *   `maxEjectFor`. Each `ejectFor` spent back in service without an
 *   ejection forgives one step.
 * - At most `maxEjectedPercent` of a backend's servers are ejected at once,
 *   rounded down but at least one, except that a backend's only server is
 *   never ejected (there would be nowhere else to send its traffic; active
 *   checks still take a dead one out). `maxEjectedPercent: 0` turns ejection
 *   off. An ejection refused by the cap is retried on the next failure.
 * - An ejected server returns when its time is up; outcomes recorded for it
 *   meanwhile (answers still in flight) are ignored.
 *
 * `OutlierCore` is the pure part (explicit `now`, no timers); `OutlierEjector`
 * adds the timer that returns servers on time.
 */
import type { BackendConfig, OutlierConfig } from '../config/index.js';

export type Outcome = 'ok' | '5xx' | 'connect-failure';

export interface OutlierEvent {
  readonly kind: 'eject' | 'return';
  readonly backend: string;
  readonly server: string;
  readonly reason: 'OUTLIER_5XX' | 'OUTLIER_CONNECT';
  /** Failures in a row that caused the ejection. */
  readonly failures: number;
  /** Ejections in a row, this one included. */
  readonly ejections: number;
  /** How long this ejection lasts (ms). */
  readonly durationMs: number;
  /** When the server returns (eject) or returned (return). */
  readonly until: number;
  readonly at: number;
}

export interface OutlierStatus {
  readonly consecutive5xx: number;
  readonly consecutiveConnectFailures: number;
  readonly ejected: boolean;
  readonly ejectedUntil: number | undefined;
  readonly ejections: number;
  readonly reason: 'OUTLIER_5XX' | 'OUTLIER_CONNECT' | undefined;
}

interface ServerEntry {
  c5xx: number;
  cConnect: number;
  ejectedUntil: number | undefined;
  reason: 'OUTLIER_5XX' | 'OUTLIER_CONNECT' | undefined;
  /** Ejections in a row (the doubling exponent). */
  ejections: number;
  lastDuration: number;
  returnedAt: number | undefined;
}

interface BackendEntry {
  readonly config: OutlierConfig;
  readonly servers: Map<string, ServerEntry>;
}

/** The largest number of a backend's `n` servers that may be ejected at once. */
export function maxEjected(n: number, percent: number): number {
  if (n <= 1 || percent <= 0) return 0;
  return Math.max(1, Math.floor((n * percent) / 100));
}

/** How long the `ejections`-th ejection in a row lasts. */
export function ejectionTime(config: OutlierConfig, ejections: number): number {
  const doubled = config.ejectFor * 2 ** Math.min(Math.max(0, ejections - 1), 30);
  return Math.min(Math.max(config.ejectFor, config.maxEjectFor), doubled);
}

export class OutlierCore {
  private readonly backends = new Map<string, BackendEntry>();

  constructor(backends: readonly Pick<BackendConfig, 'name' | 'outlier' | 'servers'>[]) {
    for (const b of backends) {
      if (b.outlier === undefined) continue;
      const servers = new Map<string, ServerEntry>();
      for (const s of b.servers) {
        servers.set(s.name, { c5xx: 0, cConnect: 0, ejectedUntil: undefined, reason: undefined, ejections: 0, lastDuration: 0, returnedAt: undefined });
      }
      this.backends.set(b.name, { config: b.outlier, servers });
    }
  }

  /** Whether the backend has outlier detection. */
  enabled(backend: string): boolean {
    return this.backends.has(backend);
  }

  /** One live-traffic outcome; an `eject` event when it ejects the server. */
  record(backend: string, server: string, outcome: Outcome, now: number): OutlierEvent | undefined {
    const b = this.backends.get(backend);
    const s = b?.servers.get(server);
    if (b === undefined || s === undefined) return undefined;
    if (s.ejectedUntil !== undefined) return undefined;
    switch (outcome) {
      case 'ok':
        s.c5xx = 0;
        s.cConnect = 0;
        return undefined;
      case '5xx':
        s.c5xx++;
        s.cConnect = 0;
        if (s.c5xx >= b.config.consecutive5xx) return this.eject(b, backend, server, s, 'OUTLIER_5XX', s.c5xx, now);
        return undefined;
      case 'connect-failure':
        s.cConnect++;
        if (s.cConnect >= b.config.consecutiveConnectFailures) return this.eject(b, backend, server, s, 'OUTLIER_CONNECT', s.cConnect, now);
        return undefined;
    }
  }

  private eject(b: BackendEntry, backend: string, server: string, s: ServerEntry, reason: OutlierEvent['reason'], failures: number, now: number): OutlierEvent | undefined {
    let ejected = 0;
    for (const other of b.servers.values()) if (other.ejectedUntil !== undefined) ejected++;
    if (ejected + 1 > maxEjected(b.servers.size, b.config.maxEjectedPercent)) return undefined;
    // Time back in service forgives one doubling per `ejectFor`.
    if (s.returnedAt !== undefined && b.config.ejectFor > 0) {
      s.ejections = Math.max(0, s.ejections - Math.floor((now - s.returnedAt) / b.config.ejectFor));
    }
    s.ejections++;
    const durationMs = ejectionTime(b.config, s.ejections);
    s.ejectedUntil = now + durationMs;
    s.lastDuration = durationMs;
    s.reason = reason;
    s.c5xx = 0;
    s.cConnect = 0;
    return { kind: 'eject', backend, server, reason, failures, ejections: s.ejections, durationMs, until: s.ejectedUntil, at: now };
  }

  /** Returns every server whose ejection is over at `now`. */
  tick(now: number): OutlierEvent[] {
    const out: OutlierEvent[] = [];
    for (const [backend, b] of this.backends) {
      for (const [server, s] of b.servers) {
        if (s.ejectedUntil === undefined || s.ejectedUntil > now) continue;
        out.push({ kind: 'return', backend, server, reason: s.reason!, failures: 0, ejections: s.ejections, durationMs: s.lastDuration, until: s.ejectedUntil, at: now });
        s.ejectedUntil = undefined;
        s.returnedAt = now;
      }
    }
    return out;
  }

  /** When the next ejected server returns, if any is ejected. */
  nextReturnAt(): number | undefined {
    let next: number | undefined;
    for (const b of this.backends.values()) {
      for (const s of b.servers.values()) {
        if (s.ejectedUntil !== undefined && (next === undefined || s.ejectedUntil < next)) next = s.ejectedUntil;
      }
    }
    return next;
  }

  isEjected(backend: string, server: string): boolean {
    return this.backends.get(backend)?.servers.get(server)?.ejectedUntil !== undefined;
  }

  status(backend: string, server: string): OutlierStatus | undefined {
    const s = this.backends.get(backend)?.servers.get(server);
    if (s === undefined) return undefined;
    return {
      consecutive5xx: s.c5xx,
      consecutiveConnectFailures: s.cConnect,
      ejected: s.ejectedUntil !== undefined,
      ejectedUntil: s.ejectedUntil,
      ejections: s.ejections,
      reason: s.reason,
    };
  }
}

/**
 * The timer shell around `OutlierCore`: one unref'ed timer for the next
 * return. `onEvent` receives every ejection and return.
 */
export class OutlierEjector {
  readonly core: OutlierCore;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    backends: readonly Pick<BackendConfig, 'name' | 'outlier' | 'servers'>[],
    private readonly onEvent: (event: OutlierEvent) => void,
    private readonly now: () => number,
  ) {
    this.core = new OutlierCore(backends);
  }

  record(backend: string, server: string, outcome: Outcome): void {
    if (this.stopped) return;
    const event = this.core.record(backend, server, outcome, this.now());
    if (event === undefined) return;
    this.onEvent(event);
    this.arm();
  }

  private arm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const at = this.core.nextReturnAt();
    if (at === undefined || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      for (const event of this.core.tick(this.now())) this.onEvent(event);
      this.arm();
    }, Math.max(0, at - this.now()));
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

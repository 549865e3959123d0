/**
 * The health shell: timers, sockets and processes around the pure parts.
 * It runs each server's active checks and agent polls, feeds the results to
 * the state machine, combines check health with agent and outlier verdicts,
 * and tells the balancer about flips through `HealthSink`, the bus about
 * every change, the log in nanny style, and the status files.
 */
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { BackendConfig, HealthConfig, ServerConfig } from '../config/index.js';
import { parseAgentReply, printable } from './agent-reply.js';
import { pollAgentPort, runAgentCommand, type AgentPoll } from './agent.js';
import type { HealthBus, HealthEventMap, ServerWeightEvent } from './events.js';
import { httpCheck } from './http-check.js';
import type { HealthLog } from './log.js';
import { OutlierEjector, type Outcome, type OutlierEvent, type OutlierStatus } from './outlier.js';
import type { ProbeTarget, ProbeTls } from './probe.js';
import { formatReason, reasonDetail, type CheckResult, type Reason } from './reasons.js';
import { sendExpectCheck } from './send-expect-check.js';
import {
  admissionDueAt,
  describeTransition,
  initialState,
  isTransitioning,
  next,
  type Health,
  type MachineParams,
  type MachineState,
  type Step,
} from './state-machine.js';
import { StatusFiles, type StatusDocument } from './status-files.js';
import { tcpCheck } from './tcp-check.js';
import { effectiveWeight, MAX_WEIGHT, nextRampChangeAt, type WeightDirective } from './weight.js';

/**
 * What the node implements to steer the balancer. Called synchronously, and
 * only for changes: `start()` announces every server's health once, then
 * each method is called only when its value changes (never per check).
 * When a server is admitted, `setWeight` comes before `setHealth('up')`, so
 * a slow-starting server never takes a full share for a moment.
 */
export interface HealthSink {
  setHealth(backend: string, server: string, state: Health): void;
  setWeight(backend: string, server: string, effectiveWeight: number): void;
}

export interface HealthMonitorOptions {
  readonly backends: readonly BackendConfig[];
  readonly sink: HealthSink;
  readonly bus: HealthBus;
  readonly log: HealthLog;
  /** Top-level `statusFiles`. */
  readonly statusFiles?: readonly string[];
  /** Clock in ms since the epoch (default: a monotonic one). */
  readonly now?: () => number;
  /** 0 ≤ x < 1, for jitter (default Math.random). */
  readonly random?: () => number;
  /**
   * Health carried over from a previous generation (a reload): a server
   * reported `up` here starts up instead of waiting for its first check.
   */
  readonly initial?: (backend: string, server: string) => Health | undefined;
}

/** A server's health as the stats page and the API show it. */
export interface ServerHealthStatus {
  readonly backend: string;
  readonly server: string;
  /** Where checks go, `host:port`. */
  readonly checkAddress: string;
  /** What the balancer was told. */
  readonly state: Health;
  /** Why it is in that state (formatted reason) and the detail, if any. */
  readonly reason: string;
  readonly detail: string | undefined;
  readonly cause: Reason;
  /** The last active check: its result, duration and time. */
  readonly lastCheck: string | undefined;
  readonly checkDurationMs: number | undefined;
  readonly lastCheckAt: number | undefined;
  readonly lastChangeAt: number;
  /** What the active checks alone say (agent and outlier verdicts aside). */
  readonly checkState: Health;
  readonly counter: number;
  readonly rise: number;
  readonly fall: number;
  readonly consecutiveSuccesses: number;
  readonly consecutiveFailures: number;
  readonly flapping: boolean;
  /** While warming: when a passing check admits it. */
  readonly warmingUntil: number | undefined;
  readonly configuredWeight: number;
  readonly effectiveWeight: number;
  /** While ramping: when slow start ends. */
  readonly slowStartUntil: number | undefined;
  /** `backend/server` this one follows (`track`). */
  readonly tracking: string | undefined;
  readonly agent: AgentStatus | undefined;
  readonly outlier: OutlierStatus | undefined;
}

export interface AgentStatus {
  /** The last reply (as sent, first line, at most 1 KiB). */
  readonly reply: string | undefined;
  readonly lastPollAt: number | undefined;
  /** Why the last poll gave nothing usable, if it did not. */
  readonly problem: string | undefined;
  readonly weight: WeightDirective | undefined;
  readonly down: boolean;
  readonly drain: boolean;
  readonly maint: boolean;
}

/** Derived timings (documented in docs/health.md). */
export function machineParams(h: HealthConfig): MachineParams {
  return {
    rise: h.rise,
    fall: h.fall,
    warmup: h.warmup,
    flapThreshold: 3,
    flapWindow: Math.max(60_000, 30 * h.interval),
    flapHold: Math.max(h.warmup, 10 * h.interval),
  };
}

/** The faster interval used while a server is transitioning (HAProxy's `fastinter`). */
export function fastInterval(h: HealthConfig): number {
  return Math.max(1, Math.round(h.interval / 2));
}

/** How long an agent may take to answer. */
export function agentTimeout(h: HealthConfig): number {
  const agent = h.agent;
  if (agent?.command !== undefined) return Math.max(h.timeout, Math.round(agent.interval / 2));
  return h.timeout;
}

const JITTER = 0.1;

type Check = (signal: AbortSignal) => Promise<CheckResult>;
type Poll = (signal: AbortSignal) => Promise<AgentPoll>;

interface AgentState {
  reply: string | undefined;
  lastPollAt: number | undefined;
  problem: string | undefined;
  /** The kind of the current problem: each kind is logged once per episode. */
  problemKind: 'unreachable' | 'nonsense' | undefined;
  directive: WeightDirective | undefined;
  down: boolean;
  drain: boolean;
  maint: boolean;
}

interface Srv {
  readonly backend: BackendConfig;
  readonly config: ServerConfig;
  readonly key: string;
  readonly params: MachineParams;
  readonly checkAddress: string;
  readonly check: Check | undefined;
  readonly poll: Poll | undefined;
  target: Srv | undefined;
  readonly trackers: Srv[];
  machine: MachineState;
  health: Health;
  since: number;
  reason: Reason;
  lastResult: CheckResult | undefined;
  lastCheckAt: number | undefined;
  configuredWeight: number;
  weight: number;
  rampStart: number | undefined;
  readonly agent: AgentState;
  checkTimer: NodeJS.Timeout | undefined;
  agentTimer: NodeJS.Timeout | undefined;
  rampTimer: NodeJS.Timeout | undefined;
  firstResult: boolean;
}

/** What moved a server, for the event, the log line and slow start. */
interface Cause {
  readonly reason: Reason;
  readonly durationMs?: number | undefined;
  /** A phrase for the log line after `is STATE: `. */
  readonly phrase?: string;
  /** The first check admitted it (no slow start). */
  readonly initial?: boolean;
  /** Log at debug only (a flapping server's flips). */
  readonly quiet?: boolean;
  readonly weightCause?: ServerWeightEvent['cause'];
}

/**
 * Runs the health checks of a set of backends.
 *
 * @example
 * ```ts
 * import { HealthBus, HealthMonitor } from './health/index.js';
 *
 * const bus = new HealthBus();
 * bus.on('server-state', (e) => console.log(e.message));
 * const monitor = new HealthMonitor({
 *   backends: config.backends,
 *   statusFiles: config.statusFiles,
 *   bus,
 *   log,
 *   sink: {
 *     setHealth: (b, s, state) => backends.get(b)?.server(s)?.setHealth(state),
 *     setWeight: (b, s, w) => backends.get(b)?.server(s)?.setWeight(w),
 *   },
 * });
 * monitor.start();          // announces every server's initial health
 * await monitor.ready();    // every checked server has had one check
 * // … on live traffic:
 * monitor.record('app', 'app1', '5xx');
 * // … on reload or shutdown:
 * await monitor.stop();
 * ```
 */
export class HealthMonitor {
  private readonly servers = new Map<string, Srv>();
  private readonly order: Srv[] = [];
  private readonly sink: HealthSink;
  private readonly bus: HealthBus;
  private readonly log: HealthLog;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly files: StatusFiles;
  private readonly outlier: OutlierEjector;
  private readonly aborts = new Set<AbortController>();
  private readonly inflight = new Set<Promise<unknown>>();
  private started = false;
  private stopped = false;
  private readyResolve: (() => void) | undefined;
  private readonly readyPromise: Promise<void>;

  constructor(opts: HealthMonitorOptions) {
    this.sink = opts.sink;
    this.bus = opts.bus;
    this.log = opts.log;
    const origin = performance.timeOrigin;
    this.now = opts.now ?? (() => Math.round(origin + performance.now()));
    this.random = opts.random ?? Math.random;
    this.readyPromise = new Promise((resolve) => (this.readyResolve = resolve));
    const now = this.now();

    for (const backend of opts.backends) {
      for (const config of backend.servers) {
        const key = `${backend.name}/${config.name}`;
        const params = machineParams(backend.health);
        const target = checkTarget(config, this.log, key);
        const ownChecks = backend.health.type !== 'none' && config.track === undefined;
        const srv: Srv = {
          backend,
          config,
          key,
          params,
          checkAddress: hostPort(target.host, target.port),
          check: ownChecks ? makeCheck(backend.health, target) : undefined,
          poll: makePoll(backend, config, target),
          target: undefined,
          trackers: [],
          machine: initialState(params, now, {
            checked: ownChecks,
            carried: ownChecks ? opts.initial?.(backend.name, config.name) : undefined,
          }),
          health: 'down',
          since: now,
          reason: { code: 'INIT' },
          lastResult: undefined,
          lastCheckAt: undefined,
          configuredWeight: config.weight,
          weight: config.weight,
          rampStart: undefined,
          agent: { reply: undefined, lastPollAt: undefined, problem: undefined, problemKind: undefined, directive: undefined, down: false, drain: false, maint: false },
          checkTimer: undefined,
          agentTimer: undefined,
          rampTimer: undefined,
          // Trackers are ready when their target is (see checkReady).
          firstResult: config.track === undefined && (!ownChecks || opts.initial?.(backend.name, config.name) === 'up'),
        };
        srv.health = srv.machine.health;
        srv.reason = srv.machine.reason;
        this.servers.set(key, srv);
        this.order.push(srv);
      }
    }
    // Tracking: wire each tracker to its target (the config forbids loops).
    for (const srv of this.order) {
      const t = srv.config.track;
      if (t === undefined) continue;
      const target = this.servers.get(`${t.backend}/${t.server}`);
      if (target === undefined) throw new Error(`${srv.key}: tracked server ${t.backend}/${t.server} does not exist`);
      srv.target = target;
      target.trackers.push(srv);
    }
    for (const srv of this.order) {
      if (srv.target !== undefined && srv.target.target === undefined) this.initTrackers(srv.target);
    }
    this.files = new StatusFiles(opts.statusFiles ?? [], () => this.document(), this.log);
    this.outlier = new OutlierEjector(opts.backends, (e) => this.onOutlier(e), this.now);
  }

  /** Trackers start as their target does. */
  private initTrackers(target: Srv): void {
    for (const t of target.trackers) {
      t.machine = next(t.machine, { kind: 'track', health: trackedHealth(target), reason: trackedReason(target) }, this.now(), t.params).state;
      t.health = t.machine.health;
      t.reason = t.machine.reason;
      this.initTrackers(t);
    }
  }

  /**
   * Announces every server's initial health to the sink (once), writes the
   * status files, and starts the checks (spread over the first moments) and
   * agent polls. Checked servers start `down` until their first check.
   */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (const srv of this.order) this.callSink(() => this.sink.setHealth(srv.backend.name, srv.config.name, srv.health), srv);
    this.files.changed();
    const checked = this.order.filter((s) => s.check !== undefined);
    checked.forEach((srv, i) => {
      const spread = Math.min(srv.backend.health.interval / 2, 1000);
      this.scheduleCheck(srv, (spread * (i + this.random())) / checked.length);
    });
    for (const srv of this.order) {
      const agent = srv.backend.health.agent;
      if (srv.poll !== undefined && agent !== undefined) this.scheduleAgent(srv, this.random() * Math.min(agent.interval, 1000));
    }
    this.checkReady();
  }

  /** Resolves once every checked server has had its first check (or on stop). */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  /**
   * Stops every timer, check, agent poll and command; resolves when all of
   * them have ended and the status files hold the last state.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const srv of this.order) {
      clearTimeout(srv.checkTimer);
      clearTimeout(srv.agentTimer);
      clearTimeout(srv.rampTimer);
    }
    this.outlier.stop();
    for (const ac of this.aborts) ac.abort();
    await Promise.allSettled([...this.inflight]);
    await this.files.flush();
    this.readyResolve?.();
  }

  /** Resolves once the status files hold the current state. */
  flush(): Promise<void> {
    return this.files.flush();
  }

  /** One server's health, or undefined for an unknown server. */
  status(backend: string, server: string): ServerHealthStatus | undefined {
    const srv = this.servers.get(`${backend}/${server}`);
    return srv === undefined ? undefined : this.statusOf(srv);
  }

  /** Every server's health, in config order. */
  statuses(): ServerHealthStatus[] {
    return this.order.map((s) => this.statusOf(s));
  }

  /** An administrator changed a server's weight (0..256); the effective weight follows. */
  setConfiguredWeight(backend: string, server: string, weight: number): void {
    const srv = this.servers.get(`${backend}/${server}`);
    if (srv === undefined) return;
    srv.configuredWeight = Math.min(MAX_WEIGHT, Math.max(0, Math.round(weight)));
    this.refresh(srv, { reason: srv.reason, weightCause: 'admin' });
  }

  /** One live-traffic outcome, for passive outlier ejection. Cheap; call per response. */
  record(backend: string, server: string, outcome: Outcome): void {
    this.outlier.record(backend, server, outcome);
  }

  // --- active checks ------------------------------------------------------

  private scheduleCheck(srv: Srv, delay: number): void {
    if (this.stopped) return;
    clearTimeout(srv.checkTimer);
    srv.checkTimer = setTimeout(() => this.runCheck(srv), Math.max(0, delay));
    srv.checkTimer.unref();
  }

  private runCheck(srv: Srv): void {
    srv.checkTimer = undefined;
    if (this.stopped || srv.check === undefined) return;
    const ac = new AbortController();
    this.aborts.add(ac);
    const p = srv
      .check(ac.signal)
      // Checkers never reject; should one, it counts as a failed check and the loop goes on.
      .catch((err: unknown): CheckResult => ({ reason: { code: 'L4_UNREACHABLE', detail: String(err) }, durationMs: 0 }))
      .then((result) => {
        if (!this.stopped) this.onResult(srv, result);
      })
      .finally(() => this.aborts.delete(ac));
    this.track(p);
  }

  private onResult(srv: Srv, result: CheckResult): void {
    const now = this.now();
    srv.lastResult = result;
    srv.lastCheckAt = now;
    const step = next(srv.machine, { kind: 'check', result }, now, srv.params);
    const first = !srv.firstResult;
    srv.firstResult = true;
    this.applyStep(srv, step, now);
    if (first) this.checkReady();
    this.scheduleCheck(srv, this.nextDelay(srv, result, now));
  }

  /** Start-to-start interval with jitter; faster while transitioning; on time for an admission. */
  private nextDelay(srv: Srv, result: CheckResult, now: number): number {
    const h = srv.backend.health;
    const base = isTransitioning(srv.machine, srv.params) ? fastInterval(h) : h.interval;
    let delay = base * (1 + JITTER * (2 * this.random() - 1)) - result.durationMs;
    const due = admissionDueAt(srv.machine, srv.params);
    if (due !== undefined) delay = Math.min(delay, due - now);
    return Math.max(1, delay);
  }

  private applyStep(srv: Srv, step: Step, now: number): void {
    const wasFlapping = srv.machine.flapping;
    const trackedBefore = trackedHealth(srv);
    srv.machine = step.state;
    const notice = step.notice;
    if (notice?.kind === 'flapping') {
      this.log.warn(
        { backend: srv.backend.name, server: srv.config.name, falls: notice.falls, windowMs: notice.windowMs, holdMs: notice.holdMs, reason: formatReason(step.state.reason) },
        `server ${srv.key} is FLAPPING: ${notice.falls} failures within ${fmtMs(notice.windowMs)}; held back until it stays healthy for ${fmtMs(notice.holdMs)}`,
      );
      this.emit('server-flapping', { backend: srv.backend.name, server: srv.config.name, flapping: true, falls: notice.falls, windowMs: notice.windowMs, holdMs: notice.holdMs, at: now });
    } else if (notice?.kind === 'stable') {
      const hold = step.transition?.heldMs ?? 0;
      this.emit('server-flapping', { backend: srv.backend.name, server: srv.config.name, flapping: false, falls: 0, windowMs: srv.params.flapWindow, holdMs: hold, at: now });
    }
    const t = step.transition;
    if (t !== undefined) {
      const stable = notice?.kind === 'stable' ? ', stable again' : '';
      this.refresh(srv, {
        reason: t.reason,
        durationMs: t.durationMs,
        phrase: `${describeTransition(t).replace(/^[A-Z]+: /, '')}${stable}`,
        initial: t.cause === 'first-check',
        // Flips of a flapping server: the FLAPPING line said it once.
        quiet: notice?.kind === 'flapping' || (wasFlapping && step.state.flapping),
      }, now);
    }
    if (trackedHealth(srv) !== trackedBefore || t !== undefined) this.propagate(srv, t?.cause === 'first-check', now);
  }

  /** Trackers follow their target's health. */
  private propagate(target: Srv, initial: boolean, now = this.now()): void {
    for (const t of target.trackers) {
      const before = trackedHealth(t);
      const step = next(t.machine, { kind: 'track', health: trackedHealth(target), reason: trackedReason(target) }, now, t.params);
      t.machine = step.state;
      if (step.transition !== undefined) {
        this.refresh(t, { reason: step.transition.reason, phrase: `${formatReason(step.transition.reason)}`, initial, quiet: target.machine.flapping }, now);
      }
      if (trackedHealth(t) !== before) this.propagate(t, initial, now);
    }
  }

  // --- agent -----------------------------------------------------------------

  private scheduleAgent(srv: Srv, delay: number): void {
    if (this.stopped) return;
    srv.agentTimer = setTimeout(() => this.runAgent(srv), Math.max(0, delay));
    srv.agentTimer.unref();
  }

  private runAgent(srv: Srv): void {
    srv.agentTimer = undefined;
    const agent = srv.backend.health.agent;
    if (this.stopped || srv.poll === undefined || agent === undefined) return;
    const ac = new AbortController();
    this.aborts.add(ac);
    const p = srv
      .poll(ac.signal)
      .catch((err: unknown): AgentPoll => ({ ok: false, error: String(err), durationMs: 0 }))
      .then((poll) => {
        if (this.stopped) return;
        this.onAgent(srv, poll);
        this.scheduleAgent(srv, agent.interval * (1 + JITTER * (2 * this.random() - 1)) - poll.durationMs);
      })
      .finally(() => this.aborts.delete(ac));
    this.track(p);
  }

  private onAgent(srv: Srv, poll: AgentPoll): void {
    const a = srv.agent;
    a.lastPollAt = this.now();
    const fields = { backend: srv.backend.name, server: srv.config.name };
    if (!poll.ok) {
      // Unreachable agents change nothing (as in HAProxy); said once per episode.
      if (a.problemKind !== 'unreachable') this.log.warn({ ...fields, error: poll.error }, `agent of server ${srv.key} gives no answer (${poll.error}); weight unchanged`);
      a.problem = poll.error;
      a.problemKind = 'unreachable';
      return;
    }
    const parsed = parseAgentReply(poll.text);
    a.reply = poll.text.split(/\r?\n/, 1)[0];
    if (!parsed.ok) {
      if (a.problemKind !== 'nonsense') {
        this.log.warn({ ...fields, reply: printable(poll.text, 80), error: parsed.error }, `agent of server ${srv.key} answered nonsense (${parsed.error}); weight unchanged`);
      }
      a.problem = parsed.error;
      a.problemKind = 'nonsense';
      return;
    }
    if (a.problemKind !== undefined) this.log.info(fields, `agent of server ${srv.key} answers again`);
    a.problem = undefined;
    a.problemKind = undefined;
    const r = parsed.reply;
    const wasDown = a.down || a.maint;
    const trackedBefore = trackedHealth(srv);
    if (r.weight !== undefined) a.directive = r.weight;
    if (r.operational !== undefined) a.down = r.operational === 'down';
    if (r.admin === 'ready') {
      a.drain = false;
      a.maint = false;
    } else if (r.admin === 'drain') {
      a.drain = true;
      a.maint = false;
    } else if (r.admin === 'maint') {
      a.maint = true;
      a.drain = false;
    }
    const isDown = a.down || a.maint;
    const said = printable(a.reply ?? '', 80);
    const reason: Reason = a.maint
      ? { code: 'AGENT_MAINT', detail: said }
      : a.down
        ? { code: 'AGENT_DOWN', detail: said }
        : wasDown
          ? { code: 'AGENT_UP', detail: said }
          : srv.reason;
    this.refresh(srv, { reason, phrase: `${formatReason(reason)} (agent said ${said})`, weightCause: 'agent' });
    if (isDown !== wasDown || trackedHealth(srv) !== trackedBefore) this.propagate(srv, false);
  }

  // --- outlier ---------------------------------------------------------------

  private onOutlier(e: OutlierEvent): void {
    const srv = this.servers.get(`${e.backend}/${e.server}`);
    if (srv === undefined || this.stopped) return;
    if (e.kind === 'eject') {
      const what = e.reason === 'OUTLIER_5XX' ? `${e.failures} consecutive 5xx` : `${e.failures} consecutive connect failures`;
      const nth = e.ejections > 1 ? ` (ejection ${e.ejections} in a row)` : '';
      this.refresh(srv, { reason: { code: e.reason, detail: what }, phrase: `${e.reason}, ejected for ${fmtMs(e.durationMs)} after ${what}${nth}` });
    } else {
      this.refresh(srv, { reason: { code: 'OUTLIER_RETURN' }, phrase: `OUTLIER_RETURN after ${fmtMs(e.durationMs)} ejected` });
    }
  }

  // --- combining and announcing ----------------------------------------------

  /** What the balancer should see: check health, overruled by agent and outlier verdicts. */
  private combined(srv: Srv): { health: Health; reason: Reason | undefined } {
    if (srv.agent.maint) return { health: 'down', reason: undefined };
    if (srv.agent.down) return { health: 'down', reason: undefined };
    const o = this.outlier.core.status(srv.backend.name, srv.config.name);
    if (o?.ejected === true) return { health: 'down', reason: undefined };
    return { health: srv.machine.health, reason: srv.machine.reason };
  }

  private weightOf(srv: Srv, now: number): number {
    return effectiveWeight(
      {
        configured: srv.configuredWeight,
        directive: srv.agent.directive,
        drained: srv.agent.drain,
        rampStart: srv.rampStart,
        slowStart: srv.backend.health.slowStart,
      },
      now,
    );
  }

  /** Recomputes health and weight; announces what changed, once. */
  private refresh(srv: Srv, cause: Cause, now = this.now()): void {
    if (this.stopped) return;
    const { health } = this.combined(srv);
    const from = srv.health;
    const flip = health !== from;
    if (flip && health === 'up' && cause.initial !== true && srv.backend.health.slowStart > 0) srv.rampStart = now;
    const weight = this.weightOf(srv, now);
    const weightChanged = weight !== srv.weight;
    const announceWeight = (): void => {
      if (!weightChanged) return;
      const old = srv.weight;
      srv.weight = weight;
      this.callSink(() => this.sink.setWeight(srv.backend.name, srv.config.name, weight), srv);
      this.emit('server-weight', { backend: srv.backend.name, server: srv.config.name, from: old, to: weight, cause: cause.weightCause ?? 'slow-start', at: now });
      this.log.debug({ backend: srv.backend.name, server: srv.config.name, from: old, to: weight }, `server ${srv.key} weight ${old} → ${weight}`);
    };
    if (flip && health === 'up') announceWeight();
    if (flip) {
      srv.health = health;
      srv.since = now;
      srv.reason = cause.reason;
      const message = `server ${srv.key} is ${health.toUpperCase()}: ${cause.phrase ?? formatReason(cause.reason)}`;
      this.callSink(() => this.sink.setHealth(srv.backend.name, srv.config.name, health), srv);
      this.emit('server-state', {
        backend: srv.backend.name,
        server: srv.config.name,
        from,
        to: health,
        reason: cause.reason,
        message,
        checkDurationMs: cause.durationMs,
        at: now,
      });
      const fields = { backend: srv.backend.name, server: srv.config.name, from, to: health, reason: formatReason(cause.reason), detail: reasonDetail(cause.reason), checkDurationMs: cause.durationMs };
      if (cause.quiet === true) this.log.debug(fields, message);
      else if (health === 'down' && from === 'up') this.log.warn(fields, message);
      else this.log.info(fields, message);
      this.files.changed();
    }
    if (!flip || health !== 'up') announceWeight();
    if (weightChanged && !flip) this.files.changed();
    this.armRamp(srv, now);
  }

  /** While slow start ramps, wakes up when the weight next changes. */
  private armRamp(srv: Srv, now: number): void {
    clearTimeout(srv.rampTimer);
    srv.rampTimer = undefined;
    if (this.stopped || srv.agent.drain) return;
    const base = effectiveWeight({ configured: srv.configuredWeight, directive: srv.agent.directive, drained: false, rampStart: undefined, slowStart: 0 }, now);
    const at = nextRampChangeAt(base, srv.rampStart, now, srv.backend.health.slowStart);
    if (at === undefined) return;
    srv.rampTimer = setTimeout(() => {
      srv.rampTimer = undefined;
      this.refresh(srv, { reason: srv.reason, weightCause: 'slow-start' });
    }, Math.max(1, at - now));
    srv.rampTimer.unref();
  }

  // --- plumbing ----------------------------------------------------------------

  private emit<K extends keyof HealthEventMap>(event: K, payload: HealthEventMap[K][0]): void {
    try {
      (this.bus as EventEmitter).emit(event, payload);
    } catch (err) {
      this.log.error({ event, err: (err as Error).message }, `a ${event} listener failed: ${(err as Error).message}`);
    }
  }

  private callSink(call: () => void, srv: Srv): void {
    try {
      call();
    } catch (err) {
      this.log.error({ backend: srv.backend.name, server: srv.config.name, err: (err as Error).message }, `health sink failed: ${(err as Error).message}`);
    }
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => this.log.error({ err: (err as Error).message }, `health task failed: ${(err as Error).message}`));
    this.inflight.add(tracked);
    void tracked.finally(() => this.inflight.delete(tracked));
  }

  private checkReady(): void {
    // A tracker is ready when the server it follows (in the end) is.
    const ready = (s: Srv): boolean => s.firstResult || (s.target !== undefined && ready(s.target));
    if (this.order.every(ready)) this.readyResolve?.();
  }

  private statusOf(srv: Srv): ServerHealthStatus {
    const now = this.now();
    const h = srv.backend.health;
    const last = srv.lastResult;
    const a = srv.agent;
    const slowStartUntil = srv.rampStart !== undefined && now - srv.rampStart < h.slowStart ? srv.rampStart + h.slowStart : undefined;
    return {
      backend: srv.backend.name,
      server: srv.config.name,
      checkAddress: srv.checkAddress,
      state: srv.health,
      reason: formatReason(srv.reason),
      detail: reasonDetail(srv.reason),
      cause: srv.reason,
      lastCheck: last === undefined ? undefined : formatReason(last.reason),
      checkDurationMs: last?.durationMs,
      lastCheckAt: srv.lastCheckAt,
      lastChangeAt: srv.since,
      checkState: srv.machine.health,
      counter: srv.machine.counter,
      rise: h.rise,
      fall: h.fall,
      consecutiveSuccesses: srv.machine.consecutiveSuccesses,
      consecutiveFailures: srv.machine.consecutiveFailures,
      flapping: srv.machine.flapping,
      warmingUntil: admissionDueAt(srv.machine, srv.params),
      configuredWeight: srv.configuredWeight,
      effectiveWeight: srv.weight,
      slowStartUntil,
      tracking: srv.target?.key,
      agent:
        srv.poll === undefined
          ? undefined
          : { reply: a.reply, lastPollAt: a.lastPollAt, problem: a.problem, weight: a.directive, down: a.down, drain: a.drain, maint: a.maint },
      outlier: this.outlier.core.status(srv.backend.name, srv.config.name),
    };
  }

  private document(): StatusDocument {
    return {
      version: 1,
      updatedAt: new Date(this.now()).toISOString(),
      servers: this.order.map((s) => {
        const detail = reasonDetail(s.reason);
        return {
          backend: s.backend.name,
          name: s.config.name,
          address: hostPort(s.config.address.host, s.config.address.port),
          state: s.health,
          available: s.health === 'up',
          since: new Date(s.since).toISOString(),
          reason: formatReason(s.reason),
          ...(detail !== undefined ? { detail } : {}),
          weight: s.weight,
        };
      }),
    };
  }
}

/** What trackers follow: the check health, and the agent's down/maint. */
function trackedHealth(srv: Srv): Health {
  return srv.agent.down || srv.agent.maint ? 'down' : srv.machine.health;
}

function trackedReason(srv: Srv): Reason {
  const cause: Reason = srv.agent.maint ? { code: 'AGENT_MAINT' } : srv.agent.down ? { code: 'AGENT_DOWN' } : srv.machine.reason;
  return { code: 'TRACKED', target: srv.key, cause };
}

/**
 * Where checks go: the server's address, or `check.host`/`check.port`.
 * A `tls` server is checked over TLS unless its checks go elsewhere
 * (HAProxy's rule: a separate check port is usually plain).
 */
function checkTarget(config: ServerConfig, log: HealthLog, key: string): ProbeTarget {
  const host = config.check?.host ?? config.address.host;
  const port = config.check?.port ?? config.address.port;
  if (!config.tls || config.check?.port !== undefined || config.check?.host !== undefined) return { host, port };
  const t = config;
  let ca: Buffer | undefined;
  if (t.tlsCa !== undefined) {
    try {
      ca = readFileSync(t.tlsCa);
    } catch (err) {
      log.error({ server: key, path: t.tlsCa }, `server ${key}: cannot read tls CA ${t.tlsCa}: ${(err as Error).message}`);
    }
  }
  const tls: ProbeTls = {
    verify: t.tlsVerify ?? true,
    ...(ca !== undefined ? { ca } : {}),
    ...(t.tlsServername !== undefined ? { servername: t.tlsServername } : {}),
  };
  return { host, port, tls };
}

function makeCheck(h: HealthConfig, target: ProbeTarget): Check | undefined {
  switch (h.type) {
    case 'none':
      return undefined;
    case 'tcp':
      return (signal) => tcpCheck(target, { timeoutMs: h.timeout }, signal);
    case 'http': {
      const opts = {
        method: h.method,
        path: h.path,
        expectStatus: h.expectStatus,
        timeoutMs: h.timeout,
        ...(h.host !== undefined ? { host: h.host } : {}),
        ...(h.expectBody !== undefined ? { expectBody: h.expectBody } : {}),
      };
      return (signal) => httpCheck(target, opts, signal);
    }
    case 'send-expect': {
      const opts = {
        timeoutMs: h.timeout,
        ...(h.send !== undefined ? { send: h.send } : {}),
        ...(h.expect !== undefined ? { expect: h.expect } : {}),
      };
      return (signal) => sendExpectCheck(target, opts, signal);
    }
  }
}

function makePoll(backend: BackendConfig, config: ServerConfig, target: ProbeTarget): Poll | undefined {
  const h = backend.health;
  const agent = h.agent;
  if (agent === undefined) return undefined;
  const timeout = agentTimeout(h);
  if (agent.command !== undefined) {
    const command = agent.command;
    const server = { backend: backend.name, name: config.name, host: config.address.host, port: config.address.port };
    return (signal) => runAgentCommand(command, server, timeout, signal);
  }
  if (agent.port !== undefined) {
    const at = { host: target.host, port: agent.port };
    return (signal) => pollAgentPort(at, timeout, signal);
  }
  return undefined;
}

/** `host:port`, IPv6 hosts in brackets. */
function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function fmtMs(ms: number): string {
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.round(ms)}ms`;
}

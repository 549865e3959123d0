/**
 * Multi-core: a supervisor process forks `workers` processes that share the
 * listening sockets, replaces a worker that dies, and relays reloads and
 * shutdown to every worker.
 *
 * Workers accept from the shared socket themselves (cluster's SCHED_NONE:
 * the kernel spreads connections), so no connection passes through the
 * supervisor. The supervisor serves no traffic.
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import os from 'node:os';
import type { RuntimeOverride, WorkerReport } from '../admin/supervisor-node.js';
import type { CorralConfig } from '../config/index.js';
import type { Logger } from '../log.js';

/** Server health as the supervisor's monitor sees it, by `backend/server`. */
export type HealthSnapshot = Record<string, { readonly health: 'up' | 'down' | 'warming'; readonly weight?: number }>;

/** Messages between the supervisor and its workers. */
export type SupervisorMessage =
  | { readonly type: 'reload'; readonly reason: string }
  | { readonly type: 'shutdown' }
  | { readonly type: 'health'; readonly backend: string; readonly server: string; readonly health: 'up' | 'down' | 'warming' }
  | { readonly type: 'weight'; readonly backend: string; readonly server: string; readonly weight: number }
  /** The current view: health and effective weights, and the admin's runtime overrides (complete list). */
  | { readonly type: 'snapshot'; readonly states: HealthSnapshot; readonly admin?: readonly RuntimeOverride[] }
  /** One server's runtime override, set through the admin API in the supervisor. */
  | { readonly type: 'admin'; readonly override: RuntimeOverride }
  /** Asks for the worker's local status and latency histograms (answered with `status`, same id). */
  | { readonly type: 'status-request'; readonly id: number };
export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'reloaded'; readonly ok: boolean }
  | { readonly type: 'outcomes'; readonly batch: Record<string, ('ok' | '5xx' | 'connect-failure')[]> }
  | { readonly type: 'status'; readonly id: number; readonly report: WorkerReport };

/** Environment variable carrying the admin's runtime overrides to a new worker (JSON list). */
export const ADMIN_STATE_ENV = 'CORRAL_ADMIN_STATE';

/** Number of worker processes a config asks for. */
export function workerCount(config: CorralConfig): number {
  return config.workers === 'auto' ? Math.max(1, os.availableParallelism()) : config.workers;
}

export interface SupervisorOptions {
  readonly count: number;
  readonly log: Logger;
  /** How long a shutdown waits for workers to drain before killing them. */
  readonly drainMs: number;
  /** Environment for each new worker (e.g. the current health snapshot). */
  readonly env?: () => Record<string, string>;
  /** Messages from workers other than the supervisor's own protocol. */
  readonly onMessage?: (worker: Worker, msg: WorkerMessage) => void;
  /** A worker exited (crashed, killed or stopped). */
  readonly onExit?: (worker: Worker) => void;
}

/** Restart back-off: doubles per crash within a minute, up to 30 s. */
const BACKOFF_START_MS = 250;
const BACKOFF_MAX_MS = 30_000;

export class Supervisor {
  private readonly opts: SupervisorOptions;
  private readonly workers = new Map<number, Worker>();
  private stopping = false;
  private backoff = BACKOFF_START_MS;
  private lastCrash = 0;
  private restarts = 0;
  /** Workers that reported ready (they answer requests). */
  private readonly serving = new Set<number>();
  private requestSeq = 0;
  /** Requests in flight: the workers still to answer, and what to do with an answer. */
  private readonly pending = new Map<number, { readonly waiting: Set<number>; readonly onReply: (worker: number, report: WorkerReport) => void; readonly done: () => void }>();

  constructor(opts: SupervisorOptions) {
    this.opts = opts;
    cluster.schedulingPolicy = cluster.SCHED_NONE;
  }

  /** Forks every worker; resolves when all reported ready, rejects if one exits first. */
  async start(): Promise<void> {
    const ready: Promise<boolean>[] = [];
    for (let i = 0; i < this.opts.count; i++) ready.push(this.fork());
    const ok = await Promise.all(ready);
    if (ok.includes(false)) {
      await this.stop();
      throw new Error('a worker exited during start-up (see its log line above)');
    }
    this.opts.log.info({ workers: this.opts.count }, 'workers ready');
  }

  get size(): number {
    return this.workers.size;
  }

  get restartCount(): number {
    return this.restarts;
  }

  /** Resolves true once the worker is serving, false if it exited first. */
  private fork(): Promise<boolean> {
    const worker = cluster.fork({ ...this.opts.env?.(), CORRAL_WORKER: '1' });
    this.workers.set(worker.id, worker);
    let isReady = false;
    const ready = new Promise<boolean>((resolve) => {
      const onMessage = (msg: WorkerMessage): void => {
        if (msg.type === 'ready') {
          isReady = true;
          this.serving.add(worker.id);
          worker.off('message', onMessage);
          resolve(true);
        }
      };
      worker.on('message', onMessage);
      worker.once('exit', () => resolve(false));
    });
    worker.on('message', (msg: WorkerMessage) => {
      if (msg.type === 'status') {
        const p = this.pending.get(msg.id);
        if (p !== undefined && p.waiting.delete(worker.id)) {
          p.onReply(worker.id, msg.report);
          if (p.waiting.size === 0) p.done();
        }
        return;
      }
      if (msg.type === 'reloaded' && !msg.ok) this.opts.log.error({ worker: worker.id }, 'a worker rejected the reload');
      this.opts.onMessage?.(worker, msg);
    });
    worker.once('exit', (code, signal) => {
      this.workers.delete(worker.id);
      this.serving.delete(worker.id);
      // A request waiting for this worker need not wait for its timeout.
      for (const p of [...this.pending.values()]) if (p.waiting.delete(worker.id) && p.waiting.size === 0) p.done();
      this.opts.onExit?.(worker);
      if (this.stopping || !isReady) return;
      const now = Date.now();
      this.backoff = now - this.lastCrash < 60_000 ? Math.min(this.backoff * 2, BACKOFF_MAX_MS) : BACKOFF_START_MS;
      this.lastCrash = now;
      this.restarts++;
      this.opts.log.error({ worker: worker.id, pid: worker.process.pid, code, signal, restartInMs: this.backoff }, 'worker died; replacing it');
      setTimeout(() => {
        if (!this.stopping) void this.fork();
      }, this.backoff).unref();
    });
    return ready;
  }

  /** Sends a message to every live worker. */
  broadcast(msg: SupervisorMessage): void {
    for (const w of this.workers.values()) if (w.isConnected()) w.send(msg);
  }

  /**
   * Asks every serving worker for its report (local status and latency
   * histograms). Resolves with the replies that came within `timeoutMs`: a
   * worker that does not answer in time (busy, dying) is left out.
   */
  collect(timeoutMs: number): Promise<{ readonly asked: number; readonly reports: { readonly worker: number; readonly report: WorkerReport }[] }> {
    const id = ++this.requestSeq;
    const targets = [...this.serving].map((wid) => this.workers.get(wid)).filter((w): w is Worker => w !== undefined && w.isConnected());
    const reports: { worker: number; report: WorkerReport }[] = [];
    if (targets.length === 0) return Promise.resolve({ asked: 0, reports });
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve({ asked: targets.length, reports });
      };
      const timer = setTimeout(finish, timeoutMs);
      timer.unref();
      this.pending.set(id, { waiting: new Set(targets.map((w) => w.id)), onReply: (worker, report) => reports.push({ worker, report }), done: finish });
      for (const w of targets) {
        try {
          w.send({ type: 'status-request', id } satisfies SupervisorMessage);
        } catch {
          // The channel closed meanwhile: the exit handler stops waiting for it.
        }
      }
    });
  }

  /** Tells every worker to reload its configuration. */
  reload(reason: string): void {
    for (const w of this.workers.values()) w.send({ type: 'reload', reason } satisfies SupervisorMessage);
  }

  /** Asks every worker to drain and exit; kills those still running after the drain time. */
  async stop(): Promise<void> {
    this.stopping = true;
    const exits = [...this.workers.values()].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) {
            resolve();
            return;
          }
          w.once('exit', () => resolve());
          w.send({ type: 'shutdown' } satisfies SupervisorMessage);
        }),
    );
    const timer = setTimeout(() => {
      for (const w of this.workers.values()) w.process.kill('SIGKILL');
    }, this.opts.drainMs + 5_000);
    await Promise.all(exits);
    clearTimeout(timer);
  }
}

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
  | { readonly type: 'snapshot'; readonly states: HealthSnapshot };
export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'reloaded'; readonly ok: boolean }
  | { readonly type: 'outcomes'; readonly batch: Record<string, ('ok' | '5xx' | 'connect-failure')[]> };

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
          worker.off('message', onMessage);
          resolve(true);
        }
      };
      worker.on('message', onMessage);
      worker.once('exit', () => resolve(false));
    });
    worker.on('message', (msg: WorkerMessage) => {
      if (msg.type === 'reloaded' && !msg.ok) this.opts.log.error({ worker: worker.id }, 'a worker rejected the reload');
      this.opts.onMessage?.(worker, msg);
    });
    worker.once('exit', (code, signal) => {
      this.workers.delete(worker.id);
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

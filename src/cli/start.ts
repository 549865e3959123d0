import cluster from 'node:cluster';
import { watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { formatProblem, loadConfigFile } from '../config/index.js';
import type { CorralConfig } from '../config/index.js';
import { CorralError } from '../errors.js';
import { createLogger } from '../log.js';
import type { Logger } from '../log.js';
import { CorralNode } from '../node.js';
import { AdminError, attachAdmin, LatencyHistograms, LogRing } from '../admin/index.js';
import type { AdminServer } from '../admin/index.js';
import { HealthBus, HealthMonitor } from '../health/index.js';
import type { HealthSink } from '../health/index.js';
import { Supervisor, workerCount } from '../workers/supervisor.js';
import type { HealthSnapshot, SupervisorMessage, WorkerMessage } from '../workers/supervisor.js';

/** Runs a node (or a supervisor and its workers) until SIGTERM/SIGINT; resolves with the exit code. */
export async function runStart(file: string, drainMs: number): Promise<number> {
  const result = await loadConfigFile(file);
  if (!result.ok) {
    for (const p of result.problems) process.stderr.write(`${formatProblem(p)}\n`);
    return 1;
  }
  if (cluster.isPrimary && workerCount(result.config) > 1) return runSupervisor(file, result.config, drainMs);
  return runNode(file, result.config, drainMs);
}

/** One process serving traffic: the whole node, or one worker of a supervisor. */
async function runNode(file: string, config: CorralConfig, drainMs: number): Promise<number> {
  const worker = cluster.isWorker;
  const ring = worker ? undefined : new LogRing();
  const log = createLogger(worker ? { base: { worker: cluster.worker?.id } } : { ring });
  const latency = worker || config.admin === undefined ? undefined : new LatencyHistograms();
  let node: CorralNode;
  try {
    node = await CorralNode.start({
      config,
      log,
      ...(latency !== undefined ? { latency } : {}),
      // A worker's health comes from the supervisor, which checks once for all workers.
      health: worker
        ? {
            mode: 'remote',
            initial: JSON.parse(process.env.CORRAL_HEALTH_SNAPSHOT ?? '{}') as HealthSnapshot,
            onOutcomes: (batch) => process.send?.({ type: 'outcomes', batch } satisfies WorkerMessage),
          }
        : { mode: 'local' },
    });
  } catch (err) {
    if (err instanceof CorralError) {
      log.error({ code: err.code }, err.message);
      process.stderr.write(`corral: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  log.info({ node: config.node.name, config: file }, 'node started');
  if (worker) {
    const stopped = waitForStop(node, log, drainMs);
    process.on('message', (msg: SupervisorMessage) => {
      switch (msg.type) {
        case 'reload':
          void reloadFromFile(file, node, log, msg.reason).then((ok) => process.send?.({ type: 'reloaded', ok } satisfies WorkerMessage));
          break;
        case 'shutdown':
          process.emit('SIGTERM');
          break;
        case 'health':
          node.applyHealth(msg.backend, msg.server, msg.health);
          break;
        case 'weight':
          node.applyWeight(msg.backend, msg.server, msg.weight);
          break;
        case 'snapshot':
          for (const [key, st] of Object.entries(msg.states)) {
            const slash = key.indexOf('/');
            node.applyHealth(key.slice(0, slash), key.slice(slash + 1), st.health);
            if (st.weight !== undefined) node.applyWeight(key.slice(0, slash), key.slice(slash + 1), st.weight);
          }
          break;
      }
    });
    process.send?.({ type: 'ready' } satisfies WorkerMessage);
    return stopped;
  }
  let admin: AdminServer | null;
  try {
    admin = await attachAdmin({ node, log, configFile: file, ...(latency !== undefined ? { latency } : {}), ...(ring !== undefined ? { logs: ring } : {}) });
  } catch (err) {
    await node.stop(0);
    if (err instanceof AdminError) {
      log.error({ code: err.code }, err.message);
      process.stderr.write(`corral: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const stopWatching = watchConfig(file, log, (why) => void reloadFromFile(file, node, log, why));
  return waitForStop(node, log, drainMs, async () => {
    stopWatching();
    await admin?.close();
  });
}

/**
 * The supervisor: forks workers, replaces dead ones, relays reloads
 * (validated first) and shutdown. It also runs the health checks, once for
 * all workers: flips are broadcast to every worker, new workers start from a
 * snapshot, and workers send their live-traffic outcomes (batched) back for
 * outlier ejection.
 */
async function runSupervisor(file: string, config: CorralConfig, drainMs: number): Promise<number> {
  const log = createLogger({ base: { role: 'supervisor' } });
  const count = workerCount(config);
  const states: HealthSnapshot = {};
  let supervisor: Supervisor | null = null;
  const sink: HealthSink = {
    setHealth: (backend, server, health) => {
      const key = `${backend}/${server}`;
      states[key] = { ...states[key], health };
      supervisor?.broadcast({ type: 'health', backend, server, health });
    },
    setWeight: (backend, server, weight) => {
      const key = `${backend}/${server}`;
      states[key] = { health: states[key]?.health ?? 'up', weight };
      supervisor?.broadcast({ type: 'weight', backend, server, weight });
    },
  };
  const bus = new HealthBus();
  let monitor: HealthMonitor | null = null;
  const startMonitor = async (cfg: CorralConfig, carry: boolean): Promise<void> => {
    const next = new HealthMonitor({
      backends: cfg.backends,
      sink,
      bus,
      log,
      statusFiles: cfg.statusFiles,
      initial: carry ? (b, s) => states[`${b}/${s}`]?.health : undefined,
    });
    const old = monitor;
    monitor = next;
    if (old !== null) await old.stop();
    next.start();
    await next.ready();
  };
  supervisor = new Supervisor({
    count,
    log,
    drainMs,
    env: () => ({ CORRAL_HEALTH_SNAPSHOT: JSON.stringify(states) }),
    onMessage: (worker, msg) => {
      if (msg.type === 'outcomes') {
        for (const [key, outcomes] of Object.entries(msg.batch)) {
          const slash = key.indexOf('/');
          for (const o of outcomes) monitor?.record(key.slice(0, slash), key.slice(slash + 1), o);
        }
      } else if (msg.type === 'reloaded' && msg.ok) {
        // Servers new in this generation learn their health now.
        worker.send({ type: 'snapshot', states } satisfies SupervisorMessage);
      }
    },
  });
  installCrashGuards(log);
  // Health timers are unref'd and the workers are not forked yet: this keeps the supervisor alive until it stops.
  const keepAlive = setInterval(() => {}, 1 << 30);
  await startMonitor(config, false);
  try {
    await supervisor.start();
  } catch (err) {
    clearInterval(keepAlive);
    await (monitor as HealthMonitor | null)?.stop();
    process.stderr.write(`corral: ${(err as Error).message}\n`);
    return 1;
  }
  log.info({ node: config.node.name, config: file, workers: count }, 'node started');
  if (config.admin !== undefined) {
    log.warn({ workers: count }, 'admin API not started: with several workers it is not available in this version; set workers: 1 to use it');
  }
  const sup = supervisor;
  const stopWatching = watchConfig(file, log, (why) => {
    // Validate once here so an invalid file is reported once, not by every worker.
    void loadConfigFile(file).then(async (r) => {
      if (!r.ok) {
        logProblems(log, r.problems, why);
        return;
      }
      await startMonitor(r.config, true);
      sup.reload(why);
    });
  });
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      stopWatching();
      log.info({ signal, drainMs }, 'stopping: workers finish in-flight requests');
      void sup
        .stop()
        .then(() => monitor?.stop())
        .then(() => {
          clearInterval(keepAlive);
          log.info('stopped');
          resolve(0);
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

function logProblems(log: Logger, problems: readonly import('../config/index.js').ConfigProblem[], why: string): void {
  for (const p of problems) log.error({ file: p.file, line: p.line, col: p.col, problem: p.message }, formatProblem(p));
  log.error({ reason: why, problems: problems.length }, 'reload rejected: configuration invalid, still serving the running generation');
}

/** Reloads from `file`; an invalid file is logged problem by problem and the running generation stays. */
export async function reloadFromFile(file: string, node: CorralNode, log: Logger, why: string): Promise<boolean> {
  const result = await loadConfigFile(file);
  if (!result.ok) {
    logProblems(log, result.problems, why);
    return false;
  }
  try {
    const r = await node.reload(result.config);
    if (!r.changed) log.info({ reason: why }, 'configuration unchanged (certificates re-read)');
    return true;
  } catch (err) {
    log.error({ reason: why, err: (err as Error).message }, 'reload rejected, still serving the running generation');
    return false;
  }
}

/** SIGHUP and changes of the config file call `reload` (changes are debounced). */
function watchConfig(file: string, log: Logger, reload: (why: string) => void): () => void {
  const path = resolve(file);
  let timer: NodeJS.Timeout | null = null;
  const schedule = (why: string): void => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      reload(why);
    }, 200);
  };
  const onHup = (): void => schedule('SIGHUP');
  process.on('SIGHUP', onHup);
  let watcher: ReturnType<typeof watch> | null = null;
  try {
    // Watch the directory: editors replace files by rename, which a file watch would miss.
    watcher = watch(dirname(path), (_event, name) => {
      if (name === basename(path)) schedule('file changed');
    });
    watcher.on('error', (err) => log.warn({ err: err.message }, 'config file watch stopped; SIGHUP still reloads'));
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'cannot watch the config file; SIGHUP still reloads');
  }
  return () => {
    process.off('SIGHUP', onHup);
    watcher?.close();
    if (timer !== null) clearTimeout(timer);
  };
}

/** Resolves with 0 once a SIGTERM/SIGINT drain completes. */
export function waitForStop(node: CorralNode, log: Logger, drainMs: number, onStop?: () => Promise<void>): Promise<number> {
  installCrashGuards(log);
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, drainMs }, 'stopping: no new connections, finishing in-flight requests');
      void node
        .stop(drainMs)
        .then(() => onStop?.())
        .then(() => {
          log.info('stopped');
          resolve(0);
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** Last line of defence: a bug in one connection's handling is logged, never fatal to the node. */
function installCrashGuards(log: Logger): void {
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception (node keeps running)'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection (node keeps running)'));
}

import cluster from 'node:cluster';
import { watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { formatAddress } from '../config/address.js';
import { formatProblem } from '../config/problem.js';
import type { CorralConfig } from '../config/index.js';
import { CorralError } from '../errors.js';
import { loadConfigIsolated } from './load-config.js';
import { createLogger } from '../log.js';
import type { Logger } from '../log.js';
import { CorralNode } from '../node.js';
// The admin server (prom-client) and the sessions role (ioredis) are loaded only when configured: they
// would add ~20 MB each to every process otherwise.
import type { AdminServer } from '../admin/index.js';
import { AdminError } from '../admin/errors.js';
import { LatencyHistograms } from '../admin/latency.js';
import { LogRing } from '../admin/log-ring.js';
import { supervisorAdminNode } from '../admin/supervisor-node.js';
import type { SupervisorAdminNode } from '../admin/supervisor-node.js';
import { HealthBus, HealthMonitor } from '../health/index.js';
import type { SessionsRole } from '../sessions/index.js';
import { sessionMetricSamples, sessionStatus } from '../sessions/metrics.js';
import type { ExtraSample } from '../admin/metrics.js';
import type { HealthSink } from '../health/index.js';
import { ADMIN_STATE_ENV, Supervisor, workerCount } from '../workers/supervisor.js';
import type { HealthSnapshot, SupervisorMessage, WorkerMessage } from '../workers/supervisor.js';
import { parseOverrides, WorkerAdmin } from '../workers/worker-admin.js';

/** Runs a node (or a supervisor and its workers) until SIGTERM/SIGINT; resolves with the exit code. */
export async function runStart(file: string, drainMs: number): Promise<number> {
  const result = await loadConfigIsolated(file);
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
  // Workers fill histograms too: the supervisor's admin sums them.
  const latency = config.admin === undefined ? undefined : new LatencyHistograms();
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
  if (worker) {
    // The admin's runtime changes, applied in the same microtask run as the listeners opened: before
    // any connection is handled (the supervisor holds the admin API and passed them at fork).
    const admin = new WorkerAdmin(node, latency);
    const applied = admin.applyAll(parseOverrides(process.env[ADMIN_STATE_ENV]));
    log.info({ node: config.node.name, config: file }, 'node started');
    if (applied > 0) log.info({ applied }, `applied ${applied} runtime change(s) from the supervisor before serving`);
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
          if (msg.admin !== undefined) admin.applyAll(msg.admin);
          break;
        case 'admin':
          admin.apply(msg.override);
          break;
        case 'status-request':
          process.send?.({ type: 'status', id: msg.id, report: admin.report() } satisfies WorkerMessage);
          break;
      }
    });
    process.send?.({ type: 'ready' } satisfies WorkerMessage);
    return stopped;
  }
  log.info({ node: config.node.name, config: file }, 'node started');
  let admin: AdminServer | null;
  try {
    admin = null;
    if (config.admin !== undefined) {
      const { attachAdmin } = await import('../admin/index.js');
      admin = await attachAdmin({
        node,
        log,
        configFile: file,
        extraMetrics: () => sessionSamples(sessionsRole),
        extraStatus: () => (sessionsRole === null ? {} : { sessions: sessionStatus(sessionsRole.stats()) }),
        ...(latency !== undefined ? { latency } : {}),
        ...(ring !== undefined ? { logs: ring } : {}),
      });
    }
  } catch (err) {
    await node.stop(0);
    if (err instanceof AdminError) {
      log.error({ code: err.code }, err.message);
      process.stderr.write(`corral: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const sessions = await startSessionsRole(config, log);
  if (sessions === false) {
    await admin?.close();
    await node.stop(0);
    return 1;
  }
  sessionsRole = sessions;
  const stopWatching = watchConfig(file, log, (why) => void reloadFromFile(file, node, log, why));
  return waitForStop(node, log, drainMs, async () => {
    stopWatching();
    await admin?.close();
    await sessions?.close();
  });
}

/** The sessions role of this process, once started (its figures go to the admin's /metrics and /api/v1/status). */
let sessionsRole: SessionsRole | null = null;

function sessionSamples(role: SessionsRole | null): readonly ExtraSample[] {
  return role === null ? [] : sessionMetricSamples(role.stats());
}

/**
 * The session-state service (`sessions`), run once per node: in the single
 * process, or in the supervisor when there are workers (it owns a port).
 * Resolves false (after printing why) when it cannot start.
 */
async function startSessionsRole(config: CorralConfig, log: Logger): Promise<SessionsRole | null | false> {
  if (config.sessions === undefined) return null;
  try {
    const { startSessions } = await import('../sessions/index.js');
    const role = await startSessions(config, { log: (event, fields) => log.info({ ...fields, role: 'sessions' }, event) });
    if (role === undefined) return null;
    log.info({ store: config.sessions.store, listen: config.sessions.listen === undefined ? null : formatAddress(config.sessions.listen) }, 'sessions role started');
    return role;
  } catch (err) {
    log.error({ err: (err as Error).message }, 'sessions role failed to start');
    process.stderr.write(`corral: sessions: ${(err as Error).message}\n`);
    return false;
  }
}

/** How long a supervisor's admin read waits for its workers' counters. */
const WORKER_STATUS_TIMEOUT_MS = 1_000;

/**
 * The supervisor: forks workers, replaces dead ones, relays reloads
 * (validated first) and shutdown. It also runs the health checks, once for
 * all workers: flips are broadcast to every worker, new workers start from a
 * snapshot, and workers send their live-traffic outcomes (batched) back for
 * outlier ejection.
 *
 * With an `admin` section it serves the admin API too: reads gather every
 * worker's counters over IPC and sum them, changes are persisted here (the
 * state file beside the config) and broadcast to every worker; a worker
 * forked later gets them in its environment and applies them before it
 * serves, and gets them again after each reload.
 */
async function runSupervisor(file: string, config: CorralConfig, drainMs: number): Promise<number> {
  const ring = config.admin === undefined ? undefined : new LogRing();
  const log = createLogger({ base: { role: 'supervisor' }, ...(ring !== undefined ? { ring } : {}) });
  const count = workerCount(config);
  const states: HealthSnapshot = {};
  let supervisor: Supervisor | null = null;
  let current = config;
  let generation = 1;
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
    // Effective weights start from the new config again; the new monitor announces what differs
    // (and admin weights are re-applied to it after the swap).
    if (carry) for (const [key, st] of Object.entries(states)) states[key] = { health: st.health };
    const next = new HealthMonitor({
      backends: cfg.backends,
      sink,
      bus,
      log,
      statusFiles: cfg.statusFiles,
      initial: carry ? (b, s) => states[`${b}/${s}`]?.health : undefined,
    });
    // Weights set through the admin API are what slow start and agents scale from, in this monitor too.
    if (carry) for (const o of adminNode?.entries() ?? []) if (o.weight !== null) next.setConfiguredWeight(o.backend, o.server, o.weight);
    const old = monitor;
    monitor = next;
    if (old !== null) await old.stop();
    next.start();
    await next.ready();
  };
  const adminNode: SupervisorAdminNode | null =
    config.admin === undefined
      ? null
      : supervisorAdminNode({
          config: () => current,
          generation: () => generation,
          collect: async () => {
            const r = (await supervisor?.collect(WORKER_STATUS_TIMEOUT_MS)) ?? { asked: 0, reports: [] };
            if (r.reports.length < r.asked) log.warn({ asked: r.asked, answered: r.reports.length }, 'admin: not every worker answered in time; their counters are left out');
            return { expected: count, reports: r.reports };
          },
          broadcast: (override) => supervisor?.broadcast({ type: 'admin', override }),
          health: (b, s) => monitor?.status(b, s),
          applyWeight: (b, s, w) => monitor?.setConfiguredWeight(b, s, w),
        });
  const snapshot = (): SupervisorMessage => ({ type: 'snapshot', states, ...(adminNode !== null ? { admin: adminNode.entries() } : {}) });
  supervisor = new Supervisor({
    count,
    log,
    drainMs,
    env: () => ({
      CORRAL_HEALTH_SNAPSHOT: JSON.stringify(states),
      ...(adminNode !== null ? { [ADMIN_STATE_ENV]: JSON.stringify(adminNode.entries()) } : {}),
    }),
    onMessage: (worker, msg) => {
      if (msg.type === 'outcomes') {
        for (const [key, outcomes] of Object.entries(msg.batch)) {
          const slash = key.indexOf('/');
          for (const o of outcomes) monitor?.record(key.slice(0, slash), key.slice(slash + 1), o);
        }
      } else if ((msg.type === 'reloaded' && msg.ok) || msg.type === 'ready') {
        // After a reload: servers new in this generation learn their health and runtime overrides.
        // When ready: what changed since its fork (broadcasts sent before it listened for them).
        if (worker.isConnected()) worker.send(snapshot());
      }
    },
    onExit: (worker) => adminNode?.workerExited(worker.id),
  });
  installCrashGuards(log);
  // Health timers are unref'd and the workers are not forked yet: this keeps the supervisor alive until it stops.
  const keepAlive = setInterval(() => {}, 1 << 30);
  await startMonitor(config, false);
  // The admin server first: it reads the state file, so the first workers are forked with its changes.
  let admin: AdminServer | null = null;
  if (adminNode !== null && config.admin !== undefined) {
    try {
      const { healthEventSource, startAdmin, stateFileFor } = await import('../admin/index.js');
      admin = await startAdmin({
        config: config.admin,
        node: adminNode,
        log,
        events: healthEventSource(bus),
        stateFile: stateFileFor(file),
        latency: adminNode.latency,
        extraMetrics: () => sessionSamples(sessionsRole),
        extraStatus: () => (sessionsRole === null ? {} : { sessions: sessionStatus(sessionsRole.stats()) }),
        ...(ring !== undefined ? { logs: ring } : {}),
      });
    } catch (err) {
      clearInterval(keepAlive);
      await (monitor as HealthMonitor | null)?.stop();
      if (err instanceof AdminError) {
        log.error({ code: err.code }, err.message);
        process.stderr.write(`corral: ${err.code}: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
  }
  try {
    await supervisor.start();
  } catch (err) {
    clearInterval(keepAlive);
    await admin?.close();
    await (monitor as HealthMonitor | null)?.stop();
    process.stderr.write(`corral: ${(err as Error).message}\n`);
    return 1;
  }
  const sessions = await startSessionsRole(config, log);
  sessionsRole = sessions === false ? null : sessions;
  if (sessions === false) {
    clearInterval(keepAlive);
    await admin?.close();
    await supervisor.stop();
    await (monitor as HealthMonitor | null)?.stop();
    return 1;
  }
  log.info({ node: config.node.name, config: file, workers: count }, 'node started');
  const sup = supervisor;
  const stopWatching = watchConfig(file, log, (why) => {
    // Validate once here so an invalid file is reported once, not by every worker.
    void loadConfigIsolated(file).then(async (r) => {
      if (!r.ok) {
        logProblems(log, r.problems, why);
        return;
      }
      await startMonitor(r.config, true);
      const changed = !isDeepStrictEqual(current, r.config);
      current = r.config;
      if (changed) {
        generation++;
        // The admin re-applies the state file (overrides go to every worker and the new monitor).
        adminNode?.reloaded(generation);
      }
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
      void (admin?.close() ?? Promise.resolve())
        .then(() => sup.stop())
        .then(() => sessions?.close())
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

function logProblems(log: Logger, problems: readonly import('../config/types.js').ConfigProblem[], why: string): void {
  for (const p of problems) log.error({ file: p.file, line: p.line, col: p.col, problem: p.message }, formatProblem(p));
  log.error({ reason: why, problems: problems.length }, 'reload rejected: configuration invalid, still serving the running generation');
}

/** Reloads from `file`; an invalid file is logged problem by problem and the running generation stays. */
export async function reloadFromFile(file: string, node: CorralNode, log: Logger, why: string): Promise<boolean> {
  const result = await loadConfigIsolated(file);
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

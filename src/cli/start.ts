import { watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { formatProblem, loadConfigFile } from '../config/index.js';
import { CorralError } from '../errors.js';
import { createLogger } from '../log.js';
import type { Logger } from '../log.js';
import { CorralNode } from '../node.js';

/** Runs a node until SIGTERM/SIGINT; resolves with the exit code. */
export async function runStart(file: string, drainMs: number): Promise<number> {
  const result = await loadConfigFile(file);
  if (!result.ok) {
    for (const p of result.problems) process.stderr.write(`${formatProblem(p)}\n`);
    return 1;
  }
  const log = createLogger();
  let node: CorralNode;
  try {
    node = await CorralNode.start({ config: result.config, log });
  } catch (err) {
    if (err instanceof CorralError) {
      process.stderr.write(`corral: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  log.info({ node: result.config.node.name, config: file }, 'node started');
  const stopWatching = watchConfig(file, node, log);
  return waitForStop(node, log, drainMs, async () => stopWatching());
}

/** Reloads from `file`; an invalid file is logged problem by problem and the running generation stays. */
export async function reloadFromFile(file: string, node: CorralNode, log: Logger, why: string): Promise<void> {
  const result = await loadConfigFile(file);
  if (!result.ok) {
    for (const p of result.problems) log.error({ file: p.file, line: p.line, col: p.col, problem: p.message }, formatProblem(p));
    log.error({ reason: why, problems: result.problems.length }, 'reload rejected: configuration invalid, still serving the running generation');
    return;
  }
  try {
    const r = await node.reload(result.config);
    if (!r.changed) log.info({ reason: why }, 'configuration unchanged (certificates re-read)');
  } catch (err) {
    log.error({ reason: why, err: (err as Error).message }, 'reload rejected, still serving the running generation');
  }
}

/** SIGHUP and changes of the config file reload it (changes are debounced). */
function watchConfig(file: string, node: CorralNode, log: Logger): () => void {
  const path = resolve(file);
  let timer: NodeJS.Timeout | null = null;
  const schedule = (why: string): void => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      void reloadFromFile(path, node, log, why);
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

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
  return waitForStop(node, log, drainMs);
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
    process.on('SIGHUP', () => log.warn('SIGHUP: configuration reload is not available in this version; restart to apply changes'));
  });
}

/** Last line of defence: a bug in one connection's handling is logged, never fatal to the node. */
function installCrashGuards(log: Logger): void {
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception (node keeps running)'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection (node keeps running)'));
}

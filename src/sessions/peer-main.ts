#!/usr/bin/env node
/**
 * Runs one session-state node from a corral config (its `sessions` and
 * `cluster.key`), in the foreground, logging JSON lines to stdout. Used by
 * the multi-process tests and the benchmark; `corral start` runs the same
 * role inside a full node.
 *
 *   node dist/src/sessions/peer-main.js corral.yaml
 *
 * SIGTERM or SIGINT closes the node and exits 0.
 */
import { formatProblem, loadConfigFile } from '../config/index.js';
import { startSessions } from './role.js';

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write('usage: peer-main.js CONFIG\n');
  process.exit(2);
}
const log = (event: string, fields: Record<string, unknown> = {}): void => {
  process.stdout.write(`${JSON.stringify({ time: Date.now(), event, ...fields })}\n`);
};
const loaded = await loadConfigFile(file);
if (!loaded.ok) {
  for (const p of loaded.problems) process.stderr.write(`${formatProblem(p)}\n`);
  process.exit(1);
}
try {
  const role = await startSessions(loaded.config, { log });
  if (role === undefined) throw new Error('the config has no sessions section');
  log('sessions.started', { store: role.store.kind, node: role.node?.id, pid: process.pid });
  const stop = (): void => {
    void role.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} catch (err) {
  process.stderr.write(`peer-main: ${(err as Error).message}\n`);
  process.exit(1);
}

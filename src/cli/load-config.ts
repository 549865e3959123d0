/**
 * Loads a config file in a short-lived child process.
 *
 * The parser and validator (yaml, zod and the schema) add about 12 MB to a
 * process's resident memory once loaded, and a long-running node only needs
 * their result: the frozen config. Parsing in a child process keeps them out
 * of the serving process; the child exits after each load (start and every
 * reload), and its memory goes with it. (A worker thread would not do: the
 * memory of its malloc arena stays with the process.)
 */
import { fork } from 'node:child_process';
import type { LoadResult } from '../config/index.js';

/** Same result as `loadConfigFile`, computed in a child process. */
export async function loadConfigIsolated(file: string): Promise<LoadResult> {
  const child = fork(new URL('./config-thread.js', import.meta.url), [file], {
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: [],
  });
  let result: LoadResult | undefined;
  return new Promise<LoadResult>((resolve, reject) => {
    child.once('message', (m) => {
      result = m as LoadResult;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (result === undefined) reject(new Error(`config loader exited with code ${code} without a result`));
      // Cloning over IPC drops the freeze: restore it (a config is immutable once loaded).
      else resolve(result.ok ? { ok: true, config: deepFreeze(result.config) } : result);
    });
  });
}

function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  for (const child of Object.values(value)) deepFreeze(child);
  return Object.freeze(value);
}

/**
 * Corral as a library: build a node from a configuration and run it in your
 * own process.
 *
 * @example
 * ```ts
 * import { CorralNode, loadConfigFile } from 'corral';
 * import pino from 'pino';
 *
 * const r = await loadConfigFile('corral.yaml');
 * if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
 * const node = await CorralNode.start({ config: r.config, log: pino() });
 * // … later
 * await node.stop(30_000);
 * ```
 */
export { CorralNode, type NodeOptions, type BoundFrontend, type ReloadResult, type HealthMode } from './node.js';
export * from './config/index.js';
export { CorralError, ERROR_CODES, type ErrorCode } from './errors.js';
export { createLogger, silentLogger, type Logger } from './log.js';

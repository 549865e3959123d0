/**
 * Corral's configuration: the YAML schema, the loader that reports every
 * problem as `FILE:LINE:COL message`, and the value parsers it is built on.
 * Imports nothing else of Corral.
 */
export type * from './types.js';
export { parseConfig, loadConfigFile } from './loader.js';
export { formatProblem } from './problem.js';
export { parseDuration, formatDuration } from './duration.js';
export {
  parseAddress,
  formatAddress,
  parseHost,
  isHostName,
  isLoopbackHost,
  parseCidr,
  formatCidr,
  type Cidr,
} from './address.js';
export { ConfigValueError } from './errors.js';

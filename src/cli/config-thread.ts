/**
 * Child-process entry of {@link loadConfigIsolated}: parses and validates
 * one config file, sends the result over IPC and exits.
 */
import { loadConfigFile } from '../config/index.js';

const file = process.argv[2] ?? '';
const result = await loadConfigFile(file);
process.send?.(result, undefined, undefined, () => process.disconnect());

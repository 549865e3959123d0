/**
 * Thrown by the value parsers (`parseDuration`, `parseAddress`, `parseCidr`)
 * when a string is not what they expect. The message says what was expected
 * and what was found, and is meant to be shown to the user as is. The code is
 * `CORRAL_ERR_CONFIG`, as for any invalid configuration (`config` imports
 * nothing of Corral, so this is not a `CorralError` subclass).
 *
 * @example
 * try { parseDuration('5') } catch (e) {
 *   if (e instanceof ConfigValueError) console.error(e.message);
 * }
 */
export class ConfigValueError extends Error {
  readonly code = 'CORRAL_ERR_CONFIG' as const;

  constructor(message: string) {
    super(message);
    this.name = 'ConfigValueError';
  }
}

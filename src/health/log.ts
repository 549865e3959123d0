/**
 * The logger health writes to: the part of pino's `Logger` it uses, so any
 * pino logger (or a test double) fits, and health imports no logging code.
 */
export interface HealthLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

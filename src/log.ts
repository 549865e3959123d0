/**
 * JSON logging (pino). The access log writes one line per request, so the
 * destination writes asynchronously and is flushed on exit.
 */
import pino from 'pino';
import type { Logger } from 'pino';

export type { Logger } from 'pino';

export interface LogOptions {
  readonly level?: string;
  /** Write synchronously (tests, short-lived commands). */
  readonly sync?: boolean;
  /** Fields on every line (e.g. the worker id). */
  readonly base?: Record<string, unknown>;
  /** Also keep recent lines here (the admin's support snapshot reads them). */
  readonly ring?: { write(line: string): boolean };
}

/** A logger writing JSON lines to stdout. Secrets are redacted wherever they appear. */
export function createLogger(opts: LogOptions = {}): Logger {
  // Asynchronous: lines written while a write is pending are batched into the next one.
  const dest = pino.destination({ dest: 1, sync: opts.sync ?? false });
  const level = opts.level ?? process.env.CORRAL_LOG_LEVEL ?? 'info';
  const streams = opts.ring === undefined ? dest : pino.multistream([{ stream: dest, level: level as pino.Level }, { stream: opts.ring, level: level as pino.Level }]);
  const log = pino(
    {
      level,
      base: { pid: process.pid, ...opts.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['password', 'token', 'key', '*.password', '*.token', '*.key', 'auth'], censor: '***' },
    },
    streams,
  );
  const flush = (): void => {
    try {
      dest.flushSync();
    } catch {
      // nothing left to flush or stdout is gone
    }
  };
  process.once('exit', flush);
  return log;
}

/** A logger that discards everything. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

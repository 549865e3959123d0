/**
 * A pino logger for tests whose lines are kept and announced, so a test can
 * wait for a log line instead of sleeping.
 */
import { EventEmitter } from 'node:events';
import pino from 'pino';

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

export class LogCapture extends EventEmitter {
  readonly lines: LogLine[] = [];
  readonly logger = pino(
    { level: 'debug' },
    {
      write: (s: string) => {
        for (const text of s.split('\n')) {
          if (text === '') continue;
          const line = JSON.parse(text) as LogLine;
          this.lines.push(line);
          this.emit('line', line);
        }
      },
    },
  );

  /** TCP access lines (one per closed connection). */
  get access(): LogLine[] {
    return this.lines.filter((l) => l.msg === 'connection');
  }

  /** The first line, seen or coming, that matches. */
  wait(pred: (l: LogLine) => boolean, timeoutMs = 5_000): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('line', onLine);
        reject(new Error(`no matching log line within ${timeoutMs} ms; got:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}`));
      }, timeoutMs);
      const onLine = (l: LogLine): void => {
        if (!pred(l)) return;
        clearTimeout(timer);
        this.off('line', onLine);
        resolve(l);
      };
      this.on('line', onLine);
    });
  }

  /** Waits for `n` TCP access lines. */
  async accessLines(n: number): Promise<LogLine[]> {
    await this.wait(() => this.access.length >= n);
    return this.access;
  }
}

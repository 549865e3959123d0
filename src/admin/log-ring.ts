/**
 * The node's most recent log lines, kept in memory for support snapshots
 * (`GET /api/v1/logs/recent`, `corral snapshot`). It is a pino destination:
 * add it beside stdout with `pino.multistream`. Lines are already redacted
 * by the logger; bounded by count and by bytes.
 *
 * @example
 * const ring = new LogRing();
 * const log = pino(opts, pino.multistream([{ stream: pino.destination(1) }, { stream: ring }]));
 */
export class LogRing {
  readonly maxLines: number;
  readonly maxBytes: number;
  private readonly lines: string[] = [];
  private bytes = 0;

  constructor(maxLines = 1000, maxBytes = 1 << 20) {
    this.maxLines = maxLines;
    this.maxBytes = maxBytes;
  }

  /** pino's destination interface. Access lines (one per request) are not kept: they would crowd out the rest. */
  write(chunk: string): boolean {
    if (chunk.includes('"type":"access"')) return true;
    for (const line of chunk.split('\n')) {
      if (line === '' || line.includes('"type":"access"')) continue;
      // One oversized line must not evict everything else.
      const kept = line.length > 16_384 ? `${line.slice(0, 16_384)}…` : line;
      this.lines.push(kept);
      this.bytes += kept.length;
    }
    while (this.lines.length > this.maxLines || (this.bytes > this.maxBytes && this.lines.length > 1)) {
      this.bytes -= (this.lines.shift() as string).length;
    }
    return true;
  }

  /** The kept lines, oldest first, parsed as JSON where they are JSON. */
  recent(limit = this.maxLines): unknown[] {
    return this.lines.slice(Math.max(0, this.lines.length - limit)).map((l) => {
      try {
        return JSON.parse(l) as unknown;
      } catch {
        return l;
      }
    });
  }
}

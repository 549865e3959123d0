/**
 * Status files (seed 001): every server's availability as JSON, for
 * applications that watch a file. Each file is rewritten atomically (a
 * temporary file in the same directory, flushed, then renamed over it), so a
 * reader sees the old document or the new one, never half of one.
 *
 * Bursts are coalesced: a change schedules one write on the next turn of the
 * event loop; changes during a write schedule one more, made from the state
 * at that time, so the last state is always the one on disk.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { HealthLog } from './log.js';
import type { Health } from './state-machine.js';

export interface StatusEntry {
  readonly backend: string;
  readonly name: string;
  /** `host:port` (IPv6 in brackets). */
  readonly address: string;
  readonly state: Health;
  /** `state === 'up'`: the server takes traffic (as far as health goes). */
  readonly available: boolean;
  /** When the state began (ISO 8601). */
  readonly since: string;
  /** Why: `L7_OK`, `L4_REFUSED`, `L7_STATUS 503`, `OUTLIER_5XX`, … */
  readonly reason: string;
  readonly detail?: string;
  readonly weight: number;
}

export interface StatusDocument {
  readonly version: 1;
  /** When this document was written (ISO 8601). */
  readonly updatedAt: string;
  readonly servers: readonly StatusEntry[];
}

let sequence = 0;

/** Writes `text` to `path` atomically: temp file in the same directory, fsync, rename. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${++sequence}.tmp`);
  try {
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

export class StatusFiles {
  private dirty = false;
  private running: Promise<void> | undefined;
  /** Paths whose last write failed (logged once until one succeeds). */
  private readonly failing = new Set<string>();

  constructor(
    private readonly paths: readonly string[],
    private readonly snapshot: () => StatusDocument,
    private readonly log: HealthLog,
  ) {}

  /** Something changed: write soon (coalesced). */
  changed(): void {
    if (this.paths.length === 0) return;
    this.dirty = true;
    this.running ??= this.loop();
  }

  /** Resolves once the latest state is on disk (or failed to get there). */
  flush(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async loop(): Promise<void> {
    try {
      while (this.dirty) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        this.dirty = false;
        const text = `${JSON.stringify(this.snapshot(), null, 2)}\n`;
        await Promise.all(this.paths.map((p) => this.writeOne(p, text)));
      }
    } finally {
      this.running = undefined;
    }
  }

  private async writeOne(path: string, text: string): Promise<void> {
    try {
      await writeAtomically(path, text);
      if (this.failing.delete(path)) this.log.info({ path }, `status file ${path} written again`);
    } catch (err) {
      if (!this.failing.has(path)) {
        this.failing.add(path);
        this.log.error({ path, err: (err as Error).message }, `cannot write status file ${path}: ${(err as Error).message}`);
      }
    }
  }
}

/**
 * Runtime changes that survive reloads and restarts (what HAProxy users
 * script around with `show servers state`): a JSON file beside the config,
 * rewritten atomically (temp file, fsync, rename) on every change, read at
 * start, and re-applied after every reload.
 *
 * The file holds only what differs from the config: servers not `ready`,
 * and weights other than the configured one.
 *
 * ```json
 * { "version": 1, "servers": [
 *   { "backend": "app", "server": "app1", "admin": "drain", "by": "alice", "at": "2025-01-01T12:00:00.000Z" },
 *   { "backend": "app", "server": "app2", "weight": 8, "by": "token", "at": "…" } ] }
 * ```
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { Logger } from '../log.js';
import type { AdminNode } from './admin-node.js';
import { AdminError } from './errors.js';
import { ADMIN_STATES, MAX_WEIGHT } from './types.js';
import type { AdminState } from './types.js';

export interface PersistedServer {
  readonly backend: string;
  readonly server: string;
  readonly admin?: Exclude<AdminState, 'ready'>;
  readonly weight?: number;
  /** Who made the last change, and when. */
  readonly by: string;
  readonly at: string;
}

export interface StateDocument {
  readonly version: 1;
  readonly servers: readonly PersistedServer[];
}

/** `corral.yaml` → `corral.state.json`, in the same directory. */
export function stateFileFor(configFile: string): string {
  const ext = extname(configFile);
  const base = basename(configFile, ext === '.yaml' || ext === '.yml' || ext === '.json' ? ext : '');
  return join(dirname(configFile), `${base}.state.json`);
}

let tmpCounter = 0;

/** Writes `data` to `file` atomically: readers see the old or the new content, never a mix. */
export async function writeFileAtomically(file: string, data: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${++tmpCounter}.tmp`);
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

const key = (backend: string, server: string): string => `${backend}/${server}`;

function parseEntry(x: unknown): PersistedServer | null {
  if (typeof x !== 'object' || x === null) return null;
  const e = x as Record<string, unknown>;
  if (typeof e.backend !== 'string' || typeof e.server !== 'string') return null;
  const admin = e.admin;
  if (admin !== undefined && (typeof admin !== 'string' || !ADMIN_STATES.includes(admin as AdminState) || admin === 'ready')) return null;
  const weight = e.weight;
  if (weight !== undefined && (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > MAX_WEIGHT)) return null;
  if (admin === undefined && weight === undefined) return null;
  return {
    backend: e.backend,
    server: e.server,
    ...(admin !== undefined ? { admin: admin as Exclude<AdminState, 'ready'> } : {}),
    ...(weight !== undefined ? { weight } : {}),
    by: typeof e.by === 'string' ? e.by : 'unknown',
    at: typeof e.at === 'string' ? e.at : new Date(0).toISOString(),
  };
}

/** What `applyTo` did. */
export interface ApplyResult {
  readonly applied: number;
  /** `backend/server` of entries whose server no longer exists (dropped). */
  readonly dropped: readonly string[];
}

/**
 * The runtime overrides in memory and on disk. Changes go through
 * `update()`, which writes the file before the change is applied to the
 * node, so a change the API confirmed is on disk.
 */
export class RuntimeState {
  readonly file: string | undefined;
  private readonly log: Logger;
  private readonly entries = new Map<string, PersistedServer>();
  /** Writes run one at a time, in order. */
  private writing: Promise<void> = Promise.resolve();

  constructor(file: string | undefined, log: Logger) {
    this.file = file;
    this.log = log;
  }

  /** Reads the state file (a missing file is an empty state; a corrupt one is logged and ignored). */
  static async load(file: string | undefined, log: Logger): Promise<RuntimeState> {
    const state = new RuntimeState(file, log);
    if (file === undefined) return state;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ file, err: (err as Error).message }, 'cannot read the admin state file; starting without runtime changes');
      return state;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      log.error({ file, err: (err as Error).message }, 'admin state file is not valid JSON; ignoring it (it will be rewritten at the next change)');
      return state;
    }
    const servers = (doc as { servers?: unknown }).servers;
    if (!Array.isArray(servers)) {
      log.error({ file }, 'admin state file has no servers list; ignoring it');
      return state;
    }
    for (const raw of servers) {
      const e = parseEntry(raw);
      if (e === null) log.warn({ file, entry: raw }, 'admin state file: ignoring an invalid entry');
      else state.entries.set(key(e.backend, e.server), e);
    }
    return state;
  }

  get size(): number {
    return this.entries.size;
  }

  get(backend: string, server: string): PersistedServer | undefined {
    return this.entries.get(key(backend, server));
  }

  document(): StateDocument {
    return { version: 1, servers: [...this.entries.values()] };
  }

  /**
   * Applies every entry to `node`; entries whose backend or server no longer
   * exists are dropped (and logged). Synchronous, so it can run between a
   * reload's swap and the next request.
   */
  applyTo(node: AdminNode, onApplied?: (e: PersistedServer, what: 'state' | 'weight', from: string, to: string) => void): ApplyResult {
    let applied = 0;
    const dropped: string[] = [];
    for (const [k, e] of this.entries) {
      try {
        const st = node.setServerState(e.backend, e.server, e.admin ?? 'ready');
        const w = node.setServerWeight(e.backend, e.server, e.weight ?? node.configWeight(e.backend, e.server));
        if (st.changed) onApplied?.(e, 'state', st.from, st.to);
        if (w.changed) onApplied?.(e, 'weight', String(w.from), String(w.to));
        applied++;
      } catch (err) {
        if (!(err instanceof AdminError) || err.code !== 'CORRAL_ERR_ADMIN_NOT_FOUND') throw err;
        this.entries.delete(k);
        dropped.push(k);
        this.log.warn({ backend: e.backend, server: e.server, file: this.file }, `runtime change for ${k} dropped: ${err.message} in the running configuration`);
      }
    }
    return { applied, dropped };
  }

  /**
   * Records a server's new runtime state (`admin: 'ready'` and the configured
   * weight clear it) and writes the file. Rejects (and records nothing) when
   * the file cannot be written.
   */
  async update(backend: string, server: string, change: { admin?: AdminState; weight?: number; configWeight: number }, by: string): Promise<void> {
    const k = key(backend, server);
    const before = this.entries.get(k);
    const admin = change.admin ?? before?.admin ?? 'ready';
    const weight = change.weight ?? before?.weight ?? change.configWeight;
    const next: PersistedServer | undefined =
      admin === 'ready' && weight === change.configWeight
        ? undefined
        : {
            backend,
            server,
            ...(admin !== 'ready' ? { admin } : {}),
            ...(weight !== change.configWeight ? { weight } : {}),
            by,
            at: new Date().toISOString(),
          };
    if (next === undefined) this.entries.delete(k);
    else this.entries.set(k, next);
    try {
      await this.save();
    } catch (err) {
      if (before === undefined) this.entries.delete(k);
      else this.entries.set(k, before);
      throw new AdminError('CORRAL_ERR_ADMIN_STATE_FILE', `cannot write the state file ${this.file}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Resolves once every write started so far has ended. */
  idle(): Promise<void> {
    return this.writing;
  }

  /** Writes the current entries (no-op without a file). */
  save(): Promise<void> {
    const file = this.file;
    if (file === undefined) return Promise.resolve();
    const text = `${JSON.stringify(this.document(), null, 2)}\n`;
    const run = this.writing.then(() => writeFileAtomically(file, text));
    this.writing = run.catch(() => undefined);
    return run;
  }
}

/**
 * Reads `file` and applies it to `node` (start, and after every reload);
 * entries for servers that no longer exist are dropped with a log line and
 * the file rewritten without them.
 *
 * @example
 * const state = await applyPersistedState(adminNode, 'corral.state.json', log);
 * adminNode.onReload(() => state.applyTo(adminNode));
 */
export async function applyPersistedState(node: AdminNode, file: string, log: Logger): Promise<RuntimeState> {
  const state = await RuntimeState.load(file, log);
  const r = state.applyTo(node);
  if (r.applied > 0) log.info({ file, applied: r.applied }, `re-applied ${r.applied} runtime change(s) from the state file`);
  if (r.dropped.length > 0) await state.save().catch((err: Error) => log.warn({ file, err: err.message }, 'cannot rewrite the admin state file'));
  return state;
}

import type { BackendView, PickRequest, Scheduler, ServerView } from './types.js';

const NO_SERVERS: readonly ServerView[] = Object.freeze([]);
const EMPTY_VIEW: BackendView = Object.freeze({
  primaries: NO_SERVERS,
  backups: NO_SERVERS,
  weightsVersion: 0,
});

/**
 * Backup failover around two schedulers: `primary` picks among
 * `view.primaries`; only when it finds nothing pickable does `backup` pick,
 * seeing `view.backups` as its primaries. The two keep separate state
 * (counters, rings, tables), so backup traffic never disturbs the primaries'
 * round-robin position or hash ring.
 *
 * No per-pick allocation: the backup scheduler is handed one reusable view
 * object pointed at the current view for the duration of the call.
 *
 * @example
 * ```ts
 * // HAProxy's default: the first usable backup takes everything.
 * const s = withBackups(createRoundRobin(), createFirst());
 * ```
 */
export function withBackups(primary: Scheduler, backup: Scheduler): Scheduler {
  return new BackupFailover(primary, backup);
}

class BackupFailover implements Scheduler {
  private readonly backupView = new BackupsAsPrimaries();

  constructor(
    private readonly primary: Scheduler,
    private readonly backup: Scheduler,
  ) {}

  pick(view: BackendView, request: PickRequest): ServerView | undefined {
    const server = this.primary.pick(view, request);
    if (server !== undefined || view.backups.length === 0) return server;
    const backupView = this.backupView;
    backupView.target = view;
    try {
      return this.backup.pick(backupView, request);
    } finally {
      backupView.target = EMPTY_VIEW;
    }
  }
}

/** A view whose primaries are another view's backups. */
class BackupsAsPrimaries implements BackendView {
  target: BackendView = EMPTY_VIEW;

  get primaries(): readonly ServerView[] {
    return this.target.backups;
  }

  get backups(): readonly ServerView[] {
    return NO_SERVERS;
  }

  get weightsVersion(): number {
    return this.target.weightsVersion;
  }
}

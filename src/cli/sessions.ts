/**
 * `corral sessions stats`: per-node counts of the session-state service,
 * read straight from the nodes (peer) or from Redis, with the config's
 * `sessions` section and `cluster.key`.
 */
import { Command, CommanderError } from 'commander';
import { formatAddress, formatProblem, loadConfigFile } from '../config/index.js';
import type { SessionStats } from '../sessions/types.js';
import { processIo, type OperatorIo } from './operator.js';
import { renderTable, wantColour, type Cell } from './table.js';

export interface SessionsStatsRow {
  readonly node: string;
  /** undefined when the node could not be reached. */
  readonly stats: (SessionStats & { ready?: boolean; tombstones?: number }) | undefined;
}

const n = (x: number | undefined): string => (x === undefined || x < 0 ? '-' : String(x));

function bytes(x: number | undefined): string {
  if (x === undefined || x < 0) return '-';
  if (x < 1024) return `${x}B`;
  if (x < 1024 ** 2) return `${(x / 1024).toFixed(1)}K`;
  if (x < 1024 ** 3) return `${(x / 1024 ** 2).toFixed(1)}M`;
  return `${(x / 1024 ** 3).toFixed(1)}G`;
}

/** One row per node: state, counts, replication lag and hand-off progress. */
export function formatSessionStats(rows: readonly SessionsStatsRow[], colour: boolean): string {
  const table: Cell[][] = rows.map(({ node, stats: s }) => {
    if (s === undefined) return [node, { text: 'unreachable', colour: 'red' }];
    const h = s.handoff;
    const handoff = h === undefined ? '-' : h.running ? `running: ${h.sent} sent, ${h.pending} to go` : h.completed === 0 ? 'none yet' : `last: ${h.lastRecords} in ${h.lastDurationMs}ms`;
    const state = s.ready === false ? { text: 'catching up', colour: 'yellow' as const } : { text: 'serving', colour: 'green' as const };
    return [
      node,
      state,
      n(s.sessions),
      n(s.tombstones),
      bytes(s.bytes),
      n(s.hits),
      n(s.misses),
      n(s.sets),
      n(s.conflicts),
      n(s.evictions),
      s.replication === undefined ? '-' : s.replication.avgLagMs.toFixed(2),
      handoff,
    ];
  });
  return renderTable(
    [
      { header: 'NODE' },
      { header: 'STATE' },
      { header: 'SESSIONS', align: 'right' },
      { header: 'TOMBS', align: 'right' },
      { header: 'BYTES', align: 'right' },
      { header: 'HITS', align: 'right' },
      { header: 'MISSES', align: 'right' },
      { header: 'SETS', align: 'right' },
      { header: 'CONFLICTS', align: 'right' },
      { header: 'EVICTED', align: 'right' },
      { header: 'LAG MS', align: 'right' },
      { header: 'HAND-OFF' },
    ],
    table,
    colour,
  );
}

interface StatsOptions {
  readonly config: string;
  readonly peers?: string;
  readonly json?: boolean;
  readonly timeout: string;
}

async function collect(opts: StatsOptions, env: NodeJS.ProcessEnv): Promise<SessionsStatsRow[]> {
  const timeout = Number(opts.timeout);
  if (opts.peers !== undefined) {
    const key = env.CORRAL_CLUSTER_KEY;
    if (key === undefined || key === '') throw new Error('--peers needs the cluster key in CORRAL_CLUSTER_KEY');
    return peerRows(opts.peers.split(',').map((s) => s.trim()).filter(Boolean), key, timeout);
  }
  const loaded = await loadConfigFile(opts.config, env);
  if (!loaded.ok) throw new Error(loaded.problems.map(formatProblem).join('\n'));
  const s = loaded.config.sessions;
  if (s === undefined) throw new Error(`${opts.config} has no sessions section`);
  if (s.store === 'memory') {
    throw new Error('sessions.store is memory: the sessions live inside the node; read them with corral status or the admin API');
  }
  if (s.store === 'redis') {
    const key = loaded.config.cluster?.key;
    // Loaded here, not at the top: every `corral` command imports this file.
    const { RedisStore } = await import('../sessions/redis-store.js');
    const store = new RedisStore({ url: s.redis.url, prefix: s.redis.prefix, timeout, encryptKey: s.encrypt ? key : undefined });
    try {
      await store.length();
      return [{ node: `${s.redis.url} (${s.redis.prefix}*)`, stats: store.stats() }];
    } finally {
      await store.close();
    }
  }
  const key = loaded.config.cluster?.key;
  if (key === undefined) throw new Error('sessions.store peer needs cluster.key');
  return peerRows(s.peers.map(formatAddress), key, timeout);
}

async function peerRows(peers: string[], key: string, timeout: number): Promise<SessionsStatsRow[]> {
  const { PeerClient } = await import('../sessions/peer-client.js');
  const client = new PeerClient({ peers, key, timeout, connectTimeout: timeout, name: 'corral-cli' });
  try {
    // wait for every peer to answer its first heartbeat (or fail), bounded
    await client.ready(timeout);
    await new Promise((r) => setTimeout(r, 100));
    const stats = await client.nodeStats().catch(() => new Map<string, SessionStats>());
    return peers.map((p) => ({ node: p, stats: stats.get(p) }));
  } finally {
    await client.close();
  }
}

export function registerSessionsCommands(program: Command, io: OperatorIo = processIo()): void {
  const sessions = program.command('sessions').description('the session-state service (memory | peer | redis)');
  sessions
    .command('stats')
    .description('per node: sessions, tombstones, bytes, hits/misses, sets, conflicts, evictions, replication lag, hand-off progress')
    .option('-c, --config <file>', 'configuration file: its sessions section and cluster.key', 'corral.yaml')
    .option('--peers <list>', 'comma-separated state-service addresses instead of the config (key from CORRAL_CLUSTER_KEY)')
    .option('--json', 'print JSON')
    .option('--timeout <ms>', 'give up on a node after this many milliseconds', '3000')
    .action(async (opts: StatsOptions, cmd: Command) => {
      try {
        const rows = await collect(opts, io.env);
        if (opts.json === true) io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        else io.stdout.write(formatSessionStats(rows, wantColour(io.stdout, io.env)));
        io.setExitCode(rows.some((r) => r.stats === undefined) ? 1 : 0);
      } catch (err) {
        if (err instanceof CommanderError) throw err;
        const e = err as Error;
        const debug = cmd.optsWithGlobals().debug === true;
        io.stderr.write(`corral: ${debug ? (e.stack ?? e.message) : e.message.split('\n')[0]}\n`);
        io.setExitCode(1);
      }
    });
}

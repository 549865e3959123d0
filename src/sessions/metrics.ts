/**
 * The sessions role's Prometheus metrics, as plain samples computed from a
 * `stats()` snapshot: the admin role registers and renders them, so names
 * and help texts live next to the counters they describe.
 */
import type { SessionStats } from './types.js';

export interface MetricSample {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

type PeerExtras = { tombstones?: number; ready?: boolean; node?: string; security?: { authFailures: number; protocolErrors: number } };

/** The role's figures as the admin's `/api/v1/status` shows them (`sessions`): the snapshot less wire counters. */
export type SessionStatus = SessionStats & PeerExtras;

/**
 * The `sessions` object of `/api/v1/status`: counts, bytes, hits/misses,
 * replication and hand-off progress, members and security counters, from
 * one `stats()` snapshot (wire counters, a benchmarking aid, left out).
 */
export function sessionStatus(stats: SessionStats & PeerExtras & { wire?: unknown }): SessionStatus {
  const { wire: _wire, ...rest } = stats;
  return rest;
}

/** Every metric of the role, from one snapshot. Values below zero (unknown) are left out. */
export function sessionMetricSamples(stats: SessionStats & PeerExtras): MetricSample[] {
  const out: MetricSample[] = [];
  const store = { store: stats.store };
  const add = (name: string, type: 'gauge' | 'counter', help: string, value: number | undefined, labels: Record<string, string> = store): void => {
    if (value !== undefined && value >= 0 && Number.isFinite(value)) out.push({ name, help, type, labels, value });
  };
  add('corral_sessions', 'gauge', 'Live sessions held (a peer node counts its own copies).', stats.sessions);
  add('corral_sessions_bytes', 'gauge', 'Bytes of session keys and values held.', stats.bytes);
  add('corral_sessions_tombstones', 'gauge', 'Tombstones of destroyed sessions held (peer).', stats.tombstones);
  add('corral_sessions_hits_total', 'counter', 'Reads that found a session.', stats.hits);
  add('corral_sessions_misses_total', 'counter', 'Reads that found no session.', stats.misses);
  add('corral_sessions_sets_total', 'counter', 'Writes stored.', stats.sets);
  add('corral_sessions_conflicts_total', 'counter', 'Compare-and-set writes that lost to a newer version.', stats.conflicts);
  add('corral_sessions_destroys_total', 'counter', 'Sessions destroyed.', stats.destroys);
  add('corral_sessions_evictions_total', 'counter', 'Sessions evicted by the memory bounds.', stats.evictions);
  add('corral_sessions_expired_total', 'counter', 'Sessions that expired.', stats.expired);
  add('corral_sessions_errors_total', 'counter', 'Requests that failed with an error.', stats.errors);
  if (stats.ready !== undefined) add('corral_sessions_ready', 'gauge', '1 while this peer node serves (0 while it catches up).', stats.ready ? 1 : 0);
  const r = stats.replication;
  if (r !== undefined) {
    add('corral_sessions_replication_inflight', 'gauge', 'Writes waiting for replica acknowledgements.', r.inflight);
    add('corral_sessions_replication_lag_seconds', 'gauge', 'Time from a write\'s apply to its last replica ack (moving average).', r.avgLagMs / 1000);
    add('corral_sessions_replicated_total', 'counter', 'Writes replicated.', r.replicated);
    add('corral_sessions_replication_failures_total', 'counter', 'Writes whose replica failed or did not acknowledge in time (the replica is dropped from the live set).', r.failures);
  }
  const h = stats.handoff;
  if (h !== undefined) {
    add('corral_sessions_handoff_running', 'gauge', '1 while a hand-off after a membership change runs.', h.running ? 1 : 0);
    add('corral_sessions_handoff_pending', 'gauge', 'Records still to send in the running hand-off.', h.pending);
    add('corral_sessions_handoff_last_duration_seconds', 'gauge', 'Duration of the last hand-off.', h.lastDurationMs / 1000);
    add('corral_sessions_handoff_last_records', 'gauge', 'Records sent by the last hand-off.', h.lastRecords);
    add('corral_sessions_handoffs_total', 'counter', 'Hand-offs completed.', h.completed);
  }
  for (const m of stats.members ?? []) {
    add('corral_sessions_member_up', 'gauge', 'Whether this node sees a session member live (1) or not (0).', m.live ? 1 : 0, { ...store, member: m.id });
  }
  if (stats.security !== undefined) {
    add('corral_sessions_auth_failures_total', 'counter', 'Peer handshakes refused (no or wrong cluster.key).', stats.security.authFailures);
    add('corral_sessions_protocol_errors_total', 'counter', 'Connections closed for a malformed, tampered or replayed frame.', stats.security.protocolErrors);
  }
  return out;
}

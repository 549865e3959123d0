/**
 * One status out of several processes' (`workers: N`): each worker counts
 * only the traffic it accepted, so a supervisor serving the admin API sums
 * their snapshots. States, weights and checks are the same in every worker
 * (the supervisor broadcasts them); they are taken from the first snapshot
 * that has the server.
 */
import type { BackendStatus, FrontendStatus, ResponseClasses, ServerStatus, StatusResponse } from './types.js';

function addClasses(a: ResponseClasses, b: ResponseClasses): ResponseClasses {
  return { '1xx': a['1xx'] + b['1xx'], '2xx': a['2xx'] + b['2xx'], '3xx': a['3xx'] + b['3xx'], '4xx': a['4xx'] + b['4xx'], '5xx': a['5xx'] + b['5xx'] };
}

function addNullable(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : a + b;
}

function mergeServer(a: ServerStatus, b: ServerStatus): ServerStatus {
  return {
    ...a,
    active: a.active + b.active,
    inactive: a.inactive + b.inactive,
    total: a.total + b.total,
    connects: addNullable(a.connects, b.connects),
    responses: addClasses(a.responses, b.responses),
    failures: a.failures + b.failures,
    connectFailures: a.connectFailures + b.connectFailures,
    retries: a.retries + b.retries,
    bytesIn: a.bytesIn + b.bytesIn,
    bytesOut: a.bytesOut + b.bytesOut,
    lastChange: a.lastChange > b.lastChange ? a.lastChange : b.lastChange,
  };
}

function mergeFrontend(a: FrontendStatus, b: FrontendStatus): FrontendStatus {
  return {
    ...a,
    current: a.current + b.current,
    connections: a.connections + b.connections,
    requests: addNullable(a.requests, b.requests),
    rejected: a.rejected + b.rejected,
    responses: a.responses === null ? b.responses : b.responses === null ? a.responses : addClasses(a.responses, b.responses),
  };
}

/** Sums `parts` (at least one) into one status; order follows the first part, then servers only others have. */
export function mergeStatuses(parts: readonly StatusResponse[]): StatusResponse {
  const [first, ...rest] = parts;
  if (first === undefined) throw new Error('mergeStatuses: no status to merge');
  const frontends = new Map(first.frontends.map((f) => [f.name, f]));
  const backends = new Map<string, { b: BackendStatus; servers: Map<string, ServerStatus> }>(
    first.backends.map((b) => [b.name, { b, servers: new Map(b.servers.map((s) => [s.name, s])) }]),
  );
  let generation = first.generation;
  let startedAt = first.startedAt;
  for (const p of rest) {
    generation = Math.max(generation, p.generation);
    if (p.startedAt < startedAt) startedAt = p.startedAt;
    for (const f of p.frontends) {
      const had = frontends.get(f.name);
      frontends.set(f.name, had === undefined ? f : mergeFrontend(had, f));
    }
    for (const b of p.backends) {
      const had = backends.get(b.name);
      if (had === undefined) {
        backends.set(b.name, { b, servers: new Map(b.servers.map((s) => [s.name, s])) });
        continue;
      }
      had.b = { ...had.b, queueLength: had.b.queueLength + b.queueLength };
      for (const s of b.servers) {
        const hs = had.servers.get(s.name);
        had.servers.set(s.name, hs === undefined ? s : mergeServer(hs, s));
      }
    }
  }
  return {
    ...first,
    generation,
    startedAt,
    frontends: [...frontends.values()],
    backends: [...backends.values()].map(({ b, servers }) => ({ ...b, servers: [...servers.values()] })),
  };
}

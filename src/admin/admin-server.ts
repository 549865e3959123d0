/**
 * The admin server on `admin.listen`: console, stats page, JSON API,
 * Prometheus metrics, Server-Sent Events and `/healthz`.
 *
 * Request lifecycle (each stage's failure in brackets):
 *
 *   /healthz ─────────────────────────────────────────────► 200 (no credentials: outer balancers probe it)
 *   auth (Authorization header only) [401] → route [404, 405]
 *     GET  → snapshot → answer
 *     POST/PUT → target exists [404] → same origin [403] → JSON body [415, 413, 400]
 *              → valid field [400] → state file written [500] → node changed → logged + event → 200
 *
 * Changes run one at a time, so the state file always matches the order
 * they were confirmed in.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdminConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { AdminNode } from './admin-node.js';
import { assertSafeListen, authenticate, challenge } from './auth.js';
import { CONSOLE_JS, renderConsolePage } from './console-page.js';
import { AdminError } from './errors.js';
import { EventLog } from './events.js';
import type { AdminEventSource } from './events.js';
import { assertSameOrigin, readJsonObject, send, sendError, sendHtml, sendJson } from './http.js';
import type { LatencyHistograms } from './latency.js';
import { maskSecrets } from './mask.js';
import { createMetrics } from './metrics.js';
import type { ExtraSample } from './metrics.js';
import { RuntimeState } from './state-file.js';
import { renderStatsPage } from './stats-page.js';
import { ADMIN_STATES, MAX_WEIGHT } from './types.js';
import type { AdminEvent, AdminState, ChangeResponse, RecentEventsResponse, RecentLogsResponse } from './types.js';

/** Recent log lines, when the node keeps them (`LogRing`). */
export interface RecentLogs {
  recent(limit?: number): unknown[];
}

export interface AdminServerOptions {
  readonly config: AdminConfig;
  readonly node: AdminNode;
  readonly log: Logger;
  /** Events from outside the admin (health, roles); the admin adds its own actions and reloads. */
  readonly events: AdminEventSource;
  /** Where runtime changes persist; without it they last until the process ends. */
  readonly stateFile?: string;
  /** The histograms the proxy fills (for `corral_server_response_seconds`). */
  readonly latency?: LatencyHistograms;
  readonly logs?: RecentLogs;
  /** SSE heartbeat comment interval (default 15 s). */
  readonly heartbeatMs?: number;
  /** Events kept for replay (default 1000). */
  readonly eventBuffer?: number;
  /** Concurrent event streams (default 64). */
  readonly maxEventStreams?: number;
  /** Include Node.js process metrics (default true). */
  readonly processMetrics?: boolean;
  /** Metrics of other roles (e.g. sessions), read at each scrape. */
  readonly extraMetrics?: () => readonly ExtraSample[];
  /** Fields other roles add to `/api/v1/status` (e.g. `{ sessions }`), read at each request. */
  readonly extraStatus?: () => Readonly<Record<string, unknown>>;
  /** Default `/stats` refresh in seconds (default 5). */
  readonly statsRefresh?: number;
}

export interface AdminServer {
  readonly address: AddressInfo;
  /** `http://host:port` of the admin server. */
  readonly url: string;
  readonly events: EventLog;
  readonly state: RuntimeState;
  close(): Promise<void>;
}

const SERVER_PATH = /^\/api\/v1\/backends\/([^/]+)\/servers\/([^/]+)\/(state|weight)$/;

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AdminError('CORRAL_ERR_ADMIN_NOT_FOUND', `malformed path segment "${segment}"`);
  }
}

function parseLimit(url: URL, max: number): number {
  const raw = url.searchParams.get('limit');
  const n = raw === null ? max : Number(raw);
  return Number.isInteger(n) && n > 0 ? Math.min(n, max) : max;
}

function sseFrame(e: AdminEvent): string {
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
}

/** Validates `{ "state": "ready" | "drain" | "maint" }`. */
function parseStateBody(body: Record<string, unknown>): AdminState {
  for (const k of Object.keys(body)) if (k !== 'state') throw new AdminError('CORRAL_ERR_ADMIN_INVALID', `unknown field "${k}"`, { field: k });
  const state = body.state;
  if (typeof state !== 'string' || !ADMIN_STATES.includes(state as AdminState)) {
    throw new AdminError('CORRAL_ERR_ADMIN_INVALID', `"state" must be one of ${ADMIN_STATES.join(', ')}, got ${JSON.stringify(state) ?? 'nothing'}`, { field: 'state' });
  }
  return state as AdminState;
}

/** Validates `{ "weight": 0..256 }` (an integer). */
function parseWeightBody(body: Record<string, unknown>): number {
  for (const k of Object.keys(body)) if (k !== 'weight') throw new AdminError('CORRAL_ERR_ADMIN_INVALID', `unknown field "${k}"`, { field: k });
  const w = body.weight;
  if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > MAX_WEIGHT) {
    throw new AdminError('CORRAL_ERR_ADMIN_INVALID', `"weight" must be an integer from 0 to ${MAX_WEIGHT}, got ${JSON.stringify(w) ?? 'nothing'}`, { field: 'weight' });
  }
  return w;
}

/**
 * Starts the admin server. Refuses (`CORRAL_ERR_ADMIN_AUTH_REQUIRED`) to
 * listen beyond loopback without credentials. Loads and applies the state
 * file, and re-applies it after every reload.
 *
 * @example
 * const admin = await startAdmin({ config: cfg.admin, node: nodeAdapter(node), log, events: noEvents, stateFile: 'corral.state.json' });
 * console.log(admin.url); // http://127.0.0.1:9010
 */
export async function startAdmin(opts: AdminServerOptions): Promise<AdminServer> {
  assertSafeListen(opts.config);
  const { node, log, config } = opts;
  const events = new EventLog(opts.eventBuffer ?? 1000);
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const maxStreams = opts.maxEventStreams ?? 64;
  const metrics = createMetrics({
    node,
    ...(opts.latency !== undefined ? { latency: opts.latency } : {}),
    ...(opts.extraMetrics !== undefined ? { extra: opts.extraMetrics } : {}),
    processMetrics: opts.processMetrics ?? true,
  });

  // Runtime changes from the state file, now and after every reload.
  const state = await RuntimeState.load(opts.stateFile, log);
  const reapply = (): number => {
    const r = state.applyTo(node, (e, action, from, to) =>
      events.publish({ type: 'admin-action', actor: 'state-file', action, backend: e.backend, server: e.server, from, to }),
    );
    if (r.dropped.length > 0) void state.save().catch((err: Error) => log.warn({ file: state.file, err: err.message }, 'cannot rewrite the admin state file'));
    return r.applied;
  };
  const applied = reapply();
  if (applied > 0) log.info({ file: state.file, applied }, `re-applied ${applied} runtime change(s) from the state file`);
  const offReload = node.onReload((generation) => {
    const reapplied = reapply();
    events.publish({ type: 'reload', generation, reapplied });
    if (reapplied > 0) log.info({ generation, reapplied, file: state.file }, `re-applied ${reapplied} runtime change(s) after the reload`);
  });
  const offSource = opts.events.subscribe((e) => events.publish(e));

  let changing: Promise<void> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = changing.then(fn, fn);
    changing = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };

  const streams = new Set<ServerResponse>();

  const change = async (req: IncomingMessage, res: ServerResponse, actor: string, backend: string, server: string, kind: 'state' | 'weight'): Promise<void> => {
    await node.server(backend, server); // 404 before anything else
    assertSameOrigin(req);
    const body = await readJsonObject(req);
    const value = kind === 'state' ? parseStateBody(body) : parseWeightBody(body);
    await serialized(async () => {
      const before = await node.server(backend, server);
      const configWeight = node.configWeight(backend, server);
      await state.update(backend, server, kind === 'state' ? { admin: value as AdminState, configWeight } : { weight: value as number, configWeight }, actor);
      const ch = kind === 'state' ? node.setServerState(backend, server, value as AdminState) : node.setServerWeight(backend, server, value as number);
      const after = await node.server(backend, server);
      const remote = req.socket.remoteAddress;
      if (ch.changed) {
        log.info({ actor, remote, backend, server, action: kind, from: ch.from, to: ch.to }, `admin: ${actor} set ${backend}/${server} ${kind} ${String(ch.to)} (was ${String(ch.from)})`);
        events.publish({ type: 'admin-action', actor, action: kind, backend, server, from: String(ch.from), to: String(ch.to) });
        if (before.state !== after.state) {
          events.publish({
            type: 'server-state',
            backend,
            server,
            from: before.state,
            to: after.state,
            source: 'admin',
            reason: `ADMIN_${String(ch.to).toUpperCase()}`,
            message: `server ${backend}/${server} is ${after.state.toUpperCase()}: set by ${actor}`,
            checkDurationMs: null,
          });
        }
        if (kind === 'weight') events.publish({ type: 'server-weight', backend, server, from: ch.from as number, to: ch.to as number, cause: 'admin' });
      } else {
        log.info({ actor, remote, backend, server, action: kind, to: ch.to }, `admin: ${actor} set ${backend}/${server} ${kind} ${String(ch.to)} (unchanged)`);
      }
      const answer: ChangeResponse = { backend, server, changed: ch.changed, from: ch.from, to: ch.to, previousState: before.state, actor, status: after };
      sendJson(res, 200, answer);
    });
  };

  const eventStream = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    if (streams.size >= maxStreams) throw new AdminError('CORRAL_ERR_ADMIN_BUSY', `too many event streams (${maxStreams})`);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    streams.add(res);
    res.write(`retry: 3000\n: corral events from ${node.name}\n\n`);
    const headerId = req.headers['last-event-id'];
    const last = (Array.isArray(headerId) ? headerId[0] : headerId) ?? url.searchParams.get('since') ?? '';
    // Replay and subscribe in one synchronous step: nothing published in between is lost or doubled.
    if (last !== '') {
      const r = events.replay(last);
      if (r.gap) res.write(`: events after ${last.replace(/[\r\n]/g, '')} were not all kept; replaying the ${r.events.length} still buffered\n\n`);
      for (const e of r.events) res.write(sseFrame(e));
    }
    const off = events.subscribe((e) => {
      // A client that stopped reading is dropped rather than buffered without bound.
      if (res.writableLength > 1024 * 1024) res.destroy();
      else res.write(sseFrame(e));
    });
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
    heartbeat.unref();
    res.on('close', () => {
      off();
      clearInterval(heartbeat);
      streams.delete(res);
    });
  };

  const get = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    switch (url.pathname) {
      case '/':
        sendHtml(res, renderConsolePage(await node.status()));
        return true;
      case '/console.js':
        send(res, 200, 'text/javascript; charset=utf-8', CONSOLE_JS);
        return true;
      case '/stats': {
        const r = Number(url.searchParams.get('refresh') ?? opts.statsRefresh ?? 5);
        sendHtml(res, renderStatsPage(await node.status(), { refresh: Number.isFinite(r) && r >= 0 ? Math.min(r, 3600) : 5 }));
        return true;
      }
      case '/metrics':
        send(res, 200, metrics.contentType, await metrics.scrape());
        return true;
      case '/api/v1/status':
        sendJson(res, 200, { ...(await node.status()), ...opts.extraStatus?.() });
        return true;
      case '/api/v1/config':
        sendJson(res, 200, maskSecrets(node.config()));
        return true;
      case '/api/v1/events':
        eventStream(req, res, url);
        return true;
      case '/api/v1/events/recent': {
        const body: RecentEventsResponse = { events: events.recent(parseLimit(url, events.capacity)) };
        sendJson(res, 200, body);
        return true;
      }
      case '/api/v1/logs/recent': {
        const body: RecentLogsResponse = opts.logs === undefined ? { available: false, lines: [] } : { available: true, lines: opts.logs.recent(parseLimit(url, 10_000)) };
        sendJson(res, 200, body);
        return true;
      }
      default:
        return false;
    }
  };

  const GET_PATHS = new Set(['/', '/console.js', '/stats', '/metrics', '/api/v1/status', '/api/v1/config', '/api/v1/events', '/api/v1/events/recent', '/api/v1/logs/recent']);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const method = req.method ?? 'GET';
    if (url.pathname === '/healthz') {
      if (method !== 'GET' && method !== 'HEAD') throw new AdminError('CORRAL_ERR_ADMIN_METHOD', `${method} not allowed on /healthz`);
      send(res, 200, 'text/plain; charset=utf-8', `${node.role() === 'primary' ? 'ACTIVE' : 'STANDBY'} ${node.name}\n`);
      return;
    }
    const auth = authenticate(config.auth, req.headers.authorization);
    if (!auth.ok) {
      req.resume();
      log.warn({ remote: req.socket.remoteAddress, method, path: url.pathname, reason: auth.reason }, `admin: refused ${method} ${url.pathname}: ${auth.reason}`);
      sendError(res, new AdminError('CORRAL_ERR_ADMIN_UNAUTHORIZED', 'authentication required: send credentials in the Authorization header'), {
        'www-authenticate': challenge(config.auth),
      });
      return;
    }
    const m = SERVER_PATH.exec(url.pathname);
    if (m !== null) {
      const kind = m[3] as 'state' | 'weight';
      const allowed = kind === 'state' ? 'POST' : 'PUT';
      if (method !== allowed) {
        req.resume();
        sendError(res, new AdminError('CORRAL_ERR_ADMIN_METHOD', `${method} not allowed on ${url.pathname}; use ${allowed}`), { allow: allowed });
        return;
      }
      await change(req, res, auth.actor, decode(m[1] as string), decode(m[2] as string), kind);
      return;
    }
    if (GET_PATHS.has(url.pathname)) {
      if (method !== 'GET' && method !== 'HEAD') {
        req.resume();
        sendError(res, new AdminError('CORRAL_ERR_ADMIN_METHOD', `${method} not allowed on ${url.pathname}`), { allow: 'GET, HEAD' });
        return;
      }
      req.resume();
      await get(req, res, url);
      return;
    }
    req.resume();
    throw new AdminError('CORRAL_ERR_ADMIN_NOT_FOUND', `no such path ${url.pathname}`);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof AdminError) {
        // A body we did not read to the end cannot leave the connection reusable.
        const extra: Record<string, string> = req.complete ? {} : { connection: 'close' };
        if (err.code === 'CORRAL_ERR_ADMIN_METHOD' && req.url?.startsWith('/healthz') === true) extra.allow = 'GET, HEAD';
        sendError(res, err, extra);
        return;
      }
      log.error({ err: (err as Error).message, stack: (err as Error).stack, path: req.url }, 'admin: request failed');
      sendJson(res, 500, { error: { code: 'CORRAL_ERR_ADMIN_INTERNAL', message: 'internal error (logged)' } });
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: config.listen.host, port: config.listen.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    offReload();
    offSource();
    const where = `${config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host}:${config.listen.port}`;
    throw new AdminError('CORRAL_ERR_ADMIN_LISTEN', `admin server cannot listen on ${where}: ${(err as Error).message}`, { cause: err });
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log.info({ address: `${host}:${address.port}`, authScheme: config.auth === undefined ? 'none (loopback)' : 'token' in config.auth ? 'bearer' : 'basic', stateFile: state.file }, 'admin listening');

  return {
    address,
    url,
    events,
    state,
    async close() {
      offReload();
      offSource();
      for (const s of streams) s.end();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

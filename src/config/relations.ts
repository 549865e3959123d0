import { isIPv6 } from 'node:net';
import { formatAddress, isLoopbackHost } from './address.js';
import { HEALTH_TYPES } from './schema.js';
import { didYouMean } from './suggest.js';
import type { Address } from './types.js';
import { readAddress, readBool, readEnum, readName, readTrack, tryRead } from './values.js';
import { formatPath, type ConfigPath } from './positions.js';

/** A problem before it has a position: where in the config, and what. */
export interface Finding {
  readonly path: ConfigPath;
  /** Point at the key rather than its value (unknown keys). */
  readonly at?: 'key';
  /** Shown after `path: `, unless `bare` (the message names its keys itself). */
  readonly message: string;
  readonly bare?: boolean;
}

type Obj = Readonly<Record<string, unknown>>;

const isObj = (value: unknown): value is Obj =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const field = (value: unknown, key: string): unknown => (isObj(value) ? value[key] : undefined);
const items = (value: unknown): readonly unknown[] => (Array.isArray(value) ? value : []);
const nameOf = (value: unknown): string | undefined => tryRead(readName, field(value, 'name'));

const HTTP_ONLY = ['method', 'path', 'host', 'expectStatus', 'expectBody'] as const;
const SEND_EXPECT_ONLY = ['send', 'expect'] as const;
const HASH_ON = ['header', 'cookie', 'path', 'query'] as const;

/**
 * The rules that relate several values: references between sections,
 * duplicates, "exactly one of", and requirements that depend on another key.
 *
 * Works on the raw document (after `${ENV}` substitution) and reads each value
 * tolerantly, skipping values that are themselves invalid (the schema reports
 * those), so it runs whatever else is wrong with the file.
 *
 * @param lineOf where a path is written, for "first defined at line N".
 */
export function checkRelations(root: unknown, lineOf: (path: ConfigPath) => number): Finding[] {
  const out: Finding[] = [];
  if (!isObj(root)) return out;
  const frontends = items(root.frontends);
  const backends = items(root.backends);

  duplicateNames('frontend', frontends, ['frontends'], lineOf, out);
  duplicateNames('backend', backends, ['backends'], lineOf, out);

  // First definition wins for lookups; a duplicate is reported above.
  const serversByBackend = new Map<string, Set<string>>();
  const usage = backendUsage(frontends);
  backends.forEach((backend, i) => {
    const path = ['backends', i];
    const servers = field(backend, 'servers');
    duplicateNames('server', items(servers), [...path, 'servers'], lineOf, out);
    const name = nameOf(backend);
    const first = name !== undefined && !serversByBackend.has(name);
    if (first) {
      const names = items(servers).map(nameOf).filter((n): n is string => n !== undefined);
      serversByBackend.set(name, new Set(names));
    }
    checkBackend(backend, path, first ? usage.get(name) : undefined, out);
  });

  frontends.forEach((frontend, i) => checkFrontend(frontend, ['frontends', i], serversByBackend, out));
  checkTracks(backends, serversByBackend, out);
  checkListens(root, lineOf, out);
  checkAdmin(root.admin, out);
  checkSessions(root.sessions, out);
  checkCluster(root.cluster, out);
  return out;
}

function duplicateNames(
  kind: string,
  list: readonly unknown[],
  path: ConfigPath,
  lineOf: (path: ConfigPath) => number,
  out: Finding[],
): void {
  const first = new Map<string, number>();
  list.forEach((entry, i) => {
    const name = nameOf(entry);
    if (name === undefined) return;
    const seen = first.get(name);
    if (seen === undefined) {
      first.set(name, i);
      return;
    }
    const line = lineOf([...path, seen, 'name']);
    out.push({ path: [...path, i, 'name'], message: `duplicate ${kind} name "${name}" (first defined at line ${line})` });
  });
}

function checkFrontend(
  frontend: unknown,
  path: ConfigPath,
  backends: ReadonlyMap<string, unknown>,
  out: Finding[],
): void {
  if (!isObj(frontend)) return;
  const refer = (value: unknown, at: ConfigPath): void => {
    const name = tryRead(readName, value);
    if (name === undefined || backends.has(name)) return;
    const hint = backends.size === 0 ? '; no backends are defined' : didYouMean(name, backends.keys());
    out.push({ path: at, message: `no backend named "${name}"${hint}` });
  };
  refer(frontend.backend, [...path, 'backend']);
  items(frontend.routes).forEach((route, j) => refer(field(route, 'backend'), [...path, 'routes', j, 'backend']));

  const routes = frontend.routes;
  const label = nameOf(frontend) === undefined ? 'a frontend' : `frontend "${nameOf(frontend)}"`;
  if (modeOf(frontend) === 'tcp') {
    // TCP mode forwards bytes: one backend, nothing read from requests.
    if (frontend.backend === undefined) out.push({ path, message: `${label} is mode tcp and needs a backend` });
    if (present(routes)) {
      out.push({ path: [...path, 'routes'], at: 'key', message: 'has no effect in mode tcp (there are no requests to route; every connection goes to backend)' });
    }
    if (present(frontend.trustedProxies)) {
      out.push({
        path: [...path, 'trustedProxies'],
        at: 'key',
        message: 'has no effect in mode tcp (there is no X-Forwarded-For; an outer balancer passes the client address with acceptProxy)',
      });
    }
    return;
  }
  if (frontend.backend === undefined && !present(routes)) {
    out.push({ path, message: `${label} needs a backend, routes, or both` });
  }
}

/** Set to something other than an empty list. */
const present = (value: unknown): boolean => value !== undefined && !(Array.isArray(value) && value.length === 0);

/** A frontend's mode; undefined when the value is invalid (the schema reports it). */
const modeOf = (frontend: unknown): 'http' | 'tcp' | undefined => {
  const mode = field(frontend, 'mode');
  return mode === undefined ? 'http' : tryRead(readEnum(['http', 'tcp'] as const), mode);
};

/** The frontends that send traffic to a backend, by mode. */
interface Usage {
  readonly tcp: string[];
  readonly http: string[];
}

/**
 * Which frontends use each backend name: a tcp frontend through `backend`
 * (its routes do not apply), an http frontend through `backend` and routes.
 */
function backendUsage(frontends: readonly unknown[]): Map<string, Usage> {
  const usage = new Map<string, Usage>();
  const add = (backend: unknown, mode: 'http' | 'tcp', frontend: string): void => {
    const name = tryRead(readName, backend);
    if (name === undefined) return;
    let u = usage.get(name);
    if (u === undefined) usage.set(name, (u = { tcp: [], http: [] }));
    if (!u[mode].includes(frontend)) u[mode].push(frontend);
  };
  frontends.forEach((frontend, i) => {
    const mode = modeOf(frontend);
    if (mode === undefined) return;
    const label = nameOf(frontend) ?? `frontends[${i}]`;
    add(field(frontend, 'backend'), mode, label);
    if (mode === 'http') items(field(frontend, 'routes')).forEach((route) => add(field(route, 'backend'), mode, label));
  });
  return usage;
}

/** `tcp frontend "a"` or `tcp frontends "a", "b"`. */
function frontendList(mode: string, names: readonly string[]): string {
  return `${mode} frontend${names.length === 1 ? '' : 's'} ${names.map((n) => `"${n}"`).join(', ')}`;
}

function checkBackend(backend: unknown, path: ConfigPath, usage: Usage | undefined, out: Finding[]): void {
  if (!isObj(backend)) return;
  const label = nameOf(backend) === undefined ? 'backend' : `backend "${nameOf(backend)}"`;
  const tcp = usage !== undefined && usage.tcp.length > 0;

  if (tcp) checkTcpBackend(backend, path, label, (usage as Usage).tcp, out);
  else if (backend.balance === 'hash' && backend.hashOn === undefined) {
    out.push({ path: [...path, 'balance'], message: 'hash needs hashOn (one of header, cookie, path, query)' });
  }
  // `sendProxy` on a backend that only http frontends use is accepted and has no effect (the
  // public example in ARCHITECTURE.md puts it there); HTTP passes the client address with forwardFor.
  const hashOn = backend.hashOn;
  if (isObj(hashOn)) {
    const set = HASH_ON.filter((k) => hashOn[k] !== undefined && !(k === 'path' && tryRead(readBool, hashOn[k]) === false));
    if (set.length !== 1) {
      const found = set.length === 0 ? 'none is set' : `found ${set.join(', ')}`;
      out.push({ path: [...path, 'hashOn'], message: `set exactly one of header, cookie, path: true, query (${found})` });
    }
  }

  const sticky = backend.sticky;
  if (isObj(sticky) && sticky.cookie === undefined && tryRead(readBool, sticky.source) !== true) {
    out.push({ path: [...path, 'sticky'], message: 'needs cookie or source: true' });
  }

  const servers = backend.servers;
  if (servers === undefined) out.push({ path, message: `${label} has no servers` });
  else if (Array.isArray(servers) && servers.length === 0) {
    out.push({ path: [...path, 'servers'], message: `${label} has no servers` });
  }

  checkHealth(backend.health, [...path, 'health'], out);
}

/** A backend that a mode tcp frontend sends connections to: nothing that needs an HTTP request. */
function checkTcpBackend(backend: Obj, path: ConfigPath, label: string, users: readonly string[], out: Finding[]): void {
  const why = `${label} is used by ${frontendList('tcp', users)}`;
  if (backend.balance === 'hash') {
    out.push({ path: [...path, 'balance'], message: `hash needs HTTP requests to hash, but ${why} (use source to hash the client address)` });
  }
  // The key is named by the path the message is printed after: `backends[1].hashOn: applies to ...`.
  const httpOnly = (key: ConfigPath, hint = ''): void => {
    out.push({ path: [...path, ...key], at: 'key', message: `applies to HTTP mode only, but ${why}${hint}` });
  };
  if (backend.hashOn !== undefined) httpOnly(['hashOn']);
  const sticky = backend.sticky;
  if (isObj(sticky) && sticky.cookie !== undefined) httpOnly(['sticky', 'cookie'], ' (use sticky.source)');
  // `forwardFor: false` is the default and asks for nothing.
  if (backend.forwardFor !== undefined && tryRead(readBool, backend.forwardFor) !== false) {
    httpOnly(['forwardFor'], ' (use sendProxy to pass the client address)');
  }
  if (backend.serverHeader !== undefined) httpOnly(['serverHeader']);
}

function checkHealth(health: unknown, path: ConfigPath, out: Finding[]): void {
  if (!isObj(health)) return;
  const type = health.type === undefined ? 'tcp' : tryRead(readEnum(HEALTH_TYPES), health.type);
  if (type === undefined) return;
  const only = (keys: readonly string[], wanted: string): void => {
    if (type === wanted) return;
    for (const key of keys) {
      if (health[key] !== undefined) {
        out.push({ path: [...path, key], at: 'key', message: `applies to type ${wanted} only (type is ${type})` });
      }
    }
  };
  only(HTTP_ONLY, 'http');
  only(SEND_EXPECT_ONLY, 'send-expect');
  if (type === 'send-expect' && health.expect === undefined) {
    out.push({ path, message: 'type send-expect needs expect (what the server must answer)' });
  }
  const agent = health.agent;
  if (isObj(agent) && agent.port === undefined && agent.command === undefined) {
    out.push({ path: [...path, 'agent'], message: 'needs port or command' });
  }
}

function checkTracks(backends: readonly unknown[], servers: ReadonlyMap<string, ReadonlySet<string>>, out: Finding[]): void {
  /** `backend/server` → `backend/server` it tracks, for well-formed references only. */
  const edges = new Map<string, string>();
  const where = new Map<string, ConfigPath>();
  backends.forEach((backend, i) => {
    const backendName = nameOf(backend);
    items(field(backend, 'servers')).forEach((server, j) => {
      const path = ['backends', i, 'servers', j, 'track'];
      const target = tryRead(readTrack, field(server, 'track'));
      if (target === undefined) return;
      const known = servers.get(target.backend);
      if (known === undefined) {
        const hint = didYouMean(target.backend, servers.keys());
        out.push({ path, message: `no backend named "${target.backend}"${hint}` });
        return;
      }
      if (!known.has(target.server)) {
        const hint = didYouMean(target.server, known);
        out.push({ path, message: `backend "${target.backend}" has no server named "${target.server}"${hint}` });
        return;
      }
      const serverName = nameOf(server);
      if (backendName === undefined || serverName === undefined) return;
      const self = `${backendName}/${serverName}`;
      const to = `${target.backend}/${target.server}`;
      if (self === to) {
        out.push({ path, message: 'a server cannot track itself' });
        return;
      }
      if (!edges.has(self)) {
        edges.set(self, to);
        where.set(self, path);
      }
    });
  });

  // A loop is reported once, at its member written first.
  const order = [...edges.keys()];
  for (const start of order) {
    const chain = [start];
    let next = edges.get(start);
    while (next !== undefined && next !== start && !chain.includes(next)) {
      chain.push(next);
      next = edges.get(next);
    }
    if (next !== start) continue;
    const firstMember = order.find((key) => chain.includes(key));
    const path = where.get(start);
    if (firstMember === start && path !== undefined) {
      out.push({ path, message: `track loop: ${[...chain, start].join(' → ')}` });
    }
  }
}

interface Listener {
  readonly path: ConfigPath;
  readonly address: Address;
}

function checkListens(root: Obj, lineOf: (path: ConfigPath) => number, out: Finding[]): void {
  const listeners: Listener[] = [];
  const add = (value: unknown, path: ConfigPath): void => {
    const address = tryRead(readAddress, value);
    if (address !== undefined) listeners.push({ path, address });
  };
  items(root.frontends).forEach((frontend, i) => add(field(frontend, 'listen'), ['frontends', i, 'listen']));
  add(field(root.admin, 'listen'), ['admin', 'listen']);
  add(field(root.sessions, 'listen'), ['sessions', 'listen']);
  add(field(root.cluster, 'listen'), ['cluster', 'listen']);

  listeners.forEach((later, j) => {
    const earlier = listeners.slice(0, j).find((l) => overlaps(l.address, later.address));
    if (earlier === undefined) return;
    out.push({
      path: later.path,
      message: `${formatAddress(later.address)} is already used by ${formatPath(earlier.path)} (line ${lineOf(earlier.path)})`,
    });
  });
}

/** Whether two listeners would compete for the same socket. Port 0 picks a free port, so never. */
function overlaps(a: Address, b: Address): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  if (a.host.toLowerCase() === b.host.toLowerCase()) return true;
  // `::` is dual-stack in Node: it takes the port on IPv4 too.
  if (a.host === '::' || b.host === '::') return true;
  if (a.host === '0.0.0.0') return !isIPv6(b.host);
  if (b.host === '0.0.0.0') return !isIPv6(a.host);
  return false;
}

function checkAdmin(admin: unknown, out: Finding[]): void {
  if (!isObj(admin)) return;
  const auth = admin.auth;
  if (isObj(auth)) {
    const hasToken = auth.token !== undefined;
    const hasUser = auth.user !== undefined || auth.password !== undefined;
    if (hasToken && hasUser) {
      out.push({ path: ['admin', 'auth'], message: 'set either token, or user and password, not both' });
    } else if (!hasToken && (auth.user === undefined || auth.password === undefined)) {
      out.push({ path: ['admin', 'auth'], message: 'needs user and password, or token' });
    }
  }
  const listen = tryRead(readAddress, admin.listen);
  if (listen !== undefined && auth === undefined && !isLoopbackHost(listen.host)) {
    out.push({ path: ['admin'], bare: true, message: 'admin.auth is required unless admin.listen is a loopback address' });
  }
}

function checkSessions(sessions: unknown, out: Finding[]): void {
  if (!isObj(sessions) || sessions.store !== 'peer') return;
  if (sessions.listen === undefined) {
    out.push({ path: ['sessions'], bare: true, message: 'sessions.listen is required when sessions.store is peer' });
  }
  const peers = sessions.peers;
  if (peers === undefined || (Array.isArray(peers) && peers.length === 0)) {
    out.push({
      path: peers === undefined ? ['sessions'] : ['sessions', 'peers'],
      bare: true,
      message: 'sessions.peers is required when sessions.store is peer (every state-service address)',
    });
  }
}

function checkCluster(cluster: unknown, out: Finding[]): void {
  if (!isObj(cluster)) return;
  if (cluster.coordination === 'postgres' && cluster.postgres === undefined) {
    out.push({ path: ['cluster'], bare: true, message: 'cluster.postgres.url is required when cluster.coordination is postgres' });
  }
  if (items(cluster.peers).length > 0 && cluster.key === undefined) {
    out.push({ path: ['cluster'], bare: true, message: 'cluster.key is required when cluster.peers is set' });
  }
}

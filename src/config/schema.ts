import { hostname } from 'node:os';
import { z } from 'zod';
import { parseDuration } from './duration.js';
import type {
  AdminConfig,
  BackendConfig,
  CorralConfig,
  FrontendConfig,
  HashOn,
  HealthConfig,
  ServerConfig,
  StickyConfig,
} from './types.js';
import {
  Invalid,
  readAddress,
  readBool,
  readCidr,
  readDuration,
  readEnum,
  readExpectStatus,
  readFile,
  readHost,
  readHostPattern,
  readInt,
  readInterface,
  readName,
  readPath,
  readPort,
  readSecret,
  readText,
  readToken,
  readTrack,
  readUrl,
  readWorkers,
  type Read,
} from './values.js';

/**
 * The zod schema of a config file: shape, per-value validation and
 * normalization (defaults, units, paths). It checks each value on its own;
 * rules that relate several values (references, duplicates, "one of") live in
 * `relations.ts`, which always runs, so that one bad value never hides
 * another problem. Where such a rule is broken the transforms below still
 * build a well-typed value; the loader never returns it, because the broken
 * rule is reported.
 */

export const BALANCES = ['roundrobin', 'leastconn', 'source', 'hash', 'lblc', 'random', 'first'] as const;
export const HEALTH_TYPES = ['tcp', 'http', 'send-expect', 'none'] as const;

/** Wraps a value reader as a zod schema; a missing value is reported as a missing key. */
function leaf<T>(read: Read<T>) {
  return z.unknown().transform((value, ctx): T => {
    if (value === undefined) {
      ctx.issues.push({ code: 'invalid_type', expected: 'nonoptional', input: value });
      return z.NEVER;
    }
    const result = read(value);
    if (result instanceof Invalid) {
      ctx.issues.push({ code: 'custom', message: result.message, input: value });
      return z.NEVER;
    }
    return result;
  });
}

const ms = parseDuration;
const text = leaf(readText);
const name = leaf(readName);
const bool = leaf(readBool);
const duration = leaf(readDuration);
const address = leaf(readAddress);

export function configSchema(baseDir: string) {
  const existingFile = leaf(readFile(baseDir, true));
  const anyFile = leaf(readFile(baseDir, false));
  const certPair = z.strictObject({ cert: existingFile, key: existingFile });

  const tls = z
    .strictObject({ cert: existingFile, key: existingFile, certs: z.array(certPair).default(() => []) })
    .transform((t): NonNullable<FrontendConfig['tls']> => t);

  const route = z.strictObject({
    host: leaf(readHostPattern).optional(),
    pathPrefix: leaf(readPath).optional(),
    backend: name,
  });

  const frontend = z
    .strictObject({
      name,
      listen: address,
      mode: leaf(readEnum(['http', 'tcp'])).default('http'),
      tls: tls.optional(),
      routes: z.array(route).default(() => []),
      backend: name.optional(),
      trustedProxies: z.array(leaf(readCidr)).default(() => []),
      acceptProxy: bool.default(false),
      maxConn: leaf(readInt(1)).default(10_000),
      timeouts: z
        .strictObject({ headers: duration.default(ms('10s')), idle: duration.default(ms('60s')) })
        .prefault({}),
    })
    .transform((f): FrontendConfig => f);

  const agent = z.strictObject({
    port: leaf(readPort).optional(),
    interval: duration.default(ms('5s')),
    command: text.optional(),
  });

  const health = z
    .strictObject({
      type: leaf(readEnum(HEALTH_TYPES)).default('tcp'),
      method: leaf(readToken).default('GET'),
      path: leaf(readPath).default('/'),
      host: text.optional(),
      expectStatus: leaf(readExpectStatus).default((): [number, number][] => [[200, 399]]),
      expectBody: text.optional(),
      send: text.optional(),
      expect: text.optional(),
      interval: duration.default(ms('2s')),
      timeout: duration.default(ms('1s')),
      rise: leaf(readInt(1)).default(2),
      fall: leaf(readInt(1)).default(3),
      warmup: duration.default(0),
      slowStart: duration.default(0),
      agent: agent.optional(),
    })
    .transform((h): HealthConfig => h);

  const outlier = z.strictObject({
    consecutive5xx: leaf(readInt(1)).default(5),
    consecutiveConnectFailures: leaf(readInt(1)).default(5),
    ejectFor: duration.default(ms('30s')),
    maxEjectFor: duration.default(ms('300s')),
    maxEjectedPercent: leaf(readInt(0, 100)).default(10),
  });

  const hashOn = z
    .strictObject({
      header: leaf(readToken).optional(),
      cookie: leaf(readToken).optional(),
      path: bool.optional(),
      query: text.optional(),
    })
    // Exactly one member is set (relations.ts reports otherwise).
    .transform((h): HashOn | undefined => {
      if (h.header !== undefined) return { kind: 'header', name: h.header };
      if (h.cookie !== undefined) return { kind: 'cookie', name: h.cookie };
      if (h.query !== undefined) return { kind: 'query', name: h.query };
      return h.path === true ? { kind: 'path' } : undefined;
    });

  const sticky = z
    .strictObject({
      cookie: leaf(readToken).optional(),
      source: bool.default(false),
      timeout: duration.default(ms('30m')),
    })
    .transform((s): StickyConfig => s);

  const server = z
    .strictObject({
      name,
      address,
      weight: leaf(readInt(0, 256)).default(1),
      backup: bool.default(false),
      track: leaf(readTrack).optional(),
      tls: z
        .union([
          bool,
          z.strictObject({
            verify: bool.default(true),
            ca: existingFile.optional(),
            servername: leaf(readHost).optional(),
          }),
        ])
        .default(false),
      check: z.strictObject({ port: leaf(readPort).optional(), host: leaf(readHost).optional() }).optional(),
      maxConn: leaf(readInt(0)).optional(),
    })
    .transform((s): ServerConfig => {
      const { tls, ...rest } = s;
      if (typeof tls === 'boolean') return { ...rest, tls, tlsVerify: true };
      return { ...rest, tls: true, tlsVerify: tls.verify, tlsCa: tls.ca, tlsServername: tls.servername };
    });

  const backend = z
    .strictObject({
      name,
      balance: leaf(readEnum(BALANCES)).default('roundrobin'),
      hashOn: hashOn.optional(),
      hashSourcePort: bool.default(false),
      lblcExpire: duration.default(ms('6m')),
      sticky: sticky.optional(),
      allBackups: bool.default(false),
      sendProxy: leaf(readEnum(['v1', 'v2'])).optional(),
      forwardFor: bool.default(false),
      serverHeader: leaf(readToken).optional(),
      retries: leaf(readInt(0, 100)).default(3),
      maxConn: leaf(readInt(0)).default(0),
      timeouts: z
        .strictObject({
          connect: duration.default(ms('5s')),
          server: duration.default(ms('50s')),
          client: duration.default(ms('50s')),
          queue: duration.default(ms('5s')),
        })
        .prefault({}),
      // Absent: no active checks. Present without `type`: TCP connect checks.
      health: health.prefault({ type: 'none' }),
      outlier: outlier.optional(),
      servers: z.array(server).default(() => []),
    })
    .transform((b): BackendConfig => b);

  const admin = z
    .strictObject({
      listen: address,
      auth: z
        .strictObject({ user: text.optional(), password: leaf(readSecret).optional(), token: leaf(readSecret).optional() })
        .optional(),
    })
    // Either token, or user and password (relations.ts reports otherwise).
    .transform(({ listen, auth }): AdminConfig => {
      if (auth?.token !== undefined) return { listen, auth: { token: auth.token } };
      if (auth?.user !== undefined && auth.password !== undefined) {
        return { listen, auth: { user: auth.user, password: auth.password } };
      }
      return { listen };
    });

  const sessions = z.strictObject({
    store: leaf(readEnum(['memory', 'peer', 'redis'])).default('memory'),
    replicas: leaf(readInt(1)).default(2),
    listen: address.optional(),
    peers: z.array(address).default(() => []),
    redis: z
      .strictObject({
        url: leaf(readUrl(['redis:', 'rediss:'])).default('redis://127.0.0.1:6379'),
        prefix: text.default('corral:sess:'),
      })
      .prefault({}),
    ttl: duration.default(ms('30m')),
    encrypt: bool.default(false),
    maxValueBytes: leaf(readInt(1)).default(1024 * 1024),
    maxEntries: leaf(readInt(1)).optional(),
    maxBytes: leaf(readInt(1)).optional(),
  });

  const cluster = z.strictObject({
    key: leaf(readSecret).optional(),
    peers: z.array(address).default(() => []),
    listen: address.optional(),
    priority: leaf(readInt(0, 65535)).default(100),
    coordination: leaf(readEnum(['embedded', 'postgres'])).default('embedded'),
    postgres: z.strictObject({ url: leaf(readUrl(['postgres:', 'postgresql:'])) }).optional(),
    vip: z.strictObject({ address: leaf(readCidr), interface: leaf(readInterface) }).optional(),
    hooks: z.strictObject({ onPrimary: text.optional(), onSecondary: text.optional() }).optional(),
    sync: z.strictObject({ files: z.array(anyFile) }).optional(),
  });

  return z
    .strictObject({
      node: z.strictObject({ name: name.optional() }).optional(),
      workers: leaf(readWorkers).default('auto'),
      admin: admin.optional(),
      frontends: z.array(frontend).default(() => []),
      backends: z.array(backend).default(() => []),
      statusFiles: z.array(anyFile).default(() => []),
      sessions: sessions.optional(),
      cluster: cluster.optional(),
    })
    .transform(
      (c): CorralConfig => ({
        ...c,
        node: { name: c.node?.name ?? hostname() },
      }),
    );
}

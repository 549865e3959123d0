/**
 * The validated, normalized and frozen shape of a Corral configuration.
 *
 * Everything the rest of Corral reads comes from here: durations are
 * milliseconds, addresses are split into host and port (IPv6 hosts without
 * brackets), defaults are filled in, `${ENV}` references are substituted.
 * `config` imports nothing else of Corral.
 */

/** Milliseconds. */
export type Duration = number;

export interface Address {
  /** Host name or IP literal; IPv6 without brackets (`::1`). */
  readonly host: string;
  readonly port: number;
}

export type Balance = 'roundrobin' | 'leastconn' | 'source' | 'hash' | 'lblc' | 'random' | 'first';

/** What `balance: hash` hashes; exactly one member is set. */
export type HashOn =
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string }
  | { readonly kind: 'path' }
  | { readonly kind: 'query'; readonly name: string };

export interface StickyConfig {
  /** Insert a signed cookie of this name naming the server. */
  readonly cookie?: string;
  /** Client-IP affinity. */
  readonly source: boolean;
  /** Idle timeout of a source-affinity entry (default 30m). */
  readonly timeout: Duration;
}

export interface BackendTimeouts {
  readonly connect: Duration; // default 5s
  readonly server: Duration; // default 50s
  readonly client: Duration; // default 50s
  readonly queue: Duration; // default 5s
}

export type HealthType = 'tcp' | 'http' | 'send-expect' | 'none';

export interface AgentConfig {
  readonly port?: number;
  readonly interval: Duration; // default 5s
  readonly command?: string;
}

export interface HealthConfig {
  readonly type: HealthType; // default 'none' when the key is absent, 'tcp' when present without type
  readonly method: string; // default GET
  readonly path: string; // default /
  readonly host?: string;
  /** Accepted status ranges, inclusive; default [[200, 399]]. */
  readonly expectStatus: readonly (readonly [number, number])[];
  readonly expectBody?: string;
  readonly send?: string;
  readonly expect?: string;
  readonly interval: Duration; // default 2s
  readonly timeout: Duration; // default 1s
  readonly rise: number; // default 2
  readonly fall: number; // default 3
  readonly warmup: Duration; // default 0
  readonly slowStart: Duration; // default 0
  readonly agent?: AgentConfig;
}

export interface OutlierConfig {
  readonly consecutive5xx: number; // default 5
  readonly consecutiveConnectFailures: number; // default 5
  readonly ejectFor: Duration; // default 30s
  readonly maxEjectFor: Duration; // default 300s
  readonly maxEjectedPercent: number; // default 10
}

export interface ServerConfig {
  readonly name: string;
  readonly address: Address;
  readonly weight: number; // 0..256, default 1
  readonly backup: boolean; // default false
  /** Follow another server's health: `backend/server`. */
  readonly track?: { readonly backend: string; readonly server: string };
  /** Connect over TLS (YAML: `tls: true` or `tls: { verify, ca, servername }`). Default false. */
  readonly tls: boolean;
  /** Verify the server's certificate (default true). */
  readonly tlsVerify: boolean;
  /** PEM file of CAs to verify against (default: Node's bundled roots). */
  readonly tlsCa?: string | undefined;
  /** SNI name and name to verify (default: the address host). */
  readonly tlsServername?: string | undefined;
  readonly check?: { readonly port?: number; readonly host?: string };
  /** Per-server override of the backend's `maxConn`. */
  readonly maxConn?: number;
}

export interface BackendConfig {
  readonly name: string;
  readonly balance: Balance; // default roundrobin
  readonly hashOn?: HashOn; // required when balance is hash
  /** balance: source also hashes the client port. Default false. */
  readonly hashSourcePort: boolean;
  /** lblc: idle time after which a destination's entry is forgotten. Default 6m. */
  readonly lblcExpire: Duration;
  readonly sticky?: StickyConfig;
  readonly allBackups: boolean; // default false
  readonly sendProxy?: 'v1' | 'v2';
  readonly forwardFor: boolean; // default false
  readonly serverHeader?: string;
  readonly retries: number; // default 3
  readonly maxConn: number; // per server, 0 = unlimited (default)
  readonly timeouts: BackendTimeouts;
  readonly health: HealthConfig;
  readonly outlier?: OutlierConfig;
  readonly servers: readonly ServerConfig[];
}

export interface RouteConfig {
  /** Exact host (case-insensitive, port ignored) or `*.suffix`. */
  readonly host?: string;
  readonly pathPrefix?: string;
  readonly backend: string;
}

export interface TlsCert {
  readonly cert: string;
  readonly key: string;
}

export interface FrontendConfig {
  readonly name: string;
  readonly listen: Address;
  readonly mode: 'http' | 'tcp'; // default http
  readonly tls?: TlsCert & { readonly certs: readonly TlsCert[] };
  readonly routes: readonly RouteConfig[];
  readonly backend?: string;
  /** CIDRs, e.g. `10.0.0.0/8`, `::1/128`. */
  readonly trustedProxies: readonly string[];
  readonly acceptProxy: boolean; // default false
  readonly maxConn: number; // default 10000
  readonly timeouts: {
    readonly headers: Duration; // default 10s
    readonly idle: Duration; // default 60s
  };
}

export interface AdminConfig {
  readonly listen: Address;
  readonly auth?:
    | { readonly user: string; readonly password: string }
    | { readonly token: string };
}

export interface SessionsConfig {
  readonly store: 'memory' | 'peer' | 'redis'; // default memory
  readonly replicas: number; // default 2
  readonly listen?: Address;
  readonly peers: readonly Address[];
  readonly redis: { readonly url: string; readonly prefix: string }; // defaults redis://127.0.0.1:6379, 'corral:sess:'
  readonly ttl: Duration; // default 30m
  readonly encrypt: boolean; // default false
  readonly maxValueBytes: number; // default 1 MiB
  /** memory and peer: LRU bound on the live sessions held (a peer node: its own copies); unbounded when absent. */
  readonly maxEntries?: number;
  /** memory and peer: LRU bound on the bytes of keys and values of the live sessions held; unbounded when absent. */
  readonly maxBytes?: number;
}

export interface ClusterConfig {
  readonly key?: string;
  readonly peers: readonly Address[];
  readonly listen?: Address;
  readonly priority: number; // default 100
  readonly coordination: 'embedded' | 'postgres';
  readonly postgres?: { readonly url: string };
  readonly vip?: { readonly address: string; readonly interface: string };
  readonly hooks?: { readonly onPrimary?: string; readonly onSecondary?: string };
  readonly sync?: { readonly files: readonly string[] };
}

export interface CorralConfig {
  readonly node: { readonly name: string };
  readonly workers: number | 'auto';
  readonly admin?: AdminConfig;
  readonly frontends: readonly FrontendConfig[];
  readonly backends: readonly BackendConfig[];
  readonly statusFiles: readonly string[];
  readonly sessions?: SessionsConfig;
  readonly cluster?: ClusterConfig;
}

/** One problem found in a config file, with its position (1-based). */
export interface ConfigProblem {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

export type LoadResult =
  | { readonly ok: true; readonly config: CorralConfig }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

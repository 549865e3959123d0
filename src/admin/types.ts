/**
 * The admin API's response shapes, shared by the admin server and the
 * `corral` operator commands. These are the JSON contract: add fields
 * freely, never rename or remove one.
 *
 * Times are ISO 8601 strings (UTC); durations are milliseconds; bytes and
 * counters are plain numbers since the node started (they survive reloads).
 */

/** A server's state as operators see it (ARCHITECTURE.md). */
export type ServerState = 'up' | 'down' | 'warming' | 'drain' | 'maint';
/** What an operator sets: `ready` undoes `drain` and `maint`. */
export type AdminState = 'ready' | 'drain' | 'maint';
/** What health checks say. */
export type HealthState = 'up' | 'down' | 'warming';
/** The node's role: `primary` answers `/healthz` with ACTIVE, `secondary` with STANDBY. */
export type Role = 'primary' | 'secondary';

export const SERVER_STATES: readonly ServerState[] = ['up', 'down', 'warming', 'drain', 'maint'];
export const ADMIN_STATES: readonly AdminState[] = ['ready', 'drain', 'maint'];
/** Largest weight a server can have (config and API alike). */
export const MAX_WEIGHT = 256;

/** The last health check of a server, when health checks run for it. */
export interface CheckStatus {
  /** What the checks say. */
  readonly health: HealthState;
  /** Why, as a typed reason: `L7_OK`, `L4_REFUSED`, `L7_STATUS 503`, `NO_CHECK`, … */
  readonly reason: string;
  /** Detail of the reason (`connection closed after 12 bytes`), or null. */
  readonly detail: string | null;
  /** Result of the last active check, or null before the first. */
  readonly last: string | null;
  readonly durationMs: number | null;
  readonly at: string | null;
  /** When the health last changed. */
  readonly changedAt: string | null;
}

/** Responses by status class. */
export interface ResponseClasses {
  readonly '1xx': number;
  readonly '2xx': number;
  readonly '3xx': number;
  readonly '4xx': number;
  readonly '5xx': number;
}

export interface ServerStatus {
  readonly name: string;
  /** `host:port` (IPv6 in brackets). */
  readonly address: string;
  readonly backup: boolean;
  readonly state: ServerState;
  readonly admin: AdminState;
  readonly health: HealthState;
  /** The configured weight, or the one set at run time (`weightSource: runtime`). */
  readonly weight: number;
  readonly weightSource: 'config' | 'runtime';
  /** The weight in the config file. */
  readonly configWeight: number;
  /** The weight the scheduler uses now (slow start and agents change it). */
  readonly effectiveWeight: number;
  /** Requests (HTTP) or tunnels (TCP) in flight. */
  readonly active: number;
  /** Idle pooled connections (ipvsadm's InActConn). */
  readonly inactive: number;
  /** Requests (HTTP) or connections (TCP) dispatched to it, retries included. */
  readonly total: number;
  /** Connections opened to the server (keep-alive reuse makes it lower than `total`), or null while the balancer does not count them. */
  readonly connects: number | null;
  readonly responses: ResponseClasses;
  /** Connect failures, resets, timeouts and malformed responses. */
  readonly failures: number;
  readonly connectFailures: number;
  readonly retries: number;
  /** Bytes from clients to the server. */
  readonly bytesIn: number;
  /** Bytes from the server to clients. */
  readonly bytesOut: number;
  /** Per-server `maxConn` (0 = unlimited). */
  readonly maxConn: number;
  /** When its state last changed. */
  readonly lastChange: string;
  /** The health checks' view, or null when health is not reported. */
  readonly check: CheckStatus | null;
}

export interface BackendStatus {
  readonly name: string;
  readonly balance: string;
  /** Requests waiting for a server slot (`maxConn`). */
  readonly queueLength: number;
  readonly servers: readonly ServerStatus[];
}

export interface FrontendStatus {
  readonly name: string;
  readonly listen: string;
  readonly mode: 'http' | 'tcp';
  readonly backend: string | null;
  /** Client connections open now. */
  readonly current: number;
  /** Client connections accepted (this configuration generation). */
  readonly connections: number;
  /** Requests received (HTTP; this generation), or null for TCP. */
  readonly requests: number | null;
  /** Connections refused at `maxConn`. */
  readonly rejected: number;
  /** Responses by status class, when the frontend counts them. */
  readonly responses: ResponseClasses | null;
}

export interface ClusterMember {
  readonly name: string;
  readonly role: Role;
  readonly self: boolean;
}

/** `GET /api/v1/status`. */
export interface StatusResponse {
  readonly node: string;
  readonly role: Role;
  /** Configuration generation: 1 at start, +1 per reload that changed something. */
  readonly generation: number;
  readonly startedAt: string;
  readonly time: string;
  readonly cluster: { readonly members: readonly ClusterMember[]; readonly primary: string | null };
  readonly frontends: readonly FrontendStatus[];
  readonly backends: readonly BackendStatus[];
  /** The sessions role's figures, when this node runs it (`sessionStatus()` in `src/sessions/metrics.ts`). */
  readonly sessions?: Readonly<Record<string, unknown>>;
}

/** `POST …/state` and `PUT …/weight` answer with what changed. */
export interface ChangeResponse {
  readonly backend: string;
  readonly server: string;
  /** false when the server already was in that state / had that weight. */
  readonly changed: boolean;
  /** The administrative state (POST …/state) or weight (PUT …/weight) before and after. */
  readonly from: AdminState | number;
  readonly to: AdminState | number;
  /** The server's state before the change (`status.state` is the one after). */
  readonly previousState: ServerState;
  readonly actor: string;
  /** The server after the change. */
  readonly status: ServerStatus;
}

/** Every error the admin API returns. */
export interface ErrorResponse {
  readonly error: {
    readonly code: string;
    readonly message: string;
    /** The body field that was invalid (400). */
    readonly field?: string;
  };
}

/** Events on `GET /api/v1/events`, by `type` (the SSE `event:` name). */
export type AdminEventBody =
  | {
      readonly type: 'server-state';
      readonly backend: string;
      readonly server: string;
      readonly from: ServerState;
      readonly to: ServerState;
      /** `health` (checks, agents, outlier detection) or `admin` (an operator; see the matching `admin-action`). */
      readonly source: 'health' | 'admin';
      readonly reason: string;
      readonly message: string;
      readonly checkDurationMs: number | null;
    }
  | {
      readonly type: 'server-weight';
      readonly backend: string;
      readonly server: string;
      readonly from: number;
      readonly to: number;
      readonly cause: 'slow-start' | 'agent' | 'admin';
    }
  | {
      readonly type: 'server-flapping';
      readonly backend: string;
      readonly server: string;
      readonly flapping: boolean;
      readonly falls: number;
    }
  | {
      readonly type: 'reload';
      readonly generation: number;
      /** Runtime changes re-applied from the state file. */
      readonly reapplied: number;
    }
  | {
      readonly type: 'admin-action';
      /** The Basic user name, `token`, `anonymous` (loopback without auth), or `state-file` (re-applied at start or after a reload). */
      readonly actor: string;
      readonly action: 'state' | 'weight';
      readonly backend: string;
      readonly server: string;
      readonly from: string;
      readonly to: string;
    }
  | { readonly type: 'role'; readonly from: Role; readonly to: Role };

export type AdminEventType = AdminEventBody['type'];

/** An event as stored and sent: the body plus its id and time. */
export type AdminEvent = AdminEventBody & {
  /** `<boot>-<seq>`: the SSE `id:`; send it back as `Last-Event-ID` to replay what followed. */
  readonly id: string;
  readonly at: string;
};

/** `GET /api/v1/events/recent`. */
export interface RecentEventsResponse {
  readonly events: readonly AdminEvent[];
}

/** `GET /api/v1/logs/recent`: the node's last log lines, when it keeps them. */
export interface RecentLogsResponse {
  readonly available: boolean;
  readonly lines: readonly unknown[];
}

/**
 * Check results, typed by layer (HAProxy's `check-t.h` idea): what an
 * operator reads in the stats page and the logs. L4 is the TCP connection,
 * L6 the TLS handshake, L7 the application answer.
 */

/** Outcomes a check can have besides a specific HTTP status. */
export type ReasonCode =
  | 'L4_OK' // tcp: connected within the timeout
  | 'L4_TIMEOUT' // no connection within the timeout
  | 'L4_REFUSED' // connection refused (RST on SYN)
  | 'L4_RESET' // connection reset by the peer
  | 'L4_UNREACHABLE' // name not found, no route, or another socket error
  | 'L6_TLS' // TLS handshake failed
  | 'L6_TIMEOUT' // TLS handshake did not finish within the timeout
  | 'L7_OK' // the application answered as expected
  | 'L7_TIMEOUT' // connected, but no complete answer within the timeout
  | 'L7_BODY' // http: the body did not contain what `expectBody` asks for
  | 'L7_RESPONSE' // garbage, a head too large, or closed before a complete head
  | 'L7_EXPECT'; // send-expect: the reply did not contain `expect`

/** Why a server is in its state: a check result or another cause. */
export type Reason =
  | { readonly code: ReasonCode; readonly detail?: string }
  /** http: a status outside `expectStatus`. */
  | { readonly code: 'L7_STATUS'; readonly status: number; readonly detail?: string }
  /** The server follows `target` (`track: backend/server`) whose reason is `cause`. */
  | { readonly code: 'TRACKED'; readonly target: string; readonly cause: Reason }
  /** The agent reported `down`/`stopped`/`fail` (AGENT_DOWN) or `maint` (AGENT_MAINT); `up`/`ready` ends it (AGENT_UP). */
  | { readonly code: 'AGENT_DOWN' | 'AGENT_MAINT' | 'AGENT_UP'; readonly detail?: string }
  /** Passive outlier ejection, and its end. */
  | { readonly code: 'OUTLIER_5XX' | 'OUTLIER_CONNECT' | 'OUTLIER_RETURN'; readonly detail?: string }
  /** Not checked yet (checked servers start here). */
  | { readonly code: 'INIT' }
  /** The backend has no active checks (`health.type: none`). */
  | { readonly code: 'NO_CHECK' };

/** One check's outcome. */
export interface CheckResult {
  readonly reason: Reason;
  /** From the start of the check (DNS and connect included) to its verdict. */
  readonly durationMs: number;
}

/** Reasons that count as a passed check. */
export function passed(reason: Reason): boolean {
  switch (reason.code) {
    case 'L4_OK':
    case 'L7_OK':
      return true;
    case 'TRACKED':
      return passed(reason.cause);
    default:
      return false;
  }
}

/** `L7_STATUS 503`, `L4_REFUSED`, `TRACKED app/app1 L4_REFUSED`, … (no detail). */
export function formatReason(reason: Reason): string {
  switch (reason.code) {
    case 'L7_STATUS':
      return `L7_STATUS ${reason.status}`;
    case 'TRACKED':
      return `TRACKED ${reason.target} ${formatReason(reason.cause)}`;
    default:
      return reason.code;
  }
}

/** The detail of a reason, when it has one (`connection closed after 12 bytes`). */
export function reasonDetail(reason: Reason): string | undefined {
  if (reason.code === 'TRACKED') return reasonDetail(reason.cause);
  if ('detail' in reason) return reason.detail;
  return undefined;
}

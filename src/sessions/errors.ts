/**
 * Typed errors of the session-state service. Every error a store reports to
 * its caller is a `SessionError` with a stable `code`; `docs/sessions.md`
 * lists them all (a test keeps the list honest).
 */

export const SESSION_ERROR_CODES = {
  CORRAL_ERR_SESSION_TOO_LARGE: { status: 413, doc: 'The value is larger than `sessions.maxValueBytes` (default 1 MiB); nothing was stored.' },
  CORRAL_ERR_SESSION_BAD_KEY: { status: 400, doc: 'The session key is empty or longer than 1024 bytes.' },
  CORRAL_ERR_SESSION_UNAVAILABLE: { status: 503, doc: 'No live peer owns the key, every owner failed, or Redis is unreachable; the caller may retry.' },
  CORRAL_ERR_SESSION_TIMEOUT: { status: 504, doc: 'A peer or Redis did not answer within the request timeout.' },
  CORRAL_ERR_SESSION_CONFLICT: { status: 409, doc: 'A compare-and-set lost: the session changed since it was read (another request of the same user saved first).' },
  CORRAL_ERR_SESSION_AUTH: { status: 503, doc: 'The peer handshake failed: the other side does not hold the same `cluster.key`.' },
  CORRAL_ERR_SESSION_PROTOCOL: { status: 503, doc: 'A malformed, tampered, replayed or oversized frame; that connection was closed.' },
  CORRAL_ERR_SESSION_CLOSED: { status: 503, doc: 'The store or client was closed.' },
} as const satisfies Record<string, { status: number; doc: string }>;

export type SessionErrorCode = keyof typeof SESSION_ERROR_CODES;

export class SessionError extends Error {
  readonly code: SessionErrorCode;
  readonly status: number;
  constructor(code: SessionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SessionError';
    this.code = code;
    this.status = SESSION_ERROR_CODES[code].status;
  }
}

export function isSessionErrorCode(code: string): code is SessionErrorCode {
  return Object.prototype.hasOwnProperty.call(SESSION_ERROR_CODES, code);
}

/** Keys longer than this (UTF-8 bytes) are refused. */
export const MAX_KEY_BYTES = 1024;

export function checkKey(key: string): void {
  // a UTF-16 code unit is at most 3 UTF-8 bytes: short keys need no count
  if (typeof key !== 'string' || key.length === 0 || (key.length * 3 > MAX_KEY_BYTES && Buffer.byteLength(key) > MAX_KEY_BYTES)) {
    throw new SessionError('CORRAL_ERR_SESSION_BAD_KEY', `session key must be 1..${MAX_KEY_BYTES} bytes`);
  }
}

export function checkValue(value: string, maxValueBytes: number): number {
  const bytes = Buffer.byteLength(value);
  if (bytes > maxValueBytes) {
    throw new SessionError(
      'CORRAL_ERR_SESSION_TOO_LARGE',
      `session value is ${bytes} bytes, over the limit of ${maxValueBytes} (sessions.maxValueBytes); nothing stored`,
    );
  }
  return bytes;
}

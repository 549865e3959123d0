/**
 * The admin API's error codes, each with its HTTP status. `docs/admin.md`
 * lists them all; `errors.test.ts` keeps the list honest.
 */
import type { ErrorResponse } from './types.js';

export const ADMIN_ERROR_CODES = {
  CORRAL_ERR_ADMIN_UNAUTHORIZED: { status: 401, doc: 'Credentials missing, of the wrong scheme, or wrong. Nothing was changed.' },
  CORRAL_ERR_ADMIN_CROSS_ORIGIN: { status: 403, doc: 'A state-changing request carried an `Origin` (or `Sec-Fetch-Site`) of another site.' },
  CORRAL_ERR_ADMIN_NOT_FOUND: { status: 404, doc: 'No such path, backend or server; the message names it.' },
  CORRAL_ERR_ADMIN_METHOD: { status: 405, doc: 'The path exists but not with this method; `Allow` lists the methods.' },
  CORRAL_ERR_ADMIN_TOO_LARGE: { status: 413, doc: 'The request body exceeds 16 KiB.' },
  CORRAL_ERR_ADMIN_MEDIA_TYPE: { status: 415, doc: 'A state-changing request without `Content-Type: application/json`.' },
  CORRAL_ERR_ADMIN_BAD_JSON: { status: 400, doc: 'The body is not a JSON object.' },
  CORRAL_ERR_ADMIN_INVALID: { status: 400, doc: 'A body field is missing, unknown or out of range; `field` names it.' },
  CORRAL_ERR_ADMIN_BUSY: { status: 503, doc: 'Too many open event streams.' },
  CORRAL_ERR_ADMIN_STATE_FILE: { status: 500, doc: 'The state file could not be written; the change was not applied.' },
  CORRAL_ERR_ADMIN_AUTH_REQUIRED: { status: 0, doc: '`admin.listen` is not a loopback address and `admin.auth` is not set: the admin server refuses to start.' },
  CORRAL_ERR_ADMIN_LISTEN: { status: 0, doc: 'The admin server could not bind `admin.listen`.' },
} as const satisfies Record<string, { status: number; doc: string }>;

export type AdminErrorCode = keyof typeof ADMIN_ERROR_CODES;

export class AdminError extends Error {
  readonly code: AdminErrorCode;
  readonly status: number;
  /** The request body field at fault, for CORRAL_ERR_ADMIN_INVALID. */
  readonly field: string | undefined;

  constructor(code: AdminErrorCode, message: string, opts: { field?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AdminError';
    this.code = code;
    this.status = ADMIN_ERROR_CODES[code].status;
    this.field = opts.field;
  }

  toJSON(): ErrorResponse {
    return { error: { code: this.code, message: this.message, ...(this.field !== undefined ? { field: this.field } : {}) } };
  }
}

/**
 * The operator commands' client for the admin API. Every failure becomes an
 * `AdminClientError` whose message is one line an operator can act on.
 */
import type { ChangeResponse, ErrorResponse, RecentEventsResponse, RecentLogsResponse, StatusResponse, AdminState } from '../admin/types.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9010';

export interface AdminClientOptions {
  /** Base URL of the admin server (`http://127.0.0.1:9010`). */
  readonly url: string;
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  readonly timeoutMs?: number;
}

export class AdminClientError extends Error {
  /** HTTP status, or 0 when the server was not reached. */
  readonly status: number;
  /** The API's error code, when it sent one. */
  readonly code: string | undefined;

  constructor(message: string, status = 0, code?: string) {
    super(message);
    this.name = 'AdminClientError';
    this.status = status;
    this.code = code;
  }
}

/** Normalizes `--admin`: `host:port` → `http://host:port`; no trailing slash. Throws on anything else. */
export function parseAdminUrl(raw: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new Error(`--admin: not a URL: ${raw}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`--admin: only http and https URLs, got ${raw}`);
  if (u.username !== '' || u.password !== '') throw new Error('--admin: put credentials in CORRAL_ADMIN_USER/CORRAL_ADMIN_PASSWORD or CORRAL_ADMIN_TOKEN, not in the URL');
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  switch (cause?.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
      return 'host not found';
    case 'ECONNRESET':
      return 'connection reset';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connection timed out';
    default:
      return cause?.message ?? (err as Error).message;
  }
}

export class AdminClient {
  readonly url: string;
  private readonly authorization: string | undefined;
  private readonly timeoutMs: number;

  constructor(opts: AdminClientOptions) {
    this.url = parseAdminUrl(opts.url);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    if (opts.token !== undefined && opts.token !== '') this.authorization = `Bearer ${opts.token}`;
    else if (opts.user !== undefined && opts.user !== '') this.authorization = `Basic ${Buffer.from(`${opts.user}:${opts.password ?? ''}`).toString('base64')}`;
  }

  private async call(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.authorization !== undefined) headers.authorization = this.authorization;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') throw new AdminClientError(`the admin API at ${this.url} did not answer within ${this.timeoutMs} ms`);
      throw new AdminClientError(`cannot reach the admin API at ${this.url}: ${describeNetworkError(err)} (is corral running? set --admin or CORRAL_ADMIN_URL)`);
    }
    if (res.ok) return res;
    const text = await res.text().catch(() => '');
    let apiError: ErrorResponse['error'] | undefined;
    try {
      apiError = (JSON.parse(text) as Partial<ErrorResponse>).error;
    } catch {
      apiError = undefined;
    }
    if (res.status === 401) {
      const hint =
        this.authorization === undefined
          ? 'the admin API needs credentials: set CORRAL_ADMIN_USER and CORRAL_ADMIN_PASSWORD, or CORRAL_ADMIN_TOKEN'
          : 'the admin API refused the credentials (check CORRAL_ADMIN_USER/CORRAL_ADMIN_PASSWORD or CORRAL_ADMIN_TOKEN)';
      throw new AdminClientError(hint, 401, apiError?.code);
    }
    if (apiError?.message !== undefined) throw new AdminClientError(`${apiError.message} (${apiError.code}, HTTP ${res.status})`, res.status, apiError.code);
    throw new AdminClientError(`the admin API answered ${method} ${path} with HTTP ${res.status}${text === '' ? '' : `: ${text.split('\n')[0]?.slice(0, 200)}`}`, res.status);
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.call(method, path, body);
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new AdminClientError(`the admin API answered ${method} ${path} with something that is not JSON (is ${this.url} a corral admin server?)`, res.status);
    }
  }

  status(): Promise<StatusResponse> {
    return this.json('GET', '/api/v1/status');
  }

  /** The running configuration, secrets masked by the server. */
  config(): Promise<unknown> {
    return this.json('GET', '/api/v1/config');
  }

  recentEvents(): Promise<RecentEventsResponse> {
    return this.json('GET', '/api/v1/events/recent');
  }

  recentLogs(): Promise<RecentLogsResponse> {
    return this.json('GET', '/api/v1/logs/recent');
  }

  async metrics(): Promise<string> {
    return (await this.call('GET', '/metrics')).text();
  }

  setState(backend: string, server: string, state: AdminState): Promise<ChangeResponse> {
    return this.json('POST', `/api/v1/backends/${encodeURIComponent(backend)}/servers/${encodeURIComponent(server)}/state`, { state });
  }

  setWeight(backend: string, server: string, weight: number): Promise<ChangeResponse> {
    return this.json('PUT', `/api/v1/backends/${encodeURIComponent(backend)}/servers/${encodeURIComponent(server)}/weight`, { weight });
  }
}

/**
 * The operator commands' client for the admin API. Every failure becomes an
 * `AdminClientError` whose message is one line an operator can act on.
 */
import http from 'node:http';
import https from 'node:https';
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
  const e = err as { code?: string; message?: string };
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
      return 'host not found';
    case 'ECONNRESET':
      return 'connection reset';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to host';
    default:
      return e.message ?? String(err);
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

  /**
   * One request with node:http(s) (not fetch: fetch refuses "bad ports"
   * such as 6000 or 10080, where an admin server may well listen).
   */
  private send(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.authorization !== undefined) headers.authorization = this.authorization;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const url = new URL(`${this.url}${path}`);
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, { method, headers, agent: false, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => reject(new AdminClientError(`the admin API at ${this.url} broke off its answer: ${err.message}`)));
      });
      req.on('timeout', () => {
        req.destroy();
        reject(new AdminClientError(`the admin API at ${this.url} did not answer within ${this.timeoutMs} ms`));
      });
      req.on('error', (err) =>
        reject(new AdminClientError(`cannot reach the admin API at ${this.url}: ${describeNetworkError(err)} (is corral running? set --admin or CORRAL_ADMIN_URL)`)),
      );
      req.end(payload);
    });
  }

  private async call(method: string, path: string, body?: unknown): Promise<string> {
    const res = await this.send(method, path, body);
    if (res.status >= 200 && res.status < 300) return res.text;
    let apiError: ErrorResponse['error'] | undefined;
    try {
      apiError = (JSON.parse(res.text) as Partial<ErrorResponse>).error;
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
    throw new AdminClientError(`the admin API answered ${method} ${path} with HTTP ${res.status}${res.text === '' ? '' : `: ${res.text.split('\n')[0]?.slice(0, 200)}`}`, res.status);
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const text = await this.call(method, path, body);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new AdminClientError(`the admin API answered ${method} ${path} with something that is not JSON (is ${this.url} a corral admin server?)`);
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

  metrics(): Promise<string> {
    return this.call('GET', '/metrics');
  }

  setState(backend: string, server: string, state: AdminState): Promise<ChangeResponse> {
    return this.json('POST', `/api/v1/backends/${encodeURIComponent(backend)}/servers/${encodeURIComponent(server)}/state`, { state });
  }

  setWeight(backend: string, server: string, weight: number): Promise<ChangeResponse> {
    return this.json('PUT', `/api/v1/backends/${encodeURIComponent(backend)}/servers/${encodeURIComponent(server)}/weight`, { weight });
  }
}

/**
 * HTTP plumbing of the admin server: responses with the security headers
 * every admin answer carries, and the JSON body reader that enforces the
 * CSRF rules (JSON only, size-limited).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AdminError } from './errors.js';

/** Largest request body accepted (state-changing requests are tiny). */
export const MAX_BODY = 16 * 1024;
/** Beyond the limit, up to this much is still read (and discarded) so the 413 reaches the client cleanly. */
const DRAIN_LIMIT = 1024 * 1024;

const COMMON_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

/** HTML pages: no inline script, no framing, no form posts anywhere. */
export const HTML_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function send(res: ServerResponse, status: number, contentType: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { ...COMMON_HEADERS, 'content-type': contentType, 'content-length': String(buf.length), ...extra });
  res.end(buf);
}

export function sendJson(res: ServerResponse, status: number, value: unknown, extra: Record<string, string> = {}): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`, extra);
}

export function sendError(res: ServerResponse, err: AdminError, extra: Record<string, string> = {}): void {
  sendJson(res, err.status, err.toJSON(), extra);
}

export function sendHtml(res: ServerResponse, html: string): void {
  send(res, 200, 'text/html; charset=utf-8', html, { 'content-security-policy': HTML_CSP });
}

/** True for `application/json`, with or without parameters (`; charset=utf-8`). */
export function isJsonMediaType(header: string | undefined): boolean {
  if (header === undefined) return false;
  return header.split(';')[0]?.trim().toLowerCase() === 'application/json';
}

/**
 * Reads a JSON object body. Rejects with 415 (not `application/json`: what
 * an HTML form on another site can send), 413 (over `MAX_BODY`) or 400.
 * A browser can only send `application/json` cross-origin after a CORS
 * preflight, which this server never grants.
 */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  if (!isJsonMediaType(req.headers['content-type'])) {
    req.resume();
    throw new AdminError('CORRAL_ERR_ADMIN_MEDIA_TYPE', `expected Content-Type: application/json, got ${req.headers['content-type'] ?? 'none'}`);
  }
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > DRAIN_LIMIT) {
    throw new AdminError('CORRAL_ERR_ADMIN_TOO_LARGE', `request body of ${declared} bytes exceeds ${MAX_BODY} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
    else if (size > DRAIN_LIMIT) break;
  }
  if (size > MAX_BODY) throw new AdminError('CORRAL_ERR_ADMIN_TOO_LARGE', `request body exceeds ${MAX_BODY} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new AdminError('CORRAL_ERR_ADMIN_BAD_JSON', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AdminError('CORRAL_ERR_ADMIN_BAD_JSON', 'request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/**
 * Refuses state-changing requests a browser marks as coming from another
 * site (`Origin` not this host, or `Sec-Fetch-Site: cross-site`). Clients
 * that send neither (curl, the CLI) are not affected.
 */
export function assertSameOrigin(req: IncomingMessage): void {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') {
    throw new AdminError('CORRAL_ERR_ADMIN_CROSS_ORIGIN', `cross-origin request refused (Sec-Fetch-Site: ${site})`);
  }
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    host = '';
  }
  if (host === '' || host !== req.headers.host) {
    throw new AdminError('CORRAL_ERR_ADMIN_CROSS_ORIGIN', `cross-origin request refused (Origin: ${origin})`);
  }
}

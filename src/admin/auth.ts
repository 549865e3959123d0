/**
 * Admin authentication: HTTP Basic (RFC 7617) or a bearer token (RFC 6750),
 * read from the `Authorization` header only — never from cookies or the
 * query string, so a page on another site cannot borrow a session.
 *
 * Comparisons are constant-time over SHA-256 digests, so neither the
 * length nor a matching prefix of a secret leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AdminConfig } from '../config/index.js';
import { isLoopbackHost } from '../config/address.js';
import { AdminError } from './errors.js';

/** Who made a request: the Basic user name, `token`, or `anonymous` (loopback without auth). */
export type Actor = string;

export type AuthResult = { readonly ok: true; readonly actor: Actor } | { readonly ok: false; readonly reason: string };

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time string equality (both sides hashed to equal-length digests first). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** The `WWW-Authenticate` challenge for the configured scheme. */
export function challenge(auth: AdminConfig['auth']): string {
  if (auth !== undefined && 'token' in auth) return 'Bearer realm="corral"';
  return 'Basic realm="corral", charset="UTF-8"';
}

/** Checks a request's `Authorization` header against the configured credentials. */
export function authenticate(auth: AdminConfig['auth'], header: string | undefined): AuthResult {
  if (auth === undefined) return { ok: true, actor: 'anonymous' };
  if (header === undefined || header === '') return { ok: false, reason: 'no credentials' };
  const sp = header.indexOf(' ');
  const scheme = (sp === -1 ? header : header.slice(0, sp)).toLowerCase();
  const value = sp === -1 ? '' : header.slice(sp + 1).trim();
  if ('token' in auth) {
    if (scheme !== 'bearer') return { ok: false, reason: `scheme ${scheme} (expected Bearer)` };
    return safeEqual(value, auth.token) ? { ok: true, actor: 'token' } : { ok: false, reason: 'wrong token' };
  }
  if (scheme !== 'basic') return { ok: false, reason: `scheme ${scheme} (expected Basic)` };
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return { ok: false, reason: 'malformed Basic credentials' };
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  // Both compared, always: no early exit on a wrong user name.
  const userOk = safeEqual(user, auth.user);
  const passOk = safeEqual(password, auth.password);
  return userOk && passOk ? { ok: true, actor: user } : { ok: false, reason: 'wrong user or password' };
}

/**
 * Refuses an admin server that would be reachable from the network without
 * credentials (the config loader checks this too; this guards other callers).
 */
export function assertSafeListen(config: AdminConfig): void {
  if (config.auth !== undefined) return;
  if (isLoopbackHost(config.listen.host)) return;
  const where = config.listen.host.includes(':') ? `[${config.listen.host}]:${config.listen.port}` : `${config.listen.host}:${config.listen.port}`;
  throw new AdminError(
    'CORRAL_ERR_ADMIN_AUTH_REQUIRED',
    `admin.listen ${where} is not a loopback address and admin.auth is not set: set admin.auth (user and password, or token) or listen on 127.0.0.1`,
  );
}

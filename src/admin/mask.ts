/**
 * Secrets out of configs before they are shown (`GET /api/v1/config`) or
 * bundled (`corral snapshot`): passwords, tokens, the cluster key, and the
 * password part of URLs (`redis://user:***@host`). A TLS `key` beside a
 * `cert` is a file path, not a secret, and is kept.
 */

export const MASK = '***';

const SECRET_KEYS = new Set(['password', 'token', 'key', 'secret', 'passphrase']);

/** `scheme://user:pass@host` → `scheme://user:***@host`; other strings unchanged. */
export function maskUrl(s: string): string {
  return s.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:\s]*):[^/@\s]*@/i, `$1:${MASK}@`);
}

function isSecretKey(name: string, siblings: Record<string, unknown>): boolean {
  const k = name.toLowerCase();
  if (k === 'key' && 'cert' in siblings) return false;
  return SECRET_KEYS.has(k) || k.endsWith('password') || k.endsWith('token') || k.endsWith('secret');
}

/** A deep copy of `value` with secrets replaced by `***`. */
export function maskSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskSecrets);
  if (typeof value === 'string') return maskUrl(value);
  if (typeof value !== 'object' || value === null) return value;
  const obj = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    out[k] = isSecretKey(k, obj) && (typeof v === 'string' || typeof v === 'number') ? MASK : maskSecrets(v);
  }
  return out;
}

/**
 * Keys derived from `cluster.key` (HKDF-SHA256, RFC 5869): the peer
 * handshake's proofs and TLS keys, and AES-256-GCM sealing of values stored
 * in Redis.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

const SALT = 'corral-sessions-v1';

/** A 32-byte key for one purpose; the same secret and purpose always give the same key. */
export function deriveKey(secret: string | Buffer, purpose: string, salt: string | Buffer = SALT): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, salt, purpose, 32));
}

export function hmac(key: Buffer, ...parts: (Buffer | string)[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export const nonce = (n = 32): Buffer => randomBytes(n);

const IV = 12;
const TAG = 16;

/**
 * Encrypts values at rest (Redis): `base64(iv ‖ tag ‖ ciphertext)` with a
 * random IV; the key name is authenticated data, so a value copied to
 * another key does not decrypt.
 */
export class ValueSealer {
  readonly #key: Buffer;
  constructor(secret: string) {
    this.#key = deriveKey(secret, 'redis-values');
  }

  seal(plain: string, aad: string): string {
    const iv = randomBytes(IV);
    const c = createCipheriv('aes-256-gcm', this.#key, iv);
    c.setAAD(Buffer.from(aad));
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
  }

  /** Throws when the value was not sealed with this key for this name. */
  open(sealed: string, aad: string): string {
    const buf = Buffer.from(sealed, 'base64');
    if (buf.length < IV + TAG) throw new Error('sealed value too short');
    const d = createDecipheriv('aes-256-gcm', this.#key, buf.subarray(0, IV));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(buf.subarray(IV, IV + TAG));
    return Buffer.concat([d.update(buf.subarray(IV + TAG)), d.final()]).toString('utf8');
  }
}

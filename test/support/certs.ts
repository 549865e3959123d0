/**
 * Self-signed certificates for TLS tests, made with the openssl command.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

/** A self-signed certificate for `names` (first is the CN) in a fresh temp dir. */
export function makeCert(names: readonly string[], dir: string = mkdtempSync(join(tmpdir(), 'corral-cert-'))): CertFiles {
  const base = (names[0] ?? 'localhost').replace(/[^a-z0-9.-]/gi, '_');
  const cert = join(dir, `${base}.crt`);
  const key = join(dir, `${base}.key`);
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${names[0]}`,
      '-addext', `subjectAltName=${names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}`,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

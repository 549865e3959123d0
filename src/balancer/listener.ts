/**
 * A listening socket, plain or TLS, that hands each accepted connection to
 * the current frontend. Reload swaps the frontend (and the certificates)
 * while the socket stays open, so no SYN is dropped.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import type { FrontendConfig, TlsCert } from '../config/index.js';
import type { Logger } from '../log.js';

export interface ConnectionHandler {
  accept(socket: Socket): void;
}

/** Certificates of a TLS frontend, read from disk, with the names each covers. */
export interface CertificateSet {
  readonly defaultContext: tls.SecureContext;
  readonly defaultOptions: tls.SecureContextOptions;
  /** Exact names (lower-case) and wildcard suffixes (`.example.com`) to contexts. */
  readonly exact: ReadonlyMap<string, tls.SecureContext>;
  readonly wildcard: ReadonlyMap<string, tls.SecureContext>;
}

const TLS_BASE: tls.SecureContextOptions = { minVersion: 'TLSv1.2' };

function contextOptions(pair: TlsCert): tls.SecureContextOptions {
  return { ...TLS_BASE, cert: readFileSync(pair.cert), key: readFileSync(pair.key) };
}

/** DNS names a certificate covers: subjectAltName DNS entries, else the subject CN. */
function namesOf(certPem: Buffer): string[] {
  const x = new X509Certificate(certPem);
  const names: string[] = [];
  for (const part of (x.subjectAltName ?? '').split(',')) {
    const p = part.trim();
    if (p.startsWith('DNS:')) names.push(p.slice(4).toLowerCase());
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject);
    if (cn?.[1] !== undefined) names.push(cn[1].toLowerCase());
  }
  return names;
}

/** Reads and validates every certificate of a frontend (throws with the file named). */
export function loadCertificates(config: NonNullable<FrontendConfig['tls']>): CertificateSet {
  const load = (pair: TlsCert): { options: tls.SecureContextOptions; context: tls.SecureContext; names: string[] } => {
    try {
      const options = contextOptions(pair);
      return { options, context: tls.createSecureContext(options), names: namesOf(options.cert as Buffer) };
    } catch (err) {
      throw new Error(`cannot load certificate ${pair.cert} / ${pair.key}: ${(err as Error).message}`, { cause: err });
    }
  };
  const def = load(config);
  const exact = new Map<string, tls.SecureContext>();
  const wildcard = new Map<string, tls.SecureContext>();
  // The default certificate's names count too; explicit `certs` entries win for a name they share.
  for (const entry of [def, ...config.certs.map(load)]) {
    for (const name of entry.names) {
      if (name.startsWith('*.')) wildcard.set(name.slice(1), entry.context);
      else exact.set(name, entry.context);
    }
  }
  return { defaultContext: def.context, defaultOptions: def.options, exact, wildcard };
}

/** The context for an SNI name: exact match, then the closest wildcard, else the default. */
export function selectContext(certs: CertificateSet, servername: string): { context: tls.SecureContext; matched: boolean } {
  const name = servername.toLowerCase();
  const exact = certs.exact.get(name);
  if (exact !== undefined) return { context: exact, matched: true };
  const dot = name.indexOf('.');
  if (dot > 0) {
    const wild = certs.wildcard.get(name.slice(dot));
    if (wild !== undefined) return { context: wild, matched: true };
  }
  return { context: certs.defaultContext, matched: false };
}

export class Listener {
  readonly config: FrontendConfig;
  handler: ConnectionHandler;
  private readonly log: Logger;
  private readonly server: net.Server;
  private certs: CertificateSet | null;
  private unknownSni = 0;
  private tlsErrors = 0;

  constructor(config: FrontendConfig, handler: ConnectionHandler, log: Logger, certs?: CertificateSet) {
    this.config = config;
    this.handler = handler;
    this.log = log;
    this.certs = config.tls === undefined ? null : (certs ?? loadCertificates(config.tls));
    if (this.certs === null) {
      // Half-open: a client that shuts down its write side after its request still gets the answer.
      this.server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.handler.accept(socket));
    } else {
      const server = tls.createServer({
        ...this.certs.defaultOptions,
        noDelay: true,
        allowHalfOpen: true,
        // A handshake counts as part of the request head: same deadline.
        handshakeTimeout: config.timeouts.headers,
        ALPNProtocols: ['http/1.1'],
        SNICallback: (servername, cb) => {
          const certs = this.certs as CertificateSet;
          const { context, matched } = selectContext(certs, servername);
          if (!matched && this.unknownSni++ % 1000 === 0) {
            this.log.info({ frontend: config.name, servername, seen: this.unknownSni }, 'unknown SNI name: default certificate used');
          }
          cb(null, context);
        },
      });
      server.on('secureConnection', (socket: tls.TLSSocket) => this.handler.accept(socket));
      server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
        // Garbage handshakes, scanners, protocol mismatches: logged (sampled), never fatal.
        if (this.tlsErrors++ % 100 === 0) {
          this.log.info({ frontend: config.name, client: socket.remoteAddress, err: err.message, seen: this.tlsErrors }, 'TLS handshake failed');
        }
        socket.destroy();
      });
      this.server = server;
    }
    this.server.maxConnections = config.maxConn;
    this.server.on('drop', (data?: { remoteAddress?: string }) => {
      this.log.warn({ frontend: config.name, maxConn: config.maxConn, client: data?.remoteAddress }, 'connection refused: frontend maxConn reached');
    });
  }

  get isTls(): boolean {
    return this.certs !== null;
  }

  /** Replaces the certificates (reload); new handshakes use them at once. */
  setCertificates(certs: CertificateSet): void {
    this.certs = certs;
    (this.server as tls.Server).setSecureContext(certs.defaultOptions);
  }

  /** Updates the connection limit (reload). */
  setMaxConn(n: number): void {
    this.server.maxConnections = n;
  }

  listen(): Promise<AddressInfo> {
    const server = this.server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.config.listen.host, port: this.config.listen.port }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.error({ err, frontend: this.config.name }, 'listener error'));
        resolve(server.address() as AddressInfo);
      });
    });
  }

  get address(): AddressInfo | null {
    return this.server.address() as AddressInfo | null;
  }

  /**
   * Stops accepting. Open connections are left to their frontend (whose
   * `close(graceMs)` bounds them), so this does not wait for them.
   */
  close(): Promise<void> {
    if (this.server.listening) this.server.close();
    return Promise.resolve();
  }
}

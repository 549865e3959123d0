/**
 * One connection attempt towards a server, for `mode: tcp` tunnels: plain
 * TCP, or TLS when the server config says `tls: true`.
 *
 * Not the pooled HTTP connection of `RuntimeBackend.connect`: a tunnel owns
 * its socket for its whole life, needs half-close (`allowHalfOpen`) and
 * handles every event itself once connected.
 *
 * TLS fails closed: a certificate that does not verify (against `tls.ca`, or
 * Node's bundled roots without it), a name that does not match
 * (`tls.servername`, else the address host), or a CA file that cannot be read
 * is a failed connect like a refused one (counted, retried elsewhere, the
 * client closed when no server is left). `tls.verify: false` skips the
 * certificate check. The CA file is read, and its TLS context built, once per
 * server config object, that is once per configuration generation: a reload
 * reads it again.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { ServerConfig } from '../../config/index.js';
import { onreadOption } from '../io.js';

export type ConnectOutcome =
  | { readonly ok: true; readonly socket: net.Socket }
  | { readonly ok: false; readonly timedOut: boolean; readonly reason: string };

/** An attempt in progress; `abort()` destroys it without calling back. */
export interface PendingConnect {
  abort(): void;
}

/** What a server needs to be connected to; `ServerConfig` fits. */
export type ServerTarget = Pick<ServerConfig, 'address' | 'tls' | 'tlsVerify' | 'tlsCa' | 'tlsServername'>;

type Context = { readonly ok: true; readonly context: tls.SecureContext } | { readonly ok: false; readonly reason: string };

/** One TLS context per server config object (per generation); a CA that could not be read stays failed until reload. */
const contexts = new WeakMap<ServerTarget, Context>();

function contextFor(server: ServerTarget): Context {
  let c = contexts.get(server);
  if (c !== undefined) return c;
  try {
    const ca = server.tlsCa !== undefined ? readFileSync(server.tlsCa) : undefined;
    c = { ok: true, context: tls.createSecureContext({ minVersion: 'TLSv1.2', ...(ca !== undefined ? { ca } : {}) }) };
  } catch (err) {
    c = { ok: false, reason: `cannot use tls CA ${server.tlsCa ?? ''}: ${(err as Error).message}` };
  }
  contexts.set(server, c);
  return c;
}

/**
 * Connects to `server` within `timeoutMs` (TCP connect plus, with `tls`, the
 * handshake and certificate check) and calls `done` exactly once, never
 * synchronously and never after `abort()`. On success the socket has no
 * listeners of ours left but the reader `onBytes` (given the bytes of each
 * read; on plain sockets a view of the shared read buffer, see io.ts), no
 * timeout, `noDelay` and `allowHalfOpen` set.
 */
export function connectServer(
  server: ServerTarget,
  timeoutMs: number,
  done: (outcome: ConnectOutcome) => void,
  onBytes?: (bytes: Buffer, ephemeral: boolean) => void,
): PendingConnect {
  const { host, port } = server.address;
  let socket: net.Socket;
  if (server.tls) {
    const ctx = contextFor(server);
    if (!ctx.ok) {
      let aborted = false;
      setImmediate(() => {
        if (!aborted) done({ ok: false, timedOut: false, reason: ctx.reason });
      });
      return { abort: () => (aborted = true) };
    }
    // SNI is never an IP literal; the certificate is then checked against the IP itself.
    const servername = server.tlsServername ?? (net.isIP(host) === 0 ? host : undefined);
    const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
      host,
      port,
      // Passed on to the TLSSocket by Node (not in @types/node's ConnectionOptions).
      allowHalfOpen: true,
      secureContext: ctx.context,
      rejectUnauthorized: server.tlsVerify,
      // Node checks the certificate against `servername`, else `host`.
      ...(servername !== undefined ? { servername } : {}),
    };
    socket = tls.connect(options);
    socket.setNoDelay(true);
    if (onBytes !== undefined) socket.on('data', (chunk: Buffer) => onBytes(chunk, false));
  } else {
    socket = net.connect({
      host,
      port,
      allowHalfOpen: true,
      noDelay: true,
      ...(onBytes !== undefined ? { onread: onreadOption((bytes) => onBytes(bytes, true)) } : {}),
    });
  }
  const ready = server.tls ? 'secureConnect' : 'connect';
  let settled = false;
  const settle = (outcome: ConnectOutcome): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.off(ready, onConnect);
    socket.off('error', onError);
    socket.off('close', onClose);
    if (!outcome.ok) {
      // Keep a late error from becoming an uncaught exception.
      socket.on('error', () => {});
      socket.destroy();
    }
    done(outcome);
  };
  const onConnect = (): void => settle({ ok: true, socket });
  const onError = (err: Error): void => settle({ ok: false, timedOut: false, reason: describe(server, err) });
  const onClose = (): void =>
    settle({ ok: false, timedOut: false, reason: server.tls ? 'connection closed during the TLS handshake' : 'connection closed while connecting' });
  // One deadline for the whole attempt: a server that accepts but never completes the handshake is a connect timeout.
  const timer = setTimeout(
    () => settle({ ok: false, timedOut: true, reason: `connect timeout after ${timeoutMs} ms${server.tls ? ' (TCP and TLS handshake)' : ''}` }),
    timeoutMs,
  );
  socket.once(ready, onConnect);
  socket.on('error', onError);
  socket.on('close', onClose);
  return {
    abort: () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.destroy();
    },
  };
}

function describe(server: ServerTarget, err: Error): string {
  // Socket errors (refused, reset) carry a syscall; certificate and protocol errors do not, and say so.
  if (!server.tls || (err as NodeJS.ErrnoException).syscall !== undefined) return err.message;
  return `TLS: ${err.message}`;
}

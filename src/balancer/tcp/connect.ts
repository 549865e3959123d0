/**
 * One TCP connection attempt towards a server, for `mode: tcp` tunnels.
 *
 * Not the pooled HTTP connection of `RuntimeBackend.connect`: a tunnel owns
 * its socket for its whole life, needs half-close (`allowHalfOpen`) and
 * handles every event itself once connected.
 */
import net from 'node:net';
import type { Address } from '../../config/index.js';

export type ConnectOutcome =
  | { readonly ok: true; readonly socket: net.Socket }
  | { readonly ok: false; readonly timedOut: boolean; readonly reason: string };

/** An attempt in progress; `abort()` destroys it without calling back. */
export interface PendingConnect {
  abort(): void;
}

/**
 * Connects to `address` within `timeoutMs` and calls `done` exactly once
 * (never after `abort()`). On success the socket has no listeners of ours
 * left, no timeout, and `allowHalfOpen` set.
 */
export function connectServer(address: Address, timeoutMs: number, done: (outcome: ConnectOutcome) => void): PendingConnect {
  const socket = net.connect({ host: address.host, port: address.port, allowHalfOpen: true, noDelay: true });
  let settled = false;
  const settle = (outcome: ConnectOutcome): void => {
    if (settled) return;
    settled = true;
    socket.off('connect', onConnect);
    socket.off('timeout', onTimeout);
    socket.off('error', onError);
    socket.off('close', onClose);
    if (!outcome.ok) {
      // Keep a late error from becoming an uncaught exception.
      socket.on('error', () => {});
      socket.destroy();
    }
    done(outcome);
  };
  const onConnect = (): void => {
    socket.setTimeout(0);
    settle({ ok: true, socket });
  };
  const onTimeout = (): void => settle({ ok: false, timedOut: true, reason: `connect timeout after ${timeoutMs} ms` });
  const onError = (err: Error): void => settle({ ok: false, timedOut: false, reason: err.message });
  const onClose = (): void => settle({ ok: false, timedOut: false, reason: 'connection closed while connecting' });
  socket.setTimeout(timeoutMs);
  socket.once('connect', onConnect);
  socket.on('timeout', onTimeout);
  socket.on('error', onError);
  socket.on('close', onClose);
  return {
    abort: () => {
      if (settled) return;
      settled = true;
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.destroy();
    },
  };
}

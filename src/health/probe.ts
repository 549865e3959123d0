/**
 * One short conversation with a server: connect (TCP, optionally TLS),
 * optionally send some bytes, and hand what comes back to a reader until it
 * decides. Every outcome is bounded in time (one deadline for the whole
 * probe) and the socket is destroyed as soon as there is a verdict, so a
 * server sending 10 MB costs only what the reader chose to look at.
 *
 * Failures are typed by the phase they happen in: L4 (connect), L6 (TLS
 * handshake), L7 (the answer).
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import type { Reason } from './reasons.js';

/** Where a probe connects. */
export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  /** Speak TLS after connecting. */
  readonly tls?: ProbeTls;
}

export interface ProbeTls {
  /** Verify the certificate chain and name (default true). */
  readonly verify?: boolean;
  readonly ca?: string | Buffer;
  /** SNI and the name verified (default: the host, when it is a name). */
  readonly servername?: string;
}

/** Decides a probe from what the server sends. */
export interface Reader<T> {
  /** One chunk; return a value to end the probe with it. */
  data(chunk: Buffer): T | undefined;
  /** The server closed its side before `data` decided. */
  end(): T;
}

export type ProbeOutcome<T> =
  | { readonly ok: true; readonly value: T; readonly durationMs: number }
  | { readonly ok: false; readonly reason: Reason; readonly durationMs: number };

export interface ProbeOptions<T> {
  /** Deadline for the whole probe, connect included (ms). */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Written once connected (and after the TLS handshake). */
  readonly send?: string | Buffer;
  /** Without a reader the probe ends once connected (and `send` written). */
  readonly reader?: Reader<T>;
}

type Phase = 'connect' | 'tls' | 'reply';

const TIMEOUT_BY_PHASE = { connect: 'L4_TIMEOUT', tls: 'L6_TIMEOUT', reply: 'L7_TIMEOUT' } as const;

/** Maps a socket error to a layered reason. */
export function socketErrorReason(err: NodeJS.ErrnoException, phase: Phase): Reason {
  const code = err.code ?? '';
  const detail = code !== '' ? code : err.message;
  switch (code) {
    case 'ECONNREFUSED':
      return { code: 'L4_REFUSED', detail };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
      return { code: 'L4_RESET', detail };
    case 'ETIMEDOUT':
      return { code: 'L4_TIMEOUT', detail };
    default:
      if (phase === 'tls' || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || code.includes('CERT')) {
        return { code: 'L6_TLS', detail: err.message.slice(0, 200) };
      }
      return { code: 'L4_UNREACHABLE', detail };
  }
}

/** Runs one probe; never rejects. */
export function probe<T>(target: ProbeTarget, opts: ProbeOptions<T>): Promise<ProbeOutcome<T | undefined>> {
  const started = performance.now();
  const elapsed = (): number => Math.round((performance.now() - started) * 10) / 10;
  return new Promise((resolve) => {
    let phase: Phase = 'connect';
    let done = false;
    let socket: net.Socket | undefined;
    const finish = (outcome: ProbeOutcome<T | undefined>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (socket !== undefined) {
        socket.removeAllListeners('data');
        socket.on('error', () => {}); // late errors after the verdict
        socket.destroy();
      }
      resolve(outcome);
    };
    const fail = (reason: Reason): void => finish({ ok: false, reason, durationMs: elapsed() });
    const succeed = (value: T | undefined): void => finish({ ok: true, value, durationMs: elapsed() });
    const onAbort = (): void => fail({ code: TIMEOUT_BY_PHASE[phase], detail: 'aborted' });
    const timer = setTimeout(() => fail({ code: TIMEOUT_BY_PHASE[phase], detail: `no verdict within ${opts.timeoutMs}ms` }), opts.timeoutMs);
    timer.unref();
    if (opts.signal?.aborted === true) {
      onAbort();
      return;
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const ready = (): void => {
      phase = 'reply';
      const reader = opts.reader;
      if (reader === undefined) {
        if (opts.send === undefined || opts.send.length === 0) {
          succeed(undefined);
          return;
        }
        socket!.write(opts.send, () => succeed(undefined));
        return;
      }
      if (opts.send !== undefined && opts.send.length > 0) socket!.write(opts.send);
      socket!.on('data', (chunk: Buffer) => {
        if (done) return;
        const verdict = reader.data(chunk);
        if (verdict !== undefined) succeed(verdict);
      });
      socket!.on('end', () => {
        if (!done) succeed(reader.end());
      });
    };

    try {
      if (target.tls !== undefined) {
        const servername = target.tls.servername ?? (net.isIP(target.host) === 0 ? target.host : undefined);
        const s = tls.connect({
          host: target.host,
          port: target.port,
          rejectUnauthorized: target.tls.verify ?? true,
          ...(target.tls.ca !== undefined ? { ca: target.tls.ca } : {}),
          ...(servername !== undefined ? { servername } : {}),
          ALPNProtocols: ['http/1.1'],
        });
        socket = s;
        s.once('connect', () => {
          if (phase === 'connect') phase = 'tls';
        });
        s.once('secureConnect', ready);
      } else {
        socket = net.connect({ host: target.host, port: target.port });
        socket.once('connect', ready);
      }
    } catch (err) {
      // Synchronous failures: an invalid port or host.
      fail({ code: 'L4_UNREACHABLE', detail: (err as Error).message });
      return;
    }
    socket.setNoDelay(true);
    socket.on('error', (err: NodeJS.ErrnoException) => fail(socketErrorReason(err, phase)));
    socket.on('close', () => {
      // Closed without an 'end' the reader saw (a TLS close, an abort): the answer was cut.
      if (!done) fail(phase === 'reply' ? { code: 'L7_RESPONSE', detail: 'connection closed' } : { code: 'L4_RESET', detail: 'connection closed' });
    });
  });
}

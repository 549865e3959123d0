/**
 * One client connection of a `mode: tcp` frontend, from accept to close.
 *
 *   [PROXY header]  acceptProxy: read and strip it within timeouts.headers
 *        │            ──(malformed, too long, EOF, timeout: closed, logged)
 *        ▼
 *   dispatch: sticky source pin | scheduler | queue (per-server maxConn)
 *        │            ──(NO_SERVER / QUEUE_TIMEOUT / QUEUE_FULL: closed)
 *        ▼
 *   connect within timeouts.connect; client bytes meanwhile are buffered
 *   (bounded, client paused beyond it)
 *        │            ──(refused, timeout, or reset before the server's first
 *        │              byte: redispatch to a server not yet tried, up to
 *        │              `retries`; then CONNECT_FAILED / CONNECT_TIMEOUT)
 *        ▼
 *   [sendProxy header] + buffered bytes, then a two-way pipe with
 *   backpressure (pause the reader while the writer's buffer is full)
 *        │
 *        ▼
 *   half-close both ways: a FIN from one side becomes end() towards the
 *   other while the reverse direction keeps flowing. The tunnel is over when
 *   both sockets are closed: on clean FINs both ways, on the idle timeout
 *   (no byte either way for timeouts.idle), or when one side errors (the
 *   other is reset, so an abort never looks like a clean end).
 *
 * Invariants: the server slot taken by `dispatch` is released exactly once
 * per slot (`releaseSlot`); exactly one access log line per connection
 * (`finish`); nothing here throws into the event loop.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ErrorCode } from '../../errors.js';
import type { PickRequest } from '../../scheduling/index.js';
import type { RuntimeBackend, Waiter } from '../backend.js';
import { displayIp } from '../forwarded.js';
import { encodeProxyHeader, ProxyHeaderReader, proxyAddresses } from '../proxy-protocol.js';
import type { RuntimeServer } from '../server.js';
import { clock, readInto, writeCopy } from '../io.js';
import { connectServer } from './connect.js';
import type { PendingConnect } from './connect.js';
import type { TcpFrontend } from './tcp-frontend.js';

/** Client bytes held while no server connection is up; beyond it the client is paused. */
export const PENDING_LIMIT = 64 * 1024;
/**
 * Client bytes kept for a replay until the server's first byte; beyond it a
 * reset is not retried. Small (HAProxy's default bufsize) because it is held
 * per waiting tunnel.
 */
export const REPLAY_LIMIT = 16 * 1024;

/**
 * Error code logged for a connection without a valid PROXY header.
 * Not (yet) in `ERROR_CODES`; see the TCP mode hand-over note.
 */
export const BAD_PROXY_HEADER: ErrorCode = 'CORRAL_ERR_BAD_PROXY_HEADER';

/** How a tunnel ended, as logged in `termination`. */
export type Termination =
  /** Clean FINs both ways; the client's came first. */
  | 'client-closed'
  /** Clean FINs both ways; the server's came first. */
  | 'server-closed'
  /** The client reset, errored, or vanished; the server side was closed. */
  | 'client-reset'
  /** The server reset or errored after the tunnel was up; the client was reset. */
  | 'server-reset'
  | 'idle-timeout'
  /** acceptProxy: no valid PROXY header (malformed, oversized, EOF or timeout). */
  | 'proxy-header'
  /** The client left while its connection was queued or connecting. */
  | 'client-aborted'
  | 'no-server'
  | 'queue-timeout'
  | 'queue-full'
  | 'connect-failed'
  | 'connect-timeout'
  /** Destroyed when a frontend's `close(graceMs)` ran out of grace. */
  | 'shutdown';

const enum Phase {
  /** acceptProxy: waiting for the PROXY header. */
  Header,
  /** Queued, or connecting to a server (possibly again, after a failure). */
  Dispatch,
  /** Connected: bytes flow both ways. */
  Open,
  /** Closing or closed: nothing more is started. */
  Done,
}

export class Tunnel {
  readonly frontend: TcpFrontend;
  readonly client: Socket;
  /** The server connection while one is up. */
  upstream: Socket | null = null;
  /** The client as scheduled and logged: the PROXY header's source when one was accepted. */
  clientIp: string;
  clientPort: number;
  /** The address the client connected to (the PROXY header's destination when given). */
  destIp: string;
  destPort: number;
  /** True when the client address came from a PROXY header. */
  proxied = false;
  bytesIn = 0;
  bytesOut = 0;

  private phase: Phase;
  private readonly backend: RuntimeBackend;
  private reader: ProxyHeaderReader | null = null;
  /** Holds a slot (`active`) while non-null. */
  private server: RuntimeServer | null = null;
  private lastServer: RuntimeServer | null = null;
  private waiter: Waiter | null = null;
  private connecting: PendingConnect | null = null;
  private tried: Set<number> | null = null;
  private attempts = 0;
  private lastFailure: { termination: Termination; code: ErrorCode; note: string } | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes sent to the current server, kept until its first byte; null once a replay is impossible. */
  private replay: Buffer[] | null = [];
  private replayBytes = 0;
  private serverBytes = 0;
  private clientEnded = false;
  private serverEnded = false;
  private firstFin: 'client' | 'server' | null = null;
  private clientClosed = false;
  private upstreamClosed = false;
  /** Set once we decided how a socket ends (a graceful flush-then-close): do not reset it over that. */
  private clientClosing = false;
  private upstreamClosing = false;
  private termination: Termination | null = null;
  private error: string | undefined;
  private note: string | undefined;
  private readonly t0 = performance.now();
  /** When the connection entered the queue (-1: never), and how long it waited once out. */
  private queuedAt = -1;
  private queueMs = 0;
  private tConnect = -1;
  private finished = false;

  constructor(frontend: TcpFrontend, client: Socket) {
    this.frontend = frontend;
    this.client = client;
    this.backend = frontend.backend;
    this.clientIp = client.remoteAddress ?? '';
    this.clientPort = client.remotePort ?? 0;
    this.destIp = client.localAddress ?? '';
    this.destPort = client.localPort ?? 0;
    this.phase = frontend.config.acceptProxy ? Phase.Header : Phase.Dispatch;
    if (!readInto(client, (bytes) => this.onClientData(bytes, true))) client.on('data', (chunk: Buffer) => this.onClientData(chunk, false));
    client.on('end', () => this.onClientEnd());
    client.on('error', (err: Error) => this.onClientError(err));
    client.on('close', () => this.onClientClose());
    client.on('drain', () => {
      this.lastActive = clock.now;
      if (this.phase === Phase.Open && this.upstream !== null) this.upstream.resume();
    });
  }

  /** Begins reading the PROXY header, or dispatches at once. */
  start(): void {
    if (this.phase === Phase.Header) {
      this.reader = new ProxyHeaderReader();
      this.setTimer(this.frontend.config.timeouts.headers);
      return;
    }
    this.setTimer(this.frontend.config.timeouts.idle);
    this.dispatch();
  }

  /** Ends the tunnel now (shutdown): both sockets are destroyed. */
  destroy(termination: Termination): void {
    this.setTermination(termination);
    this.phase = Phase.Done;
    this.abandon();
    this.upstream?.destroy();
    this.client.destroy();
  }

  // ---- client side ----------------------------------------------------------------

  /** Inactivity limit in force (ms; 0: none) and the last activity either way (coarse clock), for the frontend's sweep. */
  timeoutMs = 0;
  lastActive = 0;

  private setTimer(ms: number): void {
    this.timeoutMs = ms;
    this.lastActive = clock.now;
  }

  /** `ephemeral`: `chunk` is a view of the shared read buffer (io.ts); what is kept is copied. */
  private onClientData(chunk: Buffer, ephemeral: boolean): void {
    this.lastActive = clock.now;
    switch (this.phase) {
      case Phase.Header:
        this.onHeaderBytes(ephemeral ? Buffer.from(chunk) : chunk);
        return;
      case Phase.Dispatch:
        this.bytesIn += chunk.length;
        this.hold(ephemeral ? Buffer.from(chunk) : chunk);
        return;
      case Phase.Open: {
        this.bytesIn += chunk.length;
        const up = this.upstream as Socket;
        if (up.destroyed || this.upstreamClosing) return;
        (this.server as RuntimeServer).counters.bytesIn += chunk.length;
        let flowing: boolean;
        if (this.replay !== null) {
          const kept = ephemeral ? Buffer.from(chunk) : chunk;
          this.keepForReplay(kept);
          flowing = up.write(kept);
        } else flowing = ephemeral ? writeCopy(up, chunk) : up.write(chunk);
        if (!flowing) this.client.pause();
        return;
      }
      case Phase.Done:
        return;
    }
  }

  /** Keeps client bytes until a server connection is up. */
  private hold(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= PENDING_LIMIT) this.client.pause();
  }

  private keepForReplay(chunk: Buffer): void {
    const replay = this.replay as Buffer[];
    if (this.replayBytes + chunk.length > REPLAY_LIMIT) {
      this.replay = null;
      this.replayBytes = 0;
      return;
    }
    replay.push(chunk);
    this.replayBytes += chunk.length;
  }

  private onHeaderBytes(chunk: Buffer): void {
    const r = (this.reader as ProxyHeaderReader).push(chunk);
    if (r.status === 'need-more') return;
    this.reader = null;
    if (r.status === 'error') {
      this.rejectHeader(r.reason);
      return;
    }
    const addrs = r.header.addresses;
    if (addrs !== null) {
      // Only the source matters for scheduling and logging; the destination feeds sendProxy and lblc.
      this.clientIp = addrs.source.address;
      this.clientPort = addrs.source.port;
      this.destIp = addrs.destination.address;
      this.destPort = addrs.destination.port;
      this.proxied = true;
    }
    this.phase = Phase.Dispatch;
    this.setTimer(this.frontend.config.timeouts.idle);
    if (r.rest !== null) {
      this.bytesIn += r.rest.length;
      this.hold(r.rest);
    }
    this.dispatch();
  }

  private rejectHeader(reason: string): void {
    this.frontend.counters.proxyHeaderErrors++;
    this.setTermination('proxy-header', BAD_PROXY_HEADER, reason);
    this.phase = Phase.Done;
    this.client.destroy();
  }

  private onClientEnd(): void {
    this.clientEnded = true;
    if (this.firstFin === null) this.firstFin = 'client';
    switch (this.phase) {
      case Phase.Header:
        this.rejectHeader('client closed before sending a complete PROXY header');
        return;
      case Phase.Dispatch:
        // Forwarded once connected, after the held bytes.
        return;
      case Phase.Open: {
        const up = this.upstream as Socket;
        if (!up.destroyed && !this.upstreamClosing) up.end();
        return;
      }
      case Phase.Done:
        return;
    }
  }

  private onClientError(err: Error): void {
    const early = this.phase === Phase.Header || this.phase === Phase.Dispatch;
    this.setTermination(early ? 'client-aborted' : 'client-reset', undefined, `client: ${err.message}`);
    const up = this.upstream;
    if (up === null || up.destroyed || this.upstreamClosing) return;
    this.upstreamClosing = true;
    // Request bytes and the FIN already sent still reach the server; otherwise it sees an abort.
    if (this.clientEnded) up.destroySoon();
    else reset(up);
  }

  private onClientClose(): void {
    this.clientClosed = true;
    if (this.phase === Phase.Header || this.phase === Phase.Dispatch) {
      this.setTermination('client-aborted');
      this.phase = Phase.Done;
      this.abandon();
    } else {
      const clean = this.clientEnded && this.client.writableFinished;
      const up = this.upstream;
      if (!clean && up !== null && !up.destroyed && !this.upstreamClosing) {
        this.setTermination('client-reset');
        this.upstreamClosing = true;
        reset(up);
      }
    }
    this.finish();
  }

  /** Called by the frontend's sweep after `timeoutMs` without a byte either way. */
  onTimeout(): void {
    if (this.phase === Phase.Header) {
      this.rejectHeader(`no complete PROXY header within ${this.frontend.config.timeouts.headers} ms`);
      return;
    }
    this.destroy('idle-timeout');
  }

  // ---- dispatch and connect ---------------------------------------------------------

  private pickRequest(): PickRequest {
    return {
      clientIp: this.clientIp,
      clientPort: this.clientPort,
      // lblc keys on the destination, as LVS does; in TCP mode that is the address the client reached.
      host: this.destIp,
      hashKey: undefined,
      now: performance.now(),
      exclude: this.tried ?? undefined,
    };
  }

  private dispatch(): void {
    const request = this.pickRequest();
    const result = this.backend.dispatch(request, undefined, () => this.makeWaiter(request));
    switch (result.kind) {
      case 'server':
        this.assign(result.server);
        return;
      case 'queued':
        this.queuedAt = performance.now();
        return;
      case 'full':
        this.fail('queue-full', 'CORRAL_ERR_QUEUE_FULL', `backend ${this.backend.name}: queue full`);
        return;
      case 'none': {
        const last = this.lastFailure;
        if (last === null) this.fail('no-server', 'CORRAL_ERR_NO_SERVER', `backend ${this.backend.name}: no eligible server`);
        else this.fail(last.termination, last.code, last.note);
        return;
      }
    }
  }

  private makeWaiter(request: PickRequest): Waiter {
    const w: Waiter = {
      pinned: null,
      request,
      timer: null,
      grant: (server) => {
        this.waiter = null;
        this.leaveQueue();
        if (this.phase !== Phase.Dispatch) {
          this.backend.release(server);
          return;
        }
        this.assign(server);
      },
      expire: () => {
        this.waiter = null;
        this.leaveQueue();
        if (this.phase === Phase.Dispatch) {
          this.fail('queue-timeout', 'CORRAL_ERR_QUEUE_TIMEOUT', `every eligible server of ${this.backend.name} stayed at maxConn`);
        }
      },
    };
    this.waiter = w;
    return w;
  }

  /** Called with a slot already taken on `server`. */
  private assign(server: RuntimeServer): void {
    this.server = server;
    this.lastServer = server;
    this.attempts++;
    server.counters.total++;
    if (this.attempts > 1) server.counters.retries++;
    const t = performance.now();
    let connected: Socket | null = null;
    const onBytes = (bytes: Buffer, ephemeral: boolean): void => {
      if (connected !== null) this.onServerData(connected, server, bytes, ephemeral);
    };
    this.connecting = connectServer(server.config, this.backend.config.timeouts.connect, (outcome) => {
      this.connecting = null;
      this.tConnect = performance.now() - t;
      if (outcome.ok) {
        server.counters.connects++;
        this.backend.observe?.(server, 'ok');
        connected = outcome.socket;
        this.onConnected(outcome.socket);
        return;
      }
      server.counters.connectFailures++;
      server.counters.failures++;
      this.backend.observe?.(server, 'connect-failure');
      const timedOut = outcome.timedOut;
      this.retryOrFail(
        timedOut ? 'connect-timeout' : 'connect-failed',
        timedOut ? 'CORRAL_ERR_CONNECT_TIMEOUT' : 'CORRAL_ERR_CONNECT_FAILED',
        `${server.name}: ${outcome.reason}`,
      );
    }, onBytes);
  }

  /** After a failure before the server's first byte: another server if retries remain, else give up. */
  private retryOrFail(termination: Termination, code: ErrorCode, note: string): void {
    const failed = this.server as RuntimeServer;
    this.releaseSlot();
    this.lastFailure = { termination, code, note };
    if (this.backend.config.retries >= this.attempts) {
      if (this.tried === null) this.tried = new Set();
      this.tried.add(failed.id);
      this.frontend.log.info(
        { frontend: this.frontend.config.name, backend: this.backend.name, server: failed.name, reason: note, attempt: this.attempts },
        'redispatching connection',
      );
      this.dispatch();
      return;
    }
    this.fail(termination, code, note);
  }

  private onConnected(socket: Socket): void {
    const server = this.server as RuntimeServer;
    this.upstream = socket;
    this.upstreamClosed = false;
    this.serverBytes = 0;
    this.serverEnded = false;
    this.phase = Phase.Open;
    socket.on('end', () => this.onServerEnd(socket));
    socket.on('error', (err: Error) => this.onServerError(socket, server, err));
    socket.on('close', () => this.onServerClose(socket, server));
    socket.on('drain', () => {
      this.lastActive = clock.now;
      if (this.upstream === socket && this.phase === Phase.Open) this.client.resume();
    });

    socket.cork();
    const version = this.backend.config.sendProxy;
    if (version !== undefined) {
      socket.write(encodeProxyHeader(version, proxyAddresses(this.clientIp, this.clientPort, this.destIp, this.destPort)));
    }
    let flowing = true;
    // A retry replays what the failed server was sent, then what arrived since.
    if (this.replay !== null) {
      for (const b of this.replay) {
        server.counters.bytesIn += b.length;
        flowing = socket.write(b);
      }
    }
    for (const b of this.pending) {
      server.counters.bytesIn += b.length;
      if (this.replay !== null) this.keepForReplay(b);
      flowing = socket.write(b);
    }
    this.pending = [];
    this.pendingBytes = 0;
    socket.uncork();
    if (this.clientEnded) socket.end();
    else if (flowing) this.client.resume();
  }

  // ---- server side -----------------------------------------------------------------

  private onServerData(socket: Socket, server: RuntimeServer, chunk: Buffer, ephemeral: boolean): void {
    if (socket !== this.upstream) return;
    this.lastActive = clock.now;
    this.serverBytes += chunk.length;
    this.bytesOut += chunk.length;
    server.counters.bytesOut += chunk.length;
    if (this.replay !== null) {
      // The server has answered: from now on a failure is the tunnel's end, not a retry.
      this.replay = null;
      this.replayBytes = 0;
    }
    if (this.client.destroyed || this.clientClosing) return;
    if (!(ephemeral ? writeCopy(this.client, chunk) : this.client.write(chunk))) socket.pause();
  }

  private onServerEnd(socket: Socket): void {
    if (socket !== this.upstream) return;
    this.serverEnded = true;
    if (this.firstFin === null) this.firstFin = 'server';
    if (!this.client.destroyed && !this.clientClosing) this.client.end();
  }

  private onServerError(socket: Socket, server: RuntimeServer, err: Error): void {
    if (socket !== this.upstream) return;
    if (this.serverBytes === 0 && !this.serverEnded && this.replay !== null && !this.clientClosed && this.phase === Phase.Open) {
      // Reset before any byte from the server: as good as a failed connect, and replayable.
      server.counters.failures++;
      this.upstream = null;
      socket.destroy();
      this.phase = Phase.Dispatch;
      this.retryOrFail('connect-failed', 'CORRAL_ERR_CONNECT_FAILED', `${server.name}: ${err.message} before the server's first byte`);
      return;
    }
    server.counters.failures++;
    this.setTermination('server-reset', 'CORRAL_ERR_SERVER_FAILED', `${server.name}: ${err.message}`);
    if (this.client.destroyed || this.clientClosing) return;
    this.clientClosing = true;
    // After the server's FIN the client has its complete answer: deliver it. Before: an abort.
    if (this.serverEnded) this.client.destroySoon();
    else reset(this.client);
  }

  private onServerClose(socket: Socket, server: RuntimeServer): void {
    if (socket !== this.upstream) return;
    this.upstreamClosed = true;
    this.releaseSlot();
    const clean = this.serverEnded && socket.writableFinished;
    if (!clean && !this.client.destroyed && !this.clientClosing) {
      this.setTermination('server-reset', 'CORRAL_ERR_SERVER_FAILED', `${server.name}: connection closed`);
      this.clientClosing = true;
      reset(this.client);
    }
    this.finish();
  }

  // ---- endings ----------------------------------------------------------------------

  /** Gives up before a tunnel was established: logs `code` and closes the client. */
  private fail(termination: Termination, code: ErrorCode, note: string): void {
    this.setTermination(termination, code, note);
    this.phase = Phase.Done;
    this.abandon();
    this.client.destroy();
  }

  /** Drops whatever is in progress towards a server (queue entry, connect, slot). */
  private abandon(): void {
    if (this.waiter !== null) {
      this.backend.cancel(this.waiter);
      this.waiter = null;
      this.leaveQueue();
    }
    if (this.connecting !== null) {
      this.connecting.abort();
      this.connecting = null;
    }
    if (this.upstream === null) this.releaseSlot();
    this.pending = [];
    this.pendingBytes = 0;
  }

  private leaveQueue(): void {
    if (this.queuedAt < 0) return;
    this.queueMs += performance.now() - this.queuedAt;
    this.queuedAt = -1;
  }

  private releaseSlot(): void {
    const s = this.server;
    if (s === null) return;
    this.server = null;
    this.backend.release(s);
  }

  private setTermination(t: Termination, code?: string, note?: string): void {
    if (this.termination !== null) return;
    this.termination = t;
    this.error = code;
    this.note = note;
  }

  /** Once both sockets are closed: frees the slot, logs the one access line, leaves the frontend. */
  private finish(): void {
    if (this.finished || !this.clientClosed) return;
    if (this.upstream !== null && !this.upstreamClosed) return;
    this.finished = true;
    this.phase = Phase.Done;
    this.abandon();
    this.releaseSlot();
    if (this.termination === null) this.termination = this.firstFin === 'server' ? 'server-closed' : 'client-closed';
    const fe = this.frontend;
    fe.log.info(
      {
        type: 'access',
        mode: 'tcp',
        frontend: fe.config.name,
        backend: this.backend.name,
        server: this.lastServer?.name ?? null,
        client: displayIp(this.clientIp),
        clientPort: this.clientPort,
        ...(this.proxied ? { peer: displayIp(this.client.remoteAddress ?? '') } : {}),
        bytesIn: this.bytesIn,
        bytesOut: this.bytesOut,
        retries: Math.max(0, this.attempts - 1),
        queueMs: round(this.queueMs),
        connectMs: this.tConnect < 0 ? 0 : round(this.tConnect),
        durationMs: round(performance.now() - this.t0),
        termination: this.termination,
        ...(this.error !== undefined ? { error: this.error } : {}),
        ...(this.note !== undefined ? { note: this.note } : {}),
      },
      'connection',
    );
    fe.tunnelClosed(this);
  }
}

/** Closes with a TCP RST where possible, so the peer sees an abort rather than a clean end. */
function reset(socket: Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    // Not a plain TCP handle (e.g. TLS): an ordinary close.
    socket.destroy();
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

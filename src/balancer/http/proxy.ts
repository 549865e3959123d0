/**
 * The L7 HTTP/1.1 proxy: client connections, request exchanges, retries.
 *
 * Lifecycle of one request (each stage names what it can fail into):
 *
 *   read head ──(400/431/505, 408 on timeouts.headers)──> route ──(503 NO_ROUTE)
 *     ──> dispatch: sticky pin | scheduler | queue ──(503 NO_SERVER / QUEUE_TIMEOUT)
 *     ──> upstream: pooled keep-alive connection or connect
 *           ──(refused/timeout: redispatch elsewhere, else 502/504)
 *     ──> write head + stream body (backpressure both ways)
 *     ──> read response head ──(reset before a byte: retry if idempotent and
 *           replayable, else 502; garbage 502; silence 504)
 *     ──> stream response body ──(failure after bytes reached the client:
 *           the client connection is closed; never retried)
 *     ──> done: connection back to the pool, next request on the client
 *
 * Sockets are read raw and heads parsed by hand (`head.ts`): Node's `http`
 * client is where Node proxies lose most of their time.
 *
 * A frontend does not own its listening socket (`listener.ts` does), so a
 * reload can hand the socket to a new frontend while connections of the old
 * one finish their current exchange.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { FrontendConfig } from '../../config/index.js';
import type { ErrorCode } from '../../errors.js';
import { ERROR_CODES, errorResponse } from '../../errors.js';
import type { PickRequest } from '../../scheduling/index.js';
import type { RuntimeBackend, Waiter } from '../backend.js';
import { displayIp, forwardedElement, TrustedProxies } from '../forwarded.js';
import { ProxyHeaderReader } from '../proxy-protocol.js';
import { Router } from '../router.js';
import type { RuntimeServer, UpstreamConnection, UpstreamOwner } from '../server.js';
import { CHUNKED_ERROR, CHUNKED_NEED_MORE, ChunkedReader } from './chunked.js';
import type { RequestHead, ResponseHead } from './head.js';
import { clock, readInto, Sweep, sweepResolution, writeCopy } from '../io.js';
import { findHeadEnd, forwardedLines, MAX_HEAD_BYTES, parseRequestHead, parseResponseHead, Special } from './head.js';

/** Request bodies up to this size are kept until the response starts, so the request can be replayed. */
const REPLAY_LIMIT = 64 * 1024;
/** Shared empty list: most exchanges have no body to hold (never pushed to). */
const NO_BUFFERS: Buffer[] = [];
/** Idempotent methods (RFC 9110 §9.2.2): a switch, because a Set lookup hashes each request's fresh method string. */
function idempotent(method: string): boolean {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'TRACE':
    case 'PUT':
    case 'DELETE':
      return true;
    default:
      return false;
  }
}
const CRLF = '\r\n';
/** Average request-body rate (bytes/s) a client must keep once `timeouts.client` has passed. */
const MIN_BODY_RATE = 1024;
/** Response heads and first body bytes up to this size are sent in one buffer. */
const COALESCE_LIMIT = 16 * 1024;

/** Receives each response's time to first byte, per server (kept cheap: called per request). */
export interface LatencyRecorder {
  observe(backend: string, server: string, seconds: number): void;
}

export interface HttpFrontendOptions {
  readonly config: FrontendConfig;
  readonly backends: ReadonlyMap<string, RuntimeBackend>;
  readonly log: Logger;
  /** Set when the listener terminates TLS. */
  readonly tls?: boolean;
  /** One access line per request (default: when the logger's info level is on). */
  readonly accessLog?: boolean;
  readonly latency?: LatencyRecorder;
}

interface FrontendCounters {
  connections: number;
  requests: number;
  rejected: number;
}

/** One `mode: http` frontend: accepts client connections and runs their exchanges. */
export class HttpFrontend {
  readonly config: FrontendConfig;
  readonly backends: ReadonlyMap<string, RuntimeBackend>;
  readonly log: Logger;
  readonly router: Router<RuntimeBackend>;
  readonly trusted: TrustedProxies;
  readonly proto: 'http' | 'https';
  readonly counters: FrontendCounters = { connections: 0, requests: 0, rejected: 0 };
  /** Access lines are built only when the info level is on (they are one per request). */
  readonly accessLog: boolean;
  /**
   * Writes the access lines: the node's logger without its secret redaction,
   * which costs a third of each line and has nothing to find in them.
   */
  readonly accessLogger: Logger;
  readonly latency: LatencyRecorder | null;
  readonly clients = new Set<ClientConnection>();
  /** Set by a reload: keep-alive clients move to it at their next request. */
  successor: HttpFrontend | null = null;
  private stopping = false;
  /** Client inactivity timeouts (head, idle, client, linger): one sweep per frontend (io.ts). */
  private readonly sweep: Sweep<ClientConnection>;

  constructor(opts: HttpFrontendOptions) {
    this.config = opts.config;
    this.backends = opts.backends;
    this.log = opts.log;
    this.proto = opts.tls === true ? 'https' : 'http';
    this.trusted = new TrustedProxies(opts.config.trustedProxies);
    this.accessLog = opts.accessLog ?? opts.log.isLevelEnabled('info');
    this.latency = opts.latency ?? null;
    this.accessLogger = this.accessLog ? opts.log.child({}, { redact: [] }) : opts.log;
    const resolve = (name: string): RuntimeBackend => {
      const b = opts.backends.get(name);
      if (b === undefined) throw new Error(`frontend ${opts.config.name}: unknown backend ${name}`);
      return b;
    };
    const limits = [opts.config.timeouts.headers, opts.config.timeouts.idle, ...[...opts.backends.values()].map((b) => b.config.timeouts.client)];
    this.sweep = new Sweep(sweepResolution(Math.min(...limits)), this.clients, (c) => c.onTimeout());
    this.router = new Router(
      opts.config.routes.map((r) => ({ host: r.host, pathPrefix: r.pathPrefix, target: resolve(r.backend) })),
      opts.config.backend === undefined ? undefined : resolve(opts.config.backend),
    );
  }

  /** Accepts a connection handed over by a listener (also used by the TLS layer). */
  accept(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    this.counters.connections++;
    // The sweep first: it refreshes the coarse clock the new connection stamps its activity with.
    this.sweep.ensure();
    this.clients.add(new ClientConnection(this, socket));
  }

  /** Takes a client that moves here after a reload into this frontend's set. */
  adopt(client: ClientConnection): void {
    this.sweep.ensure();
    this.clients.add(client);
  }

  /**
   * Stops taking connections; idle keep-alive connections are closed, busy
   * ones finish their exchange and close. Resolves when every client is gone
   * or after `graceMs`, when the rest are destroyed.
   */
  async close(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const c of this.clients) c.shutdown();
    if (this.clients.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const c of this.clients) c.socket.destroy();
        resolve();
      }, graceMs);
      const check = setInterval(() => {
        if (this.clients.size === 0) {
          clearInterval(check);
          clearTimeout(timer);
          resolve();
        }
      }, 20);
      timer.unref();
    });
  }

  get isStopping(): boolean {
    return this.stopping;
  }
}

const enum ClientPhase {
  /** Waiting for (the rest of) a request head. */
  Head,
  /** An exchange owns the connection. */
  Busy,
  Closed,
}

export class ClientConnection {
  frontend: HttpFrontend;
  readonly socket: Socket;
  /** Client address: the socket's peer, or what a trusted outer balancer's PROXY header says. */
  ip: string;
  port: number;
  /** Set while a PROXY header is expected (`acceptProxy`). */
  private proxyHeader: ProxyHeaderReader | null;
  private buf: Buffer | null = null;
  /** `buf` is a view of the shared read buffer: parse() copies what it keeps. */
  private bufEphemeral = false;
  private scanFrom = 0;
  /** Deadline of a head that is arriving in pieces. */
  private headTimer: NodeJS.Timeout | null = null;
  private phase = ClientPhase.Head;
  exchange: Exchange | null = null;
  /** Inactivity limit in force (ms; 0: none) and when the connection was last active (coarse clock). */
  timeoutMs = 0;
  lastActive = 0;
  /** Wants to close once the current exchange is done. */
  closeAfter = false;
  requests = 0;

  constructor(frontend: HttpFrontend, socket: Socket) {
    this.frontend = frontend;
    this.socket = socket;
    this.ip = socket.remoteAddress ?? '';
    this.port = socket.remotePort ?? 0;
    this.proxyHeader = frontend.config.acceptProxy ? new ProxyHeaderReader() : null;
    this.setTimer(frontend.config.timeouts.headers);
    if (!readInto(socket, (bytes) => this.onData(bytes, true))) socket.on('data', (chunk: Buffer) => this.onData(chunk, false));
    socket.on('error', () => this.onGone());
    socket.on('close', () => this.onGone());
    socket.on('end', () => this.onEnd());
    socket.on('drain', () => {
      this.lastActive = clock.now;
      this.exchange?.onClientDrain();
    });
  }

  /** `ephemeral`: `chunk` is a view of the shared read buffer (io.ts); whatever is kept is copied. */
  private onData(chunk: Buffer, ephemeral: boolean): void {
    this.lastActive = clock.now;
    if (this.phase === ClientPhase.Busy) {
      if (ephemeral) chunk = Buffer.from(chunk);
      const ex = this.exchange as Exchange;
      if (ex.tunnel) {
        ex.onTunnelClientData(chunk);
        return;
      }
      if (ex.wantsBody) {
        ex.onClientBody(chunk);
        return;
      }
      // Pipelined bytes of the next request: keep them, stop reading until the exchange ends.
      this.append(chunk, false); // copied above
      this.pauseReads();
      if ((this.buf as Buffer).length > MAX_HEAD_BYTES * 2) this.socket.destroy();
      return;
    }
    if (this.phase === ClientPhase.Closed) return;
    if (this.proxyHeader !== null) {
      if (ephemeral) {
        chunk = Buffer.from(chunk);
        ephemeral = false;
      }
      const r = this.proxyHeader.push(chunk);
      if (r.status === 'need-more') return;
      this.proxyHeader = null;
      if (r.status === 'error') {
        this.frontend.log.info({ frontend: this.frontend.config.name, peer: displayIp(this.ip), reason: r.reason, error: 'CORRAL_ERR_BAD_PROXY_HEADER' }, 'connection closed: invalid PROXY header');
        this.phase = ClientPhase.Closed;
        this.socket.destroy();
        return;
      }
      if (r.header.command === 'proxy') {
        this.ip = r.header.addresses.source.address;
        this.port = r.header.addresses.source.port;
      }
      if (r.rest === null) return;
      chunk = r.rest;
    }
    this.append(chunk, ephemeral);
    this.parse();
  }

  /** Adds bytes to the buffer; `ephemeral` ones (shared read buffer) are copied by parse() if kept. */
  private append(chunk: Buffer, ephemeral: boolean): void {
    if (this.buf === null) {
      this.buf = chunk;
      this.bufEphemeral = ephemeral;
    } else this.buf = Buffer.concat([this.buf, chunk]);
  }

  /** Hands the buffered bytes (body start, pipelined requests) to the exchange. */
  takeBuffered(): Buffer | null {
    const b = this.buf;
    this.buf = null;
    return b;
  }

  /** Puts body or pipelined bytes the exchange did not consume back in front of the buffer. */
  unread(bytes: Buffer): void {
    this.buf = this.buf === null ? bytes : Buffer.concat([bytes, this.buf]);
  }

  /** Parses the next request head from the buffer and starts its exchange. */
  private parse(): void {
    const buf = this.buf;
    if (buf === null) return;
    const end = findHeadEnd(buf, this.scanFrom);
    if (end === -1) {
      if (buf.length > MAX_HEAD_BYTES) {
        this.reject('CORRAL_ERR_HEADERS_TOO_LARGE');
        return;
      }
      // Leading empty lines before a request are ignored (RFC 9112 §2.2).
      if (buf.length >= 2 && buf[0] === 13 && buf[1] === 10) {
        this.buf = buf.length === 2 ? null : buf.subarray(2);
        this.scanFrom = 0;
        this.parse();
        return;
      }
      this.scanFrom = buf.length;
      if (this.bufEphemeral) {
        this.buf = Buffer.from(buf);
        this.bufEphemeral = false;
      }
      // `timeouts.headers` bounds the whole head, however slowly its bytes trickle in (slowloris):
      // a deadline from its first byte, armed only for heads that do not arrive in one read.
      if (this.headTimer === null) {
        this.headTimer = setTimeout(() => {
          this.headTimer = null;
          if (this.phase === ClientPhase.Head) this.reject('CORRAL_ERR_CLIENT_TIMEOUT');
        }, this.frontend.config.timeouts.headers);
      }
      return;
    }
    if (this.headTimer !== null) {
      clearTimeout(this.headTimer);
      this.headTimer = null;
    }
    if (end > MAX_HEAD_BYTES) {
      this.reject('CORRAL_ERR_HEADERS_TOO_LARGE');
      return;
    }
    if (buf[0] === 13 && buf[1] === 10) {
      this.buf = buf.subarray(2);
      this.scanFrom = 0;
      this.parse();
      return;
    }
    const headText = buf.toString('latin1', 0, end);
    this.buf = end < buf.length ? (this.bufEphemeral ? Buffer.from(buf.subarray(end)) : buf.subarray(end)) : null;
    this.bufEphemeral = false;
    this.scanFrom = 0;
    const head = parseRequestHead(headText);
    if (typeof head === 'string') {
      this.reject(head);
      return;
    }
    if (head.method === 'CONNECT') {
      this.reject('CORRAL_ERR_BAD_REQUEST');
      return;
    }
    this.migrate();
    this.requests++;
    this.frontend.counters.requests++;
    this.phase = ClientPhase.Busy;
    if (head.close || this.frontend.isStopping) this.closeAfter = true;
    const ex = new Exchange(this, head);
    this.exchange = ex;
    ex.start();
  }

  /** Follows reloads: the next request runs on the newest generation's frontend. */
  private migrate(): void {
    let f = this.frontend;
    if (f.successor === null) return;
    while (f.successor !== null) f = f.successor;
    this.frontend.clients.delete(this);
    f.adopt(this);
    this.frontend = f;
  }

  /** Answers a request that reaches no server, then closes. */
  reject(code: ErrorCode): void {
    this.phase = ClientPhase.Closed;
    this.buf = null;
    this.frontend.log.info(
      { type: 'access', frontend: this.frontend.config.name, client: displayIp(this.ip), status: ERROR_CODES[code].status, error: code },
      'request rejected',
    );
    this.socket.end(errorResponse(code, true));
    this.setTimer(5_000); // bounded linger for a peer that never reads
  }

  /** Called by the exchange when it is over. */
  done(): void {
    this.exchange = null;
    if (this.phase === ClientPhase.Closed) return;
    if (this.closeAfter || this.socket.destroyed || this.socket.writableEnded) {
      this.phase = ClientPhase.Closed;
      this.socket.end();
      this.setTimer(5_000);
      return;
    }
    this.phase = ClientPhase.Head;
    this.setTimer(this.buf === null ? this.frontend.config.timeouts.idle : this.frontend.config.timeouts.headers);
    if (this.buf !== null) this.parse();
    if (this.phase === ClientPhase.Head) this.resumeReads();
  }

  private readsPaused = false;

  /** Stops reading from the client (a socket call only when the state changes). */
  pauseReads(): void {
    if (this.readsPaused) return;
    this.readsPaused = true;
    this.socket.pause();
  }

  resumeReads(): void {
    if (!this.readsPaused) return;
    this.readsPaused = false;
    this.socket.resume();
  }

  /** Sets the inactivity limit, counted from now. */
  setTimer(ms: number): void {
    this.timeoutMs = ms;
    this.lastActive = clock.now;
  }

  /** Activity that is not a read (the exchange wrote to the client). */
  touch(): void {
    this.lastActive = clock.now;
  }

  /** Called by the frontend's sweep when the connection was inactive for `timeoutMs`. */
  onTimeout(): void {
    if (this.phase === ClientPhase.Busy) {
      (this.exchange as Exchange).onClientTimeout();
      return;
    }
    if (this.phase === ClientPhase.Head && this.buf !== null) {
      this.reject('CORRAL_ERR_CLIENT_TIMEOUT');
      return;
    }
    this.phase = ClientPhase.Closed;
    this.socket.destroy();
  }

  private onEnd(): void {
    // Half-close from the client: finish the current exchange, then close.
    this.closeAfter = true;
    if (this.phase === ClientPhase.Head) {
      this.phase = ClientPhase.Closed;
      this.socket.end();
    } else if (this.phase === ClientPhase.Busy) {
      (this.exchange as Exchange).onClientEnd();
    }
  }

  private onGone(): void {
    if (this.headTimer !== null) {
      clearTimeout(this.headTimer);
      this.headTimer = null;
    }
    if (this.phase === ClientPhase.Busy) (this.exchange as Exchange).abort('client closed');
    this.phase = ClientPhase.Closed;
    this.exchange = null;
    this.buf = null;
    this.frontend.clients.delete(this);
  }

  /** Graceful stop: idle connections close now, busy ones after their exchange. */
  shutdown(): void {
    this.closeAfter = true;
    if (this.phase === ClientPhase.Head && this.buf === null) {
      this.phase = ClientPhase.Closed;
      this.socket.end();
    }
  }
}

/** How a request ended, for the access log. */
type Outcome = { status: number; error?: ErrorCode; note?: string };

class Exchange implements UpstreamOwner {
  private readonly client: ClientConnection;
  private readonly head: RequestHead;
  private backend: RuntimeBackend | null = null;
  private server: RuntimeServer | null = null;
  private conn: UpstreamConnection | null = null;
  private waiter: Waiter | null = null;
  private attempts = 0;
  private tried: Set<number> | null = null;
  private freeRetryUsed = false;
  private lastFailure: ErrorCode = 'CORRAL_ERR_CONNECT_FAILED';
  private setCookie = false;
  private outHead = '';
  private finished = false;

  // Request body.
  private bodyLeft: number;
  private readonly reqChunks: ChunkedReader | null;
  wantsBody: boolean;
  /** Upgrade protocol the client asked for (`websocket`), or null. */
  private readonly upgrade: string | null;
  /** After 101 Switching Protocols: bytes are relayed both ways as they are. */
  tunnel = false;
  private tunnelClientEnded = false;
  /** Body bytes received but not yet written upstream. */
  private pending: Buffer[] = NO_BUFFERS;
  /** Body bytes already written upstream, kept for a replay while replayable. */
  private sent: Buffer[] | null = NO_BUFFERS;
  private sentBytes = 0;
  private bodyTimer: NodeJS.Timeout | null = null;

  // Response.
  private resBuf: Buffer | null = null;
  private res: ResponseHead | null = null;
  private resStarted = false;
  private resLeft = 0;
  private resChunks: ChunkedReader | null = null;
  private resUntilClose = false;
  private dechunk = false;
  private resDone = false;
  private upstreamReusable = true;
  private upstreamBytes = 0;

  // Accounting.
  private readonly t0 = performance.now();
  private tQueue = -1;
  private tConnect = -1;
  private tResponse = -1;
  private bytesIn = 0;
  private bytesOut = 0;

  constructor(client: ClientConnection, head: RequestHead) {
    this.client = client;
    this.head = head;
    this.bodyLeft = head.chunked ? 0 : Math.max(0, head.contentLength);
    this.reqChunks = head.chunked ? new ChunkedReader() : null;
    this.wantsBody = head.chunked || this.bodyLeft > 0;
    this.upgrade = null;
    if (head.upgrade !== '' && head.connectionTokens.includes('upgrade')) this.upgrade = head.upgrade;
  }

  start(): void {
    const fe = this.client.frontend;
    const path = this.head.target;
    const backend = fe.router.match(this.head.hostname, path);
    if (backend === undefined) {
      this.fail('CORRAL_ERR_NO_ROUTE');
      return;
    }
    this.backend = backend;
    // Take body bytes that arrived with the head; the rest of the buffer is the next request.
    if (this.wantsBody) {
      const rest = this.client.takeBuffered();
      if (rest !== null) this.consumeBody(rest);
    }
    if (this.wantsBody) this.client.pauseReads();
    this.outHead = this.buildRequestHead(backend);
    this.client.setTimer(backend.config.timeouts.client);
    this.dispatch();
  }

  // ---- dispatch and connect ------------------------------------------------

  private pickRequest(backend: RuntimeBackend): PickRequest {
    return {
      clientIp: this.client.ip,
      clientPort: this.client.port,
      host: this.head.hostname,
      hashKey: backend.config.balance === 'hash' ? hashKeyOf(backend, this.head) : undefined,
      // the first dispatch follows the head's arrival at once: its time is the exchange's start
      now: this.attempts === 0 && !this.freeRetryUsed ? this.t0 : performance.now(),
      exclude: this.tried ?? undefined,
    };
  }

  private dispatch(): void {
    const backend = this.backend as RuntimeBackend;
    const request = this.pickRequest(backend);
    const cookie =
      backend.config.sticky?.cookie !== undefined ? cookieOf(this.head, backend.config.sticky.cookie) : undefined;
    const result = backend.dispatch(request, cookie, () => this.makeWaiter(request));
    switch (result.kind) {
      case 'server':
        this.setCookie = result.setCookie || (cookie !== undefined && cookie !== result.server.stickyValue && backend.config.sticky?.cookie !== undefined);
        this.assign(result.server);
        return;
      case 'queued':
        this.tQueue = performance.now();
        return;
      case 'full':
        this.fail('CORRAL_ERR_QUEUE_FULL');
        return;
      case 'none':
        this.fail(this.attempts === 0 ? 'CORRAL_ERR_NO_SERVER' : this.lastFailure);
        return;
    }
  }

  private makeWaiter(request: PickRequest): Waiter {
    const w: Waiter = {
      pinned: null,
      request,
      timer: null,
      grant: (server) => {
        this.waiter = null;
        if (this.finished) {
          (this.backend as RuntimeBackend).release(server);
          return;
        }
        this.tQueue = performance.now() - this.tQueue;
        this.setCookie = (this.backend as RuntimeBackend).config.sticky?.cookie !== undefined && cookieOf(this.head, (this.backend as RuntimeBackend).config.sticky?.cookie as string) !== server.stickyValue;
        this.assign(server);
      },
      expire: () => {
        this.waiter = null;
        if (!this.finished) this.fail('CORRAL_ERR_QUEUE_TIMEOUT');
      },
    };
    this.waiter = w;
    return w;
  }

  private assign(server: RuntimeServer): void {
    const backend = this.backend as RuntimeBackend;
    this.server = server;
    this.attempts++;
    server.counters.total++;
    if (this.attempts > 1) server.counters.retries++;
    const safe = idempotent(this.head.method) && this.sent !== null;
    const idle = backend.takeIdle(server, !safe);
    if (idle !== null) {
      this.onConnect(idle);
      return;
    }
    const tc = performance.now();
    backend.connect(server, {
      onConnect: (conn) => {
        this.tConnect = performance.now() - tc;
        if (this.finished || this.server !== server) {
          backend.putIdle(conn);
          return;
        }
        this.onConnect(conn);
      },
      onConnectError: (err, timedOut) => {
        if (this.finished || this.server !== server) return;
        server.counters.connectFailures++;
        server.counters.failures++;
        backend.observe?.(server, 'connect-failure');
        this.retryOrFail(timedOut ? 'CORRAL_ERR_CONNECT_TIMEOUT' : 'CORRAL_ERR_CONNECT_FAILED', err.message, true);
      },
    });
  }

  private onConnect(conn: UpstreamConnection): void {
    this.conn = conn;
    conn.owner = this;
    conn.lastActive = clock.now;
    const socket = conn.socket;
    if ((this.sent === null || this.sent.length === 0) && this.pending.length === 0) {
      socket.write(this.outHead, 'latin1');
    } else {
      socket.cork();
      socket.write(this.outHead, 'latin1');
      if (this.sent !== null) for (const b of this.sent) socket.write(b);
      for (const b of this.pending) {
        socket.write(b);
        this.keepSent(b);
      }
      this.pending = NO_BUFFERS;
      socket.uncork();
    }
    if (this.wantsBody) this.client.resumeReads();
  }

  /** Redispatches after a failure that happened before any response byte, or answers with `code`. */
  private retryOrFail(code: ErrorCode, reason: string, connectPhase: boolean): void {
    const backend = this.backend as RuntimeBackend;
    const server = this.server as RuntimeServer;
    const reused = this.conn !== null && this.conn.uses > 0;
    this.dropUpstream();
    this.server = null;
    backend.release(server);
    this.lastFailure = code;
    const replayable = this.sent !== null && (connectPhase || idempotent(this.head.method));
    if (!connectPhase && reused && replayable && !this.freeRetryUsed) {
      // A pooled connection the server had already closed: not the server's fault.
      this.freeRetryUsed = true;
      this.attempts--;
      this.client.frontend.log.debug({ backend: backend.name, server: server.name, reason }, 'stale pooled connection, resending');
      this.assignFresh(server);
      return;
    }
    if (backend.config.retries >= this.attempts && replayable) this.redispatch(server, reason);
    else this.fail(code, `${server.name}: ${reason}`);
  }

  private assignFresh(server: RuntimeServer): void {
    if (!server.acceptsSticky) {
      this.dispatch();
      return;
    }
    server.active++;
    // Close idle connections to this server: they are likely stale too.
    server.closeIdle();
    this.assign(server);
  }

  private redispatch(failed: RuntimeServer, reason: string): void {
    if (this.tried === null) this.tried = new Set();
    this.tried.add(failed.id);
    this.client.frontend.log.info(
      { backend: (this.backend as RuntimeBackend).name, server: failed.name, reason, attempt: this.attempts },
      'redispatching request',
    );
    this.dispatch();
  }

  // ---- request body ---------------------------------------------------------

  private keepSent(b: Buffer): void {
    if (this.sent === null) return;
    if (this.sentBytes + b.length > REPLAY_LIMIT) {
      this.sent = null;
      return;
    }
    if (this.sent === NO_BUFFERS) this.sent = [];
    this.sent.push(b);
    this.sentBytes += b.length;
  }

  /** Splits client bytes into this request's body and whatever follows it. */
  private consumeBody(chunk: Buffer): void {
    let bodyEnd: number;
    if (this.reqChunks !== null) {
      const r = this.reqChunks.feed(chunk, 0, chunk.length);
      if (r === CHUNKED_ERROR) {
        this.failClient('CORRAL_ERR_BAD_CHUNK');
        return;
      }
      bodyEnd = r === CHUNKED_NEED_MORE ? chunk.length : r;
      if (r !== CHUNKED_NEED_MORE) this.wantsBody = false;
    } else {
      bodyEnd = Math.min(this.bodyLeft, chunk.length);
      this.bodyLeft -= bodyEnd;
      if (this.bodyLeft === 0) this.wantsBody = false;
    }
    this.bytesIn += bodyEnd;
    const body = bodyEnd === chunk.length ? chunk : chunk.subarray(0, bodyEnd);
    if (bodyEnd < chunk.length) {
      this.client.unread(chunk.subarray(bodyEnd));
      this.client.pauseReads();
    }
    if (body.length === 0) return;
    if (this.conn === null) {
      if (this.pending === NO_BUFFERS) this.pending = [];
      this.pending.push(body);
      return;
    }
    this.keepSent(body);
    this.conn.lastActive = clock.now;
    if (!this.conn.socket.write(body)) {
      this.client.pauseReads();
      const conn = this.conn;
      conn.socket.once('drain', () => {
        if (this.conn === conn && !this.finished && this.wantsBody) this.client.resumeReads();
      });
    }
  }

  onClientBody(chunk: Buffer): void {
    this.consumeBody(chunk);
    if (!this.wantsBody && this.resDone) this.finish();
    else if (this.wantsBody && this.bodyTimer === null && !this.finished) this.armBodyDeadline();
  }

  /**
   * A body that arrives over several reads must keep an average rate: it is
   * cut off `timeouts.client` after the head plus one second per
   * MIN_BODY_RATE bytes received (so a body dribbled just fast enough to
   * dodge the inactivity timer still ends, while a slow but steady upload
   * does not). Armed only for bodies that do not arrive at once.
   */
  private armBodyDeadline(): void {
    const limit = (this.backend as RuntimeBackend).config.timeouts.client;
    const deadline = this.t0 + limit + (this.bytesIn / MIN_BODY_RATE) * 1000;
    const wait = deadline - performance.now();
    if (wait <= 0) {
      this.failClient('CORRAL_ERR_CLIENT_TIMEOUT');
      return;
    }
    this.bodyTimer = setTimeout(() => {
      this.bodyTimer = null;
      if (this.finished || !this.wantsBody) return;
      this.armBodyDeadline();
    }, wait);
  }

  onClientEnd(): void {
    if (this.tunnel) {
      // Half-close: pass the FIN on, keep relaying what the server still sends.
      this.tunnelClientEnded = true;
      this.conn?.socket.end();
      return;
    }
    if (this.wantsBody) this.abort('client closed during the request body');
  }

  onClientTimeout(): void {
    if (this.tunnel) {
      this.abort('tunnel idle timeout');
      return;
    }
    if (this.wantsBody && this.conn !== null) {
      // The client stalled its body.
      this.failClient('CORRAL_ERR_CLIENT_TIMEOUT');
      return;
    }
    if (this.resStarted) {
      // The client stopped reading the response.
      this.abort('client timeout while reading the response');
    }
    // Otherwise the wait is on the server, bounded by timeouts.server.
  }

  onClientDrain(): void {
    if (this.conn !== null && !this.resDone) resumeUpstream(this.conn);
  }

  // ---- response ---------------------------------------------------------------

  onUpstreamData(chunk: Buffer, ephemeral: boolean): void {
    this.upstreamBytes += chunk.length;
    this.client.touch();
    if (this.res === null && !this.tunnel) {
      // The head is parsed straight from the read buffer: a small response leaves in one
      // coalesced copy (startResponse), anything else that is kept or written is copied.
      if (this.resBuf === null) {
        this.resBuf = chunk;
        this.ephemeral = ephemeral;
      } else this.resBuf = Buffer.concat([this.resBuf, chunk]);
      this.readResponseHead();
      if (this.ephemeral && this.resBuf !== null) this.resBuf = Buffer.from(this.resBuf);
      this.ephemeral = false;
      return;
    }
    this.ephemeral = ephemeral;
    if (this.tunnel) {
      this.bytesOut += chunk.length;
      if (!this.toClient(chunk)) pauseUpstream(this.conn as UpstreamConnection);
    } else this.forwardBody(chunk, 0);
    this.ephemeral = false;
  }

  /** While set, response bytes being handled are a view of the shared read buffer. */
  private ephemeral = false;

  /** Writes response bytes to the client, through a copy when they are a view of the shared read buffer. */
  private toClient(b: Buffer): boolean {
    return this.ephemeral ? writeCopy(this.client.socket, b) : this.client.socket.write(b);
  }

  private readResponseHead(): void {
    for (;;) {
      const buf = this.resBuf as Buffer;
      const end = findHeadEnd(buf, 0);
      if (end === -1) {
        if (buf.length > MAX_HEAD_BYTES) this.badResponse('response head too large');
        return;
      }
      const parsed = parseResponseHead(buf.toString('latin1', 0, end));
      if (typeof parsed === 'string') {
        this.badResponse('malformed response head');
        return;
      }
      if (parsed.status < 200) {
        if (parsed.status === 101) {
          if (this.upgrade === null || this.wantsBody) this.badResponse('unexpected 101 Switching Protocols');
          else this.startTunnel(parsed, buf, end);
          return;
        }
        // Interim responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients as they are.
        if (this.head.minor === 1) this.toClient(buf.subarray(0, end));
        this.resBuf = end < buf.length ? buf.subarray(end) : null;
        if (this.resBuf === null) return;
        continue;
      }
      this.res = parsed;
      this.resBuf = null;
      this.startResponse(parsed, buf, end);
      return;
    }
  }

  private startResponse(res: ResponseHead, buf: Buffer, bodyStart: number): void {
    const backend = this.backend as RuntimeBackend;
    const server = this.server as RuntimeServer;
    this.tResponse = performance.now() - this.t0;
    const latency = this.client.frontend.latency;
    if (latency !== null) latency.observe(backend.name, server.name, this.tResponse / 1000);
    const noBody = this.head.method === 'HEAD' || res.status === 204 || res.status === 304;
    let framing = '';
    if (noBody) {
      this.resLeft = 0;
      if (res.contentLength !== -1) framing = '';
    } else if (res.chunked) {
      this.resChunks = new ChunkedReader();
      if (this.head.minor === 1) framing = `Transfer-Encoding: chunked${CRLF}`;
      else {
        this.dechunk = true;
        this.client.closeAfter = true;
      }
    } else if (res.contentLength !== -1 && !res.closeDelimited) {
      this.resLeft = res.contentLength;
    } else {
      this.resUntilClose = true;
      this.upstreamReusable = false;
      this.client.closeAfter = true;
    }
    if (res.close || res.minor === 0) this.upstreamReusable = false;
    if (this.wantsBody) {
      // The server answered before the request body was complete: the rest of it cannot be delimited for reuse.
      this.client.closeAfter = true;
      this.upstreamReusable = false;
    }
    // What follows the forwarded header lines: restated framing, configured headers, connection handling.
    let tail = framing + this.extraResponseHeaders(backend, server);
    if (this.client.closeAfter) tail += `Connection: close${CRLF}`;
    else if (this.head.minor === 0) tail += `Connection: keep-alive${CRLF}`;
    tail += CRLF;
    const responses = server.counters.responses;
    const cls = (res.status / 100) | 0;
    responses[cls] = (responses[cls] as number) + 1;
    this.resStarted = true;
    const socket = this.client.socket;
    if (noBody) {
      if (bodyStart < buf.length) this.upstreamReusable = false; // bytes after a bodiless response
      const out = headString(res, tail);
      this.bytesOut += out.length;
      socket.write(out, 'latin1');
      this.responseDone();
      return;
    }
    if (bodyStart < buf.length && !this.dechunk) {
      // Head and the first body bytes leave in one write (one syscall, no writev bookkeeping).
      const end = this.bodyExtent(buf, bodyStart);
      if (end < 0) return;
      const n = end - bodyStart;
      let ok: boolean;
      if (n <= COALESCE_LIMIT) {
        const one = coalesce(res, buf, tail, bodyStart, end);
        this.bytesOut += one.length;
        ok = socket.write(one);
      } else {
        const out = headString(res, tail);
        this.bytesOut += out.length + n;
        socket.write(out, 'latin1');
        ok = this.toClient(buf.subarray(bodyStart, end));
      }
      if (this.bodyComplete) this.responseDone();
      else if (!ok) pauseUpstream(this.conn as UpstreamConnection);
      return;
    }
    const out = headString(res, tail);
    this.bytesOut += out.length;
    socket.write(out, 'latin1');
    if (bodyStart < buf.length) this.forwardBody(buf, bodyStart);
    else if (this.resLeft === 0 && this.resChunks === null && !this.resUntilClose) this.responseDone();
  }

  /** 101 Switching Protocols: forward the head, then relay bytes both ways until either side closes. */
  private startTunnel(res: ResponseHead, buf: Buffer, end: number): void {
    const backend = this.backend as RuntimeBackend;
    const server = this.server as RuntimeServer;
    const conn = this.conn as UpstreamConnection;
    this.tResponse = performance.now() - this.t0;
    this.res = res;
    this.resBuf = null;
    this.tunnel = true;
    this.resStarted = true;
    this.upstreamReusable = false;
    this.client.closeAfter = true;
    const upgrade = res.upgrade !== '' ? res.upgrade : (this.upgrade as string);
    const out = headString(res, `Connection: Upgrade${CRLF}Upgrade: ${upgrade}${CRLF}${this.extraResponseHeaders(backend, server)}${CRLF}`);
    const responses = server.counters.responses;
    responses[1] = responses[1] + 1;
    const socket = this.client.socket;
    this.bytesOut += out.length;
    socket.write(out, 'latin1');
    if (end < buf.length) {
      this.bytesOut += buf.length - end;
      this.toClient(buf.subarray(end));
    }
    const idle = this.client.frontend.config.timeouts.idle;
    this.client.setTimer(idle);
    conn.timeoutMs = 0; // the tunnel's idle timeout replaces the backend's sweep
    conn.socket.setTimeout(idle);
    const early = this.client.takeBuffered();
    if (early !== null) this.onTunnelClientData(early);
    this.client.resumeReads();
  }

  onTunnelClientData(chunk: Buffer): void {
    const conn = this.conn;
    if (conn === null) return;
    this.bytesIn += chunk.length;
    if (!conn.socket.write(chunk)) {
      this.client.pauseReads();
      conn.socket.once('drain', () => {
        if (!this.finished) this.client.resumeReads();
      });
    }
  }

  /** The server closed its side of a tunnel: close the client's once written out. */
  private finishTunnel(): void {
    if (this.finished) return;
    this.finished = true;
    const backend = this.backend as RuntimeBackend;
    const server = this.server as RuntimeServer;
    const conn = this.conn;
    this.conn = null;
    conn?.socket.destroy();
    server.counters.bytesIn += this.bytesIn;
    server.counters.bytesOut += this.bytesOut;
    this.server = null;
    backend.release(server);
    this.logAccess({ status: 101, note: this.tunnelClientEnded ? 'tunnel closed by client' : 'tunnel closed by server' });
    this.client.done();
  }

  /** Server-name header and sticky cookie, as configured. */
  private extraResponseHeaders(backend: RuntimeBackend, server: RuntimeServer): string {
    let out = '';
    const sh = backend.config.serverHeader;
    if (sh !== undefined) out += `${sh}: ${server.name}${CRLF}`;
    if (this.setCookie) {
      const sticky = backend.config.sticky;
      out += `Set-Cookie: ${sticky?.cookie}=${server.stickyValue}; Path=/; HttpOnly; SameSite=Lax${this.client.frontend.proto === 'https' ? '; Secure' : ''}${CRLF}`;
    }
    return out;
  }

  /** Set by `bodyExtent`: the bytes it delimited end the response. */
  private bodyComplete = false;

  /**
   * How much of `buf` from `start` belongs to this response's body, with the
   * framing's bookkeeping done; -1 when the body is malformed (already
   * handled). Bytes past the end mean the connection cannot be reused.
   */
  private bodyExtent(buf: Buffer, start: number): number {
    let end = buf.length;
    this.bodyComplete = false;
    if (this.resChunks !== null) {
      const r = this.resChunks.feed(buf, start, end);
      if (r === CHUNKED_ERROR) {
        this.badResponse('malformed chunked response body');
        return -1;
      }
      if (r !== CHUNKED_NEED_MORE) {
        if (r < end) this.upstreamReusable = false;
        end = r;
        this.bodyComplete = true;
      }
    } else if (!this.resUntilClose) {
      const n = Math.min(this.resLeft, end - start);
      if (n < end - start) this.upstreamReusable = false;
      end = start + n;
      this.resLeft -= n;
      this.bodyComplete = this.resLeft === 0;
    }
    return end;
  }

  private forwardBody(buf: Buffer, start: number): void {
    if (this.resDone) {
      // A second response, or bytes after the end of this one.
      this.upstreamReusable = false;
      return;
    }
    const socket = this.client.socket;
    if (this.resChunks !== null) {
      if (this.dechunk) {
        let complete = false;
        const end = buf.length;
        const r = this.resChunks.feed(buf, start, end, (b, s, e) => {
          this.bytesOut += e - s;
          this.toClient(b.subarray(s, e));
        });
        if (r === CHUNKED_ERROR) {
          this.badResponse('malformed chunked response body');
          return;
        }
        if (r !== CHUNKED_NEED_MORE) {
          if (r < end) this.upstreamReusable = false;
          complete = true;
        }
        if (complete) this.responseDone();
        else if (socket.writableNeedDrain) pauseUpstream(this.conn as UpstreamConnection);
        return;
      }
    }
    const end = this.bodyExtent(buf, start);
    if (end < 0) return;
    this.bytesOut += end - start;
    const ok = this.toClient(start === 0 && end === buf.length ? buf : buf.subarray(start, end));
    if (this.bodyComplete) this.responseDone();
    else if (!ok) pauseUpstream(this.conn as UpstreamConnection);
  }

  private responseDone(): void {
    this.resDone = true;
    if (!this.wantsBody) this.finish();
    else {
      // Stop waiting for a body the server no longer wants.
      this.client.closeAfter = true;
      this.finish();
    }
  }

  onUpstreamEnd(): void {
    const conn = this.conn as UpstreamConnection;
    conn.owner = null;
    if (this.tunnel) {
      this.finishTunnel();
      return;
    }
    this.upstreamReusable = false;
    if (this.res !== null && this.resUntilClose) {
      this.responseDone();
      return;
    }
    this.upstreamFailed('CORRAL_ERR_SERVER_FAILED', 'server closed the connection');
  }

  onUpstreamError(err: Error): void {
    const conn = this.conn as UpstreamConnection;
    conn.owner = null;
    if (this.tunnel) {
      this.abort(`tunnel: ${err.message}`);
      return;
    }
    this.upstreamReusable = false;
    if (this.res !== null && this.resUntilClose && !this.resDone) {
      this.responseDone();
      return;
    }
    this.upstreamFailed('CORRAL_ERR_SERVER_FAILED', err.message);
  }

  onUpstreamTimeout(): void {
    if (this.tunnel) {
      this.abort('tunnel idle timeout');
      return;
    }
    this.upstreamReusable = false;
    this.upstreamFailed('CORRAL_ERR_SERVER_TIMEOUT', 'server timeout');
  }

  private badResponse(reason: string): void {
    this.upstreamReusable = false;
    const server = this.server as RuntimeServer;
    server.counters.failures++;
    this.backend?.observe?.(server, '5xx');
    if (this.resStarted) this.abort(reason);
    else this.fail('CORRAL_ERR_BAD_RESPONSE', `${server.name}: ${reason}`);
  }

  private upstreamFailed(code: ErrorCode, reason: string): void {
    if (this.finished) return;
    const server = this.server as RuntimeServer;
    if (this.resStarted) {
      server.counters.failures++;
      this.abort(`${server.name}: ${reason} after the response started`);
      return;
    }
    if (code === 'CORRAL_ERR_SERVER_TIMEOUT') {
      server.counters.failures++;
      this.backend?.observe?.(server, '5xx');
      this.fail(code, `${server.name}: ${reason}`);
      return;
    }
    if (this.upstreamBytes === 0) {
      const reused = this.conn !== null && this.conn.uses > 0;
      if (!reused) server.counters.failures++;
      this.retryOrFail(code, reason, false);
      return;
    }
    server.counters.failures++;
    this.fail(code, `${server.name}: ${reason}`);
  }

  // ---- endings ------------------------------------------------------------------

  /** Drops the upstream connection without returning it to the pool. */
  private dropUpstream(): void {
    const conn = this.conn;
    if (conn === null) return;
    this.conn = null;
    conn.owner = null;
    conn.socket.destroy();
  }

  /** The exchange completed normally. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.bodyTimer !== null) {
      clearTimeout(this.bodyTimer);
      this.bodyTimer = null;
    }
    const backend = this.backend as RuntimeBackend;
    const server = this.server as RuntimeServer;
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) {
      if (this.upstreamReusable && !conn.socket.destroyed) {
        resumeUpstream(conn);
        backend.putIdle(conn);
      } else {
        conn.owner = null;
        conn.socket.destroy();
      }
    }
    server.counters.bytesIn += this.bytesIn;
    server.counters.bytesOut += this.bytesOut;
    const status = (this.res as ResponseHead).status;
    backend.observe?.(server, status >= 500 ? '5xx' : 'ok');
    backend.release(server);
    this.logAccess({ status });
    this.client.done();
  }

  /** Answers the client with an error (no response byte has been sent yet). */
  private fail(code: ErrorCode, note?: string): void {
    if (this.finished) return;
    this.finished = true;
    this.cleanup();
    if (this.wantsBody) this.client.closeAfter = true;
    const close = this.client.closeAfter;
    if (!this.client.socket.destroyed) {
      const body = errorResponse(code, close);
      this.bytesOut += body.length;
      this.client.socket.write(body);
    }
    this.logAccess({ status: ERROR_CODES[code].status, error: code, note });
    this.client.done();
  }

  /** A client error during the body (408, malformed chunk): answer if possible, then close. */
  private failClient(code: ErrorCode): void {
    if (this.resStarted) {
      this.abort(ERROR_CODES[code].doc);
      return;
    }
    this.client.closeAfter = true;
    this.wantsBody = false;
    this.fail(code);
  }

  /** The exchange cannot complete (client gone, failure mid-response): close both sides. */
  abort(reason: string): void {
    if (this.finished) return;
    this.finished = true;
    this.cleanup();
    this.client.closeAfter = true;
    this.client.socket.destroy();
    this.logAccess({ status: this.res?.status ?? 0, note: reason });
    this.client.done();
  }

  private cleanup(): void {
    if (this.bodyTimer !== null) {
      clearTimeout(this.bodyTimer);
      this.bodyTimer = null;
    }
    const backend = this.backend;
    if (this.waiter !== null && backend !== null) {
      backend.cancel(this.waiter);
      this.waiter = null;
    }
    this.dropUpstream();
    const server = this.server;
    if (server !== null && backend !== null) {
      server.counters.bytesIn += this.bytesIn;
      server.counters.bytesOut += this.bytesOut;
      this.server = null;
      backend.release(server);
    }
  }

  private logAccess(outcome: Outcome): void {
    const fe = this.client.frontend;
    if (!fe.accessLog) return;
    const now = performance.now();
    fe.accessLogger.info(
      {
        type: 'access',
        frontend: fe.config.name,
        backend: this.backend?.name,
        server: this.server?.name ?? null,
        client: displayIp(this.client.ip),
        method: this.head.method,
        path: this.head.target,
        status: outcome.status,
        bytesIn: this.bytesIn,
        bytesOut: this.bytesOut,
        retries: Math.max(0, this.attempts - 1),
        queueMs: this.tQueue < 0 ? 0 : round(this.tQueue),
        connectMs: this.tConnect < 0 ? 0 : round(this.tConnect),
        responseMs: this.tResponse < 0 ? null : round(this.tResponse),
        totalMs: round(now - this.t0),
        ...(outcome.error !== undefined ? { error: outcome.error } : {}),
        ...(outcome.note !== undefined ? { note: outcome.note } : {}),
      },
      'request',
    );
  }

  // ---- request head ---------------------------------------------------------------

  /** The head sent upstream: hop-by-hop fields removed, forwarding fields applied, framing restated. */
  private buildRequestHead(backend: RuntimeBackend): string {
    const head = this.head;
    const fe = this.client.frontend;
    const forward = backend.config.forwardFor;
    // Nothing to remove, restate or add: the head goes upstream as it came.
    if (!forward && this.upgrade === null && head.special.length === 0 && head.minor === 1 && head.host !== '' && head.hostLine === '' && !head.chunked) {
      return head.text;
    }
    const trusted = forward && fe.trusted.has(this.client.ip);
    let out = `${head.method} ${head.target} HTTP/1.1${CRLF}${forwardedLines(head, forward)}`;
    if (head.hostLine !== '') out += head.hostLine + CRLF;
    let xff = '';
    let xfp = '';
    let xfh = '';
    let fwd = '';
    if (forward && trusted) {
      for (const sp of head.special) {
        switch (sp.kind) {
          case Special.XForwardedFor:
            xff = xff === '' ? sp.value : `${xff}, ${sp.value}`;
            break;
          case Special.XForwardedProto:
            if (xfp === '') xfp = sp.value;
            break;
          case Special.XForwardedHost:
            if (xfh === '') xfh = sp.value;
            break;
          case Special.Forwarded:
            fwd = fwd === '' ? sp.value : `${fwd}, ${sp.value}`;
            break;
          default:
            break;
        }
      }
    }
    if (this.upgrade !== null) out += `Connection: Upgrade${CRLF}Upgrade: ${this.upgrade}${CRLF}`;
    // An HTTP/1.0 request without Host goes out as HTTP/1.1, which requires one (RFC 9112 §3.2: empty when unknown).
    if (head.host === '') out += `Host: ${CRLF}`;
    if (head.chunked) out += `Transfer-Encoding: chunked${CRLF}`;
    if (forward) {
      const ip = displayIp(this.client.ip);
      const proto = fe.proto;
      out += `X-Forwarded-For: ${xff === '' ? ip : `${xff}, ${ip}`}${CRLF}`;
      out += `X-Forwarded-Proto: ${xfp === '' ? proto : xfp}${CRLF}`;
      if (head.host !== '' || xfh !== '') out += `X-Forwarded-Host: ${xfh === '' ? head.host : xfh}${CRLF}`;
      const element = forwardedElement(ip, head.host, proto);
      out += `Forwarded: ${fwd === '' ? element : `${fwd}, ${element}`}${CRLF}`;
    }
    return out + CRLF;
  }
}

/** The status line Corral sends: always HTTP/1.1. */
function statusLine(res: ResponseHead): string {
  return `HTTP/1.1 ${res.status} ${res.reason}${CRLF}`;
}

/** The response head as forwarded, as a string: status line, kept lines, then `tail`. */
function headString(res: ResponseHead, tail: string): string {
  return statusLine(res) + forwardedLines(res, false) + tail;
}

/**
 * A small response in one buffer: the head as forwarded (its lines minus the
 * hop-by-hop ones, then `tail`) and body bytes [bodyStart, end) of `buf`,
 * copied from the bytes received rather than rebuilt as a string. An HTTP/1.1
 * status line is kept as received; an HTTP/1.0 one is restated.
 */
function coalesce(res: ResponseHead, buf: Buffer, tail: string, bodyStart: number, end: number): Buffer {
  const first = res.minor === 1 ? '' : statusLine(res);
  const from = res.minor === 1 ? 0 : res.fieldsStart;
  const fieldsEnd = res.text.length - 2; // past the last header line's CRLF
  let len = first.length + (res.fieldsStart - from) + tail.length + (end - bodyStart);
  let at = res.fieldsStart;
  for (const sp of res.special) {
    if (sp.kind !== Special.HopByHop) continue;
    len += sp.start - at;
    at = sp.next;
  }
  len += fieldsEnd - at;
  const one = Buffer.allocUnsafe(len);
  let w = first === '' ? buf.copy(one, 0, 0, res.fieldsStart) : one.write(first, 0, 'latin1');
  at = res.fieldsStart;
  for (const sp of res.special) {
    if (sp.kind !== Special.HopByHop) continue;
    if (sp.start > at) w += buf.copy(one, w, at, sp.start);
    at = sp.next;
  }
  if (fieldsEnd > at) w += buf.copy(one, w, at, fieldsEnd);
  w += one.write(tail, w, 'latin1');
  buf.copy(one, w, bodyStart, end);
  return one;
}

function pauseUpstream(conn: UpstreamConnection): void {
  if (conn.paused) return;
  conn.paused = true;
  conn.socket.pause();
}

function resumeUpstream(conn: UpstreamConnection): void {
  if (!conn.paused) return;
  conn.paused = false;
  conn.socket.resume();
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Value of cookie `name` in the request's Cookie header(s), or undefined. */
export function cookieOf(head: RequestHead, name: string): string | undefined {
  for (const h of head.headers) {
    if (h.name !== 'cookie') continue;
    const v = h.value;
    let i = 0;
    while (i < v.length) {
      let semi = v.indexOf(';', i);
      if (semi === -1) semi = v.length;
      let s = i;
      while (s < semi && (v.charCodeAt(s) === 32 || v.charCodeAt(s) === 9)) s++;
      if (v.startsWith(name, s) && v.charCodeAt(s + name.length) === 61 /* = */) {
        let value = v.slice(s + name.length + 1, semi).trim();
        if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
        return value;
      }
      i = semi + 1;
    }
  }
  return undefined;
}

/** The key `balance: hash` hashes for this request, per `hashOn`. */
function hashKeyOf(backend: RuntimeBackend, head: RequestHead): string | undefined {
  const on = backend.config.hashOn;
  if (on === undefined) return undefined;
  switch (on.kind) {
    case 'header': {
      const name = on.name.toLowerCase();
      for (const h of head.headers) if (h.name === name) return h.value;
      return undefined;
    }
    case 'cookie':
      return cookieOf(head, on.name);
    case 'path': {
      const q = head.target.indexOf('?');
      return q === -1 ? head.target : head.target.slice(0, q);
    }
    case 'query': {
      const q = head.target.indexOf('?');
      if (q === -1) return undefined;
      const params = new URLSearchParams(head.target.slice(q + 1));
      return params.get(on.name) ?? undefined;
    }
  }
}

/**
 * An authenticated, encrypted connection between session peers (or a client
 * and a peer), over TCP.
 *
 * Handshake (both sides prove they hold `cluster.key`; nonces both ways make
 * every connection's keys fresh):
 *
 *   C → S  "CRS2" role u8  nonceC[32]  idLen u16 id
 *   S → C  "CRS2"          nonceS[32]  HMAC(auth, "S" role nonceC nonceS idS idC)[32]  idLen u16 idS
 *   C → S                  HMAC(auth, "C" role nonceC nonceS idC idS)[32]
 *   S → C  "TLS!"          (the client's proof holds: start TLS)
 *
 * with auth = HKDF(cluster.key, "handshake"); ids inside the HMACs carry their
 * u16 length, so no byte can move from one id to the other, and the role byte
 * is covered: nothing sent in clear can be changed unnoticed. Then TLS 1.2
 * with a pre-shared key and no certificates (PSK-AES256-GCM-SHA384), the key being
 * HKDF(cluster.key, salt nonceC‖nonceS, "tls-psk"): new for every connection
 * and known only to holders of cluster.key (its PSK identity: both nonces,
 * base64url). TLS keeps one AES-GCM context per direction and numbers its
 * records, so a tampered, replayed, dropped or reordered record fails
 * authentication. Inside TLS, frames are `len u32 ‖ messages`. A record that
 * fails authentication, an oversized length or a malformed message closes
 * this connection only.
 *
 * (TLS rather than sealing each frame here: Node's crypto API sets up a new
 * AES-GCM context, several buffers and a dozen calls into C++ per sealed
 * frame, which cost about a quarter of the CPU of a replicated set.)
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { deriveKey, hmac, nonce, sameBytes } from './crypto.js';
import { SessionError } from './errors.js';
import { IdTable } from './id-table.js';
import { decodeAll, encodeInto, sizeOf, T, WireError, type Msg } from './wire.js';

const MAGIC = Buffer.from('CRS2');
/** The server's go-ahead once the client's proof holds; nothing else is sent in clear after it. */
const START_TLS = Buffer.from('TLS!');
const TLS_OPTIONS = { ciphers: 'PSK-AES256-GCM-SHA384', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;

/** An error raised by TLS (a record that fails authentication, an alert, a malformed record, a renegotiation). */
function isTlsError(e: Error): boolean {
  const x = e as Error & { code?: unknown; library?: unknown };
  return x.library === 'SSL routines' || (typeof x.code === 'string' && (x.code.startsWith('ERR_SSL_') || x.code.startsWith('ERR_TLS_')));
}

/**
 * The server side of TLS for every accepted connection of this process. Sockets are handed to it after our own
 * handshake; each names its pre-shared key by an identity made of both nonces (the server's is fresh, so no two
 * connections share one), and a key is given only to the TCP connection it was made for. (A bare server-side
 * TLSSocket would do the same, but it reports record errors only through a tls.Server.)
 */
interface TlsWaiter {
  readonly psk: Buffer;
  /** The TCP connection's remote address and port: a TLS socket from elsewhere gets neither the key nor the waiter. */
  readonly remote: string;
  resolve(t: Socket): void;
  reject(e: Error): void;
}
const tlsWaiters = new Map<string, TlsWaiter>();
const identityOf = new WeakMap<object, string>();
const remoteOf = (s: Socket): string => `${s.remoteAddress ?? ''}:${s.remotePort ?? ''}`;
let tlsServer: TlsServer | undefined;

/** The waiter a TLS socket (server side) was given a key for, removed from the map. */
function takeWaiter(t: Socket): TlsWaiter | undefined {
  const id = identityOf.get(t);
  const w = id === undefined ? undefined : tlsWaiters.get(id);
  if (id === undefined || w === undefined || w.remote !== remoteOf(t)) return undefined;
  tlsWaiters.delete(id);
  return w;
}

function sharedTlsServer(): TlsServer {
  if (tlsServer !== undefined) return tlsServer;
  tlsServer = createTlsServer({
    ...TLS_OPTIONS,
    pskCallback: (socket, identity) => {
      const w = tlsWaiters.get(identity);
      if (w === undefined || w.remote !== remoteOf(socket)) return null;
      identityOf.set(socket, identity);
      return w.psk;
    },
  });
  tlsServer.on('secureConnection', (t) => {
    const w = takeWaiter(t);
    if (w !== undefined) w.resolve(t);
    else t.destroy();
  });
  tlsServer.on('tlsClientError', (err, t) => {
    takeWaiter(t)?.reject(err);
    t.destroy();
  });
  return tlsServer;
}

/** Starts TLS on a socket whose handshake just completed (`identity`: both nonces, base64url: 86 bytes, under TLS's 128); resolves once TLS is up. */
function startTls(socket: Socket, psk: Buffer, identity: string, server: boolean): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const fail = (e: Error): void => reject(new SessionError('CORRAL_ERR_SESSION_AUTH', `TLS with the peer failed: ${e.message}`, { cause: e }));
    if (server) {
      if (tlsWaiters.has(identity)) {
        reject(new SessionError('CORRAL_ERR_SESSION_PROTOCOL', 'a TLS key is already waiting under this identity'));
        return;
      }
      const w: TlsWaiter = { psk, remote: remoteOf(socket), resolve, reject: fail };
      tlsWaiters.set(identity, w);
      // the raw socket closing first (a client gone mid-handshake) must not leave a waiter behind
      socket.once('close', () => {
        if (tlsWaiters.get(identity) === w) {
          tlsWaiters.delete(identity);
          fail(new Error('connection closed during the TLS handshake'));
        }
      });
      // handed over in the same tick as the handshake's last read: no byte of the TLS handshake can be missed
      sharedTlsServer().emit('connection', socket);
      return;
    }
    const t = tlsConnect({ ...TLS_OPTIONS, socket, pskCallback: () => ({ psk, identity }), checkServerIdentity: () => undefined });
    t.once('error', fail);
    t.once('secureConnect', () => {
      t.off('error', fail);
      resolve(t);
    });
  });
}

const BATCH = 64 * 1024;
/** Request timeouts are checked this often (so they fire up to this late). */
const SWEEP_MS = 50;

export type Role = 'client' | 'peer';

/** Process-wide wire counters (cheap; read by stats and the benchmark). */
export const wireCounters = { flushes: 0, frames: 0, messages: 0, framesIn: 0 };

export interface ConnectionOptions {
  /** The shared secret (`cluster.key`). */
  readonly key: string;
  /** This side's id (a node's `host:port`, or a client label). */
  readonly id: string;
  readonly role: Role;
  /** Largest frame accepted (bytes); default 1 MiB + 64 KiB. */
  readonly maxFrameBytes?: number;
  /** Bound on the handshake (default 2 s). */
  readonly handshakeTimeout?: number;
}

export interface StreamHandler {
  item(m: Msg): void;
}

/** Per message of a flush: its encoded size, then the byte lengths of k, v and s (reused: flushes never nest). */
let flushScratch = new Int32Array(4 * 256);

interface Pending {
  /** Called once: with the response (or a stream's END), or with the error that ended the request. */
  done(err: Error | undefined, m: Msg | undefined): void;
  /** performance.now() after which the request fails; Infinity for none. */
  deadline: number;
  timeoutMs: number;
  stream: StreamHandler | undefined;
  /** On the wire (not held in the send queue by the window). */
  sent: boolean;
}

/** Reads exactly what the handshake needs from a socket, bounded in time. */
class HandshakeReader {
  #buf: Buffer = Buffer.alloc(0);
  #want = 0;
  #resolve: ((b: Buffer) => void) | undefined;
  #reject: ((e: Error) => void) | undefined;
  readonly #onData = (d: Buffer): void => {
    this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
    this.#pump();
  };
  readonly #onEnd = (): void => this.#fail(new SessionError('CORRAL_ERR_SESSION_AUTH', 'connection closed during the handshake'));
  constructor(readonly socket: Socket) {
    socket.on('data', this.#onData);
    socket.on('close', this.#onEnd);
  }
  #fail(e: Error): void {
    const r = this.#reject;
    this.#resolve = this.#reject = undefined;
    r?.(e);
  }
  #pump(): void {
    if (this.#resolve !== undefined && this.#buf.length >= this.#want) {
      const out = this.#buf.subarray(0, this.#want);
      this.#buf = this.#buf.subarray(this.#want);
      const r = this.#resolve;
      this.#resolve = this.#reject = undefined;
      r(out);
    }
  }
  read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.#want = n;
      this.#resolve = resolve;
      this.#reject = reject;
      if (this.socket.destroyed) this.#onEnd();
      else this.#pump();
    });
  }
  /** Stops reading; returns bytes that arrived past the handshake. */
  detach(): Buffer {
    this.socket.off('data', this.#onData);
    this.socket.off('close', this.#onEnd);
    return this.#buf;
  }
}

function idBytes(id: string): Buffer {
  const b = Buffer.from(id);
  const out = Buffer.alloc(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

async function readId(r: HandshakeReader): Promise<string> {
  const len = (await r.read(2)).readUInt16BE(0);
  if (len > 512) throw new SessionError('CORRAL_ERR_SESSION_PROTOCOL', 'handshake id too long');
  return (await r.read(len)).toString();
}

function withTimeout<T>(p: Promise<T>, ms: number, socket: Socket, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new SessionError('CORRAL_ERR_SESSION_TIMEOUT', `${what} did not complete within ${ms} ms`));
    }, ms);
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e: unknown) => (clearTimeout(timer), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}

export class SecureConnection extends EventEmitter<{ message: [Msg]; close: [Error | undefined] }> {
  readonly socket: Socket;
  readonly remoteId: string;
  readonly remoteRole: Role;
  readonly #maxFrame: number;
  #chunks: Buffer[] = [];
  #have = 0;
  #out: Msg[] = [];
  #scheduled = false;
  #nextId = 1;
  /**
   * Where request ids come from: this connection's own counter, or one shared
   * by every connection of a client (so a response may arrive on another
   * connection than its request: a replica answering a write directly).
   */
  idSource: (() => number) | undefined;
  /** Called with a response whose request is not pending on this connection. */
  onStray: ((m: Msg) => void) | undefined;
  readonly #pending = new IdTable<Pending>();
  /**
   * A client's send window: while this many requests are on the wire
   * unanswered, new ones wait in the queue and leave together once an answer
   * arrives or one of them times out (0: no window, every tick flushes).
   * Streams and requests without a deadline are not counted. Under load this turns many
   * small frames into few large ones; each frame costs a seal, an open, a
   * write, a read and usually a wake-up on both sides, far more than a
   * message. An idle connection sends at once, so light load waits for nothing.
   */
  sendWindow = 0;
  #unanswered = 0;
  #holding = false;
  #closed = false;
  #started = false;
  #sweeper: NodeJS.Timeout | undefined;
  #closeError: Error | undefined;
  /** ms timestamp of the last frame received. */
  lastHeard = Date.now();

  /** `socket`: the TLS socket, up. */
  private constructor(socket: Socket, remoteId: string, remoteRole: Role, maxFrame: number) {
    super();
    this.socket = socket;
    this.remoteId = remoteId;
    this.remoteRole = remoteRole;
    this.#maxFrame = maxFrame;
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', (e) =>
      this.close(isTlsError(e) ? new SessionError('CORRAL_ERR_SESSION_PROTOCOL', `${remoteId}: record failed authentication (tampered, replayed or reordered) or malformed: ${e.message}; connection closed`, { cause: e }) : e),
    );
    socket.on('close', () => this.close());
  }

  /** Starts delivering messages; call it once the 'message' listener is attached. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#pump();
  }

  /** Dials `host:port` and runs the client side of the handshake. */
  static async connect(host: string, port: number, options: ConnectionOptions): Promise<SecureConnection> {
    const timeout = options.handshakeTimeout ?? 2000;
    const socket = netConnect({ host, port });
    socket.setNoDelay(true);
    socket.on('error', () => {});
    const reader = new HandshakeReader(socket);
    const run = async (): Promise<SecureConnection> => {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', (e) => reject(new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', `${host}:${port}: ${e.message}`, { cause: e })));
      });
      const auth = deriveKey(options.key, 'handshake');
      const nc = nonce();
      socket.write(Buffer.concat([MAGIC, Buffer.from([options.role === 'peer' ? 1 : 0]), nc, idBytes(options.id)]));
      const head = await reader.read(4 + 32 + 32);
      if (!head.subarray(0, 4).equals(MAGIC)) throw new SessionError('CORRAL_ERR_SESSION_PROTOCOL', `${host}:${port} is not a corral session peer`);
      const ns = Buffer.from(head.subarray(4, 36));
      const proof = head.subarray(36, 68);
      const serverId = await readId(reader);
      const role = Buffer.from([options.role === 'peer' ? 1 : 0]);
      if (!sameBytes(proof, hmac(auth, 'S', role, nc, ns, idBytes(serverId), idBytes(options.id)))) {
        throw new SessionError('CORRAL_ERR_SESSION_AUTH', `${host}:${port} did not prove it holds cluster.key (different keys?)`);
      }
      socket.write(hmac(auth, 'C', role, nc, ns, idBytes(options.id), idBytes(serverId)));
      if (!(await reader.read(START_TLS.length)).equals(START_TLS)) throw new SessionError('CORRAL_ERR_SESSION_PROTOCOL', `${host}:${port} did not start TLS`);
      if (reader.detach().length > 0) throw new SessionError('CORRAL_ERR_SESSION_PROTOCOL', `${host}:${port} sent bytes before TLS`);
      const salt = Buffer.concat([nc, ns]);
      const psk = deriveKey(options.key, 'tls-psk', salt);
      const tls = await startTls(socket, psk, salt.toString('base64url'), false);
      return new SecureConnection(tls, serverId, 'peer', options.maxFrameBytes ?? 1024 * 1024 + BATCH);
    };
    try {
      return await withTimeout(run(), timeout, socket, `handshake with ${host}:${port}`);
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /** Runs the server side of the handshake on an accepted socket. */
  static async accept(socket: Socket, options: ConnectionOptions): Promise<SecureConnection> {
    const timeout = options.handshakeTimeout ?? 2000;
    socket.setNoDelay(true);
    socket.on('error', () => {});
    const reader = new HandshakeReader(socket);
    const run = async (): Promise<SecureConnection> => {
      const head = await reader.read(4 + 1 + 32);
      if (!head.subarray(0, 4).equals(MAGIC)) throw new SessionError('CORRAL_ERR_SESSION_PROTOCOL', 'not a corral session handshake');
      const role: Role = head[4] === 1 ? 'peer' : 'client';
      const nc = Buffer.from(head.subarray(5, 37));
      const clientId = await readId(reader);
      const auth = deriveKey(options.key, 'handshake');
      const ns = nonce();
      const roleByte = Buffer.from(head.subarray(4, 5));
      socket.write(Buffer.concat([MAGIC, ns, hmac(auth, 'S', roleByte, nc, ns, idBytes(options.id), idBytes(clientId)), idBytes(options.id)]));
      const proof = await reader.read(32);
      if (!sameBytes(proof, hmac(auth, 'C', roleByte, nc, ns, idBytes(clientId), idBytes(options.id)))) {
        throw new SessionError('CORRAL_ERR_SESSION_AUTH', `client ${clientId} did not prove it holds cluster.key`);
      }
      // the client waits for START_TLS before it sends anything more
      if (reader.detach().length > 0) throw new SessionError('CORRAL_ERR_SESSION_PROTOCOL', `client ${clientId} sent bytes before TLS`);
      socket.write(START_TLS);
      const salt = Buffer.concat([nc, ns]);
      const psk = deriveKey(options.key, 'tls-psk', salt);
      const tls = await startTls(socket, psk, salt.toString('base64url'), true);
      return new SecureConnection(tls, clientId, role, options.maxFrameBytes ?? 1024 * 1024 + BATCH);
    };
    try {
      return await withTimeout(run(), timeout, socket, 'handshake');
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True while the socket's buffer is over its high-water mark. */
  get congested(): boolean {
    return this.socket.writableNeedDrain;
  }

  drained(): Promise<void> {
    if (!this.socket.writableNeedDrain || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.on('close', done);
    });
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.#chunks);
      out = all.subarray(0, n);
      this.#chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.#have -= n;
    return out;
  }

  #peekLength(): number {
    const first = this.#chunks[0] as Buffer;
    if (first.length >= 4) return first.readUInt32BE(0);
    const all = Buffer.concat(this.#chunks);
    this.#chunks = [all];
    return all.readUInt32BE(0);
  }

  #onData(d: Buffer): void {
    if (this.#closed) return;
    this.#chunks.push(d);
    this.#have += d.length;
    this.lastHeard = Date.now();
    if (this.#started) this.#pump();
  }

  #pump(): void {
    const msgs: Msg[] = [];
    while (this.#have >= 4) {
      const len = this.#peekLength();
      if (len > this.#maxFrame) return this.#protocolError(`frame of ${len} bytes exceeds the limit of ${this.#maxFrame}`);
      if (this.#have < 4 + len) break;
      const frame = this.#take(4 + len).subarray(4);
      try {
        decodeAll(frame, msgs);
      } catch (e) {
        return this.#protocolError(e instanceof WireError ? e.message : 'malformed frame');
      }
    }
    for (const m of msgs) {
      if (this.#closed) return;
      if (m.t >= 128) this.#onResponse(m);
      else this.emit('message', m);
    }
  }

  #protocolError(reason: string): void {
    this.close(new SessionError('CORRAL_ERR_SESSION_PROTOCOL', `${this.remoteId}: ${reason}; connection closed`));
  }

  #onResponse(m: Msg): void {
    const p = this.#pending.get(m.id);
    if (p === undefined) {
      // timed out earlier, or the answer to a request sent on another connection
      this.onStray?.(m);
      return;
    }
    if (m.t === T.R_ITEM && p.stream !== undefined) {
      p.stream.item(m);
      return;
    }
    this.#pending.delete(m.id);
    this.#answered(p);
    p.done(undefined, m);
  }

  /** Resolves the pending request `m` answers; false when none is pending here. */
  settle(m: Msg): boolean {
    const p = this.#pending.get(m.id);
    if (p === undefined || (m.t === T.R_ITEM && p.stream !== undefined)) return false;
    this.#pending.delete(m.id);
    this.#answered(p);
    p.done(undefined, m);
    return true;
  }

  /** A request left the pending set: reopens the window if it was on the wire. */
  #answered(p: Pending): void {
    if (!p.sent) return;
    p.sent = false;
    this.#unanswered--;
    if (this.#holding && this.#unanswered < this.sendWindow) {
      this.#holding = false;
      this.#schedule();
    }
  }

  #schedule(): void {
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  /** Queues a message; messages queued in the same tick leave in one frame. */
  send(m: Msg): void {
    if (this.#closed) return;
    this.#out.push(m);
    if (!this.#holding) this.#schedule();
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.sendWindow > 0 && this.#unanswered >= this.sendWindow) {
      // the window is full: everything queued leaves with the next answer
      this.#holding = true;
      return;
    }
    const out = this.#out;
    this.#out = [];
    if (this.#closed || out.length === 0) return;
    if (this.sendWindow > 0) {
      for (const m of out) {
        const p = m.t < 128 ? this.#pending.get(m.id) : undefined;
        // A stream holds its request open while items flow, and a request without a deadline may never be
        // answered: neither counts, or either could close the window for good.
        if (p !== undefined && !p.sent && p.stream === undefined && p.deadline !== Infinity) {
          p.sent = true;
          this.#unanswered++;
        }
      }
    }
    wireCounters.flushes++;
    wireCounters.messages += out.length;
    if (flushScratch.length < out.length * 4) flushScratch = new Int32Array(out.length * 8);
    const sc = flushScratch;
    // Frames of at most BATCH bytes of messages (a single larger message gets a frame of its own), all in one write;
    // the buffer has room for a header per message, the most there can be.
    let room = 0;
    for (let x = 0; x < out.length; x++) room += 4 + (sc[x * 4] = sizeOf(out[x] as Msg, sc, x * 4 + 1));
    const buf = Buffer.allocUnsafe(room);
    let off = 0;
    let frames = 0;
    for (let i = 0; i < out.length; frames++) {
      const at = off;
      off = encodeInto(out[i] as Msg, sc, i * 4 + 1, buf, off + 4);
      let total = sc[i * 4] as number;
      for (i++; i < out.length && total + (sc[i * 4] as number) <= BATCH; i++) {
        total += sc[i * 4] as number;
        off = encodeInto(out[i] as Msg, sc, i * 4 + 1, buf, off);
      }
      buf.writeUInt32BE(total, at);
    }
    wireCounters.frames += frames;
    this.socket.write(off === room ? buf : buf.subarray(0, off));
  }

  /** Sends a request and resolves with its response (or the END of a stream); rejects on timeout or close. */
  request(m: Msg, timeoutMs: number, stream?: StreamHandler): Promise<Msg> {
    return new Promise<Msg>((resolve, reject) => this.#register(m, timeoutMs, stream, (err, r) => (err !== undefined ? reject(err) : resolve(r as Msg))));
  }

  /** `request` with a callback instead of a promise (the client's common path: no promise at all here). */
  call(m: Msg, timeoutMs: number, cb: (err: Error | undefined, r: Msg | undefined) => void): void {
    this.#register(m, timeoutMs, undefined, cb);
  }

  #register(m: Msg, timeoutMs: number, stream: StreamHandler | undefined, done: (err: Error | undefined, r: Msg | undefined) => void): void {
    if (this.#closed) {
      done(this.#closeError instanceof SessionError ? this.#closeError : new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', `connection to ${this.remoteId} is closed`), undefined);
      return;
    }
    this.start();
    let id: number;
    if (this.idSource !== undefined) id = this.idSource();
    else {
      id = this.#nextId;
      this.#nextId = this.#nextId >= 0xfffffff0 ? 1 : this.#nextId + 1;
    }
    m.id = id;
    const finite = timeoutMs > 0 && Number.isFinite(timeoutMs);
    this.#pending.set(id, { done, deadline: finite ? performance.now() + timeoutMs : Infinity, timeoutMs, stream, sent: false });
    if (finite && this.#sweeper === undefined) {
      // One coarse timer per connection instead of one per request (timer churn costs more than the requests).
      this.#sweeper = setInterval(() => this.#expire(), SWEEP_MS);
      this.#sweeper.unref();
    }
    this.send(m);
  }

  #expire(): void {
    const now = performance.now();
    for (const [id, p] of this.#pending.entries()) {
      // a callback run earlier in this walk may have ended this request already
      if (p.deadline > now || !this.#pending.delete(id)) continue;
      if (p.sent) this.#answered(p);
      // Still held by the window: it never left and now never will (the caller may retry it elsewhere).
      else if (this.#holding) this.#out = this.#out.filter((m) => m.id !== id || m.t >= 128);
      p.done(new SessionError('CORRAL_ERR_SESSION_TIMEOUT', `${this.remoteId} did not answer within ${p.timeoutMs} ms`), undefined);
    }
  }

  /** Answers a request. */
  reply(to: Msg, r: Msg): void {
    r.id = to.id;
    this.send(r);
  }

  close(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = err;
    this.socket.destroy();
    const e = err instanceof SessionError ? err : new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', `connection to ${this.remoteId} closed${err ? `: ${err.message}` : ''}`);
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    const pending = this.#pending.entries();
    this.#pending.clear();
    for (const [, p] of pending) p.done(e, undefined);
    this.emit('close', err);
  }
}

/**
 * Socket reads without the stream layer, for the proxy's hot path.
 *
 * A plain `net.Socket` normally allocates a fresh 64 KiB buffer for every
 * read and pushes the bytes through the Readable state machine before a
 * 'data' listener sees them. Both show in profiles of small keep-alive
 * exchanges. Node's `onread` option instead reads into a caller-supplied
 * buffer and calls back with the byte count. The proxy uses one buffer for
 * every socket of the process: reads are dispatched one at a time on the
 * event-loop thread, so the bytes are only valid during the callback, and
 * whoever keeps them (a partial head, a body to forward, a tunnel write)
 * copies them first. That copy is what the stream layer's allocation cost
 * anyway; the common case (a whole head, or a small response coalesced with
 * its head) keeps nothing and copies nothing.
 *
 * Sockets the proxy opens get `onread` at creation (documented API).
 * Accepted sockets are created by `net.Server`, which offers no such option;
 * {@link readInto} switches them over through the same mechanism and falls
 * back to 'data' events when it is not available (TLS sockets, or a Node
 * whose internals differ), so behaviour never depends on it.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { TLSSocket } from 'node:tls';

/**
 * Coarse time for activity stamps (performance.now() at the last sweep of
 * any frontend or backend): inactivity timeouts are checked by periodic
 * sweeps, which allow for this staleness.
 */
export const clock = { now: performance.now() };

/** Size of one read (the same as Node's own). */
export const READ_SIZE = 64 * 1024;

/** The process-wide read buffer; contents are valid only inside a read callback. */
export const SHARED_READ_BUFFER: Buffer = Buffer.allocUnsafe(READ_SIZE);

/** Called with the bytes of one read; `bytes` is a view of the shared buffer. */
export type ReadCallback = (bytes: Buffer) => void;

/**
 * Views of the shared buffer's first n bytes, by n (direct-mapped): small
 * keep-alive exchanges read the same few sizes over and over, and a view
 * per read is an allocation per read. A view's contents are those of the
 * shared buffer either way, so handing out the same object twice changes
 * nothing for callers, who copy what they keep.
 */
const VIEWS: (Buffer | undefined)[] = new Array<Buffer | undefined>(1024).fill(undefined);

function viewOf(n: number): Buffer {
  const slot = n & 1023;
  let v = VIEWS[slot];
  if (v === undefined || v.length !== n) {
    v = SHARED_READ_BUFFER.subarray(0, n);
    VIEWS[slot] = v;
  }
  return v;
}

/** Node's read callback (byte count; true: keep reading) delivering each read to `cb`. */
function sharedReader(cb: ReadCallback): (n: number) => boolean {
  return (n: number): boolean => {
    cb(viewOf(n));
    return true;
  };
}

/** `onread` option for `net.connect`. */
export function onreadOption(cb: ReadCallback): { buffer: Uint8Array; callback: (n: number, buf: Uint8Array) => boolean } {
  return { buffer: SHARED_READ_BUFFER, callback: sharedReader(cb) };
}

interface UserBufferHandle {
  useUserBuffer(buf: Uint8Array): void;
}

let symbols: { buffer: symbol; callback: symbol } | null | undefined;

function findSymbols(socket: Socket): { buffer: symbol; callback: symbol } | null {
  if (symbols !== undefined) return symbols;
  const own = Object.getOwnPropertySymbols(socket);
  const buffer = own.find((s) => s.description === 'kBuffer');
  const callback = own.find((s) => s.description === 'kBufferCb');
  symbols = buffer !== undefined && callback !== undefined ? { buffer, callback } : null;
  return symbols;
}

/**
 * Switches an accepted plain socket to shared-buffer reads; false (and
 * nothing changed) when that is not possible: the caller listens to 'data'.
 * Must be called in the tick the socket was accepted, before any read.
 */
export function readInto(socket: Socket, cb: ReadCallback): boolean {
  if (socket instanceof TLSSocket) return false;
  const handle = (socket as unknown as { _handle: Partial<UserBufferHandle> | null })._handle;
  if (handle === null || typeof handle.useUserBuffer !== 'function') return false;
  const sym = findSymbols(socket);
  if (sym === null) return false;
  const target = socket as unknown as Record<symbol, unknown>;
  if (target[sym.buffer] !== null || target[sym.callback] !== null) return false;
  target[sym.buffer] = SHARED_READ_BUFFER;
  target[sym.callback] = sharedReader(cb);
  handle.useUserBuffer(SHARED_READ_BUFFER);
  return true;
}

/**
 * Buffers for copies of large reads, reused once their write completes.
 * Allocating a fresh 64 KiB buffer per read, as a plain copy does, makes
 * the kernel fault in and zero new pages for every chunk of a large
 * transfer (a quarter of the CPU time of a 1 GB download in profiles).
 */
const COPY_POOL: Buffer[] = [];
const COPY_POOL_MAX = 32;
/** Below this, copies come from Node's shared slab (Buffer.from) instead. */
const POOLED_COPY_MIN = 8 * 1024;

/** Writes a copy of `bytes` (a view of the shared read buffer) to `socket`; returns what `write` returns. */
export function writeCopy(socket: Socket, bytes: Buffer): boolean {
  if (bytes.length < POOLED_COPY_MIN) return socket.write(Buffer.from(bytes));
  const buf = COPY_POOL.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE);
  bytes.copy(buf, 0);
  return socket.write(buf.subarray(0, bytes.length), () => {
    // Written out (or dropped with the socket): nothing refers to it any more.
    if (COPY_POOL.length < COPY_POOL_MAX) COPY_POOL.push(buf);
  });
}

/** A connection whose inactivity a {@link Sweep} checks. */
export interface Expiring {
  /** Inactivity limit in force (ms); 0 for none. */
  timeoutMs: number;
  /** Last activity, on the coarse {@link clock}. */
  lastActive: number;
}

/** How often a sweep runs for the shortest timeout it checks: a tenth of it, between 5 and 250 ms. */
export function sweepResolution(shortestTimeout: number): number {
  return Math.max(5, Math.min(250, Math.floor(shortestTimeout / 10)));
}

/**
 * Inactivity timeouts for a set of connections, checked every `resolution`
 * ms instead of by a timer per socket, which Node re-arms on every read and
 * write. Activity is stamped with the coarse {@link clock}, which sweeps
 * advance; a timeout fires between its duration and its duration plus two
 * resolutions. The sweep stops by itself when the set is empty.
 */
export class Sweep<T extends Expiring> {
  readonly resolution: number;
  private readonly items: ReadonlySet<T>;
  private readonly expire: (item: T) => void;
  private timer: NodeJS.Timeout | null = null;

  constructor(resolution: number, items: ReadonlySet<T>, expire: (item: T) => void) {
    this.resolution = resolution;
    this.items = items;
    this.expire = expire;
  }

  /**
   * Starts the sweep if it is not running. The clock may be stale by any
   * amount while no sweep runs, so it is refreshed here: call this before
   * stamping a new connection.
   */
  ensure(): void {
    if (this.timer !== null) return;
    clock.now = performance.now();
    this.timer = setInterval(() => this.run(), this.resolution);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private run(): void {
    const now = performance.now();
    clock.now = now;
    if (this.items.size === 0) {
      this.stop();
      return;
    }
    const slack = this.resolution;
    for (const item of this.items) {
      if (item.timeoutMs > 0 && now - item.lastActive >= item.timeoutMs + slack) {
        item.lastActive = now;
        this.expire(item);
      }
    }
  }
}

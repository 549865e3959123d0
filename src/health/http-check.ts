/**
 * The `http` check: one HTTP/1.1 request with `Connection: close`, judged on
 * the status line and, when asked, on the body.
 *
 * Reading is bounded: the response head may be at most `maxHead` bytes
 * (64 KiB) and is judged as soon as it is complete, so the body is not read
 * at all unless `expectBody` asks for it, and then only its first `maxBody`
 * bytes (64 KiB), de-chunked (RFC 9112 §7.1), and only until the text is
 * found. Whatever the server sends after the verdict is discarded with the
 * socket.
 */
import { probe, type ProbeTarget, type Reader } from './probe.js';
import type { CheckResult, Reason } from './reasons.js';

export interface HttpCheckOptions {
  readonly method: string;
  readonly path: string;
  /** The Host header (default: the target's `host:port`). */
  readonly host?: string;
  /** Accepted status ranges, inclusive (default 200–399). */
  readonly expectStatus?: readonly (readonly [number, number])[];
  /** Text (or pattern) the body must contain. */
  readonly expectBody?: string | RegExp;
  readonly timeoutMs: number;
  readonly maxHead?: number;
  readonly maxBody?: number;
}

export const DEFAULT_MAX_HEAD = 64 * 1024;
export const DEFAULT_MAX_BODY = 64 * 1024;
const DEFAULT_STATUS: readonly (readonly [number, number])[] = [[200, 399]];

/** `host:port` for a Host header; IPv6 literals in brackets. */
export function hostHeader(host: string, port: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return port === 80 ? h : `${h}:${port}`;
}

/** The request bytes (RFC 9112 §3: request line, Host, then `Connection: close`). */
export function buildRequest(opts: HttpCheckOptions, target: { host: string; port: number }): string {
  const host = opts.host ?? hostHeader(target.host, target.port);
  return (
    `${opts.method} ${opts.path} HTTP/1.1\r\n` +
    `Host: ${host}\r\n` +
    'User-Agent: corral-health\r\n' +
    'Accept: */*\r\n' +
    'Connection: close\r\n\r\n'
  );
}

/** Runs one http check. Never rejects. */
export async function httpCheck(target: ProbeTarget, opts: HttpCheckOptions, signal?: AbortSignal): Promise<CheckResult> {
  const outcome = await probe(target, {
    timeoutMs: opts.timeoutMs,
    send: buildRequest(opts, target),
    reader: httpResponseReader(opts),
    ...(signal !== undefined ? { signal } : {}),
  });
  return { reason: outcome.ok ? outcome.value! : outcome.reason, durationMs: outcome.durationMs };
}

type Framing = { kind: 'length'; remaining: number } | { kind: 'chunked'; dechunk: Dechunker } | { kind: 'close' };

/**
 * The response side of an http check as a `Reader`: feed it the bytes the
 * server sends; it answers with a reason as soon as one is certain.
 */
export function httpResponseReader(opts: HttpCheckOptions): Reader<Reason> {
  const maxHead = opts.maxHead ?? DEFAULT_MAX_HEAD;
  const maxBody = opts.maxBody ?? DEFAULT_MAX_BODY;
  const ranges = opts.expectStatus ?? DEFAULT_STATUS;
  const expect = opts.expectBody;
  const needle = typeof expect === 'string' ? Buffer.from(expect, 'utf8') : undefined;
  const noBodyMethod = opts.method.toUpperCase() === 'HEAD';

  let head: Buffer = Buffer.alloc(0);
  let inBody = false;
  let framing: Framing = { kind: 'close' };
  let body: Buffer = Buffer.alloc(0);
  let received = 0;

  const found = (): boolean => {
    if (needle !== undefined) return body.indexOf(needle) >= 0;
    if (expect instanceof RegExp) {
      expect.lastIndex = 0;
      return expect.test(body.toString('utf8'));
    }
    return true;
  };
  const notFound = (why: string): Reason => ({ code: 'L7_BODY', detail: why });

  /** Adds de-framed body bytes; a verdict when one is certain. */
  const addBody = (data: Buffer, complete: boolean): Reason | undefined => {
    if (data.length > 0 && body.length < maxBody) {
      body = Buffer.concat([body, data.subarray(0, maxBody - body.length)]);
      if (found()) return { code: 'L7_OK' };
    }
    if (complete) return notFound(`not in the ${body.length}-byte body`);
    if (body.length >= maxBody) return notFound(`not in the first ${maxBody} bytes of the body`);
    return undefined;
  };

  const onBody = (chunk: Buffer): Reason | undefined => {
    switch (framing.kind) {
      case 'length': {
        const take = chunk.subarray(0, framing.remaining);
        framing.remaining -= take.length;
        return addBody(take, framing.remaining === 0);
      }
      case 'chunked': {
        const out = framing.dechunk.push(chunk);
        if (out.error !== undefined) return { code: 'L7_RESPONSE', detail: `bad chunked body: ${out.error}` };
        return addBody(out.data, out.done);
      }
      case 'close':
        return addBody(chunk, false);
    }
  };

  /** Parses a complete head; returns a verdict or undefined to read the body. */
  const onHead = (text: string, rest: Buffer): Reason | undefined => {
    const lines = text.split(/\r?\n/);
    const statusLine = lines[0] ?? '';
    const m = /^HTTP\/1\.[0-9] ([1-5][0-9]{2})(?:[ \t].*)?$/.exec(statusLine);
    if (m === null) return { code: 'L7_RESPONSE', detail: `bad status line ${JSON.stringify(statusLine.slice(0, 60))}` };
    const status = Number(m[1]);
    if (status >= 100 && status < 200 && status !== 101) {
      // Interim response (RFC 9110 §15.2): the final one follows.
      head = Buffer.alloc(0);
      return rest.length > 0 ? data(rest) : undefined;
    }
    const phrase = statusLine.slice(13).trim();
    if (!ranges.some(([lo, hi]) => status >= lo && status <= hi)) {
      return { code: 'L7_STATUS', status, ...(phrase !== '' ? { detail: phrase.slice(0, 80) } : {}) };
    }
    if (expect === undefined) return { code: 'L7_OK' };
    if (noBodyMethod || status === 204 || status === 304 || status === 101) return notFound('the response has no body');
    let length: number | undefined;
    let chunked = false;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') {
        if (!/^\d{1,15}$/.test(value)) return { code: 'L7_RESPONSE', detail: 'bad Content-Length' };
        length = Number(value);
      } else if (name === 'transfer-encoding' && /(?:^|,)\s*chunked\s*$/i.test(value)) {
        chunked = true;
      }
    }
    if (chunked) framing = { kind: 'chunked', dechunk: new Dechunker() };
    else if (length !== undefined) {
      if (length === 0) return notFound('the body is empty');
      framing = { kind: 'length', remaining: length };
    }
    inBody = true;
    return rest.length > 0 ? onBody(rest) : undefined;
  };

  const data = (chunk: Buffer): Reason | undefined => {
    received += chunk.length;
    if (inBody) return onBody(chunk);
    const start = Math.max(0, head.length - 3);
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    // Garbage shows in the first bytes: no need to wait for the timeout.
    const prefix = head.subarray(0, 5).toString('latin1');
    if (!'HTTP/'.startsWith(prefix) && !prefix.startsWith('HTTP/')) {
      return { code: 'L7_RESPONSE', detail: `not HTTP: ${JSON.stringify(head.subarray(0, 20).toString('latin1'))}` };
    }
    let end = head.indexOf('\r\n\r\n', start);
    let sep = 4;
    if (end < 0) {
      end = head.indexOf('\n\n', start);
      sep = 2;
    }
    if (end < 0) {
      if (head.length > maxHead) return { code: 'L7_RESPONSE', detail: `response head larger than ${maxHead} bytes` };
      return undefined;
    }
    if (end > maxHead) return { code: 'L7_RESPONSE', detail: `response head larger than ${maxHead} bytes` };
    const text = head.subarray(0, end).toString('latin1');
    const rest = head.subarray(end + sep);
    head = Buffer.alloc(0);
    return onHead(text, rest);
  };

  return {
    data,
    end(): Reason {
      if (!inBody) {
        return { code: 'L7_RESPONSE', detail: received === 0 ? 'closed without answering' : `closed after ${received} bytes, before a complete head` };
      }
      if (framing.kind === 'length' && framing.remaining > 0) return { code: 'L7_RESPONSE', detail: `closed with ${framing.remaining} body bytes missing` };
      if (framing.kind === 'chunked') return { code: 'L7_RESPONSE', detail: 'closed inside the chunked body' };
      return addBody(Buffer.alloc(0), true) ?? notFound('not in the body');
    },
  };
}

/** Removes chunked framing (RFC 9112 §7.1), incrementally; trailers are skipped. */
export class Dechunker {
  private state: 'size' | 'data' | 'data-crlf' | 'trailer' | 'done' = 'size';
  private line = '';
  private remaining = 0;

  push(chunk: Buffer): { data: Buffer; done: boolean; error?: string } {
    const out: Buffer[] = [];
    let i = 0;
    while (i < chunk.length && this.state !== 'done') {
      if (this.state === 'data') {
        const take = Math.min(this.remaining, chunk.length - i);
        out.push(chunk.subarray(i, i + take));
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'data-crlf';
        continue;
      }
      const byte = chunk[i++]!;
      if (byte !== 0x0a) {
        this.line += String.fromCharCode(byte);
        if (this.line.length > 1024) return { data: Buffer.concat(out), done: false, error: 'line too long' };
        continue;
      }
      const line = this.line.replace(/\r$/, '');
      this.line = '';
      if (this.state === 'size') {
        const m = /^([0-9a-fA-F]{1,8})(?:[ \t]*;.*)?$/.exec(line);
        if (m === null) return { data: Buffer.concat(out), done: false, error: `bad chunk size ${JSON.stringify(line.slice(0, 20))}` };
        this.remaining = parseInt(m[1]!, 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
      } else if (this.state === 'data-crlf') {
        if (line !== '') return { data: Buffer.concat(out), done: false, error: 'missing CRLF after chunk data' };
        this.state = 'size';
      } else if (this.state === 'trailer') {
        if (line === '') this.state = 'done';
      }
    }
    return { data: Buffer.concat(out), done: this.state === 'done' };
  }
}

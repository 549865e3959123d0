/**
 * HTTP/1.1 message heads (RFC 9112), parsed by hand.
 *
 * This is on the proxy's hot path: Node's `http` client costs most of a
 * proxy's time, so Corral reads heads itself from raw socket bytes. The head
 * is decoded once as a latin1 string; header lines are kept as slices of it
 * so forwarding re-emits the original bytes. Validation is strict because a
 * lenient parser in front of a different parser is how requests get
 * smuggled: every rejection below names the RFC rule it enforces.
 */
import type { ErrorCode } from '../../errors.js';

/** Largest request or response head accepted (bytes, including the final CRLF CRLF). */
export const MAX_HEAD_BYTES = 16 * 1024;

/** Header fields that belong to one connection only (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'proxy-connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade', 'trailer']);

// RFC 9110 §5.6.2: tchar, the characters of a field name. Header lines are
// scanned by hand with this table: a regular expression per line cost more
// than the rest of the parse.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;
// RFC 9112 §3.2 / RFC 3986 §3.2.2: uri-host [ ":" port ]
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::\d{0,5})?$/;

export interface Header {
  /** Lower-case field name. */
  readonly name: string;
  /** Field value, surrounding whitespace removed. */
  readonly value: string;
  /** The original line (name casing preserved), without CRLF. */
  readonly line: string;
}

/** Why a header line is not forwarded as it is. */
export const enum Special {
  /** Connection-specific (RFC 9110 §7.6.1), or named in Connection, or a Host replaced by an absolute-form target. */
  HopByHop,
  XForwardedFor,
  XForwardedProto,
  XForwardedHost,
  Forwarded,
}

/** A header line the proxy treats specially: [start, next) covers the line and its CRLF. */
export interface SpecialLine {
  readonly kind: Special;
  readonly start: number;
  readonly next: number;
  readonly value: string;
}

interface HeadFields {
  /** The whole head as latin1 text, final CRLF CRLF included. */
  readonly text: string;
  /** Offset of the first header line. */
  readonly fieldsStart: number;
  /** Hop-by-hop and forwarding lines, in order. */
  readonly special: readonly SpecialLine[];
  /** All header lines (built on first use). */
  readonly headers: Header[];
  readonly contentLength: number;
  readonly chunked: boolean;
  readonly close: boolean;
  /** Tokens of the Connection header, lower-case. */
  readonly connectionTokens: readonly string[];
  /** Value of the Upgrade field ('' when absent). */
  readonly upgrade: string;
}

export interface RequestHead extends HeadFields {
  readonly method: string;
  /** Origin-form target (`/path?query`); absolute-form is reduced to it. */
  readonly target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: 0 | 1;
  /** Host without port, lower-case; '' when absent (HTTP/1.0). */
  readonly hostname: string;
  /** Host header value as sent (or the authority of an absolute-form target). */
  readonly host: string;
  /** `Host: <authority>` when an absolute-form target replaced the Host field (its lines are in `special`), else ''. */
  readonly hostLine: string;
}

export interface ResponseHead extends HeadFields {
  readonly status: number;
  readonly minor: 0 | 1;
  readonly reason: string;
  /** Transfer-Encoding present without chunked last: the body ends when the server closes. */
  readonly closeDelimited: boolean;
}

export type ParseResult<T> = T | ErrorCode;

/** The bytes that end a head (a Buffer: a string needle is encoded again on every search). */
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

/** Position just past the CRLF CRLF ending a head in `buf`, or -1. `from` lets a caller resume. */
export function findHeadEnd(buf: Buffer, from: number): number {
  const i = buf.indexOf(HEAD_END, from > 3 ? from - 3 : 0);
  return i === -1 ? -1 : i + 4;
}

/** `text` from `at` equals the lower-case ASCII `lit`, ignoring case (field names are tchar only). */
function lowerEq(text: string, at: number, lit: string): boolean {
  for (let k = 0; k < lit.length; k++) {
    if ((text.charCodeAt(at + k) | 0x20) !== lit.charCodeAt(k)) return false;
  }
  return true;
}

// What a field name is, found by its length first: most names are none of these and cost one switch.
const enum Name {
  Other,
  ContentLength,
  TransferEncoding,
  Connection,
  Host,
  Upgrade,
  HopByHop,
  XForwardedFor,
  XForwardedProto,
  XForwardedHost,
  Forwarded,
}

function classify(text: string, at: number, len: number): Name {
  switch (len) {
    case 2:
      return lowerEq(text, at, 'te') ? Name.HopByHop : Name.Other;
    case 4:
      return lowerEq(text, at, 'host') ? Name.Host : Name.Other;
    case 7:
      if (lowerEq(text, at, 'upgrade')) return Name.Upgrade;
      return lowerEq(text, at, 'trailer') ? Name.HopByHop : Name.Other;
    case 9:
      return lowerEq(text, at, 'forwarded') ? Name.Forwarded : Name.Other;
    case 10:
      if (lowerEq(text, at, 'connection')) return Name.Connection;
      return lowerEq(text, at, 'keep-alive') ? Name.HopByHop : Name.Other;
    case 14:
      return lowerEq(text, at, 'content-length') ? Name.ContentLength : Name.Other;
    case 15:
      return lowerEq(text, at, 'x-forwarded-for') ? Name.XForwardedFor : Name.Other;
    case 16:
      if (lowerEq(text, at, 'proxy-connection')) return Name.HopByHop;
      return lowerEq(text, at, 'x-forwarded-host') ? Name.XForwardedHost : Name.Other;
    case 17:
      if (lowerEq(text, at, 'transfer-encoding')) return Name.TransferEncoding;
      return lowerEq(text, at, 'x-forwarded-proto') ? Name.XForwardedProto : Name.Other;
    default:
      return Name.Other;
  }
}

/** How a line with this name is forwarded (-1: as it is). */
function specialOf(name: Name): Special | -1 {
  switch (name) {
    case Name.TransferEncoding:
    case Name.Connection:
    case Name.Upgrade:
    case Name.HopByHop:
      return Special.HopByHop;
    case Name.XForwardedFor:
      return Special.XForwardedFor;
    case Name.XForwardedProto:
      return Special.XForwardedProto;
    case Name.XForwardedHost:
      return Special.XForwardedHost;
    case Name.Forwarded:
      return Special.Forwarded;
    default:
      return -1;
  }
}

/** Connection tokens that name a field outside the hop-by-hop set (their lines must be found by name). */
function namesOtherFields(tokens: readonly string[]): boolean {
  for (const t of tokens) if (t !== 'close' && !HOP_BY_HOP.has(t)) return true;
  return false;
}

/** Splits all header lines of a valid head into name, value and line. */
function splitHeaders(text: string, from: number): Header[] {
  const out: Header[] = [];
  const end = text.length - 2;
  let pos = from;
  while (pos < end) {
    const eol = text.indexOf('\r\n', pos);
    const colon = text.indexOf(':', pos);
    let i = colon + 1;
    let c = 0;
    while (i < eol && ((c = text.charCodeAt(i)) === 32 || c === 9)) i++;
    let vEnd = eol;
    while (vEnd > i && ((c = text.charCodeAt(vEnd - 1)) === 32 || c === 9)) vEnd--;
    out.push({ name: text.slice(pos, colon).toLowerCase(), value: text.slice(i, vEnd), line: text.slice(pos, eol) });
    pos = eol + 2;
  }
  return out;
}

/**
 * Header lines of a parsed head, validated and classified. Lines are kept
 * as offsets into the head text: forwarding re-emits the original bytes
 * minus the special lines, and the per-field objects of `headers` are only
 * built when something asks for them (cookies, `hashOn: header`).
 */
class Fields {
  text: string;
  fieldsStart: number;
  special: SpecialLine[] = [];
  contentLength = -1;
  chunked = false;
  hasTransferEncoding = false;
  /** Transfer-Encoding without chunked last: the message ends when the connection closes. */
  closeDelimited = false;
  connectionTokens: string[] = NO_TOKENS;
  hosts = 0;
  host = '';
  upgrade = '';
  close = false;
  /** Host lines replaced by an absolute-form authority (`hostLine`). */
  hostLine = '';
  private all: Header[] | null = null;

  constructor(text: string, fieldsStart: number) {
    this.text = text;
    this.fieldsStart = fieldsStart;
  }

  get headers(): Header[] {
    if (this.all === null) {
      const list = splitHeaders(this.text, this.fieldsStart);
      if (this.hostLine !== '') {
        const i = list.findIndex((h) => h.name === 'host');
        const host: Header = { name: 'host', value: this.host, line: this.hostLine };
        if (i === -1) list.push(host);
        else list[i] = host;
      }
      this.all = list;
    }
    return this.all;
  }

  /** Validates and classifies the lines; an error code, or undefined. */
  scan(badCode: ErrorCode): ErrorCode | undefined {
    const head = this.text;
    let teValue = '';
    let clCount = 0;
    let connection = '';
    const end = head.length - 2; // the final empty line's CRLF
    let pos = this.fieldsStart;
    // One pass per line; the head ends with CRLF CRLF, so every loop meets a CR before the end.
    while (pos < end) {
      // field-name: one or more tchar, then ':' with no whitespace before it
      // (RFC 9112 §5.1). A line starting with SP or HTAB is obs-fold (§5.2): rejected.
      let i = pos;
      let c = 0;
      for (;;) {
        c = head.charCodeAt(i);
        if (c === 58 /* : */ || c > 127 || TCHAR[c] === 0) break;
        i++;
      }
      if (i === pos || c !== 58) return badCode;
      const nameEnd = i++;
      // field-value without surrounding SP/HTAB; no CTL other than HTAB (RFC 9110 §5.5);
      // the line ends with CRLF (a bare CR or LF is rejected).
      while ((c = head.charCodeAt(i)) === 32 || c === 9) i++;
      const vStart = i;
      let vEnd = i;
      for (;;) {
        c = head.charCodeAt(i);
        if (c === 13) break;
        if ((c < 32 && c !== 9) || c === 127) return badCode;
        i++;
        if (c !== 32 && c !== 9) vEnd = i;
      }
      if (head.charCodeAt(i + 1) !== 10 || i >= end) return badCode;
      const eol = i;
      const name = classify(head, pos, nameEnd - pos);
      if (name !== Name.Other) {
        const value = head.slice(vStart, vEnd);
        const special = specialOf(name);
        if (special !== -1) this.special.push({ kind: special, start: pos, next: eol + 2, value });
        switch (name) {
          case Name.ContentLength:
            clCount++;
            this.contentLength = contentLengthOf(value);
            if (this.contentLength === -1) return 'CORRAL_ERR_AMBIGUOUS_LENGTH';
            break;
          case Name.TransferEncoding:
            this.hasTransferEncoding = true;
            teValue = teValue === '' ? value : `${teValue}, ${value}`;
            break;
          case Name.Connection:
            connection = connection === '' ? value : `${connection},${value}`;
            break;
          case Name.Host:
            this.hosts++;
            this.host = value;
            break;
          case Name.Upgrade:
            this.upgrade = value;
            break;
          default:
            break;
        }
      }
      pos = eol + 2;
    }
    // RFC 9112 §6.3: more than one Content-Length is rejected outright (even if equal).
    if (clCount > 1) return 'CORRAL_ERR_AMBIGUOUS_LENGTH';
    if (this.hasTransferEncoding) {
      const codings = teValue.split(',').map((x) => x.trim().toLowerCase());
      const chunkedAt = codings.indexOf('chunked');
      if (codings.some((x) => x === '')) return 'CORRAL_ERR_AMBIGUOUS_LENGTH';
      if (chunkedAt === codings.length - 1) this.chunked = true;
      // chunked applied more than once or not last (RFC 9112 §6.1).
      else if (chunkedAt !== -1) return 'CORRAL_ERR_AMBIGUOUS_LENGTH';
      else this.closeDelimited = true;
    }
    if (connection.length === 10 && lowerEq(connection, 0, 'keep-alive')) this.connectionTokens = KEEP_ALIVE_TOKENS;
    else if (connection.length === 5 && lowerEq(connection, 0, 'close')) this.connectionTokens = CLOSE_TOKENS;
    else if (connection !== '') {
      const tokens: string[] = [];
      for (const token of connection.split(',')) {
        const t = token.trim().toLowerCase();
        if (t !== '') tokens.push(t);
      }
      this.connectionTokens = tokens;
      // Naming a framing or routing field in Connection would make the proxy drop it while
      // still framing the message by it (the body would reach the next hop undelimited):
      // a request-smuggling vector, refused.
      if (tokens.includes('content-length') || tokens.includes('host')) return badCode;
      if (namesOtherFields(tokens)) this.dropNamed(tokens);
    }
    return undefined;
  }

  /** Adds the lines whose names the Connection field lists (RFC 9110 §7.6.1) to the hop-by-hop lines. */
  private dropNamed(tokens: readonly string[]): void {
    const head = this.text;
    const end = head.length - 2;
    let pos = this.fieldsStart;
    let added = false;
    while (pos < end) {
      const eol = head.indexOf('\r\n', pos);
      const colon = head.indexOf(':', pos);
      const name = head.slice(pos, colon).toLowerCase();
      if (!HOP_BY_HOP.has(name) && tokens.includes(name)) {
        const i = this.special.findIndex((sp) => sp.start === pos);
        if (i === -1) {
          this.special.push({ kind: Special.HopByHop, start: pos, next: eol + 2, value: '' });
          added = true;
        } else this.special[i] = { kind: Special.HopByHop, start: pos, next: eol + 2, value: '' };
      }
      pos = eol + 2;
    }
    if (added) this.special.sort((a, b) => a.start - b.start);
  }

  /** Treats the Host lines as replaced by `host` (absolute-form target). */
  replaceHost(host: string): void {
    const head = this.text;
    const end = head.length - 2;
    let pos = this.fieldsStart;
    while (pos < end) {
      const eol = head.indexOf('\r\n', pos);
      if (head.indexOf(':', pos) === pos + 4 && lowerEq(head, pos, 'host')) {
        this.special.push({ kind: Special.HopByHop, start: pos, next: eol + 2, value: '' });
      }
      pos = eol + 2;
    }
    this.special.sort((a, b) => a.start - b.start);
    this.host = host;
    this.hostLine = `Host: ${host}`;
  }
}

const NO_TOKENS: string[] = [];
// The two Connection values nearly every message carries, without a split per message (never mutated).
const KEEP_ALIVE_TOKENS: string[] = ['keep-alive'];
const CLOSE_TOKENS: string[] = ['close'];

/** RFC 9110 §8.6: Content-Length = 1*DIGIT (up to 15 digits here: below 2^53); -1 when invalid. */
function contentLengthOf(value: string): number {
  const n = value.length;
  if (n === 0 || n > 15) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

class Request extends Fields implements RequestHead {
  method = '';
  target = '';
  minor: 0 | 1 = 1;
  hostname = '';
}

class Response extends Fields implements ResponseHead {
  status = 0;
  minor: 0 | 1 = 1;
  reason = '';
}

/**
 * The header lines of `head` to forward, each with its CRLF: all but the
 * hop-by-hop ones, and but the forwarding ones when `dropForwarding`.
 */
export function forwardedLines(head: RequestHead | ResponseHead, dropForwarding: boolean): string {
  const { text, fieldsStart, special } = head;
  const end = text.length - 2;
  if (special.length === 0) return text.slice(fieldsStart, end);
  let out = '';
  let at = fieldsStart;
  for (const sp of special) {
    if (sp.kind !== Special.HopByHop && !dropForwarding) continue;
    if (sp.start > at) out += text.slice(at, sp.start);
    at = sp.next;
  }
  return at < end ? out + text.slice(at, end) : out;
}

/**
 * Parses a request head (the bytes up to and including CRLF CRLF, as latin1).
 * Rejects, with the error code to answer: a malformed request line; obs-fold
 * and invalid field characters (RFC 9110 §5.5, RFC 9112 §5.2); duplicate or
 * invalid Content-Length; Content-Length together with Transfer-Encoding
 * (RFC 9112 §6.1 permits rejecting; Corral always does); Transfer-Encoding on
 * HTTP/1.0 or not ending in chunked (§6.3); a missing (HTTP/1.1), repeated or
 * invalid Host (§3.2).
 */
export function parseRequestHead(head: string): ParseResult<RequestHead> {
  // RFC 9112 §3: request-line = method SP request-target SP HTTP-version
  let i = 0;
  let c = 0;
  for (;;) {
    c = head.charCodeAt(i);
    if (c > 127 || TCHAR[c] === 0) break;
    i++;
  }
  if (i === 0 || c !== 32) return 'CORRAL_ERR_BAD_REQUEST';
  const method = head.slice(0, i);
  const tStart = ++i;
  // request-target: no CTL, SP or DEL
  while ((c = head.charCodeAt(i)) > 32 && c !== 127) i++;
  if (i === tStart || c !== 32) return 'CORRAL_ERR_BAD_REQUEST';
  let target = head.slice(tStart, i);
  // HTTP-version = "HTTP/" DIGIT "." DIGIT, then CRLF
  const v = i + 1;
  if (!head.startsWith('HTTP/', v) || head.charCodeAt(v + 6) !== 46 /* . */ || head.charCodeAt(v + 8) !== 13 || head.charCodeAt(v + 9) !== 10) {
    return 'CORRAL_ERR_BAD_REQUEST';
  }
  const major = head.charCodeAt(v + 5) - 48;
  const minorDigit = head.charCodeAt(v + 7) - 48;
  if (major < 0 || major > 9 || minorDigit < 0 || minorDigit > 9) return 'CORRAL_ERR_BAD_REQUEST';
  if (major !== 1 || minorDigit > 1) return 'CORRAL_ERR_VERSION';
  const r = new Request(head, v + 10);
  r.minor = minorDigit === 1 ? 1 : 0;
  r.method = method;

  const error = r.scan('CORRAL_ERR_BAD_REQUEST');
  if (error !== undefined) return error;
  if (r.hasTransferEncoding && (r.contentLength !== -1 || r.minor === 0 || !r.chunked)) {
    return 'CORRAL_ERR_AMBIGUOUS_LENGTH';
  }
  if (r.hosts > 1) return 'CORRAL_ERR_BAD_HOST';
  if (r.minor === 1 && r.hosts === 0) return 'CORRAL_ERR_BAD_HOST';

  if (target.charCodeAt(0) !== 47 /* / */) {
    if (r.method === 'OPTIONS' && target === '*') {
      // asterisk-form (RFC 9112 §3.2.4) is forwarded as is.
    } else {
      // absolute-form (RFC 9112 §3.2.2): the authority replaces Host.
      const m = /^https?:\/\/([^/?#]*)([^#]*)$/i.exec(target);
      if (m === null) return 'CORRAL_ERR_BAD_REQUEST';
      target = m[2] === '' ? '/' : (m[2] as string);
      if (target.charCodeAt(0) !== 47) target = `/${target}`;
      r.replaceHost(m[1] as string);
    }
  }
  if (!validHost(r.host)) return 'CORRAL_ERR_BAD_HOST';
  r.target = target;
  r.close = r.minor === 1 ? r.connectionTokens.includes('close') : !r.connectionTokens.includes('keep-alive');
  r.hostname = hostnameOf(r.host);
  return r;
}

/** RFC 9112 §3.2 / RFC 3986 §3.2.2: uri-host [ ":" port ]; the common reg-name case by hand. */
function validHost(host: string): boolean {
  let i = 0;
  const n = host.length;
  for (; i < n; i++) {
    const c = host.charCodeAt(i);
    if (c > 127 || HOST_CHAR[c] === 0) break;
  }
  if (i === n) return true;
  if (host.charCodeAt(i) === 58 /* : */) {
    const digits = n - i - 1;
    if (digits > 5) return false;
    for (let k = i + 1; k < n; k++) {
      const c = host.charCodeAt(k);
      if (c < 48 || c > 57) return false;
    }
    return true;
  }
  return HOST_VALUE.test(host);
}

const HOST_CHAR = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=%") HOST_CHAR[c.charCodeAt(0)] = 1;

/** Host header value without port, lower-case, IPv6 brackets removed. */
export function hostnameOf(host: string): string {
  if (host.charCodeAt(0) === 91 /* [ */) {
    const end = host.indexOf(']');
    return host.slice(1, end).toLowerCase();
  }
  const colon = host.indexOf(':');
  return (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
}

/** Parses a response head (latin1, up to and including CRLF CRLF). Errors map to 502. */
export function parseResponseHead(head: string): ParseResult<ResponseHead> {
  // status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] (RFC 9112 §4; a missing SP before an empty reason is tolerated)
  if (!head.startsWith('HTTP/1.', 0)) return 'CORRAL_ERR_BAD_RESPONSE';
  const minor = head.charCodeAt(7) - 48;
  if ((minor !== 0 && minor !== 1) || head.charCodeAt(8) !== 32) return 'CORRAL_ERR_BAD_RESPONSE';
  let status = 0;
  for (let k = 9; k < 12; k++) {
    const d = head.charCodeAt(k) - 48;
    if (d < 0 || d > 9) return 'CORRAL_ERR_BAD_RESPONSE';
    status = status * 10 + d;
  }
  let i = 12;
  let c = head.charCodeAt(i);
  let reason = '';
  if (c === 32) {
    i++;
    while ((c = head.charCodeAt(i)) !== 13) {
      if ((c < 32 && c !== 9) || c === 127) return 'CORRAL_ERR_BAD_RESPONSE';
      i++;
    }
    reason = head.slice(13, i);
  }
  if (c !== 13 || head.charCodeAt(i + 1) !== 10) return 'CORRAL_ERR_BAD_RESPONSE';
  const r = new Response(head, i + 2);
  r.minor = minor === 1 ? 1 : 0;
  r.status = status;
  if (status < 100 || status > 599) return 'CORRAL_ERR_BAD_RESPONSE';
  if (r.scan('CORRAL_ERR_BAD_RESPONSE') !== undefined) return 'CORRAL_ERR_BAD_RESPONSE';
  // RFC 9112 §6.3: both Transfer-Encoding and Content-Length may indicate response splitting.
  if (r.hasTransferEncoding && r.contentLength !== -1) return 'CORRAL_ERR_BAD_RESPONSE';
  r.close = r.minor === 1 ? r.connectionTokens.includes('close') : !r.connectionTokens.includes('keep-alive');
  r.reason = reason;
  return r;
}

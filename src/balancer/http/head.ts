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
// RFC 9112 §3: request-line = method SP request-target SP HTTP-version
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f]+) HTTP\/(\d)\.(\d)$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
const CONTENT_LENGTH = /^\d{1,15}$/;
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

export interface RequestHead {
  readonly method: string;
  /** Origin-form target (`/path?query`); absolute-form is reduced to it. */
  readonly target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: 0 | 1;
  readonly headers: Header[];
  /** Host without port, lower-case; '' when absent (HTTP/1.0). */
  readonly hostname: string;
  /** Host header value as sent (or the authority of an absolute-form target). */
  readonly host: string;
  /** -1 when there is no Content-Length. */
  readonly contentLength: number;
  readonly chunked: boolean;
  /** The client wants the connection closed after this exchange. */
  readonly close: boolean;
  /** Tokens of the Connection header, lower-case. */
  readonly connectionTokens: readonly string[];
}

export interface ResponseHead {
  readonly status: number;
  readonly minor: 0 | 1;
  readonly reason: string;
  readonly headers: Header[];
  readonly contentLength: number;
  readonly chunked: boolean;
  /** Transfer-Encoding present without chunked last: the body ends when the server closes. */
  readonly closeDelimited: boolean;
  readonly close: boolean;
  readonly connectionTokens: readonly string[];
}

export type ParseResult<T> = T | ErrorCode;

/** Position just past the CRLF CRLF ending a head in `buf`, or -1. `from` lets a caller resume. */
export function findHeadEnd(buf: Buffer, from: number): number {
  const i = buf.indexOf('\r\n\r\n', from > 3 ? from - 3 : 0, 'latin1');
  return i === -1 ? -1 : i + 4;
}

interface FieldScan {
  headers: Header[];
  contentLength: number;
  chunked: boolean;
  hasTransferEncoding: boolean;
  closeDelimitedTe: boolean;
  connectionTokens: string[];
  hosts: number;
  host: string;
  error: ErrorCode | undefined;
}

/** Splits and validates header lines shared by requests and responses. */
function scanFields(head: string, start: number, badCode: ErrorCode): FieldScan {
  const scan: FieldScan = {
    headers: [],
    contentLength: -1,
    chunked: false,
    hasTransferEncoding: false,
    closeDelimitedTe: false,
    connectionTokens: [],
    hosts: 0,
    host: '',
    error: undefined,
  };
  let teValue = '';
  let clCount = 0;
  const end = head.length - 2; // the final empty line's CRLF
  let pos = start;
  while (pos < end) {
    const eol = head.indexOf('\r\n', pos);
    if (eol === -1 || eol > end) {
      scan.error = badCode;
      return scan;
    }
    // field-name: one or more tchar, then ':' with no whitespace before it
    // (RFC 9112 §5.1). A line starting with SP or HTAB is obs-fold (§5.2): rejected.
    let i = pos;
    let c = 0;
    while (i < eol) {
      c = head.charCodeAt(i);
      if (c === 58 /* : */ || c > 127 || TCHAR[c] === 0) break;
      i++;
    }
    if (i === pos || c !== 58) {
      scan.error = badCode;
      return scan;
    }
    const nameEnd = i++;
    // field-value without surrounding SP/HTAB; no CTL other than HTAB (RFC 9110 §5.5).
    while (i < eol && ((c = head.charCodeAt(i)) === 32 || c === 9)) i++;
    let vEnd = eol;
    while (vEnd > i && ((c = head.charCodeAt(vEnd - 1)) === 32 || c === 9)) vEnd--;
    for (let k = i; k < vEnd; k++) {
      c = head.charCodeAt(k);
      if ((c < 32 && c !== 9) || c === 127) {
        scan.error = badCode;
        return scan;
      }
    }
    const name = head.slice(pos, nameEnd).toLowerCase();
    const value = head.slice(i, vEnd);
    scan.headers.push({ name, value, line: head.slice(pos, eol) });
    pos = eol + 2;
    switch (name) {
      case 'content-length':
        clCount++;
        if (!CONTENT_LENGTH.test(value)) {
          scan.error = 'CORRAL_ERR_AMBIGUOUS_LENGTH';
          return scan;
        }
        scan.contentLength = Number(value);
        break;
      case 'transfer-encoding':
        scan.hasTransferEncoding = true;
        teValue = teValue === '' ? value : `${teValue}, ${value}`;
        break;
      case 'connection':
        for (const token of value.split(',')) {
          const t = token.trim().toLowerCase();
          if (t !== '') scan.connectionTokens.push(t);
        }
        break;
      case 'host':
        scan.hosts++;
        scan.host = value;
        break;
    }
  }
  // RFC 9112 §6.3: more than one Content-Length is rejected outright (even if equal).
  if (clCount > 1) {
    scan.error = 'CORRAL_ERR_AMBIGUOUS_LENGTH';
    return scan;
  }
  if (scan.hasTransferEncoding) {
    const codings = teValue.split(',').map((c) => c.trim().toLowerCase());
    const chunkedAt = codings.indexOf('chunked');
    if (codings.some((c) => c === '')) {
      scan.error = 'CORRAL_ERR_AMBIGUOUS_LENGTH';
      return scan;
    }
    if (chunkedAt === codings.length - 1) scan.chunked = true;
    else if (chunkedAt !== -1) {
      // chunked applied more than once or not last (RFC 9112 §6.1).
      scan.error = 'CORRAL_ERR_AMBIGUOUS_LENGTH';
      return scan;
    } else scan.closeDelimitedTe = true;
  }
  return scan;
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
  const eol = head.indexOf('\r\n');
  const rl = REQUEST_LINE.exec(head.slice(0, eol));
  if (rl === null) return 'CORRAL_ERR_BAD_REQUEST';
  if (rl[3] !== '1') return 'CORRAL_ERR_VERSION';
  const minorDigit = rl[4];
  if (minorDigit !== '0' && minorDigit !== '1') return 'CORRAL_ERR_VERSION';
  const minor = minorDigit === '1' ? 1 : 0;
  const method = rl[1] as string;
  let target = rl[2] as string;

  const scan = scanFields(head, eol + 2, 'CORRAL_ERR_BAD_REQUEST');
  if (scan.error !== undefined) return scan.error;
  if (scan.hasTransferEncoding && (scan.contentLength !== -1 || minor === 0 || !scan.chunked)) {
    return 'CORRAL_ERR_AMBIGUOUS_LENGTH';
  }
  if (scan.hosts > 1) return 'CORRAL_ERR_BAD_HOST';
  if (minor === 1 && scan.hosts === 0) return 'CORRAL_ERR_BAD_HOST';
  let host = scan.host;

  if (target.charCodeAt(0) !== 47 /* / */) {
    if (method === 'OPTIONS' && target === '*') {
      // asterisk-form (RFC 9112 §3.2.4) is forwarded as is.
    } else {
      // absolute-form (RFC 9112 §3.2.2): the authority replaces Host.
      const m = /^https?:\/\/([^/?#]*)([^#]*)$/i.exec(target);
      if (m === null) return 'CORRAL_ERR_BAD_REQUEST';
      host = m[1] as string;
      target = m[2] === '' ? '/' : (m[2] as string);
      if (target.charCodeAt(0) !== 47) target = `/${target}`;
      const i = scan.headers.findIndex((h) => h.name === 'host');
      const line = `Host: ${host}`;
      if (i === -1) scan.headers.push({ name: 'host', value: host, line });
      else scan.headers[i] = { name: 'host', value: host, line };
    }
  }
  if (!HOST_VALUE.test(host)) return 'CORRAL_ERR_BAD_HOST';

  let close: boolean;
  if (minor === 1) close = scan.connectionTokens.includes('close');
  else close = !scan.connectionTokens.includes('keep-alive');

  return {
    method,
    target,
    minor,
    headers: scan.headers,
    hostname: hostnameOf(host),
    host,
    contentLength: scan.contentLength,
    chunked: scan.chunked,
    close,
    connectionTokens: scan.connectionTokens,
  };
}

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
  const eol = head.indexOf('\r\n');
  const sl = STATUS_LINE.exec(head.slice(0, eol));
  if (sl === null) return 'CORRAL_ERR_BAD_RESPONSE';
  const minor = sl[1] === '1' ? 1 : 0;
  const status = Number(sl[2]);
  if (status < 100 || status > 599) return 'CORRAL_ERR_BAD_RESPONSE';
  const scan = scanFields(head, eol + 2, 'CORRAL_ERR_BAD_RESPONSE');
  if (scan.error !== undefined) return 'CORRAL_ERR_BAD_RESPONSE';
  // RFC 9112 §6.3: both Transfer-Encoding and Content-Length may indicate response splitting.
  if (scan.hasTransferEncoding && scan.contentLength !== -1) return 'CORRAL_ERR_BAD_RESPONSE';
  let close: boolean;
  if (minor === 1) close = scan.connectionTokens.includes('close');
  else close = !scan.connectionTokens.includes('keep-alive');
  return {
    status,
    minor,
    reason: sl[3] ?? '',
    headers: scan.headers,
    contentLength: scan.contentLength,
    chunked: scan.chunked,
    closeDelimited: scan.closeDelimitedTe,
    close,
    connectionTokens: scan.connectionTokens,
  };
}

/** True for fields a proxy must not forward: the hop-by-hop set plus those named in Connection. */
export function isHopByHop(name: string, connectionTokens: readonly string[]): boolean {
  return HOP_BY_HOP.has(name) || (connectionTokens.length > 0 && connectionTokens.includes(name));
}

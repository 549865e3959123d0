/**
 * The PROXY protocol (HAProxy, `doc/proxy-protocol.txt`), versions 1 and 2:
 * a header a balancer writes at the start of a TCP connection to tell the
 * next hop who the real client is.
 *
 * - Encoding: {@link encodeProxyV1} (text) and {@link encodeProxyV2}
 *   (binary, TCP over IPv4/IPv6, or `LOCAL`), used for `sendProxy: v1|v2`.
 * - Decoding: {@link parseProxyHeader} reads either version from the start of
 *   a buffer and says how many bytes the header took; {@link ProxyHeaderReader}
 *   accumulates chunks for it. Used for `acceptProxy: true`.
 *
 * The decoder is strict, because its input comes from the network: a v1
 * line is at most 107 bytes (§2.1), a v2 header at most 16 bytes plus a
 * capped declared length (1 KiB by default), every field is checked, and
 * v2 TLVs must tile the declared length exactly. A buffer that is a strict
 * prefix of a valid header is "need more"; anything else is an error as
 * early as it can be detected. No I/O here.
 */
import net from 'node:net';

/** Longest v1 header, CRLF included (§2.1). */
export const PROXY_V1_MAX = 107;
/** Default cap on a v2 header's declared length (addresses + TLVs). */
export const PROXY_V2_MAX_LENGTH = 1024;
/** The 12-byte v2 signature (§2.2). */
export const PROXY_V2_SIGNATURE: Buffer = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_FIXED = 16;
const V2_VERSION = 0x20;
const V2_CMD_LOCAL = 0x00;
const V2_CMD_PROXY = 0x01;
const V2_AF_UNSPEC = 0x0;
const V2_AF_INET = 0x1;
const V2_AF_INET6 = 0x2;
const V2_AF_UNIX = 0x3;
const V2_PROTO_STREAM = 0x1;
const V2_INET_LEN = 12;
const V2_INET6_LEN = 36;
const V2_UNIX_LEN = 216;

export type ProxyFamily = 'tcp4' | 'tcp6';

export interface ProxyEndpoint {
  /** IPv4 dotted quad or IPv6 text (canonical RFC 5952 form when decoded). */
  readonly address: string;
  readonly port: number;
}

/** The connection a header describes: the real client (`source`) and the address it connected to. */
export interface ProxyAddresses {
  readonly family: ProxyFamily;
  readonly source: ProxyEndpoint;
  readonly destination: ProxyEndpoint;
}

/** A v2 Type-Length-Value extension (§2.2.7), e.g. 0x02 AUTHORITY, 0x04 NOOP. */
export interface ProxyTlv {
  readonly type: number;
  readonly value: Buffer;
}

/**
 * A decoded header. `command: 'proxy'` carries the addresses to use;
 * `'local'` (v2 LOCAL: a health check or the balancer's own connection) and
 * `'unknown'` (v1 UNKNOWN, or v2 PROXY over a family or transport other than
 * TCP/IPv4/IPv6) mean "use the connection's own addresses".
 */
export type ProxyHeader =
  | {
      readonly version: 1 | 2;
      readonly command: 'proxy';
      readonly addresses: ProxyAddresses;
      readonly tlvs: readonly ProxyTlv[];
    }
  | {
      readonly version: 1 | 2;
      readonly command: 'local' | 'unknown';
      readonly addresses: null;
      readonly tlvs: readonly ProxyTlv[];
    };

export type ProxyParseResult =
  | { readonly status: 'done'; readonly header: ProxyHeader; readonly consumed: number }
  | { readonly status: 'need-more' }
  | { readonly status: 'error'; readonly reason: string };

export interface ProxyParseOptions {
  /** Largest accepted v2 declared length (default {@link PROXY_V2_MAX_LENGTH}). */
  readonly maxV2Length?: number;
}

const NEED_MORE: ProxyParseResult = Object.freeze({ status: 'need-more' });

function fail(reason: string): ProxyParseResult {
  return { status: 'error', reason };
}

// ---- encoding ------------------------------------------------------------------

/**
 * The v1 text header for a connection; `null` gives `PROXY UNKNOWN\r\n`.
 * Throws RangeError when an address does not match the family or a port is
 * out of range.
 *
 * @example
 * ```ts
 * encodeProxyV1({ family: 'tcp4', source: { address: '192.0.2.7', port: 51000 }, destination: { address: '10.0.0.1', port: 443 } });
 * // 'PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\n'
 * ```
 */
export function encodeProxyV1(addrs: ProxyAddresses | null): Buffer {
  if (addrs === null) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  checkAddresses(addrs);
  const src = addrs.family === 'tcp6' ? stripZone(addrs.source.address) : addrs.source.address;
  const dst = addrs.family === 'tcp6' ? stripZone(addrs.destination.address) : addrs.destination.address;
  return Buffer.from(
    `PROXY ${addrs.family === 'tcp4' ? 'TCP4' : 'TCP6'} ${src} ${dst} ${addrs.source.port} ${addrs.destination.port}\r\n`,
    'latin1',
  );
}

/**
 * The v2 binary header for a connection (command PROXY, TCP over IPv4 or
 * IPv6); `null` gives a LOCAL header. Optional TLVs are appended.
 */
export function encodeProxyV2(addrs: ProxyAddresses | null, tlvs: readonly ProxyTlv[] = []): Buffer {
  let tlvBytes = 0;
  for (const t of tlvs) {
    if (!Number.isInteger(t.type) || t.type < 0 || t.type > 0xff) throw new RangeError(`TLV type out of range: ${t.type}`);
    if (t.value.length > 0xffff) throw new RangeError('TLV value longer than 65535 bytes');
    tlvBytes += 3 + t.value.length;
  }
  let addrLen = 0;
  if (addrs !== null) {
    checkAddresses(addrs);
    addrLen = addrs.family === 'tcp4' ? V2_INET_LEN : V2_INET6_LEN;
  }
  const length = addrLen + tlvBytes;
  if (length > 0xffff) throw new RangeError('PROXY v2 header longer than 65535 bytes');
  const out = Buffer.allocUnsafe(V2_FIXED + length);
  PROXY_V2_SIGNATURE.copy(out, 0);
  if (addrs === null) {
    out[12] = V2_VERSION | V2_CMD_LOCAL;
    out[13] = (V2_AF_UNSPEC << 4) | 0;
  } else {
    out[12] = V2_VERSION | V2_CMD_PROXY;
    out[13] = ((addrs.family === 'tcp4' ? V2_AF_INET : V2_AF_INET6) << 4) | V2_PROTO_STREAM;
  }
  out.writeUInt16BE(length, 14);
  let at = V2_FIXED;
  if (addrs !== null) {
    const encode = addrs.family === 'tcp4' ? ipv4ToBytes : ipv6ToBytes;
    const src = encode(addrs.source.address) as Buffer;
    const dst = encode(addrs.destination.address) as Buffer;
    src.copy(out, at);
    at += src.length;
    dst.copy(out, at);
    at += dst.length;
    out.writeUInt16BE(addrs.source.port, at);
    out.writeUInt16BE(addrs.destination.port, at + 2);
    at += 4;
  }
  for (const t of tlvs) {
    out[at] = t.type;
    out.writeUInt16BE(t.value.length, at + 1);
    t.value.copy(out, at + 3);
    at += 3 + t.value.length;
  }
  return out;
}

/** The header of `version` for a connection (`null`: UNKNOWN for v1, LOCAL for v2). */
export function encodeProxyHeader(version: 'v1' | 'v2', addrs: ProxyAddresses | null): Buffer {
  return version === 'v1' ? encodeProxyV1(addrs) : encodeProxyV2(addrs);
}

/**
 * Describes a connection from the addresses Node reports
 * (`socket.remoteAddress` etc.), or returns null when one is missing or
 * invalid. IPv4-mapped IPv6 addresses (`::ffff:192.0.2.7`) become TCP4 when
 * both ends are IPv4; an IPv4 end beside an IPv6 one is mapped into IPv6,
 * since a header has one family.
 */
export function proxyAddresses(
  sourceIp: string | undefined,
  sourcePort: number | undefined,
  destinationIp: string | undefined,
  destinationPort: number | undefined,
): ProxyAddresses | null {
  if (sourceIp === undefined || destinationIp === undefined || !validPort(sourcePort) || !validPort(destinationPort)) return null;
  const src = unmapIpv4(sourceIp);
  const dst = unmapIpv4(destinationIp);
  const src4 = net.isIPv4(src);
  const dst4 = net.isIPv4(dst);
  if (src4 && dst4) {
    return { family: 'tcp4', source: { address: src, port: sourcePort }, destination: { address: dst, port: destinationPort } };
  }
  if ((!src4 && !net.isIPv6(src)) || (!dst4 && !net.isIPv6(dst))) return null;
  const as6 = (ip: string, v4: boolean): string => (v4 ? `::ffff:${ip}` : stripZone(ip));
  return {
    family: 'tcp6',
    source: { address: as6(src, src4), port: sourcePort },
    destination: { address: as6(dst, dst4), port: destinationPort },
  };
}

function validPort(port: number | undefined): port is number {
  return port !== undefined && Number.isInteger(port) && port >= 0 && port <= 0xffff;
}

function unmapIpv4(ip: string): string {
  if (ip.length > 7 && ip.slice(0, 7).toLowerCase() === '::ffff:' && net.isIPv4(ip.slice(7))) return ip.slice(7);
  return ip;
}

function stripZone(ip: string): string {
  const pct = ip.indexOf('%');
  return pct === -1 ? ip : ip.slice(0, pct);
}

function checkAddresses(addrs: ProxyAddresses): void {
  const valid = addrs.family === 'tcp4' ? (ip: string) => net.isIPv4(ip) : (ip: string) => net.isIPv6(ip);
  for (const end of [addrs.source, addrs.destination]) {
    if (!valid(end.address)) throw new RangeError(`not an ${addrs.family === 'tcp4' ? 'IPv4' : 'IPv6'} address: ${end.address}`);
    if (!validPort(end.port)) throw new RangeError(`port out of range: ${end.port}`);
  }
}

// ---- decoding ------------------------------------------------------------------

/**
 * Reads a PROXY header (v1 or v2) from the start of `buf`.
 *
 * `done` says how many bytes the header took (the client's own bytes
 * follow); `need-more` means `buf` is a strict prefix of a header that may
 * still turn out valid; `error` means it cannot be one. Never throws.
 *
 * @example
 * ```ts
 * const r = parseProxyHeader(Buffer.from('PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\nGET /'));
 * // { status: 'done', consumed: 41, header: { version: 1, command: 'proxy', addresses: {...}, tlvs: [] } }
 * ```
 */
export function parseProxyHeader(buf: Buffer, options: ProxyParseOptions = {}): ProxyParseResult {
  if (buf.length === 0) return NEED_MORE;
  if (buf[0] === 0x0d) return parseV2(buf, options.maxV2Length ?? PROXY_V2_MAX_LENGTH);
  if (buf[0] === 0x50 /* P */) return parseV1(buf);
  return fail('not a PROXY protocol header');
}

/** True when `buf` begins with `prefix`'s first `buf.length` bytes (or all of it). */
function matchesPrefix(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.compare(prefix, 0, n, 0, n) === 0;
}

function parseV1(buf: Buffer): ProxyParseResult {
  if (!matchesPrefix(buf, V1_PREFIX)) return fail('not a PROXY protocol header');
  // Find CRLF within the first 107 bytes; every byte before it must be printable US-ASCII.
  const limit = Math.min(buf.length, PROXY_V1_MAX);
  let cr = -1;
  for (let i = V1_PREFIX.length; i < limit; i++) {
    const c = buf[i] as number;
    if (c === 0x0d) {
      cr = i;
      break;
    }
    if (c < 0x20 || c > 0x7e) return fail('PROXY v1: invalid character in header');
  }
  if (cr === -1) return buf.length >= PROXY_V1_MAX ? fail('PROXY v1: header longer than 107 bytes') : NEED_MORE;
  if (cr + 2 > PROXY_V1_MAX) return fail('PROXY v1: header longer than 107 bytes');
  if (cr + 1 >= buf.length) return NEED_MORE;
  if (buf[cr + 1] !== 0x0a) return fail('PROXY v1: CR not followed by LF');
  const consumed = cr + 2;
  const line = buf.toString('latin1', V1_PREFIX.length, cr);
  // "UNKNOWN" and anything after it up to CRLF is ignored (§2.1).
  if (line === 'UNKNOWN' || line.startsWith('UNKNOWN ')) {
    return { status: 'done', consumed, header: { version: 1, command: 'unknown', addresses: null, tlvs: [] } };
  }
  const parts = line.split(' ');
  if (parts.length !== 5) return fail('PROXY v1: expected protocol, two addresses and two ports separated by single spaces');
  const [proto, srcIp, dstIp, srcPort, dstPort] = parts as [string, string, string, string, string];
  let family: ProxyFamily;
  if (proto === 'TCP4') family = 'tcp4';
  else if (proto === 'TCP6') family = 'tcp6';
  else return fail(`PROXY v1: unknown protocol ${JSON.stringify(proto)}`);
  const isIp = family === 'tcp4' ? net.isIPv4 : isPlainIpv6;
  if (!isIp(srcIp)) return fail('PROXY v1: invalid source address');
  if (!isIp(dstIp)) return fail('PROXY v1: invalid destination address');
  const sp = readV1Port(srcPort);
  const dp = readV1Port(dstPort);
  if (sp < 0) return fail('PROXY v1: invalid source port');
  if (dp < 0) return fail('PROXY v1: invalid destination port');
  const canon = family === 'tcp4' ? (ip: string) => ip : (ip: string) => bytesToIpv6(ipv6ToBytes(ip) as Buffer);
  return {
    status: 'done',
    consumed,
    header: {
      version: 1,
      command: 'proxy',
      addresses: { family, source: { address: canon(srcIp), port: sp }, destination: { address: canon(dstIp), port: dp } },
      tlvs: [],
    },
  };
}

/** An IPv6 literal without a zone index (a PROXY header has no use for one). */
function isPlainIpv6(s: string): boolean {
  return s.indexOf('%') === -1 && net.isIPv6(s);
}

/** A decimal port 0..65535 without sign or leading zeros, or -1. */
function readV1Port(s: string): number {
  if (s.length === 0 || s.length > 5) return -1;
  if (s.length > 1 && s.charCodeAt(0) === 0x30) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n <= 0xffff ? n : -1;
}

function parseV2(buf: Buffer, maxLength: number): ProxyParseResult {
  if (!matchesPrefix(buf, PROXY_V2_SIGNATURE)) return fail('not a PROXY protocol header');
  if (buf.length < 13) return NEED_MORE;
  const verCmd = buf[12] as number;
  if ((verCmd & 0xf0) !== V2_VERSION) return fail(`PROXY v2: unsupported version ${verCmd >> 4}`);
  const cmd = verCmd & 0x0f;
  if (cmd !== V2_CMD_LOCAL && cmd !== V2_CMD_PROXY) return fail(`PROXY v2: unknown command ${cmd}`);
  if (buf.length < 14) return NEED_MORE;
  const fam = buf[13] as number;
  const af = fam >> 4;
  const proto = fam & 0x0f;
  if (af > V2_AF_UNIX) return fail(`PROXY v2: unknown address family ${af}`);
  if (proto > 2) return fail(`PROXY v2: unknown transport ${proto}`);
  if (buf.length < V2_FIXED) return NEED_MORE;
  const length = buf.readUInt16BE(14);
  if (length > maxLength) return fail(`PROXY v2: declared length ${length} exceeds ${maxLength}`);
  // The address block's size is implied by the family (§2.2); it must fit the declared length.
  // A LOCAL header's block is skipped whatever it holds (§2.2), so it is only read when it fits.
  let addrLen = af === V2_AF_INET ? V2_INET_LEN : af === V2_AF_INET6 ? V2_INET6_LEN : af === V2_AF_UNIX ? V2_UNIX_LEN : 0;
  if (length < addrLen) {
    if (cmd === V2_CMD_PROXY) return fail(`PROXY v2: declared length ${length} too short for its address family`);
    addrLen = length;
  }
  if (buf.length < V2_FIXED + length) return NEED_MORE;
  const end = V2_FIXED + length;
  const tlvs: ProxyTlv[] = [];
  for (let at = V2_FIXED + addrLen; at < end; ) {
    if (end - at < 3) return fail('PROXY v2: truncated TLV');
    const type = buf[at] as number;
    const len = buf.readUInt16BE(at + 1);
    if (at + 3 + len > end) return fail('PROXY v2: TLV exceeds the header');
    tlvs.push({ type, value: Buffer.from(buf.subarray(at + 3, at + 3 + len)) });
    at += 3 + len;
  }
  // LOCAL: the receiver uses the connection's own addresses and skips the block (§2.2).
  if (cmd === V2_CMD_LOCAL) {
    return { status: 'done', consumed: end, header: { version: 2, command: 'local', addresses: null, tlvs } };
  }
  if ((af !== V2_AF_INET && af !== V2_AF_INET6) || proto !== V2_PROTO_STREAM) {
    // UNSPEC, UNIX or datagram: accepted, with the real endpoints used instead (§2.2).
    return { status: 'done', consumed: end, header: { version: 2, command: 'unknown', addresses: null, tlvs } };
  }
  const a = V2_FIXED;
  let addresses: ProxyAddresses;
  if (af === V2_AF_INET) {
    addresses = {
      family: 'tcp4',
      source: { address: bytesToIpv4(buf, a), port: buf.readUInt16BE(a + 8) },
      destination: { address: bytesToIpv4(buf, a + 4), port: buf.readUInt16BE(a + 10) },
    };
  } else {
    addresses = {
      family: 'tcp6',
      source: { address: bytesToIpv6(buf.subarray(a, a + 16)), port: buf.readUInt16BE(a + 32) },
      destination: { address: bytesToIpv6(buf.subarray(a + 16, a + 32)), port: buf.readUInt16BE(a + 34) },
    };
  }
  return { status: 'done', consumed: end, header: { version: 2, command: 'proxy', addresses, tlvs } };
}

/**
 * Accumulates the first chunks of a connection until a PROXY header is
 * complete, holding at most one header's worth of bytes.
 *
 * @example
 * ```ts
 * const reader = new ProxyHeaderReader();
 * socket.on('data', (chunk) => {
 *   const r = reader.push(chunk);
 *   if (r.status === 'done') start(r.header, r.rest); // r.rest: the client's first bytes, or null
 * });
 * ```
 */
export class ProxyHeaderReader {
  private buf: Buffer | null = null;
  private readonly options: ProxyParseOptions;

  constructor(options: ProxyParseOptions = {}) {
    this.options = options;
  }

  /** Bytes held so far. */
  get buffered(): number {
    return this.buf === null ? 0 : this.buf.length;
  }

  /** Adds a chunk; on `done`, `rest` holds the bytes after the header (null when none). */
  push(
    chunk: Buffer,
  ):
    | { readonly status: 'done'; readonly header: ProxyHeader; readonly rest: Buffer | null }
    | { readonly status: 'need-more' }
    | { readonly status: 'error'; readonly reason: string } {
    const buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    const r = parseProxyHeader(buf, this.options);
    if (r.status === 'need-more') {
      // A need-more buffer is always shorter than the largest header, so this stays bounded.
      this.buf = buf;
      return r;
    }
    this.buf = null;
    if (r.status === 'error') return r;
    return { status: 'done', header: r.header, rest: r.consumed < buf.length ? buf.subarray(r.consumed) : null };
  }
}

// ---- addresses -----------------------------------------------------------------

function ipv4ToBytes(ip: string): Buffer | null {
  if (!net.isIPv4(ip)) return null;
  return Buffer.from(ip.split('.').map(Number));
}

function bytesToIpv4(buf: Buffer, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
}

/** The 16 bytes of an IPv6 literal (zone index ignored), or null when invalid. */
export function ipv6ToBytes(ip: string): Buffer | null {
  const text = stripZone(ip);
  if (!net.isIPv6(text)) return null;
  const out = Buffer.alloc(16);
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const words: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i] as string;
      if (i === pieces.length - 1 && p.indexOf('.') !== -1) {
        const v4 = p.split('.').map(Number) as [number, number, number, number];
        words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        words.push(parseInt(p, 16));
      }
    }
    return words;
  };
  const dbl = text.indexOf('::');
  let words: number[];
  if (dbl === -1) {
    words = groups(text);
  } else {
    const head = groups(text.slice(0, dbl));
    const tail = groups(text.slice(dbl + 2));
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  if (words.length !== 8) return null;
  for (let i = 0; i < 8; i++) out.writeUInt16BE(words[i] as number, i * 2);
  return out;
}

/**
 * The canonical text (RFC 5952 §4) of 16 IPv6 bytes: lower-case hex, no
 * leading zeros, the longest run of two or more zero groups (the first on a
 * tie) as `::`. IPv4-mapped addresses are written `::ffff:a.b.c.d`, as Node
 * reports them.
 */
export function bytesToIpv6(b: Buffer): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(b.readUInt16BE(i * 2));
  if (words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0 && words[4] === 0 && words[5] === 0xffff) {
    return `::ffff:${bytesToIpv4(b, 12)}`;
  }
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (bestAt === -1) return hex(words);
  return `${hex(words.slice(0, bestAt))}::${hex(words.slice(bestAt + bestLen))}`;
}

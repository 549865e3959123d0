/**
 * Messages between session peers and clients. Every message is one
 * envelope: type, flags, request id, two numbers, a key, a value (or null)
 * and a short string. Several envelopes travel in one encrypted frame.
 *
 *   t u8 | f u8 | id u32 | n1 f64 | n2 f64 | klen u16 | vlen u32 (0xffffffff: null) | slen u32 | k | v | s
 */

export const T = {
  // requests from clients (and forwarded between nodes)
  GET: 1,
  SET: 2, // f & CAS: n1 = expected version; n2 = ttl (0: node default)
  DEL: 3,
  TOUCH: 4, // n2 = ttl
  ALL: 5, // streamed: ITEM… END
  CLEAR: 6,
  STATS: 7,
  DUMP: 8, // streamed keys held by this node (tests, operators)
  // a plain set the client sends to every owner itself: k, v, n2 = ttl, n1 = the fingerprint of the owners it chose (HashRing.fingerprint);
  // answered R_OK f=1 n1 = the version this owner assigned, or R_OK f=0: not taken here (the client takes the coordinator path)
  SETALL: 9,
  // between nodes
  PUT: 20, // replicate one record: v (null: tombstone), n1 version, n2 expiresAt, s origin
  REC: 21, // one-way record (hand-off, catch-up of a joining node)
  BARRIER: 22, // answered once every earlier message on the connection is applied
  SYNC: 23, // a joining node asks for every record it owns; streamed ITEM… END; s = its id
  // a write whose replica answers the client itself (R=2): one-way, counted in order on the connection
  DPUT: 24, // coordinator → replica: k, v (null: tombstone), n1 version, n2 expiresAt, s client id, id the client's request id; origin = the sender
  DACK: 25, // replica → coordinator: n1 = DPUTs handled on this connection so far, n2 = ms since the last of them
  DNAK: 26, // replica → coordinator: id = the DPUT's sequence number; f & FOUND: the newer record held follows (k, v, n1, n2, s); else applied, client not answered
  HB: 30, // heartbeat pushed by a node: f & READY; n1 = its maxValueBytes (0: not said)
  // responses (t ≥ 128)
  R_OK: 128, // f = 1 found/ok; n1 = version
  R_GET: 129, // f & FOUND (| TOMB with RAW); v, n1 version, n2 expiresAt, s origin
  R_CAS_FAIL: 130, // n1 = current version
  R_PUT: 131, // f = 1 applied or equal; 0 stale: the record held is newer and follows (v, n1, n2, s)
  R_ITEM: 132, // one record of a stream: k, v, n1, n2, s
  R_END: 133,
  R_STATS: 134, // s = JSON
  R_ERR: 135, // s = code, v = message
} as const;

export const F = {
  CAS: 1,
  FORWARDED: 2,
  FOUND: 4,
  READY: 8,
  TOMB: 16,
  /** SET/DEL from a client that accepts the answer from the replica (on its own connection with it). */
  DIRECT: 32,
  /** GET between nodes: answer with the raw record (tombstones too) for read repair. */
  RAW: 64,
  /** SYNC from a live node that regained a peer (not a joining node). */
  PULL: 128,
} as const;

export interface Msg {
  t: number;
  f: number;
  id: number;
  n1: number;
  n2: number;
  k: string;
  v: string | null;
  s: string;
}

export const HEADER = 32;
const NULL = 0xffffffff;

export function msg(t: number, fields: Partial<Msg> = {}): Msg {
  return { t, f: fields.f ?? 0, id: fields.id ?? 0, n1: fields.n1 ?? 0, n2: fields.n2 ?? 0, k: fields.k ?? '', v: fields.v ?? null, s: fields.s ?? '' };
}

/** Encoded size; also stores the byte lengths of k, v and s at `lens[at]`, `lens[at + 1]`, `lens[at + 2]` for the encoder. */
export function sizeOf(m: Msg, lens: Int32Array, at: number): number {
  const kl = m.k.length === 0 ? 0 : Buffer.byteLength(m.k);
  const vl = m.v === null || m.v.length === 0 ? 0 : Buffer.byteLength(m.v);
  const sl = m.s.length === 0 ? 0 : Buffer.byteLength(m.s);
  lens[at] = kl;
  lens[at + 1] = vl;
  lens[at + 2] = sl;
  return HEADER + kl + vl + sl;
}

export function encodeInto(m: Msg, lens: Int32Array, at: number, buf: Buffer, off: number): number {
  const kl = lens[at] ?? 0;
  const vl = lens[at + 1] ?? 0;
  const sl = lens[at + 2] ?? 0;
  buf[off] = m.t;
  buf[off + 1] = m.f;
  buf.writeUInt32BE(m.id >>> 0, off + 2);
  buf.writeDoubleBE(m.n1, off + 6);
  buf.writeDoubleBE(m.n2, off + 14);
  buf.writeUInt16BE(kl, off + 22);
  buf.writeUInt32BE(m.v === null ? NULL : vl, off + 24);
  buf.writeUInt32BE(sl, off + 28);
  let p = off + HEADER;
  if (kl > 0) p += buf.write(m.k, p, kl, 'utf8');
  if (vl > 0) p += buf.write(m.v as string, p, vl, 'utf8');
  if (sl > 0) p += buf.write(m.s, p, sl, 'utf8');
  return p;
}

export function encode(m: Msg): Buffer {
  const lens = new Int32Array(3);
  const buf = Buffer.allocUnsafe(sizeOf(m, lens, 0));
  encodeInto(m, lens, 0, buf, 0);
  return buf;
}

export class WireError extends Error {}

/** Decodes every envelope of a frame; throws WireError on anything malformed. */
export function decodeAll(buf: Buffer, out: Msg[]): void {
  let p = 0;
  while (p < buf.length) {
    if (buf.length - p < HEADER) throw new WireError('truncated message header');
    const t = buf[p] as number;
    const f = buf[p + 1] as number;
    const id = buf.readUInt32BE(p + 2);
    const n1 = buf.readDoubleBE(p + 6);
    const n2 = buf.readDoubleBE(p + 14);
    const kl = buf.readUInt16BE(p + 22);
    const vraw = buf.readUInt32BE(p + 24);
    const sl = buf.readUInt32BE(p + 28);
    const vl = vraw === NULL ? 0 : vraw;
    p += HEADER;
    if (buf.length - p < kl + vl + sl) throw new WireError('truncated message body');
    const k = kl === 0 ? '' : buf.toString('utf8', p, p + kl);
    p += kl;
    const v = vraw === NULL ? null : vl === 0 ? '' : buf.toString('utf8', p, p + vl);
    p += vl;
    const s = sl === 0 ? '' : buf.toString('utf8', p, p + sl);
    p += sl;
    out.push({ t, f, id, n1, n2, k, v, s });
  }
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CHUNKED_ERROR, CHUNKED_NEED_MORE, ChunkedReader } from './chunked.js';

function encode(parts: Buffer[], trailer = ''): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) out.push(Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n'));
  out.push(Buffer.from(`0\r\n${trailer}\r\n`));
  return Buffer.concat(out);
}

/** Feeds `buf` split at `cuts`; returns the end offset within buf and the decoded data. */
function feedSplit(buf: Buffer, cuts: number[]): { end: number; data: Buffer } {
  const r = new ChunkedReader();
  const data: Buffer[] = [];
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  let start = 0;
  for (const stop of [...points, buf.length]) {
    if (stop < start) continue;
    const piece = buf.subarray(start, stop);
    const res = r.feed(piece, 0, piece.length, (b, s, e) => data.push(b.subarray(s, e)));
    if (res === CHUNKED_ERROR) return { end: CHUNKED_ERROR, data: Buffer.concat(data) };
    if (res !== CHUNKED_NEED_MORE) return { end: start + res, data: Buffer.concat(data) };
    start = stop;
  }
  return { end: CHUNKED_NEED_MORE, data: Buffer.concat(data) };
}

describe('chunked reader', () => {
  it('finds the end of any valid body however it is split, and decodes it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 8 }),
        fc.array(fc.nat(4000), { maxLength: 10 }),
        fc.boolean(),
        (parts, cuts, withTrailer) => {
          const bufs = parts.map((p) => Buffer.from(p));
          const body = encode(bufs, withTrailer ? 'X-Checksum: 1\r\n' : '');
          const next = Buffer.from('GET /next HTTP/1.1\r\n');
          const { end, data } = feedSplit(Buffer.concat([body, next]), cuts);
          assert.equal(end, body.length);
          assert.deepEqual(data, Buffer.concat(bufs));
        },
      ),
    );
  });

  it('accepts extensions and upper-case hex', () => {
    const r = new ChunkedReader();
    const b = Buffer.from('A;name=value\r\n0123456789\r\n0\r\n\r\n');
    assert.equal(r.feed(b, 0, b.length), b.length);
  });

  for (const [name, text] of [
    ['no size', '\r\nabc\r\n0\r\n\r\n'],
    ['non-hex size', 'zz\r\nabc\r\n0\r\n\r\n'],
    ['missing CRLF after data', '3\r\nabcX\r\n0\r\n\r\n'],
    ['bare LF after size', '3\nabc\r\n0\r\n\r\n'],
    ['size overflow', 'fffffffffffffffff\r\n'],
    ['control character in extension', '3;a\x01\r\nabc\r\n0\r\n\r\n'],
    ['bad trailer line', '0\r\n: novalue\r\n\r\n'],
  ] as const) {
    it(`rejects ${name}`, () => {
      const r = new ChunkedReader();
      const b = Buffer.from(text, 'latin1');
      assert.equal(r.feed(b, 0, b.length), CHUNKED_ERROR);
    });
  }
});

/**
 * Incremental chunked transfer coding reader (RFC 9112 §7.1).
 *
 * The proxy forwards chunked bodies byte for byte; this reader only tracks
 * where the message ends and validates the framing, so a malformed body is
 * caught instead of desynchronising the connection. For peers that cannot
 * receive chunked (HTTP/1.0 clients) it can also hand out the data ranges.
 */

const enum State {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLine,
  TrailerLf,
  FinalLf,
  Done,
}

/** Largest chunk size accepted (2^48 - 1: 12 hex digits). */
const MAX_SIZE_DIGITS = 12;
/** Largest trailer section accepted. */
const MAX_TRAILER_BYTES = 16 * 1024;

export const CHUNKED_NEED_MORE = -1;
export const CHUNKED_ERROR = -2;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

export class ChunkedReader {
  private state = State.Size;
  private size = 0;
  private digits = 0;
  private remaining = 0;
  private trailerBytes = 0;

  get done(): boolean {
    return this.state === State.Done;
  }

  /**
   * Consumes `buf[start..end)`. Returns the offset just past the end of the
   * message, CHUNKED_NEED_MORE when every byte was consumed and more are
   * needed, or CHUNKED_ERROR. `onData` receives the ranges of chunk data.
   */
  feed(buf: Buffer, start: number, end: number, onData?: (buf: Buffer, start: number, end: number) => void): number {
    let i = start;
    while (i < end) {
      switch (this.state) {
        case State.Data: {
          const n = Math.min(this.remaining, end - i);
          if (onData !== undefined) onData(buf, i, i + n);
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.DataCr;
          continue;
        }
        case State.Size: {
          const c = buf[i] as number;
          const h = hexValue(c);
          if (h >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) return CHUNKED_ERROR;
            this.size = this.size * 16 + h;
          } else if (this.digits === 0) {
            return CHUNKED_ERROR;
          } else if (c === 13) {
            this.state = State.SizeLf;
          } else if (c === 59 /* ; */ || c === 32 || c === 9) {
            // chunk-ext (and BWS before it, RFC 9112 §7.1.1)
            this.state = State.Ext;
          } else {
            return CHUNKED_ERROR;
          }
          break;
        }
        case State.Ext: {
          const c = buf[i] as number;
          if (c === 13) this.state = State.SizeLf;
          else if ((c < 32 && c !== 9) || c === 127) return CHUNKED_ERROR;
          break;
        }
        case State.SizeLf: {
          if (buf[i] !== 10) return CHUNKED_ERROR;
          if (this.size === 0) {
            this.state = State.TrailerStart;
          } else {
            this.remaining = this.size;
            this.state = State.Data;
          }
          this.size = 0;
          this.digits = 0;
          break;
        }
        case State.DataCr:
          if (buf[i] !== 13) return CHUNKED_ERROR;
          this.state = State.DataLf;
          break;
        case State.DataLf:
          if (buf[i] !== 10) return CHUNKED_ERROR;
          this.state = State.Size;
          break;
        case State.TrailerStart: {
          const c = buf[i] as number;
          if (c === 13) this.state = State.FinalLf;
          else {
            if (c < 33 || c === 58 /* : */ || c === 127) return CHUNKED_ERROR;
            this.state = State.TrailerLine;
          }
          break;
        }
        case State.TrailerLine: {
          const c = buf[i] as number;
          if (++this.trailerBytes > MAX_TRAILER_BYTES) return CHUNKED_ERROR;
          if (c === 13) this.state = State.TrailerLf;
          else if ((c < 32 && c !== 9) || c === 127) return CHUNKED_ERROR;
          break;
        }
        case State.TrailerLf:
          if (buf[i] !== 10) return CHUNKED_ERROR;
          this.state = State.TrailerStart;
          break;
        case State.FinalLf:
          if (buf[i] !== 10) return CHUNKED_ERROR;
          this.state = State.Done;
          return i + 1;
        case State.Done:
          return i;
      }
      i++;
    }
    return CHUNKED_NEED_MORE;
  }
}

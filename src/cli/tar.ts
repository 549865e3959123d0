/**
 * A minimal tar.gz writer (POSIX ustar, IEEE Std 1003.1-1988) for support
 * snapshots: regular files and directories, names up to 255 bytes, gzip
 * by node:zlib. Enough for a handful of text files; nothing to install.
 */
import { gzipSync } from 'node:zlib';

export interface TarEntry {
  /** Path inside the archive; directories end with `/`. */
  readonly name: string;
  /** File content (omit for a directory). */
  readonly data?: Buffer | string;
  readonly mode?: number;
  /** Modification time (default now). */
  readonly mtime?: Date;
}

const BLOCK = 512;

/** An octal field of `len` bytes: digits, zero-padded, NUL-terminated. */
function octal(n: number, len: number): string {
  const s = Math.floor(n).toString(8);
  if (s.length > len - 1) throw new Error(`tar: value ${n} does not fit a ${len}-byte field`);
  return `${s.padStart(len - 1, '0')}\0`;
}

/** Splits a long name into ustar's prefix (≤155) and name (≤100) at a slash. */
function splitName(name: string): { prefix: string; name: string } {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest !== '') return { prefix, name: rest };
  }
  throw new Error(`tar: name too long: ${name}`);
}

function header(entry: TarEntry, size: number, dir: boolean): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const { prefix, name } = splitName(entry.name);
  const put = (value: string, offset: number, len: number): void => {
    h.write(value, offset, len, 'utf8');
  };
  put(name, 0, 100);
  put(octal(entry.mode ?? (dir ? 0o755 : 0o644), 8), 100, 8);
  put(octal(0, 8), 108, 8); // uid
  put(octal(0, 8), 116, 8); // gid
  put(octal(size, 12), 124, 12);
  put(octal((entry.mtime ?? new Date()).getTime() / 1000, 12), 136, 12);
  put('        ', 148, 8); // checksum: spaces while summing
  put(dir ? '5' : '0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put('root', 265, 32);
  put('root', 297, 32);
  put(prefix, 345, 155);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}

/** The uncompressed tar stream. */
export function tar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const dir = e.name.endsWith('/');
    const data = dir ? Buffer.alloc(0) : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? '', 'utf8');
    parts.push(header(e, data.length, dir));
    if (data.length > 0) {
      parts.push(data);
      const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
      if (pad > 0) parts.push(Buffer.alloc(pad, 0));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0)); // end of archive
  return Buffer.concat(parts);
}

export function tarGz(entries: readonly TarEntry[]): Buffer {
  return gzipSync(tar(entries));
}

/** Reads a tar stream back (regular files and directories): for tests and `corral snapshot --list`. */
export function untar(buf: Buffer): { name: string; type: 'file' | 'dir'; data: Buffer; mode: number }[] {
  const out: { name: string; type: 'file' | 'dir'; data: Buffer; mode: number }[] = [];
  let off = 0;
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    const str = (o: number, l: number): string => h.toString('utf8', o, o + l).replace(/\0.*$/s, '');
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
    if (parseInt(str(148, 8).trim(), 8) !== sum) throw new Error(`tar: bad checksum at offset ${off}`);
    const size = parseInt(str(124, 12), 8);
    const prefix = str(345, 155);
    const name = prefix === '' ? str(0, 100) : `${prefix}/${str(0, 100)}`;
    const type = str(156, 1) === '5' ? 'dir' : 'file';
    off += BLOCK;
    out.push({ name, type, data: Buffer.from(buf.subarray(off, off + size)), mode: parseInt(str(100, 8), 8) });
    off += Math.ceil(size / BLOCK) * BLOCK;
  }
  return out;
}

/**
 * Every plain socket reads into one shared buffer (io.ts): bytes that are
 * kept past a read (partial heads, pipelined requests, bodies written to a
 * client that does not keep up) must be copies. These tests interleave many
 * connections so that a kept view would be overwritten by another read.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { httpFarmYaml, startNode, startRawServer } from '../../test/support/farm.js';
import type { Farm } from '../../test/support/farm.js';

const BIG = randomBytes(6 * 1024 * 1024);
const BIG_SHA = createHash('sha256').update(BIG).digest('hex');

/** Parses `count` responses with Content-Length or chunked bodies from raw bytes. */
function splitResponses(raw: Buffer): { status: number; body: Buffer }[] {
  const out: { status: number; body: Buffer }[] = [];
  let at = 0;
  while (at < raw.length) {
    const end = raw.indexOf('\r\n\r\n', at);
    if (end === -1) break;
    const head = raw.toString('latin1', at, end);
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
    const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
    let pos = end + 4;
    if (cl !== null) {
      const n = Number(cl[1]);
      if (pos + n > raw.length) return out; // incomplete
      out.push({ status, body: raw.subarray(pos, pos + n) });
      at = pos + n;
      continue;
    }
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = raw.indexOf('\r\n', pos);
      if (lineEnd === -1) return out; // incomplete
      const size = parseInt(raw.toString('latin1', pos, lineEnd), 16);
      pos = lineEnd + 2;
      if (size === 0) {
        pos += 2;
        break;
      }
      if (pos + size + 2 > raw.length) return out; // incomplete
      parts.push(raw.subarray(pos, pos + size));
      pos += size + 2;
    }
    out.push({ status, body: Buffer.concat(parts) });
    at = pos;
  }
  return out;
}

/** Sends `data` in pieces of 1..`maxPiece` bytes, one piece per event-loop turn, then collects until `done(raw)`. */
function exchange(port: number, data: Buffer, maxPiece: number, done: (raw: Buffer) => boolean, slowReader = false): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let total = 0;
    let paused = 0;
    socket.on('error', reject);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      total += c.length;
      const raw = Buffer.concat(chunks);
      if (done(raw)) {
        socket.destroy();
        resolve(raw);
        return;
      }
      // A slow reader: stop reading every 256 KiB for a few turns, so the proxy's writes back up.
      if (slowReader && total - paused > 256 * 1024) {
        paused = total;
        socket.pause();
        setTimeout(() => socket.resume(), 15);
      }
    });
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    let at = 0;
    const next = (): void => {
      if (at >= data.length || socket.destroyed) return;
      const n = Math.min(data.length - at, 1 + Math.floor(Math.random() * maxPiece));
      socket.write(data.subarray(at, at + n));
      at += n;
      setImmediate(next);
    };
    socket.on('connect', next);
  });
}

describe('shared read buffer: bytes kept past a read are intact', () => {
  let farm: Farm;
  let up: { port: number; close(): Promise<void> };
  before(async () => {
    // A raw server: answers each request with its path (in pieces), or BIG for /big, or BIG chunked for /chunked.
    up = await startRawServer((s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end === -1) return;
          const head = buf.toString('latin1', 0, end);
          buf = buf.subarray(end + 4);
          const path = head.split(' ')[1] ?? '';
          if (path === '/big') {
            s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG.length}\r\n\r\n`);
            for (let i = 0; i < BIG.length; i += 100_000) s.write(BIG.subarray(i, i + 100_000));
          } else if (path === '/chunked') {
            s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
            for (let i = 0; i < BIG.length; i += 70_001) {
              const part = BIG.subarray(i, i + 70_001);
              s.write(`${part.length.toString(16)}\r\n`);
              s.write(part);
              s.write('\r\n');
            }
            s.write('0\r\n\r\n');
          } else {
            const body = `path=${path}`;
            const res = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
            // The head arrives in pieces over several turns.
            const cut = 1 + (path.length % (res.length - 1));
            s.write(res.subarray(0, cut));
            setImmediate(() => s.write(res.subarray(cut)));
          }
        }
      });
    });
    farm = await startNode(httpFarmYaml([up.port]));
  });
  after(async () => {
    await farm.close();
    await up.close();
  });

  it('pipelined requests split at random points, on 20 connections at once, each get their own answer', async () => {
    const runs = Array.from({ length: 20 }, async (_, c) => {
      const paths = Array.from({ length: 25 }, (_, i) => `/c${c}/r${i}/${'x'.repeat((c * 7 + i * 13) % 200)}`);
      const data = Buffer.from(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: t${c}\r\nX-Pad: ${'p'.repeat(i32(c))}\r\n\r\n`).join(''));
      const raw = await exchange(farm.port, data, 97, (r) => splitResponses(r).length === paths.length);
      const got = splitResponses(raw).map((r) => r.body.toString());
      assert.deepEqual(got, paths.map((p) => `path=${p}`));
    });
    await Promise.all(runs);
  });

  it('a 6 MiB body to a client that keeps pausing arrives intact, next to other traffic', async () => {
    const readers = [0, 1, 2].map(async (i) => {
      const path = i === 1 ? '/chunked' : '/big';
      const raw = await exchange(
        farm.port,
        Buffer.from(`GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`),
        1000,
        (r) => splitResponses(r).length === 1,
        true,
      );
      const res = splitResponses(raw)[0];
      assert.equal(res?.status, 200);
      assert.equal(createHash('sha256').update(res.body).digest('hex'), BIG_SHA, `${path} body differs`);
    });
    // Small exchanges in between keep reads landing in the shared buffer.
    const chatter = Array.from({ length: 10 }, async (_, c) => {
      const paths = Array.from({ length: 30 }, (_, i) => `/chatter/${c}/${i}`);
      const data = Buffer.from(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: c\r\n\r\n`).join(''));
      const raw = await exchange(farm.port, data, 40, (r) => splitResponses(r).length === paths.length);
      assert.deepEqual(splitResponses(raw).map((r) => r.body.toString()), paths.map((p) => `path=${p}`));
    });
    await Promise.all([...readers, ...chatter]);
  });
});

function i32(c: number): number {
  return (c * 31) % 100;
}

describe('shared read buffer: tcp mode', () => {
  let farm: Farm;
  let echo: { port: number; close(): Promise<void> };
  before(async () => {
    // An echo server that writes back what it reads, in pieces on later turns.
    echo = await startRawServer((s) => {
      let chain = Promise.resolve();
      let seen = 0;
      s.on('data', (d: Buffer) => {
        const copy = Buffer.from(d);
        const cut = copy.length >> 1;
        // A slow reader too: every 256 KiB it stops reading for a few turns, so the proxy's writes back up.
        seen += d.length;
        if (seen > 256 * 1024) {
          seen = 0;
          s.pause();
          setTimeout(() => s.resume(), 15);
        }
        // In order, each read's second half on a later turn.
        chain = chain
          .then(() => {
            s.write(copy.subarray(0, cut));
            return new Promise<void>((resolve) => setImmediate(resolve));
          })
          .then(() => {
            s.write(copy.subarray(cut));
          });
      });
      s.on('end', () => s.end());
    });
    farm = await startNode(`
frontends:
  - name: l4
    listen: 127.0.0.1:0
    mode: tcp
    backend: echo
backends:
  - name: echo
    servers:
      - { name: e1, address: 127.0.0.1:${echo.port} }
`);
  });
  after(async () => {
    await farm.close();
    await echo.close();
  });

  it('4 clients at once each get back exactly their own 8 MiB, sent in random pieces and read with pauses', async () => {
    // More than loopback's socket buffers hold, so that writes in both directions back up.
    const runs = Array.from({ length: 4 }, async (_, i) => {
      const data = randomBytes(8 * 1024 * 1024 + i * 1000);
      const got = await exchange(farm.port, data, 200_000, (r) => r.length >= data.length, true);
      assert.equal(got.length, data.length, `client ${i}: length`);
      assert.ok(got.equals(data), `client ${i}: bytes differ`);
    });
    await Promise.all(runs);
  });
});

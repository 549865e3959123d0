#!/usr/bin/env node
// Holds N idle HTTP/1.1 keep-alive connections open to 127.0.0.1:PORT.
//
//   node bench/lib/idle-clients.mjs COUNT PORT MAX_SECONDS
//
// Each connection sends one `GET /` (so the server sees a real keep-alive
// client), reads the answer, then stays silent. A connection the server
// closes is opened again after a short pause and counted. Every 5 s, and at
// the end, one JSON line goes to stdout:
//   {"t":..., "open":N, "idle":N, "opened":N, "closedByServer":N, "errors":N}
// Stops by itself after MAX_SECONDS, or on SIGTERM/SIGINT.
import { connect } from 'node:net';

const [count = 1000, port = 8080, maxSeconds = 3600] = process.argv.slice(2).map(Number);
const HOST = '127.0.0.1'; // never anything else
const REQUEST = `GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUser-Agent: corral-bench-idle\r\n\r\n`;

const stats = { open: 0, idle: 0, opened: 0, closedByServer: 0, errors: 0 };
const sockets = new Set();
let stopping = false;
const started = Date.now();

function openOne() {
  if (stopping) return;
  const s = connect({ host: HOST, port });
  let answered = false;
  let connected = false;
  let buf = '';
  s.setNoDelay(true);
  s.once('connect', () => {
    connected = true;
    stats.open++;
    stats.opened++;
    s.write(REQUEST);
  });
  s.on('data', (d) => {
    if (answered) return;
    buf += d.toString('latin1');
    // the upstream answers with Content-Length; a complete head plus body is enough here
    const head = buf.indexOf('\r\n\r\n');
    if (head < 0) return;
    const len = /content-length:\s*(\d+)/i.exec(buf.slice(0, head));
    if (len && buf.length - head - 4 < Number(len[1])) return;
    answered = true;
    buf = '';
    stats.idle++;
  });
  s.on('error', () => stats.errors++);
  s.once('close', () => {
    sockets.delete(s);
    if (connected) stats.open--;
    if (answered) stats.idle--;
    if (stopping) return;
    stats.closedByServer++;
    setTimeout(openOne, 200);
  });
  sockets.add(s);
}

function report(final = false) {
  process.stdout.write(`${JSON.stringify({ t: Math.round((Date.now() - started) / 1000), ...stats, final })}\n`);
}

function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(ticker);
  report(true);
  for (const s of sockets) s.destroy();
  setTimeout(() => process.exit(0), 200);
}

// Open in batches so the listener's accept queue is never flooded.
let pending = count;
const batch = () => {
  const n = Math.min(100, pending);
  for (let i = 0; i < n; i++) openOne();
  pending -= n;
  if (pending > 0) setTimeout(batch, 50);
};
batch();

const ticker = setInterval(() => report(), 5000);
setTimeout(stop, maxSeconds * 1000);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

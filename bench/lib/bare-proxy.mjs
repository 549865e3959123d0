#!/usr/bin/env node
// The floor for a Node proxy: the least a proxy on Node's sockets can do, with none of
// Corral's work (no routing, scheduling, validation, header rewriting, timeouts,
// accounting or logging). One upstream connection per client connection; requests are
// forwarded as they arrive; responses are delimited by Content-Length only. Both sides
// read into one shared buffer through `onread`, as Corral does, and copy what they write.
//
//   node bench/lib/bare-proxy.mjs http|tcp LISTEN_PORT UPSTREAM_PORT
//
// Only for benchmarks: it trusts its client and its upstream completely.
import net from 'node:net';

const [mode = 'http', listenPort = '8080', upstreamPort = '9001'] = process.argv.slice(2);
const SHARED = Buffer.allocUnsafe(64 * 1024);

/** Switches an accepted socket to reads into SHARED (Node's `onread`, which net.Server does not offer). */
function readInto(socket, cb) {
  const own = Object.getOwnPropertySymbols(socket);
  const kBuffer = own.find((s) => s.description === 'kBuffer');
  const kBufferCb = own.find((s) => s.description === 'kBufferCb');
  socket[kBuffer] = SHARED;
  socket[kBufferCb] = (n) => {
    cb(SHARED.subarray(0, n));
    return true;
  };
  socket._handle.useUserBuffer(SHARED);
}

function upstream(onBytes) {
  return net.connect({
    host: '127.0.0.1',
    port: Number(upstreamPort),
    noDelay: true,
    onread: { buffer: SHARED, callback: (n) => (onBytes(SHARED.subarray(0, n)), true) },
  });
}

/** http: forwards each response head and body, found by Content-Length. */
function httpResponses(client) {
  let head = null; // bytes of an incomplete head
  let left = 0; // body bytes still to forward
  return (bytes) => {
    let at = 0;
    while (at < bytes.length) {
      if (left > 0) {
        const n = Math.min(left, bytes.length - at);
        client.write(Buffer.from(bytes.subarray(at, at + n)));
        left -= n;
        at += n;
        continue;
      }
      const buf = head === null ? bytes.subarray(at) : Buffer.concat([head, bytes.subarray(at)]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) {
        head = Buffer.from(buf);
        return;
      }
      const m = /\r\ncontent-length: *(\d+)/i.exec(buf.toString('latin1', 0, end));
      const bodyLen = m === null ? 0 : Number(m[1]);
      const take = Math.min(buf.length, end + 4 + bodyLen);
      client.write(Buffer.from(buf.subarray(0, take)));
      left = end + 4 + bodyLen - take;
      at += take - (head === null ? 0 : head.length);
      head = null;
    }
  };
}

net
  .createServer({ noDelay: true }, (client) => {
    const up = upstream(mode === 'tcp' ? (b) => client.write(Buffer.from(b)) : (b) => onResponse(b));
    const onResponse = httpResponses(client);
    readInto(client, (b) => up.write(Buffer.from(b)));
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  })
  .listen(Number(listenPort), '127.0.0.1');

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { once } from 'node:events';
import { buildRequest, Dechunker, httpCheck, httpResponseReader, type HttpCheckOptions } from './http-check.js';
import { formatReason } from './reasons.js';
import { behaviours, blackHole, TestServer } from './test-servers.js';

const opts: HttpCheckOptions = { method: 'GET', path: '/health', timeoutMs: 300 };
const servers: TestServer[] = [];
async function serve(b: Parameters<typeof TestServer.start>[0]): Promise<TestServer> {
  const s = await TestServer.start(b);
  servers.push(s);
  return s;
}
after(async () => {
  for (const s of servers) await s.close();
});

async function check(b: Parameters<typeof TestServer.start>[0], o: Partial<HttpCheckOptions> = {}): Promise<{ what: string; detail: string | undefined; ms: number }> {
  const s = await serve(b);
  const r = await httpCheck({ host: '127.0.0.1', port: s.port }, { ...opts, ...o });
  return { what: formatReason(r.reason), detail: 'detail' in r.reason ? r.reason.detail : undefined, ms: r.durationMs };
}

test('request: method, path, Host, Connection: close', () => {
  const req = buildRequest({ ...opts, method: 'HEAD' }, { host: '::1', port: 8080 });
  assert.equal(req, 'HEAD /health HTTP/1.1\r\nHost: [::1]:8080\r\nUser-Agent: corral-health\r\nAccept: */*\r\nConnection: close\r\n\r\n');
  assert.match(buildRequest({ ...opts, host: 'app.example.com' }, { host: '10.0.0.1', port: 80 }), /\r\nHost: app\.example\.com\r\n/);
  assert.match(buildRequest(opts, { host: 'web', port: 80 }), /\r\nHost: web\r\n/);
});

test('the request reaches the server as configured', async () => {
  let seen = '';
  const s = await serve((socket) => {
    socket.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('\r\n\r\n')) socket.end('HTTP/1.1 204 No Content\r\n\r\n');
    });
  });
  const r = await httpCheck({ host: '127.0.0.1', port: s.port }, { ...opts, method: 'OPTIONS', path: '/ping?x=1', host: 'svc.local' });
  assert.equal(formatReason(r.reason), 'L7_OK');
  assert.match(seen, /^OPTIONS \/ping\?x=1 HTTP\/1\.1\r\nHost: svc\.local\r\n/);
  assert.match(seen, /\r\nConnection: close\r\n/);
});

test('status: 2xx and 3xx pass by default; others are L7_STATUS with the code', async () => {
  assert.equal((await check(behaviours.http(200))).what, 'L7_OK');
  assert.equal((await check(behaviours.http(302))).what, 'L7_OK');
  const r = await check(behaviours.http(503));
  assert.equal(r.what, 'L7_STATUS 503');
  assert.equal(r.detail, 'X');
  assert.equal((await check(behaviours.http(404))).what, 'L7_STATUS 404');
  assert.equal((await check(behaviours.http(302), { expectStatus: [[200, 299]] })).what, 'L7_STATUS 302');
  assert.equal((await check(behaviours.http(418), { expectStatus: [[200, 200], [418, 418]] })).what, 'L7_OK');
});

test('body match: substring and pattern; a miss is L7_BODY', async () => {
  const body = 'PRODUCTION ACTIVE\n10.144.245.74\n';
  assert.equal((await check(behaviours.http(200, body), { expectBody: 'ACTIVE' })).what, 'L7_OK');
  assert.equal((await check(behaviours.http(200, body), { expectBody: /^PRODUCTION (ACTIVE|STANDBY)$/m })).what, 'L7_OK');
  const miss = await check(behaviours.http(200, body), { expectBody: 'PASSIVE' });
  assert.equal(miss.what, 'L7_BODY');
  assert.match(miss.detail!, /not in the 32-byte body/);
  assert.equal((await check(behaviours.http(200, ''), { expectBody: 'x' })).what, 'L7_BODY');
  assert.equal((await check(behaviours.http(503, 'ACTIVE'), { expectBody: 'ACTIVE' })).what, 'L7_STATUS 503', 'status first');
});

test('hang: L7_TIMEOUT within the timeout', async () => {
  const r = await check(behaviours.hang());
  assert.equal(r.what, 'L7_TIMEOUT');
  assert.ok(r.ms >= 290 && r.ms < 600, `took ${r.ms}ms`);
});

test('connect timeout: L4_TIMEOUT (SYNs unanswered)', async () => {
  const hole = await blackHole();
  try {
    const r = await httpCheck({ host: '127.0.0.1', port: hole.port }, { ...opts, timeoutMs: 200 });
    assert.equal(formatReason(r.reason), 'L4_TIMEOUT');
    assert.ok(r.durationMs < 500);
  } finally {
    hole.close();
  }
});

test('refused: L4_REFUSED', async () => {
  const s = await serve(behaviours.hang());
  await s.down();
  const r = await httpCheck({ host: '127.0.0.1', port: s.port }, opts);
  assert.equal(formatReason(r.reason), 'L4_REFUSED');
});

test('garbage: L7_RESPONSE at once, without waiting for the timeout', async () => {
  const r = await check(behaviours.garbage());
  assert.equal(r.what, 'L7_RESPONSE');
  assert.match(r.detail!, /not HTTP/);
  assert.ok(r.ms < 200);
  const bad = await check(behaviours.garbage('HTTP/1.1 OK\r\n\r\n'));
  assert.equal(bad.what, 'L7_RESPONSE');
  assert.match(bad.detail!, /bad status line/);
});

test('close mid-head: L7_RESPONSE; reset mid-head: L4_RESET; close at once: L7_RESPONSE', async () => {
  const cut = await check(behaviours.closeMidHead());
  assert.equal(cut.what, 'L7_RESPONSE');
  assert.match(cut.detail!, /before a complete head/);
  assert.equal((await check(behaviours.resetMidHead())).what, 'L4_RESET');
  const silent = await check(behaviours.closeAtOnce());
  assert.equal(silent.what, 'L7_RESPONSE');
});

test('close mid-body while matching: L7_RESPONSE', async () => {
  const r = await check(behaviours.closeMidBody(), { expectBody: 'never' });
  assert.equal(r.what, 'L7_RESPONSE');
  assert.match(r.detail!, /body bytes missing/);
  // Found before the cut: the verdict was already certain.
  assert.equal((await check(behaviours.closeMidBody(), { expectBody: 'part' })).what, 'L7_OK');
});

test('10 MB body: judged on the head, or on the first 64 KiB when matching; fast', async () => {
  const plain = await check(behaviours.bigBody());
  assert.equal(plain.what, 'L7_OK');
  const miss = await check(behaviours.bigBody(), { expectBody: 'needle' });
  assert.equal(miss.what, 'L7_BODY');
  assert.match(miss.detail!, /first 65536 bytes/);
  const chunked = await check(behaviours.bigBody(10 * 1024 * 1024, true), { expectBody: 'needle' });
  assert.equal(chunked.what, 'L7_BODY');
  assert.ok(miss.ms < 250 && chunked.ms < 250, `${miss.ms} ${chunked.ms}`);
});

test('a huge head is cut at 64 KiB: L7_RESPONSE', async () => {
  const r = await check((socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\n');
      const line = `x-filler: ${'y'.repeat(1000)}\r\n`;
      for (let i = 0; i < 200; i++) socket.write(line);
    });
  });
  assert.equal(r.what, 'L7_RESPONSE');
  assert.match(r.detail!, /head larger than 65536/);
});

test('interim 100 Continue is skipped', async () => {
  const r = await check((socket) => socket.once('data', () => socket.end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\n\r\n')));
  assert.equal(r.what, 'L7_STATUS 503');
});

test('reader: bytes split anywhere give the same verdict; never buffers beyond the bounds', () => {
  const response = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n');
  for (let split = 1; split < response.length; split++) {
    const reader = httpResponseReader({ ...opts, expectBody: 'lo wor' });
    const first = reader.data(response.subarray(0, split));
    const verdict = first ?? reader.data(response.subarray(split)) ?? reader.end();
    assert.equal(formatReason(verdict), 'L7_OK', `split at ${split}`);
  }
  const reader = httpResponseReader({ ...opts, expectBody: 'needle' });
  assert.equal(reader.data(Buffer.from('HTTP/1.1 200 OK\r\n\r\n')), undefined);
  let verdict;
  let fed = 0;
  const block = Buffer.alloc(1000, 'z');
  while (verdict === undefined && fed < 10_000_000) {
    verdict = reader.data(block);
    fed += block.length;
  }
  assert.equal(verdict?.code, 'L7_BODY');
  assert.ok(fed <= 64 * 1024 + 1000, `decided after ${fed} bytes`);
});

test('dechunker: framing errors', () => {
  assert.match(new Dechunker().push(Buffer.from('zz\r\n')).error!, /bad chunk size/);
  assert.match(new Dechunker().push(Buffer.from('2\r\nabX\r\n')).error ?? '', /missing CRLF/);
  const d = new Dechunker();
  const out = d.push(Buffer.from('3\r\nabc\r\n0\r\n\r\n'));
  assert.equal(out.data.toString(), 'abc');
  assert.equal(out.done, true);
});

// --- TLS -------------------------------------------------------------------

let certDir: string | undefined;
let cert: Buffer | undefined;
let key: Buffer | undefined;
before(() => {
  try {
    certDir = mkdtempSync(join(tmpdir(), 'corral-health-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' });
    cert = readFileSync(join(certDir, 'cert.pem'));
    key = readFileSync(join(certDir, 'key.pem'));
  } catch {
    cert = undefined;
  }
});
after(() => {
  if (certDir !== undefined) rmSync(certDir, { recursive: true, force: true });
});

test('tls: checks over TLS, verifying against a CA; handshake problems are L6_TLS', async (t) => {
  if (cert === undefined || key === undefined) {
    t.skip('openssl not available');
    return;
  }
  const server = tls.createServer({ cert, key }, (socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  try {
    const ok = await httpCheck({ host: '127.0.0.1', port, tls: { ca: cert, servername: 'localhost' } }, opts);
    assert.equal(formatReason(ok.reason), 'L7_OK');
    const unverified = await httpCheck({ host: '127.0.0.1', port, tls: { verify: false } }, opts);
    assert.equal(formatReason(unverified.reason), 'L7_OK');
    const untrusted = await httpCheck({ host: '127.0.0.1', port, tls: { servername: 'localhost' } }, opts);
    assert.equal(formatReason(untrusted.reason), 'L6_TLS');
    // Plain HTTP spoken to a TLS port, and TLS to a plain port.
    const plain = await httpCheck({ host: '127.0.0.1', port }, opts);
    assert.notEqual(formatReason(plain.reason), 'L7_OK');
    const s = await serve(behaviours.reply('HTTP/1.1 400 Bad Request\r\n\r\n', true));
    const wrong = await httpCheck({ host: '127.0.0.1', port: s.port, tls: { verify: false } }, opts);
    assert.equal(formatReason(wrong.reason), 'L6_TLS');
  } finally {
    server.close();
  }
});

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { formatReason } from './reasons.js';
import { sendExpectCheck, type SendExpectOptions } from './send-expect-check.js';
import { behaviours, TestServer, type Behaviour } from './test-servers.js';

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});
async function check(b: Behaviour, opts: Partial<SendExpectOptions>): Promise<{ what: string; detail?: string; ms: number }> {
  const s = await TestServer.start(b);
  servers.push(s);
  const r = await sendExpectCheck({ host: '127.0.0.1', port: s.port }, { timeoutMs: 300, ...opts });
  return { what: formatReason(r.reason), ms: r.durationMs, ...('detail' in r.reason && r.reason.detail !== undefined ? { detail: r.reason.detail } : {}) };
}

test('nanny: send "GET / HTTP/1.0", expect "HTTP"', async () => {
  let got = '';
  const r = await check(
    (socket) =>
      socket.once('data', (d: Buffer) => {
        got = d.toString();
        socket.end('HTTP/1.0 200 OK\r\n\r\n');
      }),
    { send: 'GET / HTTP/1.0\r\n\r\n', expect: 'HTTP' },
  );
  assert.equal(r.what, 'L7_OK');
  assert.equal(got, 'GET / HTTP/1.0\r\n\r\n');
});

test('banner protocols: nothing sent, expect a pattern', async () => {
  assert.equal((await check(behaviours.reply('220 mail.example.com ESMTP\r\n'), { expect: /^220 /m })).what, 'L7_OK');
  assert.equal((await check(behaviours.reply('+PONG\r\n', true), { send: 'PING\r\n', expect: '+PONG' })).what, 'L7_OK');
});

test('wrong reply, close, hang, flood', async () => {
  const wrong = await check(behaviours.reply('-ERR nope\r\n', true), { send: 'PING\r\n', expect: '+PONG' });
  assert.equal(wrong.what, 'L7_EXPECT');
  assert.match(wrong.detail!, /closed without "\+PONG" in 11 bytes/);
  assert.equal((await check(behaviours.hang(), { send: 'PING\r\n', expect: '+PONG' })).what, 'L7_TIMEOUT');
  const flood = await check(behaviours.bigBody(), { send: 'GET / HTTP/1.0\r\n\r\n', expect: 'needle' });
  assert.equal(flood.what, 'L7_EXPECT');
  assert.match(flood.detail!, /first 65536 bytes/);
  assert.ok(flood.ms < 250);
});

test('split replies are matched across chunks', async () => {
  const r = await check(
    (socket) => {
      socket.write('+PO');
      setImmediate(() => socket.end('NG\r\n'));
    },
    { expect: '+PONG' },
  );
  assert.equal(r.what, 'L7_OK');
});

test('send without expect: connecting and writing suffice', async () => {
  assert.equal((await check(behaviours.hang(), { send: 'hello' })).what, 'L4_OK');
});

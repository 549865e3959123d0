import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { pollAgentPort, runAgentCommand } from './agent.js';
import { behaviours, TestServer } from './test-servers.js';

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});
const server = { backend: 'app', name: 'app1', host: '10.0.0.7', port: 8080 };

test('agent port: one line, with or without a close', async () => {
  const closes = await TestServer.start(behaviours.reply('up 75%\n'));
  const stays = await TestServer.start((socket) => socket.write('drain\r\nmore lines\n'));
  const nothing = await TestServer.start(behaviours.closeAtOnce());
  servers.push(closes, stays, nothing);
  assert.deepEqual(await pick(pollAgentPort({ host: '127.0.0.1', port: closes.port }, 500)), { ok: true, text: 'up 75%\n' });
  assert.deepEqual(await pick(pollAgentPort({ host: '127.0.0.1', port: stays.port }, 500)), { ok: true, text: 'drain\r\n' });
  assert.deepEqual(await pick(pollAgentPort({ host: '127.0.0.1', port: nothing.port }, 500)), { ok: true, text: '' });
});

test('agent port: hang, refused, flood are bounded', async () => {
  const hang = await TestServer.start(behaviours.hang());
  const flood = await TestServer.start((socket) => socket.write(Buffer.alloc(1 << 20, 'x')));
  servers.push(hang, flood);
  const h = await pollAgentPort({ host: '127.0.0.1', port: hang.port }, 100);
  assert.equal(h.ok ? '' : h.error, 'L7_TIMEOUT');
  const f = await pollAgentPort({ host: '127.0.0.1', port: flood.port }, 500);
  assert.ok(f.ok && f.text.length <= 1024);
  await hang.down();
  const r = await pollAgentPort({ host: '127.0.0.1', port: hang.port }, 100);
  assert.equal(r.ok ? '' : r.error, 'L4_REFUSED');
});

test('agent command: stdout is the reply; the server is in the environment', async () => {
  const r = await runAgentCommand('echo "$CORRAL_BACKEND/$CORRAL_SERVER_NAME $CORRAL_SERVER_ADDRESS:$CORRAL_SERVER_PORT"', server, 2000);
  assert.deepEqual(r.ok && r.text, 'app/app1 10.0.0.7:8080\n');
});

test('agent command: a failing command is an error', async () => {
  const r = await runAgentCommand('echo 50%; exit 3', server, 2000);
  assert.deepEqual(!r.ok && r.error, 'exited with code 3');
  const missing = await runAgentCommand('/nonexistent/corral-load', server, 2000);
  assert.equal(missing.ok, false);
});

test('agent command: overstaying is killed with what it started; output is bounded', async () => {
  const started = Date.now();
  const r = await runAgentCommand('sleep 30 & sleep 30', server, 150);
  assert.deepEqual(!r.ok && r.error, 'no reply within 150ms');
  assert.ok(Date.now() - started < 1000);
  const big = await runAgentCommand('head -c 3000000 /dev/zero | tr "\\0" "x"', server, 5000);
  assert.ok(big.ok && big.text.length === 1024);
});

async function pick(p: Promise<{ ok: boolean; text?: string; error?: string }>): Promise<unknown> {
  const r = await p;
  return r.ok ? { ok: true, text: r.text } : { ok: false, error: r.error };
}

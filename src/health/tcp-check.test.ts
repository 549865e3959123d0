import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { formatReason } from './reasons.js';
import { tcpCheck } from './tcp-check.js';
import { behaviours, blackHole, TestServer } from './test-servers.js';

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

test('tcp: connected is L4_OK, even when the server never speaks', async () => {
  const s = await TestServer.start(behaviours.hang());
  servers.push(s);
  const r = await tcpCheck({ host: '127.0.0.1', port: s.port }, { timeoutMs: 500 });
  assert.equal(formatReason(r.reason), 'L4_OK');
  assert.ok(r.durationMs < 100);
});

test('tcp: refused, dead and back again', async () => {
  const s = await TestServer.start(behaviours.closeAtOnce());
  servers.push(s);
  await s.down();
  assert.equal(formatReason((await tcpCheck({ host: '127.0.0.1', port: s.port }, { timeoutMs: 500 })).reason), 'L4_REFUSED');
  await s.up();
  assert.equal(formatReason((await tcpCheck({ host: '127.0.0.1', port: s.port }, { timeoutMs: 500 })).reason), 'L4_OK');
});

test('tcp: SYNs unanswered is L4_TIMEOUT after the timeout', async () => {
  const hole = await blackHole();
  try {
    const r = await tcpCheck({ host: '127.0.0.1', port: hole.port }, { timeoutMs: 150 });
    assert.equal(formatReason(r.reason), 'L4_TIMEOUT');
    assert.ok(r.durationMs >= 140 && r.durationMs < 400, `${r.durationMs}`);
  } finally {
    hole.close();
  }
});

test('tcp: an unknown host is L4_UNREACHABLE', async () => {
  const r = await tcpCheck({ host: 'no-such-host.invalid', port: 80 }, { timeoutMs: 2000 });
  assert.ok(r.reason.code === 'L4_UNREACHABLE' || r.reason.code === 'L4_TIMEOUT', formatReason(r.reason));
});

test('tcp: an aborted check ends at once', async () => {
  const hole = await blackHole();
  try {
    const ac = new AbortController();
    const pending = tcpCheck({ host: '127.0.0.1', port: hole.port }, { timeoutMs: 10_000 }, ac.signal);
    ac.abort();
    const r = await pending;
    assert.equal(r.reason.code, 'L4_TIMEOUT');
    assert.ok(r.durationMs < 100);
  } finally {
    hole.close();
  }
});

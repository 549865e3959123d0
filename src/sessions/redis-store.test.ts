import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { SessionError } from './errors.js';
import { RedisStore } from './redis-store.js';
import { storeContract } from './store-contract.js';

const URL_6379 = 'redis://127.0.0.1:6379';
const prefix = (name: string): string => `corral:test:${process.pid}:${name}:`;

storeContract('redis', async (o) => {
  const store = new RedisStore({ url: URL_6379, prefix: prefix('plain'), ttl: o.ttl, maxValueBytes: o.maxValueBytes });
  return { store, close: async () => (await store.clear(), await store.close()) };
});

storeContract('redis (encrypted)', async (o) => {
  const store = new RedisStore({ url: URL_6379, prefix: prefix('enc'), ttl: o.ttl, maxValueBytes: o.maxValueBytes, encryptKey: 'test-cluster-key' });
  return { store, close: async () => (await store.clear(), await store.close()) };
});

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const probe = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => {});
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return child;
    } catch {
      probe.disconnect();
      await sleep(50);
    }
  }
  throw new Error('redis-server did not start');
}

describe('redis store details', () => {
  const raw = new Redis(URL_6379);
  after(() => raw.disconnect());

  it('keeps keys under the prefix with Redis expiry', async () => {
    const s = new RedisStore({ url: URL_6379, prefix: prefix('layout'), ttl: 5000 });
    await s.set('abc', 'v');
    const pttl = await raw.pttl(`${prefix('layout')}abc`);
    assert.ok(pttl > 4000 && pttl <= 5000, `pttl ${pttl}`);
    assert.equal(await raw.hget(`${prefix('layout')}abc`, 'v'), 'v');
    await s.clear();
    await s.close();
  });

  it('encrypts values at rest and refuses a value moved to another key', async () => {
    const p = prefix('sealed');
    const s = new RedisStore({ url: URL_6379, prefix: p, encryptKey: 'k1' });
    await s.set('a', '{"secret":"hunter2"}');
    const stored = (await raw.hget(`${p}a`, 'v')) ?? '';
    assert.ok(!stored.includes('hunter2'));
    assert.equal((await s.get('a'))?.value, '{"secret":"hunter2"}');
    await raw.hset(`${p}b`, 'v', stored, 'n', 1); // copy the ciphertext to another session id
    assert.equal(await s.get('b'), undefined);
    const other = new RedisStore({ url: URL_6379, prefix: p, encryptKey: 'another key' });
    assert.equal(await other.get('a'), undefined);
    await s.clear();
    await s.close();
    await other.close();
  });

  it('surfaces errors while Redis is gone and recovers when it returns', { timeout: 20_000 }, async () => {
    const port = await freePort();
    let server = await startRedis(port);
    const s = new RedisStore({ url: `redis://127.0.0.1:${port}`, timeout: 500 });
    try {
      await s.set('k', 'before');
      server.kill('SIGKILL');
      await once(server, 'exit');
      const t0 = Date.now();
      await assert.rejects(s.get('k'), (e: unknown) => e instanceof SessionError && (e.code === 'CORRAL_ERR_SESSION_UNAVAILABLE' || e.code === 'CORRAL_ERR_SESSION_TIMEOUT'));
      await assert.rejects(s.set('k', 'during'), (e: unknown) => e instanceof SessionError);
      assert.ok(Date.now() - t0 < 3000, 'errors come within the bound, not a hang');
      assert.ok(s.stats().errors >= 2);
      server = await startRedis(port);
      let back = false;
      for (let i = 0; i < 60 && !back; i++) {
        try {
          await s.set('k', 'after');
          back = true;
        } catch {
          await sleep(100);
        }
      }
      assert.ok(back, 'the store works again once Redis is back');
      assert.equal((await s.get('k'))?.value, 'after');
    } finally {
      await s.close();
      server.kill('SIGKILL');
    }
  });
});

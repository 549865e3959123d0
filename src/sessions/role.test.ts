import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../config/index.js';
import { startSessions } from './role.js';

function config(yaml: string) {
  const r = parseConfig(yaml, 'corral.yaml', {});
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  return r.config;
}

describe('startSessions', () => {
  it('is absent without a sessions section', async () => {
    assert.equal(await startSessions(config('node: { name: a }\n')), undefined);
  });

  it('builds the memory store with the configured TTL and size limit', async () => {
    const role = await startSessions(config('sessions:\n  store: memory\n  ttl: 2s\n  maxValueBytes: 10\n'));
    assert.ok(role);
    try {
      assert.equal(role.store.kind, 'memory');
      const t0 = Date.now();
      await role.store.set('a', 'x');
      const e = await role.store.get('a');
      assert.ok(e && e.expiresAt - t0 >= 1900 && e.expiresAt - t0 <= 2100);
      await assert.rejects(role.store.set('b', 'x'.repeat(11)), { code: 'CORRAL_ERR_SESSION_TOO_LARGE' });
      assert.equal(role.stats().sessions, 1);
    } finally {
      await role.close();
    }
  });

  it('builds the redis store, encrypting with cluster.key when asked', async () => {
    const prefix = `corral:role-test:${process.pid}:`;
    const role = await startSessions(config(`sessions:\n  store: redis\n  encrypt: true\n  redis: { url: redis://127.0.0.1:6379, prefix: "${prefix}" }\ncluster:\n  key: k\n`));
    assert.ok(role);
    try {
      assert.equal(role.store.kind, 'redis');
      await role.store.set('a', 'secret');
      assert.equal((await role.store.get('a'))?.value, 'secret');
      await role.store.clear();
    } finally {
      await role.close();
    }
  });

  it('refuses encryption or peers without cluster.key', async () => {
    await assert.rejects(startSessions(config('sessions:\n  store: redis\n  encrypt: true\n')), /cluster.key/);
    await assert.rejects(startSessions(config('sessions:\n  store: peer\n  listen: 127.0.0.1:0\n  peers: [127.0.0.1:1]\n')), /cluster.key/);
  });
});

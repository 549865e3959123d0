/**
 * `GET /api/v1/status` carries the sessions role's figures (`sessions`) when
 * `corral start` runs the role: in the single process and in the supervisor
 * with workers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PeerClient } from '../../src/sessions/peer-client.js';
import { freePorts, TEST_KEY } from '../../src/sessions/testing.js';
import { request, startUpstream } from '../support/farm.js';
import { runCorral, tempFile } from '../support/process.js';

interface SessionsStatus {
  store: string;
  node?: string;
  ready?: boolean;
  sessions: number;
  tombstones?: number;
  bytes: number;
  hits: number;
  misses: number;
  sets: number;
  destroys: number;
  evictions: number;
  replication?: { inflight: number; avgLagMs: number; replicated: number; failures: number };
  handoff?: { running: boolean; pending: number; completed: number };
  members?: { id: string; live: boolean; self: boolean }[];
  security?: { authFailures: number; protocolErrors: number };
}

const config = (upstream: number, sessions: string, workers = 1): string => `
node: { name: st }
workers: ${workers}
admin: { listen: 127.0.0.1:0 }
frontends:
  - { name: web, listen: 127.0.0.1:0, backend: app }
backends:
  - name: app
    servers:
      - { name: s1, address: 127.0.0.1:${upstream} }
${sessions}
`;

async function status(admin: string): Promise<Record<string, unknown>> {
  const r = await request(admin, { path: '/api/v1/status' });
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as Record<string, unknown>;
}

describe('admin status: the sessions role', () => {
  it('shows the peer node\'s counts, bytes, hits/misses, replication and hand-off in /api/v1/status', async () => {
    const up = await startUpstream('s1');
    const [port] = await freePorts(1);
    const id = `127.0.0.1:${port}`;
    const file = tempFile('corral.yaml', config(up.port, `sessions:\n  store: peer\n  replicas: 1\n  listen: ${id}\n  peers: [${id}]\ncluster:\n  key: ${JSON.stringify(TEST_KEY)}`));
    const corral = runCorral(['start', '-c', file]);
    const client = new PeerClient({ peers: [id], key: TEST_KEY, replicas: 1 });
    try {
      const admin = `http://${String((await corral.waitFor((l) => l.msg === 'admin listening')).address)}`;
      await corral.waitFor((l) => l.msg === 'sessions role started');
      assert.ok(await client.ready());
      await Promise.all(['a', 'b', 'c'].map((k) => client.set(k, `value-${k}`)));
      await client.destroy('c');
      assert.equal((await client.get('a'))?.value, 'value-a');
      assert.equal(await client.get('nope'), undefined);
      const s = (await status(admin)).sessions as SessionsStatus;
      assert.ok(s !== undefined, 'a sessions object');
      assert.equal(s.store, 'peer');
      assert.equal(s.node, id);
      assert.equal(s.ready, true);
      assert.equal(s.sessions, 2);
      assert.equal(s.tombstones, 1);
      assert.equal(s.bytes, 'a'.length + 'value-a'.length + 'b'.length + 'value-b'.length + 'c'.length);
      assert.equal(s.hits, 1);
      assert.equal(s.misses, 1);
      assert.equal(s.sets, 3);
      assert.equal(s.destroys, 1);
      assert.equal(s.evictions, 0);
      assert.deepEqual(s.replication && Object.keys(s.replication).sort(), ['avgLagMs', 'failures', 'inflight', 'lastLagMs', 'replicated']);
      assert.equal(s.handoff?.running, false);
      assert.deepEqual(s.members, [{ id, live: true, self: true }]);
      assert.deepEqual(s.security, { authFailures: 0, protocolErrors: 0 });
      assert.equal('wire' in s, false);
    } finally {
      await client.close();
      corral.child.kill('SIGTERM');
      await corral.exited;
      await up.close();
    }
  });

  it('the supervisor (workers: 2) shows them too; a node without the role has no sessions field', async () => {
    const up = await startUpstream('s1');
    const withRole = runCorral(['start', '-c', tempFile('corral.yaml', config(up.port, 'sessions:\n  store: memory', 2))]);
    const without = runCorral(['start', '-c', tempFile('corral.yaml', config(up.port, ''))]);
    try {
      const a = `http://${String((await withRole.waitFor((l) => l.msg === 'admin listening')).address)}`;
      await withRole.waitFor((l) => l.msg === 'sessions role started');
      const s = (await status(a)).sessions as SessionsStatus;
      assert.equal(s.store, 'memory');
      assert.equal(s.sessions, 0);
      const b = `http://${String((await without.waitFor((l) => l.msg === 'admin listening')).address)}`;
      const plain = await status(b);
      assert.equal('sessions' in plain, false);
      assert.ok(Array.isArray(plain.backends));
    } finally {
      for (const c of [withRole, without]) c.child.kill('SIGTERM');
      await Promise.all([withRole.exited, without.exited]);
      await up.close();
    }
  });
});

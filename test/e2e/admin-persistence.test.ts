/**
 * Runtime changes survive a restart (the state file is read at start) and a
 * reload (re-applied before the new generation takes a request) — what
 * HAProxy users script around (haproxy/haproxy #199, #953).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { captureLogger, parseTestConfig, startAdminFarm, tempDir } from '../../src/admin/testing.js';
import type { ChangeResponse, RecentEventsResponse, StatusResponse } from '../../src/admin/types.js';
import { request, startUpstream } from '../support/farm.js';
import type { Upstream } from '../support/farm.js';

const yaml = (ports: readonly number[], extra = ''): string => `
node: { name: keep }
frontends:
  - { name: web, listen: 127.0.0.1:0, backend: app }
backends:
  - name: app
    serverHeader: X-Server
${extra}
    servers:
${ports.map((p, i) => `      - { name: s${i + 1}, address: 127.0.0.1:${p}, weight: 10 }`).join('\n')}
`;

const JSON_HEADERS = { 'content-type': 'application/json' };

async function status(url: string): Promise<StatusResponse> {
  return JSON.parse((await request(url, { path: '/api/v1/status' })).body) as StatusResponse;
}

function server(s: StatusResponse, name: string): StatusResponse['backends'][number]['servers'][number] {
  const x = s.backends[0]?.servers.find((y) => y.name === name);
  assert.ok(x !== undefined, `no server ${name}`);
  return x;
}

describe('runtime changes persist', () => {
  let ups: Upstream[];
  before(async () => {
    ups = [await startUpstream('one'), await startUpstream('two'), await startUpstream('three')];
  });
  after(async () => {
    for (const u of ups) await u.close();
  });

  it('across a restart: the same state file re-applies state and weight', async () => {
    const stateFile = join(tempDir(), 'corral.state.json');
    const ports = ups.map((u) => u.port);
    const first = await startAdminFarm(yaml(ports), { stateFile });
    try {
      const d = await request(first.url, { method: 'POST', path: '/api/v1/backends/app/servers/s1/state', headers: JSON_HEADERS, body: '{"state":"drain"}' });
      assert.equal(d.status, 200, d.body);
      const w = await request(first.url, { method: 'PUT', path: '/api/v1/backends/app/servers/s2/weight', headers: JSON_HEADERS, body: '{"weight":3}' });
      assert.equal((JSON.parse(w.body) as ChangeResponse).status.effectiveWeight, 3);
      // On disk as soon as the API answered.
      const doc = JSON.parse(readFileSync(stateFile, 'utf8')) as { servers: { server: string; admin?: string; weight?: number; by: string }[] };
      assert.deepEqual(
        doc.servers.map((s) => [s.server, s.admin, s.weight, s.by]),
        [
          ['s1', 'drain', undefined, 'anonymous'],
          ['s2', undefined, 3, 'anonymous'],
        ],
      );
    } finally {
      await first.close();
    }

    const { log, lines } = captureLogger();
    const second = await startAdminFarm(yaml(ports), { stateFile, log });
    try {
      const s = await status(second.url);
      assert.equal(server(s, 's1').state, 'drain');
      assert.equal(server(s, 's2').weight, 3);
      assert.equal(server(s, 's2').weightSource, 'runtime');
      assert.equal(server(s, 's2').effectiveWeight, 3);
      assert.equal(server(s, 's3').state, 'up');
      assert.ok(lines.some((l) => l.msg === 're-applied 2 runtime change(s) from the state file'));
      // New clients avoid the drained server after the restart too.
      for (let i = 0; i < 10; i++) assert.notEqual((await request(second.lb, { path: '/' })).headers['x-server'], 's1');
      const recent = JSON.parse((await request(second.url, { path: '/api/v1/events/recent' })).body) as RecentEventsResponse;
      assert.ok(recent.events.some((e) => e.type === 'admin-action' && e.actor === 'state-file' && e.server === 's1'));
    } finally {
      await second.close();
    }
  });

  it('across reloads: re-applied before the new generation serves, also for a server whose address changed; gone servers are dropped', async () => {
    const stateFile = join(tempDir(), 'corral.state.json');
    const ports = ups.map((u) => u.port);
    const { log, lines } = captureLogger();
    const farm = await startAdminFarm(yaml(ports), { stateFile, log });
    try {
      await request(farm.url, { method: 'POST', path: '/api/v1/backends/app/servers/s1/state', headers: JSON_HEADERS, body: '{"state":"maint"}' });
      await request(farm.url, { method: 'PUT', path: '/api/v1/backends/app/servers/s2/weight', headers: JSON_HEADERS, body: '{"weight":0}' });
      await request(farm.url, { method: 'POST', path: '/api/v1/backends/app/servers/s3/state', headers: JSON_HEADERS, body: '{"state":"drain"}' });

      // Reload 1: something else changed; every server object is rebuilt (weights start from the config again).
      const r1 = await farm.node.reload(parseTestConfig(yaml(ports, '    retries: 2')));
      assert.equal(r1.changed, true);
      // Synchronously after the reload resolved: already re-applied.
      const b1 = farm.node.backends.get('app');
      assert.equal(b1?.byName.get('s1')?.admin, 'maint');
      assert.equal(b1?.byName.get('s2')?.weight, 0);
      assert.equal(b1?.byName.get('s3')?.admin, 'drain');

      // Reload 2: s1 moves to another address (no state carried over by the balancer), s3 is removed.
      const moved = [ups[2]?.port as number, ports[1] as number];
      const r2 = await farm.node.reload(parseTestConfig(yaml(moved)));
      assert.equal(r2.generation, 3);
      const s = await status(farm.url);
      assert.equal(s.generation, 3);
      assert.equal(server(s, 's1').state, 'maint', 'state re-applied to the moved server');
      assert.equal(server(s, 's2').effectiveWeight, 0);
      assert.equal(s.backends[0]?.servers.length, 2);
      for (let i = 0; i < 6; i++) {
        const r = await request(farm.lb, { path: '/' });
        assert.equal(r.status, 503, 's1 in maint and s2 at weight 0: nothing eligible');
      }
      assert.ok(lines.some((l) => typeof l.msg === 'string' && l.msg.includes('app/s3 dropped')));
      await farm.admin.state.idle();
      const doc = JSON.parse(readFileSync(stateFile, 'utf8')) as { servers: { server: string }[] };
      assert.deepEqual(doc.servers.map((x) => x.server).sort(), ['s1', 's2']);
      const recent = JSON.parse((await request(farm.url, { path: '/api/v1/events/recent' })).body) as RecentEventsResponse;
      const reloads = recent.events.filter((e) => e.type === 'reload');
      assert.deepEqual(
        reloads.map((e) => (e.type === 'reload' ? [e.generation, e.reapplied] : [])),
        [
          [2, 3],
          [3, 2],
        ],
      );
    } finally {
      await farm.close();
    }
  });
});

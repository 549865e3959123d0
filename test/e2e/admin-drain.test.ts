/**
 * drain vs maint through the admin API, against a real node with a sticky
 * cookie and two real upstreams: a drained server takes no new client but
 * keeps its pinned one; in maintenance even the pinned client moves, and a
 * request already in flight still finishes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startAdminFarm } from '../../src/admin/testing.js';
import type { AdminFarm } from '../../src/admin/testing.js';
import { request, startUpstream } from '../support/farm.js';
import type { Reply, Upstream } from '../support/farm.js';

function cookieOf(r: Reply): string {
  const set = r.headers['set-cookie']?.[0];
  assert.ok(set !== undefined, `no Set-Cookie in ${JSON.stringify(r.headers)}`);
  return set.split(';')[0] as string;
}

describe('drain and maint via the admin API (sticky cookie)', () => {
  let ups: Upstream[];
  let farm: AdminFarm;
  const release = new Set<() => void>();
  let slowArrived: () => void = () => undefined;

  before(async () => {
    const handler = (name: string) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
      req.resume();
      const reply = (): void => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(name);
      };
      if (req.url === '/slow') {
        release.add(reply);
        slowArrived();
      } else reply();
    };
    ups = [await startUpstream('a', handler('a')), await startUpstream('b', handler('b'))];
    farm = await startAdminFarm(`
frontends:
  - { name: web, listen: 127.0.0.1:0, backend: app }
backends:
  - name: app
    sticky: { cookie: SERVERID }
    serverHeader: X-Server
    servers:
      - { name: a, address: 127.0.0.1:${ups[0]?.port} }
      - { name: b, address: 127.0.0.1:${ups[1]?.port} }
`);
  });
  after(async () => {
    for (const r of release) r();
    await farm.close();
    for (const u of ups) await u.close();
  });

  const setState = async (server: string, state: string): Promise<void> => {
    const r = await request(farm.url, { method: 'POST', path: `/api/v1/backends/app/servers/${server}/state`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state }) });
    assert.equal(r.status, 200, r.body);
  };

  it('a drained server keeps its sticky client, takes no new one; maint moves the pinned client; in-flight work finishes', async () => {
    // Pin a client.
    const first = await request(farm.lb, { path: '/' });
    assert.equal(first.status, 200);
    const pinned = first.headers['x-server'] as string;
    const other = pinned === 'a' ? 'b' : 'a';
    const cookie = cookieOf(first);
    const pinnedUp = ups[pinned === 'a' ? 0 : 1] as Upstream;

    // A request of the pinned client in flight on its server while the state changes.
    const arrived = new Promise<void>((resolve) => (slowArrived = resolve));
    const slow = request(farm.lb, { path: '/slow', headers: { cookie } });
    await arrived;

    await setState(pinned, 'drain');

    // New clients (no cookie) never reach the drained server.
    const hits = pinnedUp.hits;
    for (let i = 0; i < 20; i++) {
      const r = await request(farm.lb, { path: '/' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-server'], other, `new client ${i} reached the drained server`);
    }
    assert.equal(pinnedUp.hits, hits, 'the drained upstream saw no new request');

    // The pinned client keeps its server.
    for (let i = 0; i < 5; i++) {
      const r = await request(farm.lb, { path: '/', headers: { cookie } });
      assert.equal(r.headers['x-server'], pinned, 'the sticky client left its drained server');
    }

    // Maintenance: no traffic at all; the pinned client moves (and gets a new cookie).
    await setState(pinned, 'maint');
    const moved = await request(farm.lb, { path: '/', headers: { cookie } });
    assert.equal(moved.status, 200);
    assert.equal(moved.headers['x-server'], other);
    assert.match(cookieOf(moved), new RegExp(`^SERVERID=${other}\\.`));

    // The request that was in flight when drain and maint were set still completes.
    assert.equal(release.size, 1);
    for (const r of release) r();
    release.clear();
    const done = await slow;
    assert.equal(done.status, 200);
    assert.equal(done.body, pinned);

    // Ready again: new clients reach it again.
    await setState(pinned, 'ready');
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await request(farm.lb, { path: '/' })).headers['x-server'] as string);
    assert.ok(seen.has(pinned));
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { httpFarmYaml, request, startUpstream } from '../../test/support/farm.js';
import type { Upstream } from '../../test/support/farm.js';
import { silentLogger } from '../log.js';
import { startAdmin } from './admin-server.js';
import { AdminError } from './errors.js';
import { noEvents } from './events.js';
import { basic, captureLogger, startAdminFarm } from './testing.js';
import type { AdminFarm } from './testing.js';
import type { ChangeResponse, ErrorResponse, StatusResponse } from './types.js';

const JSON_HEADERS = { 'content-type': 'application/json' };

function json<T>(body: string): T {
  return JSON.parse(body) as T;
}

describe('admin API contract', () => {
  let ups: Upstream[];
  let farm: AdminFarm;
  const captured = captureLogger();

  before(async () => {
    ups = [await startUpstream('one'), await startUpstream('two')];
    farm = await startAdminFarm(
      `node: { name: lb-test }\n${httpFarmYaml(
        ups.map((u) => u.port),
        '',
        (p, i) => `{ name: s${i + 1}, address: 127.0.0.1:${p}, weight: ${i + 3} }`,
      )}`,
      { log: captured.log },
    );
  });
  after(async () => {
    await farm.close();
    for (const u of ups) await u.close();
  });

  it('GET /api/v1/status describes node, role, frontends, backends and servers', async () => {
    await request(farm.lb, { path: '/' });
    const r = await request(farm.url, { path: '/api/v1/status' });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const s = json<StatusResponse>(r.body);
    assert.equal(s.node, 'lb-test');
    assert.equal(s.role, 'primary');
    assert.equal(s.generation, 1);
    assert.deepEqual(s.cluster, { members: [{ name: 'lb-test', role: 'primary', self: true }], primary: 'lb-test' });
    assert.equal(s.frontends[0]?.name, 'web');
    assert.equal(s.frontends[0]?.mode, 'http');
    const b = s.backends[0];
    assert.equal(b?.name, 'app');
    assert.equal(b?.balance, 'roundrobin');
    assert.equal(b?.queueLength, 0);
    const s1 = b?.servers[0];
    assert.ok(s1 !== undefined);
    assert.equal(s1.name, 's1');
    assert.equal(s1.address, `127.0.0.1:${ups[0]?.port}`);
    assert.equal(s1.state, 'up');
    assert.equal(s1.admin, 'ready');
    assert.equal(s1.weight, 3);
    assert.equal(s1.configWeight, 3);
    assert.equal(s1.effectiveWeight, 3);
    assert.equal(s1.weightSource, 'config');
    for (const k of ['active', 'inactive', 'total', 'failures', 'connectFailures', 'retries', 'bytesIn', 'bytesOut', 'maxConn'] as const) {
      assert.equal(typeof s1[k], 'number', k);
    }
    assert.deepEqual(Object.keys(s1.responses), ['1xx', '2xx', '3xx', '4xx', '5xx']);
    const total = (b?.servers ?? []).reduce((n, x) => n + x.total, 0);
    assert.ok(total >= 1, 'the request through the balancer is counted');
    assert.ok(!Number.isNaN(Date.parse(s1.lastChange)));
    // No health monitor wired and health type none: the check says so.
    assert.equal(s1.check?.reason, 'NO_CHECK');
  });

  it('POST …/state drains a server, logs the actor, and is idempotent', async () => {
    const r = await request(farm.url, { method: 'POST', path: '/api/v1/backends/app/servers/s1/state', headers: JSON_HEADERS, body: '{"state":"drain"}' });
    assert.equal(r.status, 200, r.body);
    const c = json<ChangeResponse>(r.body);
    assert.equal(c.changed, true);
    assert.equal(c.actor, 'anonymous');
    assert.equal(c.status.state, 'drain');
    assert.equal(c.status.admin, 'drain');
    assert.equal(farm.node.backends.get('app')?.byName.get('s1')?.state, 'drain', 'the node changed within the request');
    const again = json<ChangeResponse>((await request(farm.url, { method: 'POST', path: '/api/v1/backends/app/servers/s1/state', headers: JSON_HEADERS, body: '{"state":"drain"}' })).body);
    assert.equal(again.changed, false);
    const line = captured.lines.find((l) => l.action === 'state' && l.to === 'drain');
    assert.ok(line !== undefined, 'the change is logged');
    assert.equal(line.actor, 'anonymous');
    assert.equal(line.backend, 'app');
    assert.equal(line.server, 's1');
    const back = await request(farm.url, { method: 'POST', path: '/api/v1/backends/app/servers/s1/state', headers: JSON_HEADERS, body: '{"state":"ready"}' });
    assert.equal(json<ChangeResponse>(back.body).status.state, 'up');
  });

  it('PUT …/weight sets the scheduler weight; the configured weight clears the override', async () => {
    const r = await request(farm.url, { method: 'PUT', path: '/api/v1/backends/app/servers/s2/weight', headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"weight":0}' });
    assert.equal(r.status, 200, r.body);
    const c = json<ChangeResponse>(r.body);
    assert.equal(c.status.weight, 0);
    assert.equal(c.status.effectiveWeight, 0);
    assert.equal(c.status.weightSource, 'runtime');
    assert.equal(c.status.configWeight, 4);
    assert.equal(farm.node.backends.get('app')?.byName.get('s2')?.weight, 0);
    // Weight 0: no new requests reach s2.
    const hitsBefore = ups[1]?.hits ?? 0;
    for (let i = 0; i < 6; i++) await request(farm.lb, { path: '/' });
    assert.equal(ups[1]?.hits, hitsBefore);
    const reset = json<ChangeResponse>((await request(farm.url, { method: 'PUT', path: '/api/v1/backends/app/servers/s2/weight', headers: JSON_HEADERS, body: '{"weight":4}' })).body);
    assert.equal(reset.status.weightSource, 'config');
    assert.equal(reset.status.effectiveWeight, 4);
  });

  const bad: [string, string, string, string | undefined, RegExp][] = [
    ['POST', '/api/v1/backends/nope/servers/s1/state', '{"state":"drain"}', undefined, /backend "nope"/],
    ['POST', '/api/v1/backends/app/servers/ghost/state', '{"state":"drain"}', undefined, /server "ghost" in backend "app"/],
    ['PUT', '/api/v1/backends/app/servers/ghost/weight', '{"weight":1}', undefined, /server "ghost"/],
    ['POST', '/api/v1/backends/app/servers/s1/state', '{"state":"sleep"}', 'state', /ready, drain, maint/],
    ['POST', '/api/v1/backends/app/servers/s1/state', '{}', 'state', /"state"/],
    ['POST', '/api/v1/backends/app/servers/s1/state', '{"state":"drain","why":"x"}', 'why', /unknown field "why"/],
    ['PUT', '/api/v1/backends/app/servers/s1/weight', '{"weight":257}', 'weight', /0 to 256/],
    ['PUT', '/api/v1/backends/app/servers/s1/weight', '{"weight":-1}', 'weight', /0 to 256/],
    ['PUT', '/api/v1/backends/app/servers/s1/weight', '{"weight":1.5}', 'weight', /integer/],
    ['PUT', '/api/v1/backends/app/servers/s1/weight', '{"weight":"8"}', 'weight', /integer/],
    ['PUT', '/api/v1/backends/app/servers/s1/weight', '{"weight":', undefined, /not valid JSON/],
    ['PUT', '/api/v1/backends/app/servers/s1/weight', '[1]', undefined, /JSON object/],
  ];
  for (const [method, path, body, field, message] of bad) {
    it(`${method} ${path} ${body} → ${field === undefined && /nope|ghost/.test(path) ? 404 : 400}${field !== undefined ? ` naming ${field}` : ''}`, async () => {
      const before = farm.adminNode.status();
      const r = await request(farm.url, { method, path, headers: JSON_HEADERS, body });
      const expected = /nope|ghost/.test(path) ? 404 : 400;
      assert.equal(r.status, expected, r.body);
      const e = json<ErrorResponse>(r.body);
      assert.match(e.error.message, message);
      assert.match(e.error.code, /^CORRAL_ERR_ADMIN_/);
      if (field !== undefined) assert.equal(e.error.field, field);
      assert.deepEqual(farm.adminNode.status().backends, before.backends, 'nothing changed');
    });
  }

  it('415 for a body that is not application/json, 413 for one over 16 KiB', async () => {
    const form = await request(farm.url, { method: 'POST', path: '/api/v1/backends/app/servers/s1/state', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'state=maint' });
    assert.equal(form.status, 415);
    assert.equal(json<ErrorResponse>(form.body).error.code, 'CORRAL_ERR_ADMIN_MEDIA_TYPE');
    const none = await request(farm.url, { method: 'POST', path: '/api/v1/backends/app/servers/s1/state', body: '{"state":"maint"}' });
    assert.equal(none.status, 415);
    const big = JSON.stringify({ state: 'maint', pad: 'x'.repeat(20_000) });
    const large = await request(farm.url, { method: 'POST', path: '/api/v1/backends/app/servers/s1/state', headers: JSON_HEADERS, body: big });
    assert.equal(large.status, 413);
    assert.equal(json<ErrorResponse>(large.body).error.code, 'CORRAL_ERR_ADMIN_TOO_LARGE');
    assert.equal(farm.node.backends.get('app')?.byName.get('s1')?.admin, 'ready');
  });

  it('405 with Allow for a wrong method; 404 JSON for an unknown path', async () => {
    const r = await request(farm.url, { method: 'GET', path: '/api/v1/backends/app/servers/s1/state' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'POST');
    const w = await request(farm.url, { method: 'POST', path: '/api/v1/backends/app/servers/s1/weight', headers: JSON_HEADERS, body: '{"weight":1}' });
    assert.equal(w.status, 405);
    assert.equal(w.headers.allow, 'PUT');
    const d = await request(farm.url, { method: 'DELETE', path: '/api/v1/status' });
    assert.equal(d.status, 405);
    const n = await request(farm.url, { path: '/api/v2/status' });
    assert.equal(n.status, 404);
    assert.equal(json<ErrorResponse>(n.body).error.code, 'CORRAL_ERR_ADMIN_NOT_FOUND');
  });

  it('GET /healthz answers ACTIVE <node>', async () => {
    const r = await request(farm.url, { path: '/healthz' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ACTIVE lb-test\n');
  });

  it('GET /stats is HTML without scripts: a table per backend, a row per server, totals, refresh', async () => {
    await request(farm.url, { method: 'POST', path: '/api/v1/backends/app/servers/s2/state', headers: JSON_HEADERS, body: '{"state":"maint"}' });
    const r = await request(farm.url, { path: '/stats' });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.match(String(r.headers['content-security-policy']), /form-action 'none'/);
    assert.doesNotMatch(r.body, /<script/i);
    assert.match(r.body, /<meta http-equiv="refresh" content="5">/);
    assert.match(r.body, /Backend app/);
    assert.match(r.body, /<td>s1<\/td>/);
    assert.match(r.body, /<td>s2<\/td>/);
    assert.match(r.body, />MAINT</);
    assert.match(r.body, />UP</);
    assert.match(r.body, /<tr class="total">/);
    const off = await request(farm.url, { path: '/stats?refresh=0' });
    assert.doesNotMatch(off.body, /http-equiv="refresh"/);
    await request(farm.url, { method: 'POST', path: '/api/v1/backends/app/servers/s2/state', headers: JSON_HEADERS, body: '{"state":"ready"}' });
  });

  it('GET / is the console; its script is served separately', async () => {
    const r = await request(farm.url, { path: '/' });
    assert.equal(r.status, 200);
    assert.match(r.body, /href="\/stats"/);
    assert.match(r.body, /<script src="\/console.js"><\/script>/);
    const js = await request(farm.url, { path: '/console.js' });
    assert.match(String(js.headers['content-type']), /javascript/);
    assert.match(js.body, /EventSource/);
  });

  it('GET /api/v1/events/recent lists the admin actions with actor', async () => {
    const r = await request(farm.url, { path: '/api/v1/events/recent' });
    const events = json<{ events: { type: string; actor?: string }[] }>(r.body).events;
    assert.ok(events.some((e) => e.type === 'admin-action' && e.actor === 'anonymous'));
    assert.ok(events.some((e) => e.type === 'server-state'));
  });
});

describe('admin authentication', () => {
  let ups: Upstream[];
  let farm: AdminFarm;
  let tokenFarm: AdminFarm;

  before(async () => {
    ups = [await startUpstream('one')];
    const yaml = `admin: { listen: 127.0.0.1:0, auth: { user: alice, password: s3cret-pw } }\n${httpFarmYaml(ups.map((u) => u.port))}`;
    farm = await startAdminFarm(yaml, { auth: { user: 'alice', password: 's3cret-pw' } });
    tokenFarm = await startAdminFarm(httpFarmYaml(ups.map((u) => u.port)), { auth: { token: 'tok-123456' } });
  });
  after(async () => {
    await farm.close();
    await tokenFarm.close();
    for (const u of ups) await u.close();
  });

  const drain = (f: AdminFarm, headers: Record<string, string>): ReturnType<typeof request> =>
    request(f.url, { method: 'POST', path: '/api/v1/backends/app/servers/s1/state', headers: { ...JSON_HEADERS, ...headers }, body: '{"state":"maint"}' });
  const adminOf = (f: AdminFarm): string | undefined => f.node.backends.get('app')?.byName.get('s1')?.admin;

  const refused: [string, Record<string, string>][] = [
    ['no credentials', {}],
    ['a wrong password', { authorization: basic('alice', 'guess') }],
    ['a wrong user', { authorization: basic('mallory', 's3cret-pw') }],
    ['the wrong scheme', { authorization: 'Bearer s3cret-pw' }],
    ['malformed Basic', { authorization: 'Basic !!!' }],
    ['a cookie only', { cookie: 'session=alice; auth=s3cret-pw' }],
  ];
  for (const [what, headers] of refused) {
    it(`401 with WWW-Authenticate and nothing changed for ${what}`, async () => {
      const r = await drain(farm, headers);
      assert.equal(r.status, 401, r.body);
      assert.match(String(r.headers['www-authenticate']), /^Basic realm="corral"/);
      assert.equal(json<ErrorResponse>(r.body).error.code, 'CORRAL_ERR_ADMIN_UNAUTHORIZED');
      assert.equal(adminOf(farm), 'ready');
    });
  }

  it('reads need credentials too; /healthz does not', async () => {
    for (const path of ['/', '/stats', '/metrics', '/api/v1/status', '/api/v1/config', '/api/v1/events']) {
      const r = await request(farm.url, { path });
      assert.equal(r.status, 401, path);
    }
    const h = await request(farm.url, { path: '/healthz' });
    assert.equal(h.status, 200);
  });

  it('the right Basic credentials change the state, and the actor is the user', async () => {
    const r = await drain(farm, { authorization: basic('alice', 's3cret-pw') });
    assert.equal(r.status, 200, r.body);
    assert.equal(json<ChangeResponse>(r.body).actor, 'alice');
    assert.equal(adminOf(farm), 'maint');
    await request(farm.url, { method: 'POST', path: '/api/v1/backends/app/servers/s1/state', headers: { ...JSON_HEADERS, authorization: basic('alice', 's3cret-pw') }, body: '{"state":"ready"}' });
  });

  it('a form post with valid credentials (what a CSRF page could send) is 415 and changes nothing', async () => {
    for (const ct of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain']) {
      const r = await request(farm.url, {
        method: 'POST',
        path: '/api/v1/backends/app/servers/s1/state',
        headers: { 'content-type': ct, authorization: basic('alice', 's3cret-pw') },
        body: ct === 'text/plain' ? '{"state":"maint"}' : 'state=maint',
      });
      assert.equal(r.status, 415, ct);
      assert.equal(adminOf(farm), 'ready');
    }
  });

  it('a cross-origin request is 403 even with credentials', async () => {
    const r = await drain(farm, { authorization: basic('alice', 's3cret-pw'), origin: 'https://evil.example' });
    assert.equal(r.status, 403);
    assert.equal(json<ErrorResponse>(r.body).error.code, 'CORRAL_ERR_ADMIN_CROSS_ORIGIN');
    const s = await drain(farm, { authorization: basic('alice', 's3cret-pw'), 'sec-fetch-site': 'cross-site' });
    assert.equal(s.status, 403);
    assert.equal(adminOf(farm), 'ready');
  });

  it('a bearer token: right token works (actor "token"), Basic or a wrong token is 401', async () => {
    const wrong = await drain(tokenFarm, { authorization: 'Bearer tok-999999' });
    assert.equal(wrong.status, 401);
    assert.match(String(wrong.headers['www-authenticate']), /^Bearer realm="corral"/);
    const scheme = await drain(tokenFarm, { authorization: basic('token', 'tok-123456') });
    assert.equal(scheme.status, 401);
    assert.equal(adminOf(tokenFarm), 'ready');
    const ok = await drain(tokenFarm, { authorization: 'Bearer tok-123456' });
    assert.equal(ok.status, 200);
    assert.equal(json<ChangeResponse>(ok.body).actor, 'token');
  });

  it('GET /api/v1/config masks secrets', async () => {
    const r = await request(farm.url, { path: '/api/v1/config', headers: { authorization: basic('alice', 's3cret-pw') } });
    assert.equal(r.status, 200);
    assert.doesNotMatch(r.body, /s3cret-pw/);
    const cfg = json<{ admin: { auth: { user: string; password: string } } }>(r.body);
    assert.equal(cfg.admin.auth.user, 'alice');
    assert.equal(cfg.admin.auth.password, '***');
  });

  it('fails with CORRAL_ERR_ADMIN_LISTEN when the address is taken', async () => {
    const port = Number(new URL(farm.url).port);
    await assert.rejects(
      startAdmin({ config: { listen: { host: '127.0.0.1', port } }, node: farm.adminNode, log: silentLogger(), events: noEvents }),
      (err: unknown) => err instanceof AdminError && err.code === 'CORRAL_ERR_ADMIN_LISTEN' && err.message.includes(`127.0.0.1:${port}`),
    );
  });

  it('refuses to start on a non-loopback address without auth, with a clear message', async () => {
    await assert.rejects(
      startAdmin({
        config: { listen: { host: '0.0.0.0', port: 0 } },
        node: farm.adminNode,
        log: silentLogger(),
        events: noEvents,
      }),
      (err: unknown) => err instanceof AdminError && err.code === 'CORRAL_ERR_ADMIN_AUTH_REQUIRED' && /admin\.auth/.test(err.message) && /0\.0\.0\.0:0/.test(err.message),
    );
  });
});

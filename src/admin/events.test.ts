import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { httpFarmYaml, request, startUpstream } from '../../test/support/farm.js';
import type { Upstream } from '../../test/support/farm.js';
import { EventLog, healthEventSource } from './events.js';
import type { HealthEvents } from './events.js';
import { openEventStream, startAdminFarm } from './testing.js';
import type { AdminFarm } from './testing.js';
import type { AdminEvent, AdminEventBody } from './types.js';

const role = (n: number): AdminEventBody => ({ type: 'reload', generation: n, reapplied: 0 });

describe('EventLog', () => {
  it('numbers events <boot>-<seq> and replays what followed a seen id', () => {
    const log = new EventLog(10, 'abcd');
    const ids = [1, 2, 3, 4].map((n) => log.publish(role(n)).id);
    assert.deepEqual(ids, ['abcd-1', 'abcd-2', 'abcd-3', 'abcd-4']);
    const r = log.replay('abcd-2');
    assert.equal(r.gap, false);
    assert.deepEqual(r.events.map((e) => e.id), ['abcd-3', 'abcd-4']);
    assert.deepEqual(log.replay('abcd-4'), { events: [], gap: false });
  });

  it('is bounded; an id older than the buffer or from another run replays everything kept, flagged as a gap', () => {
    const log = new EventLog(3, 'beef');
    for (let n = 1; n <= 5; n++) log.publish(role(n));
    assert.deepEqual(log.recent().map((e) => e.id), ['beef-3', 'beef-4', 'beef-5']);
    const old = log.replay('beef-1');
    assert.equal(old.gap, true);
    assert.deepEqual(old.events.map((e) => e.id), ['beef-3', 'beef-4', 'beef-5']);
    assert.equal(log.replay('beef-2').gap, false, 'beef-3 directly follows beef-2');
    assert.equal(log.replay('0000-4').gap, true);
    assert.equal(log.replay('garbage').events.length, 3);
  });

  it('a throwing subscriber does not stop the others', () => {
    const log = new EventLog();
    const seen: AdminEvent[] = [];
    log.subscribe(() => {
      throw new Error('boom');
    });
    log.subscribe((e) => seen.push(e));
    log.publish(role(1));
    assert.equal(seen.length, 1);
  });
});

describe('healthEventSource', () => {
  it('turns health bus events into admin events and leaves admin weight changes to the admin', () => {
    const bus = new EventEmitter();
    const got: AdminEventBody[] = [];
    const off = healthEventSource(bus as unknown as HealthEvents).subscribe((e) => got.push(e));
    bus.emit('server-state', { backend: 'app', server: 'a', from: 'up', to: 'down', reason: { code: 'L7_STATUS', status: 503 }, message: 'server app/a is DOWN', checkDurationMs: 12, at: 0 });
    bus.emit('server-weight', { backend: 'app', server: 'a', from: 1, to: 2, cause: 'slow-start', at: 0 });
    bus.emit('server-weight', { backend: 'app', server: 'a', from: 2, to: 3, cause: 'admin', at: 0 });
    bus.emit('server-flapping', { backend: 'app', server: 'a', flapping: true, falls: 3, windowMs: 1, holdMs: 1, at: 0 });
    off();
    bus.emit('server-state', { backend: 'app', server: 'a', from: 'down', to: 'up', reason: { code: 'L7_OK' }, message: '', checkDurationMs: 1, at: 0 });
    assert.deepEqual(got, [
      { type: 'server-state', backend: 'app', server: 'a', from: 'up', to: 'down', source: 'health', reason: 'L7_STATUS 503', message: 'server app/a is DOWN', checkDurationMs: 12 },
      { type: 'server-weight', backend: 'app', server: 'a', from: 1, to: 2, cause: 'slow-start' },
      { type: 'server-flapping', backend: 'app', server: 'a', flapping: true, falls: 3 },
    ]);
  });
});

describe('GET /api/v1/events (Server-Sent Events)', () => {
  let ups: Upstream[];
  let farm: AdminFarm;

  before(async () => {
    ups = [await startUpstream('a'), await startUpstream('b')];
    farm = await startAdminFarm(httpFarmYaml(ups.map((u) => u.port)), { server: { heartbeatMs: 50 } });
  });
  after(async () => {
    await farm.close();
    for (const u of ups) await u.close();
  });

  const post = (server: string, state: string): ReturnType<typeof request> =>
    request(farm.url, { method: 'POST', path: `/api/v1/backends/app/servers/${server}/state`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state }) });

  it('streams admin actions, server state changes, health events and heartbeats', async () => {
    const es = await openEventStream(`${farm.url}/api/v1/events`);
    try {
      assert.equal(es.status, 200);
      assert.match(String(es.headers['content-type']), /^text\/event-stream/);
      await post('s1', 'drain');
      const action = await es.next((f) => f.event === 'admin-action');
      const a = JSON.parse(action.data) as AdminEvent & { type: 'admin-action' };
      assert.equal(a.actor, 'anonymous');
      assert.equal(a.to, 'drain');
      assert.equal(action.id, a.id);
      const st = JSON.parse((await es.next((f) => f.event === 'server-state')).data) as AdminEvent & { type: 'server-state' };
      assert.deepEqual([st.from, st.to, st.source], ['up', 'drain', 'admin']);
      farm.feed.emit({ type: 'server-state', backend: 'app', server: 's2', from: 'up', to: 'down', source: 'health', reason: 'L4_REFUSED', message: 'down', checkDurationMs: 3 });
      const h = JSON.parse((await es.next((f) => f.event === 'server-state' && f.data.includes('L4_REFUSED'))).data) as { server: string };
      assert.equal(h.server, 's2');
      await es.comment((c) => c === 'heartbeat');
    } finally {
      es.close();
      await post('s1', 'ready');
    }
  });

  it('replays what followed Last-Event-ID, then continues live', async () => {
    const first = await openEventStream(`${farm.url}/api/v1/events`);
    await post('s2', 'maint');
    const seen = await first.next((f) => f.event === 'admin-action' && f.data.includes('"maint"'));
    first.close();
    // Missed while disconnected:
    await post('s2', 'drain');
    await post('s2', 'ready');
    const again = await openEventStream(`${farm.url}/api/v1/events`, { 'last-event-id': seen.id as string });
    try {
      const replayed = await again.next((f) => f.event === 'admin-action' && f.data.includes('"ready"'));
      const actions = again.frames.filter((f) => f.event === 'admin-action').map((f) => (JSON.parse(f.data) as { to: string }).to);
      assert.deepEqual(actions, ['drain', 'ready'], 'exactly the missed actions, in order, nothing before');
      assert.ok(again.frames.every((f) => f.id !== seen.id));
      assert.ok(replayed.id !== undefined);
      await post('s1', 'maint');
      await again.next((f) => f.event === 'admin-action' && f.data.includes('"maint"') && f.data.includes('"s1"'));
      await post('s1', 'ready');
    } finally {
      again.close();
    }
    // The query parameter works like the header (EventSource cannot set headers on its first connection).
    const q = await openEventStream(`${farm.url}/api/v1/events?since=${encodeURIComponent(seen.id as string)}`);
    try {
      await q.next((f) => f.event === 'admin-action' && f.data.includes('"s1"') && f.data.includes('"ready"'));
    } finally {
      q.close();
    }
  });

  it('an id of another run replays everything buffered, announced as a gap', async () => {
    const es = await openEventStream(`${farm.url}/api/v1/events`, { 'last-event-id': 'ffffffff-3' });
    try {
      await es.comment((c) => /were not all kept/.test(c));
      await es.next((f) => f.event === 'admin-action');
    } finally {
      es.close();
    }
  });

  it('health flips arrive on the stream, and the status shows the last check', async () => {
    let failing = false;
    const flaky = await startUpstream('flaky', (req, res) => {
      req.resume();
      res.writeHead(failing ? 503 : 200).end('x');
    });
    const hf = await startAdminFarm(
      httpFarmYaml([flaky.port], '    health: { type: http, path: /health, interval: 50ms, timeout: 1s, rise: 1, fall: 1 }'),
    );
    const es = await openEventStream(`${hf.url}/api/v1/events`);
    try {
      failing = true;
      const down = JSON.parse((await es.next((f) => f.event === 'server-state' && f.data.includes('"to":"down"'))).data) as AdminEvent & { type: 'server-state' };
      assert.equal(down.source, 'health');
      assert.equal(down.reason, 'L7_STATUS 503');
      assert.equal(typeof down.checkDurationMs, 'number');
      const s = hf.adminNode.server('app', 's1');
      assert.equal(s.state, 'down');
      assert.equal(s.check?.reason, 'L7_STATUS 503');
      assert.equal(typeof s.check?.durationMs, 'number');
      assert.ok(s.check?.at !== null);
      failing = false;
      await es.next((f) => f.event === 'server-state' && f.data.includes('"to":"up"'));
      // An admin weight goes through the monitor (configured weight): the effective weight follows.
      const w = await request(hf.url, { method: 'PUT', path: '/api/v1/backends/app/servers/s1/weight', headers: { 'content-type': 'application/json' }, body: '{"weight":9}' });
      assert.equal(w.status, 200, w.body);
      assert.equal(hf.adminNode.server('app', 's1').effectiveWeight, 9);
      assert.equal(hf.node.health?.status('app', 's1')?.configuredWeight, 9);
      const weightEvents = () => es.frames.filter((f) => f.event === 'server-weight');
      await es.next((f) => f.event === 'server-weight');
      assert.equal(weightEvents().length, 1, 'one weight event (the admin one), not a second from the monitor');
    } finally {
      es.close();
      await hf.close();
      await flaky.close();
    }
  });

  it('caps concurrent streams with 503', async () => {
    const small = await startAdminFarm(httpFarmYaml(ups.map((u) => u.port)), { server: { maxEventStreams: 1 } });
    const es = await openEventStream(`${small.url}/api/v1/events`);
    try {
      const r = await request(small.url, { path: '/api/v1/events' });
      assert.equal(r.status, 503);
    } finally {
      es.close();
      await small.close();
    }
  });
});

/**
 * The node wires health into the balancer: checks steer eligibility, flips
 * are logged once, outlier ejection sees live traffic, reloads carry state.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, it } from 'node:test';
import { config, httpFarmYaml, request, startNode, startUpstream } from '../test/support/farm.js';
import { LogCapture } from '../test/support/log-capture.js';
import type { ServerStateEvent } from './health/index.js';


describe('node: health steers the balancer', () => {
  it('takes a dead server out within the check window, logs the flip once, and brings it back', async () => {
    const a = await startUpstream('a');
    const first = await startUpstream('b');
    const bPort = first.port;
    let b: { close(): Promise<void> } = first;
    const capture = new LogCapture();
    const { logger: log, lines } = capture;
    const farm = await startNode(
      httpFarmYaml([a.port, bPort], '    retries: 2\n    health: { type: http, path: /, interval: 100ms, timeout: 100ms, rise: 2, fall: 2 }'),
      log,
    );
    const events: ServerStateEvent[] = [];
    farm.node.healthBus.on('server-state', (e) => events.push(e));
    try {
      const seen = new Set<string>();
      for (let i = 0; i < 10; i++) seen.add((await request(farm.url)).body);
      assert.deepEqual([...seen].sort(), ['a', 'b']);
      await b.close();
      const down = new Promise<ServerStateEvent>((resolve) =>
        farm.node.healthBus.on('server-state', (e) => e.server === 's2' && e.to === 'down' && resolve(e)),
      );
      // Requests during detection are retried elsewhere: none fails.
      let failed = 0;
      const load = (async () => {
        for (let i = 0; i < 40; i++) if ((await request(farm.url)).status !== 200) failed++;
      })();
      const e = await down;
      await load;
      assert.equal(failed, 0);
      assert.match(e.message, /^server app\/s2 is DOWN: /);
      const s2 = farm.node.backends.get('app')?.byName.get('s2');
      assert.equal(s2?.state, 'down');
      // Every request now goes to a (its hit count also includes the health checks, so bodies are compared).
      for (let i = 0; i < 10; i++) assert.equal((await request(farm.url)).body, 'a');
      assert.equal(lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('server app/s2 is DOWN')).length, 1);

      // It comes back on the same port and takes traffic again.
      const up = new Promise<void>((resolve) => farm.node.healthBus.on('server-state', (ev) => ev.server === 's2' && ev.to === 'up' && resolve()));
      b = await startUpstreamOn('b', bPort);
      await up;
      const again = new Set<string>();
      for (let i = 0; i < 10; i++) again.add((await request(farm.url)).body);
      assert.ok(again.has('b'));
      assert.ok(events.length >= 2);
    } finally {
      await farm.close();
      await a.close();
      await b.close();
    }
  });

  it('ejects a server answering 5xx on live traffic (outlier)', async () => {
    const good = await startUpstream('good');
    const bad = await startUpstream('bad', (_req, res) => {
      res.statusCode = 500;
      res.end('bad');
    });
    const farm = await startNode(
      httpFarmYaml([good.port, bad.port], '    outlier: { consecutive5xx: 3, ejectFor: 10s, maxEjectedPercent: 50 }'),
    );
    try {
      const ejected = new Promise<void>((resolve) => farm.node.healthBus.on('server-state', (e) => e.server === 's2' && e.to === 'down' && resolve()));
      for (let i = 0; i < 8; i++) await request(farm.url);
      await ejected;
      const before = bad.hits;
      for (let i = 0; i < 10; i++) assert.equal((await request(farm.url)).body, 'good');
      assert.equal(bad.hits, before);
    } finally {
      await farm.close();
      await good.close();
      await bad.close();
    }
  });

  it('a reload keeps an up server up without waiting for a check', async () => {
    const a = await startUpstream('a');
    const yaml = httpFarmYaml([a.port], '    health: { type: tcp, interval: 10s, timeout: 1s }');
    const farm = await startNode(yaml);
    try {
      assert.equal((await request(farm.url)).status, 200);
      await farm.node.reload(config(yaml.replace('interval: 10s', 'interval: 20s')));
      assert.equal(farm.node.backends.get('app')?.byName.get('s1')?.state, 'up');
      assert.equal((await request(farm.url)).status, 200);
    } finally {
      await farm.close();
      await a.close();
    }
  });
});

async function startUpstreamOn(name: string, port: number): Promise<{ close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(name));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The admin API with `workers: 2`: the supervisor serves it, reads sum every
 * worker's counters over IPC, changes reach every worker (including one
 * forked later, before it serves) and persist across a restart.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { SupervisorStatus } from '../../src/admin/supervisor-node.js';
import type { ChangeResponse, RecentEventsResponse, ServerStatus } from '../../src/admin/types.js';
import { request, startUpstream } from '../support/farm.js';
import type { Upstream } from '../support/farm.js';
import { runCorral, tempFile } from '../support/process.js';
import type { Running } from '../support/process.js';

const JSON_HEADERS = { 'content-type': 'application/json' };

const yaml = (p1: number, p2: number): string => `
node: { name: multi }
workers: 2
admin: { listen: 127.0.0.1:0 }
frontends:
  - { name: web, listen: 127.0.0.1:0, backend: app }
backends:
  - name: app
    servers:
      - { name: s1, address: 127.0.0.1:${p1} }
      - { name: s2, address: 127.0.0.1:${p2} }
`;

/** One request over a fresh connection; resolves with the body (the upstream's name). */
function hit(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

interface Started {
  readonly admin: string;
  readonly port: number;
  /** Pids of the workers that started. */
  readonly workers: number[];
}

async function started(corral: Running): Promise<Started> {
  await corral.waitFor((l) => l.msg === 'workers ready');
  const admin = await corral.waitFor((l) => l.msg === 'admin listening');
  const listening = await corral.waitFor((l) => l.msg === 'frontend listening');
  // Workers log through their own pipe writes: their lines may come after the supervisor's.
  let n = 0;
  await corral.waitFor((l) => l.msg === 'node started' && l.worker !== undefined && ++n === 2);
  const workers = corral.lines.filter((l) => l.msg === 'node started' && l.worker !== undefined).map((l) => Number(l.pid));
  assert.equal(workers.length, 2);
  return { admin: `http://${String(admin.address)}`, port: Number(String(listening.address).split(':').pop()), workers };
}

/** Access lines logged from line `from` on. */
function accessLines(corral: Running, from: number): Record<string, unknown>[] {
  return corral.lines.slice(from).filter((l) => l.msg === 'request');
}

/**
 * Sends requests in small concurrent batches over fresh connections, at
 * least `min`, until `done` holds for the access lines logged since (at most
 * `max` requests). Resolves with the bodies.
 */
async function sendUntil(corral: Running, port: number, min: number, done: (lines: Record<string, unknown>[]) => boolean, max = 400): Promise<string[]> {
  const from = corral.lines.length;
  const bodies: string[] = [];
  while (bodies.length < max) {
    bodies.push(...(await Promise.all(Array.from({ length: 4 }, () => hit(port)))));
    if (bodies.length < min) continue;
    await new Promise((r) => setTimeout(r, 20)); // the access lines of the last batch
    if (done(accessLines(corral, from))) return bodies;
  }
  assert.fail(`condition not met after ${bodies.length} requests`);
}

/** Until every process in `pids` has served one of them. */
function spread(corral: Running, port: number, pids: readonly number[], min: number): Promise<string[]> {
  return sendUntil(corral, port, min, (lines) => pids.every((p) => lines.some((l) => l.pid === p)));
}

async function status(admin: string): Promise<SupervisorStatus> {
  const r = await request(admin, { path: '/api/v1/status' });
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as SupervisorStatus;
}

function server(s: SupervisorStatus, name: string): ServerStatus {
  const x = s.backends[0]?.servers.find((y) => y.name === name);
  assert.ok(x !== undefined, `no server ${name}`);
  return x;
}

const sumTotal = (s: SupervisorStatus): number => (s.backends[0]?.servers ?? []).reduce((n, x) => n + x.total, 0);

describe('admin with workers: 2', () => {
  it('sums both workers, drains on every worker, reaches a replacement before it serves and a new generation, persists across a restart, serves metrics', async () => {
    const s1 = await startUpstream('s1');
    const s2 = await startUpstream('s2');
    let s1b: Upstream | null = null;
    const file = tempFile('corral.yaml', yaml(s1.port, s2.port));
    let corral = runCorral(['start', '-c', file]);
    try {
      let { admin, port, workers } = await started(corral);
      assert.ok(!corral.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('admin API not started')));
      assert.equal((await request(admin, { path: '/healthz' })).body, 'ACTIVE multi\n');

      // Counters: the supervisor sums what each worker counted; exactly N, with both workers serving.
      const first = await spread(corral, port, workers, 30);
      const n = first.length;
      assert.equal(s1.hits + s2.hits, n);
      let s = await status(admin);
      assert.deepEqual(s.workers, { expected: 2, answered: 2 });
      assert.equal(s.node, 'multi');
      assert.equal(s.frontends[0]?.requests, n);
      assert.equal(s.frontends[0]?.connections, n);
      assert.equal(sumTotal(s), n);
      assert.equal(server(s, 's1').total, s1.hits);
      assert.equal(server(s, 's2').total, s2.hits);
      assert.equal(server(s, 's1').responses['2xx'] + server(s, 's2').responses['2xx'], n);
      assert.equal(server(s, 's1').check?.reason, 'NO_CHECK', 'health fields come from the supervisor');
      let sent = n;

      // Drain through the API: no new client reaches s1, through either worker.
      const d = await request(admin, { method: 'POST', path: '/api/v1/backends/app/servers/s1/state', headers: JSON_HEADERS, body: '{"state":"drain"}' });
      assert.equal(d.status, 200, d.body);
      const change = JSON.parse(d.body) as ChangeResponse;
      assert.equal(change.changed, true);
      assert.equal(change.status.state, 'drain', 'every worker applied it before the answer was built');
      const w = await request(admin, { method: 'PUT', path: '/api/v1/backends/app/servers/s2/weight', headers: JSON_HEADERS, body: '{"weight":3}' });
      assert.equal(w.status, 200, w.body);
      assert.equal((JSON.parse(w.body) as ChangeResponse).status.effectiveWeight, 3);
      const s1Before = s1.hits;
      const drained = await spread(corral, port, workers, 40);
      sent += drained.length;
      assert.ok(
        drained.every((b) => b === 's2'),
        'a drained server got a new client',
      );
      assert.equal(s1.hits, s1Before);
      const onDisk = JSON.parse(readFileSync(join(dirname(file), 'corral.state.json'), 'utf8')) as { servers: { server: string; admin?: string; weight?: number }[] };
      assert.deepEqual(
        onDisk.servers.map((x) => [x.server, x.admin, x.weight]),
        [
          ['s1', 'drain', undefined],
          ['s2', undefined, 3],
        ],
      );
      const events = JSON.parse((await request(admin, { path: '/api/v1/events/recent' })).body) as RecentEventsResponse;
      assert.ok(events.events.some((e) => e.type === 'admin-action' && e.server === 's1' && e.to === 'drain'));
      assert.ok(events.events.some((e) => e.type === 'server-state' && e.server === 's1' && e.to === 'drain'));

      // Metrics: a real Prometheus parser reads the sums, histograms included.
      const m = await request(admin, { path: '/metrics' });
      assert.equal(m.status, 200);
      const families = parsePrometheusTextFormat(m.body);
      const family = (name: string): (typeof families)[number] => {
        const f = families.find((x) => x.name === name);
        assert.ok(f !== undefined, `no ${name}`);
        return f;
      };
      const requests = family('corral_server_requests_total').metrics.reduce((acc, x) => acc + Number(x.value), 0);
      assert.equal(requests, sent);
      const hist = family('corral_server_response_seconds');
      assert.equal(hist.type, 'HISTOGRAM');
      // The parser folds a histogram's labelled series into one: read the per-server counts from the text.
      const counts = [...m.body.matchAll(/^corral_server_response_seconds_count\{backend="app",server="(s[12])"\} (\d+)$/gm)];
      assert.equal(counts.length, 2, m.body);
      assert.equal(
        counts.reduce((acc, x) => acc + Number(x[2]), 0),
        sent,
      );
      const infS2 = /^corral_server_response_seconds_bucket\{backend="app",server="s2",le="\+Inf"\} (\d+)$/m.exec(m.body);
      assert.equal(Number(infS2?.[1]), s2.hits);
      const drainState = family('corral_server_state').metrics.find((x) => x.labels?.server === 's1' && x.labels.state === 'drain');
      assert.equal(drainState?.value, '1');
      assert.equal(family('corral_server_weight').metrics.find((x) => x.labels?.server === 's2')?.value, '3');

      // A killed worker's replacement applies the drain before it serves: requests keep coming while it starts.
      s = await status(admin); // the victim's counters as last read stay in the sums
      assert.equal(sumTotal(s), sent);
      const victim = workers[0] as number;
      const survivor = workers[1] as number;
      process.kill(victim, 'SIGKILL');
      let stop = false;
      const during: string[] = [];
      const load = (async () => {
        while (!stop) {
          during.push(await hit(port));
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await corral.waitFor((l) => l.msg === 'worker died; replacing it');
      const fresh = await corral.waitFor((l) => l.msg === 'node started' && l.worker !== undefined && l.pid !== victim && l.pid !== survivor);
      const replacement = Number(fresh.pid);
      const after = await spread(corral, port, [replacement, survivor], 40);
      stop = true;
      await load;
      sent += during.length + after.length;
      assert.ok(
        [...during, ...after].every((b) => b === 's2'),
        'a drained server got a new client around the replacement',
      );
      assert.equal(s1.hits, s1Before);
      const appliedAt = corral.lines.findIndex((l) => l.pid === replacement && l.msg === 'applied 2 runtime change(s) from the supervisor before serving');
      const firstServed = corral.lines.findIndex((l) => l.pid === replacement && l.msg === 'request');
      assert.ok(appliedAt >= 0 && firstServed > appliedAt, 'the replacement applied the changes before its first request');
      s = await status(admin);
      assert.deepEqual(s.workers, { expected: 2, answered: 2 });
      assert.equal(server(s, 's1').state, 'drain');
      assert.equal(sumTotal(s), sent, 'counters do not go backwards when a worker is replaced');
      workers = [survivor, replacement];

      // A reload that moves s1 to another address (the balancer carries nothing over to it): every
      // worker re-applies the drain before the new generation takes a request.
      s1b = await startUpstream('s1');
      writeFileSync(file, yaml(s1b.port, s2.port));
      corral.child.kill('SIGHUP');
      let reloaded = 0;
      await corral.waitFor((l) => l.msg === 'configuration reloaded' && ++reloaded === 2);
      const moved = await spread(corral, port, workers, 40);
      assert.ok(
        moved.every((b) => b === 's2'),
        'the moved server got a new client after the reload',
      );
      assert.equal(s1b.hits, 0);
      s = await status(admin);
      assert.equal(s.generation, 2);
      assert.equal(server(s, 's1').address, `127.0.0.1:${s1b.port}`);
      assert.equal(server(s, 's1').state, 'drain');
      assert.equal(server(s, 's2').effectiveWeight, 3);
      const reloadEvents = (JSON.parse((await request(admin, { path: '/api/v1/events/recent' })).body) as RecentEventsResponse).events.filter((e) => e.type === 'reload');
      assert.deepEqual(
        reloadEvents.map((e) => [e.generation, e.reapplied]),
        [[2, 2]],
      );

      // A restart of the whole process: the state file is read before the workers fork.
      corral.child.kill('SIGTERM');
      assert.equal(await corral.exited, 0);
      corral = runCorral(['start', '-c', file]);
      ({ admin, port, workers } = await started(corral));
      for (const pid of workers) {
        assert.ok(corral.lines.some((l) => l.pid === pid && l.msg === 'applied 2 runtime change(s) from the supervisor before serving'));
      }
      s = await status(admin);
      assert.equal(server(s, 's1').state, 'drain');
      assert.equal(server(s, 's1').admin, 'drain');
      assert.equal(server(s, 's2').weight, 3);
      assert.equal(server(s, 's2').weightSource, 'runtime');
      assert.equal(server(s, 's2').effectiveWeight, 3);
      assert.equal(sumTotal(s), 0, 'a new process counts from zero');
      const restarted = await spread(corral, port, workers, 40);
      assert.ok(
        restarted.every((b) => b === 's2'),
        'the drain did not survive the restart on every worker',
      );
      assert.equal(s1.hits, s1Before);
      assert.equal(s1b.hits, 0);

      // Ready again: each worker sends new clients to s1.
      const r = await request(admin, { method: 'POST', path: '/api/v1/backends/app/servers/s1/state', headers: JSON_HEADERS, body: '{"state":"ready"}' });
      assert.equal(r.status, 200, r.body);
      await sendUntil(corral, port, 8, (lines) => workers.every((p) => lines.some((l) => l.pid === p && l.server === 's1')));

      corral.child.kill('SIGTERM');
      assert.equal(await corral.exited, 0);
    } finally {
      corral.child.kill('SIGKILL');
      await s1.close();
      await s2.close();
      await s1b?.close();
    }
  });
});

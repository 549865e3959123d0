import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseConfig, type BackendConfig } from '../config/index.js';
import { HealthBus, type HealthEventMap, type ServerStateEvent } from './events.js';
import type { HealthLog } from './log.js';
import { HealthMonitor, type HealthSink } from './monitor.js';
import { formatReason } from './reasons.js';
import type { StatusDocument } from './status-files.js';
import { behaviours, TestServer, until, type Behaviour } from './test-servers.js';

// pino's logger is a HealthLog (compile-time check).
const _pinoFits: HealthLog = pino({ level: 'silent' });
void _pinoFits;

const dir = mkdtempSync(join(tmpdir(), 'corral-health-monitor-'));
const servers: TestServer[] = [];
const monitors: HealthMonitor[] = [];
after(async () => {
  for (const m of monitors) await m.stop();
  for (const s of servers) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(b: Behaviour): Promise<TestServer> {
  const s = await TestServer.start(b);
  servers.push(s);
  return s;
}

interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  obj: object;
}

interface SinkCall {
  kind: 'health' | 'weight';
  key: string;
  value: string | number;
}

function backends(yaml: string): BackendConfig[] {
  const r = parseConfig(yaml, 'test.yaml');
  if (!r.ok) throw new Error(r.problems.map((p) => `${p.line}:${p.col} ${p.message}`).join('\n'));
  return [...r.config.backends];
}

function harness(yaml: string, extra: { statusFiles?: string[]; initial?: (b: string, s: string) => 'up' | 'down' | 'warming' | undefined } = {}) {
  const bus = new HealthBus();
  const lines: LogLine[] = [];
  const push = (level: LogLine['level']) => (obj: object, msg: string) => void lines.push({ level, msg, obj });
  const log: HealthLog = { debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
  const calls: SinkCall[] = [];
  const health = new Map<string, string>();
  const weight = new Map<string, number>();
  const sink: HealthSink = {
    setHealth(b, s, state) {
      calls.push({ kind: 'health', key: `${b}/${s}`, value: state });
      health.set(`${b}/${s}`, state);
    },
    setWeight(b, s, w) {
      calls.push({ kind: 'weight', key: `${b}/${s}`, value: w });
      weight.set(`${b}/${s}`, w);
    },
  };
  const states: ServerStateEvent[] = [];
  bus.on('server-state', (e) => states.push(e));
  const monitor = new HealthMonitor({ backends: backends(yaml), sink, bus, log, ...extra });
  monitors.push(monitor);

  /** Resolves with the first event matching `pred` from now on. */
  function event<K extends keyof HealthEventMap>(name: K, pred: (e: HealthEventMap[K][0]) => boolean, ms = 5000): Promise<HealthEventMap[K][0]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        bus.off(name, listener as never);
        reject(new Error(`no ${name} event within ${ms}ms`));
      }, ms);
      const listener = (e: HealthEventMap[K][0]): void => {
        if (!pred(e)) return;
        clearTimeout(timer);
        bus.off(name, listener as never);
        resolve(e);
      };
      bus.on(name, listener as never);
    });
  }
  const state = (key: string, to: string, ms?: number): Promise<ServerStateEvent> =>
    event('server-state', (e) => `${e.backend}/${e.server}` === key && e.to === to, ms);
  return { bus, log, lines, calls, health, weight, monitor, states, event, state };
}

const backendYaml = (health: string, servers: string, extra = ''): string => `
backends:
  - name: app
    health: ${health}
${extra}    servers:
${servers}
`;

test('checked servers start down, the first good check admits them, none-type servers start up; sink called once per change', async () => {
  const good = await serve(behaviours.http(200));
  const bad = await serve(behaviours.http(503));
  const h = harness(`
backends:
  - name: app
    health: { type: http, path: /health, interval: 50ms, timeout: 200ms, rise: 2, fall: 2, warmup: 10s, slowStart: 10s }
    servers:
      - { name: good, address: 127.0.0.1:${good.port}, weight: 10 }
      - { name: bad, address: 127.0.0.1:${bad.port} }
  - name: plain
    servers:
      - { name: p1, address: 127.0.0.1:1 }
`);
  const up = h.state('app/good', 'up');
  h.monitor.start();
  assert.deepEqual(
    h.calls.map((c) => `${c.key}=${c.value}`),
    ['app/good=down', 'app/bad=down', 'plain/p1=up'],
    'start announces every server once',
  );
  await h.monitor.ready();
  const e = await up;
  assert.equal(e.from, 'down');
  assert.equal(e.message, 'server app/good is UP: L7_OK on the first check');
  assert.equal(typeof e.checkDurationMs, 'number');
  // No warm-up and no slow start for the first admission: full weight at once.
  assert.equal(h.weight.get('app/good'), undefined);
  assert.equal(h.monitor.status('app', 'good')!.effectiveWeight, 10);
  const badStatus = h.monitor.status('app', 'bad')!;
  assert.equal(badStatus.state, 'down');
  assert.equal(badStatus.lastCheck, 'L7_STATUS 503');
  assert.equal(h.monitor.status('plain', 'p1')!.reason, 'NO_CHECK');
  // Several more checks: no more sink calls (only flips are announced).
  const before = h.calls.length;
  await waitChecks(good, 4);
  assert.equal(h.calls.length, before);
  await h.monitor.stop();
});

test('dies, is detected after fall failures, recovers through warm-up and slow start', async () => {
  const s = await serve(behaviours.http(200));
  const h = harness(
    backendYaml(
      '{ type: http, interval: 50ms, timeout: 200ms, rise: 2, fall: 3, warmup: 300ms, slowStart: 400ms }',
      `      - { name: app1, address: 127.0.0.1:${s.port}, weight: 8 }`,
    ),
  );
  h.monitor.start();
  await h.state('app/app1', 'up');
  const down = h.state('app/app1', 'down');
  const killedAt = performance.now();
  await s.down();
  const d = await down;
  const detection = performance.now() - killedAt;
  assert.equal(d.message, 'server app/app1 is DOWN: L4_REFUSED after 3 failures');
  assert.deepEqual(d.reason, { code: 'L4_REFUSED', detail: 'ECONNREFUSED' });
  // interval + (fall − 1) × interval/2, with ±10 % jitter: ≈ 100 ms; generous bound.
  assert.ok(detection < 600, `detected after ${Math.round(detection)}ms`);
  const warn = h.lines.find((l) => l.msg === d.message)!;
  assert.equal(warn.level, 'warn');

  const warming = h.state('app/app1', 'warming');
  const admitted = h.state('app/app1', 'up');
  await s.up();
  const w = await warming;
  assert.match(w.message, /^server app\/app1 is WARMING: L7_OK after 2 successes$/);
  const u = await admitted;
  assert.ok(u.at - w.at >= 300, `admitted ${u.at - w.at}ms after warming began`);
  assert.match(u.message, /is UP: L7_OK after 300ms of warm-up/);
  // Slow start: the weight was set small before the server went up, then ramps to 8.
  const ramp = h.calls.filter((c) => c.key === 'app/app1');
  const upIndex = ramp.findLastIndex((c) => c.kind === 'health' && c.value === 'up');
  assert.equal(ramp[upIndex - 1]!.kind, 'weight', 'weight set before the server is up');
  assert.equal(ramp[upIndex - 1]!.value, 1);
  await h.event('server-weight', (e) => e.server === 'app1' && e.to === 8);
  const weights = h.calls.filter((c) => c.kind === 'weight').map((c) => c.value as number);
  assert.deepEqual(weights, [...weights].sort((a, b) => a - b), 'the ramp only goes up');
  assert.ok(weights.length <= 8);
  assert.equal(h.monitor.status('app', 'app1')!.effectiveWeight, 8);
  await h.monitor.stop();
});

test('a server flapping faster than warm-up is never admitted and is logged as FLAPPING once', async () => {
  const s = await serve(behaviours.http(200));
  const h = harness(
    backendYaml('{ type: http, interval: 20ms, timeout: 200ms, rise: 1, fall: 1, warmup: 400ms }', `      - { name: f, address: 127.0.0.1:${s.port} }`),
  );
  h.monitor.start();
  await h.state('app/f', 'up');
  const flapping = h.event('server-flapping', (e) => e.flapping);
  // Toggle every 120 ms, 16 times: healthy stretches are far shorter than the warm-up.
  for (let i = 0; i < 16; i++) {
    await (i % 2 === 0 ? s.down() : s.up());
    const want = i % 2 === 0 ? 'down' : 'warming';
    await h.state('app/f', want);
    await new Promise((r) => setTimeout(r, 60)); // the toggling rhythm of the simulated server
  }
  await flapping;
  const ups = h.states.filter((e) => e.server === 'f' && e.to === 'up');
  assert.equal(ups.length, 1, 'only the first admission');
  const flapLines = h.lines.filter((l) => l.msg.includes('FLAPPING'));
  assert.equal(flapLines.length, 1);
  assert.match(flapLines[0]!.msg, /^server app\/f is FLAPPING: 3 failures within 60s; held back until it stays healthy for 400ms$/);
  const loud = h.lines.filter((l) => l.level !== 'debug' && l.msg.startsWith('server app/f'));
  assert.ok(loud.length <= 6, `at most a few lines before FLAPPING, then silence: ${loud.map((l) => l.msg).join(' | ')}`);
  assert.equal(h.monitor.status('app', 'f')!.flapping, true);
  // It stays up now: admitted after the hold, "stable" once.
  await s.up();
  const stable = h.event('server-flapping', (e) => !e.flapping);
  const back = await h.state('app/f', 'up');
  await stable;
  assert.match(back.message, /after 400ms of warm-up, stable again$/);
  await h.monitor.stop();
});

test('bad targets: hang, garbage, 10 MB body, close mid-answer, reset, 503 — each down with its reason, bounded', async () => {
  const cases: [string, Behaviour, string][] = [
    ['hang', behaviours.hang(), 'L7_TIMEOUT'],
    ['garbage', behaviours.garbage(), 'L7_RESPONSE'],
    ['big', behaviours.bigBody(), 'L7_BODY'],
    ['cut', behaviours.closeMidHead(), 'L7_RESPONSE'],
    ['reset', behaviours.resetMidHead(), 'L4_RESET'],
    ['busy', behaviours.http(503, 'ready'), 'L7_STATUS 503'],
    ['fine', behaviours.http(200, 'all ready'), 'L7_OK'],
  ];
  const list: string[] = [];
  for (const [name, b] of cases) list.push(`      - { name: ${name}, address: 127.0.0.1:${(await serve(b)).port} }`);
  const h = harness(backendYaml('{ type: http, expectBody: ready, interval: 50ms, timeout: 150ms, rise: 1, fall: 1 }', list.join('\n')));
  h.monitor.start();
  await h.monitor.ready();
  for (const [name, , reason] of cases) {
    const st = h.monitor.status('app', name)!;
    assert.equal(st.lastCheck, reason, name);
    assert.equal(st.state, reason === 'L7_OK' ? 'up' : 'down', name);
    assert.ok(st.checkDurationMs! < 400, `${name} took ${st.checkDurationMs}ms`);
  }
  assert.ok(h.monitor.status('app', 'hang')!.checkDurationMs! >= 140);
  await h.monitor.stop();
});

test('track: follows the tracked server, never checks itself', async () => {
  const s = await serve(behaviours.http(200));
  const h = harness(`
backends:
  - name: app
    health: { type: http, interval: 40ms, timeout: 200ms, rise: 1, fall: 2 }
    servers:
      - { name: app1, address: 127.0.0.1:${s.port} }
  - name: tls
    health: { type: tcp, interval: 40ms, timeout: 200ms, slowStart: 300ms }
    servers:
      - { name: app1-tls, address: 127.0.0.1:1, track: app/app1, weight: 4 }
      - { name: chained, address: 127.0.0.1:1, track: tls/app1-tls }
`);
  h.monitor.start();
  await h.monitor.ready();
  assert.equal(h.health.get('tls/app1-tls'), 'up', 'port 1 is never checked');
  assert.equal(h.health.get('tls/chained'), 'up');
  assert.equal(h.weight.get('tls/app1-tls'), undefined, 'no slow start for the first admission');
  const down = h.state('tls/app1-tls', 'down');
  const chainedDown = h.state('tls/chained', 'down');
  await s.down();
  const e = await down;
  await chainedDown;
  assert.equal(formatReason(e.reason), 'TRACKED app/app1 L4_REFUSED');
  assert.equal(h.monitor.status('tls', 'app1-tls')!.tracking, 'app/app1');
  const up = h.state('tls/app1-tls', 'up');
  await s.up();
  await up;
  // Tracking servers slow-start with their own backend's slowStart.
  assert.equal(h.weight.get('tls/app1-tls'), 1);
  await h.event('server-weight', (w) => w.server === 'app1-tls' && w.to === 4);
  await h.monitor.stop();
});

test('ready() also resolves when a tracked server fails its first check (regression: trackers waited for a transition)', async () => {
  const s = await serve(behaviours.hang());
  await s.down();
  const h = harness(`
backends:
  - name: app
    health: { type: tcp, interval: 40ms, timeout: 100ms }
    servers:
      - { name: dead, address: 127.0.0.1:${s.port} }
      - { name: follower, address: 127.0.0.1:1, track: app/dead }
`);
  h.monitor.start();
  await h.monitor.ready();
  assert.equal(h.health.get('app/follower'), 'down');
  assert.equal(h.monitor.status('app', 'dead')!.lastCheck, 'L4_REFUSED');
  await h.monitor.stop();
});

test('agent port: percent, weight:N, drain, down/up, nonsense logged once', async () => {
  const app = await serve(behaviours.http(200));
  let answer = '75%\n';
  const agent = await serve((socket) => socket.end(answer));
  const h = harness(
    backendYaml(
      `{ type: http, interval: 50ms, timeout: 200ms, rise: 1, fall: 1, agent: { port: ${agent.port}, interval: 30ms } }`,
      `      - { name: a1, address: 127.0.0.1:${app.port}, weight: 20 }`,
    ),
  );
  const weight = (to: number) => h.event('server-weight', (e) => e.server === 'a1' && e.to === to);
  let w = weight(15);
  h.monitor.start();
  assert.equal((await w).cause, 'agent');
  w = weight(40);
  answer = 'weight:40\n';
  await w;
  w = weight(0);
  answer = 'drain\n';
  await w;
  assert.equal(h.health.get('app/a1'), 'up', 'drain keeps the server up (sticky sessions continue)');
  w = weight(10);
  answer = 'ready 50%\n';
  await w;
  const down = h.state('app/a1', 'down');
  answer = 'down #maintenance window\n';
  const d = await down;
  assert.equal(d.reason.code, 'AGENT_DOWN');
  assert.equal(d.message, 'server app/a1 is DOWN: AGENT_DOWN (agent said "down #maintenance window")');
  const up = h.state('app/a1', 'up');
  answer = 'up\n';
  assert.equal((await up).reason.code, 'AGENT_UP');
  // Nonsense: weight unchanged, one log line however many polls.
  answer = 'HTTP/1.1 404 Not Found\r\n';
  const polls = agent.accepted;
  await waitChecks(agent, 8, polls);
  const nonsense = h.lines.filter((l) => l.msg.includes('nonsense'));
  assert.equal(nonsense.length, 1);
  assert.match(nonsense[0]!.msg, /^agent of server app\/a1 answered nonsense \(unknown word: "HTTP\/1\.1"\); weight unchanged$/);
  assert.equal(h.monitor.status('app', 'a1')!.effectiveWeight, 10);
  assert.equal(h.monitor.status('app', 'a1')!.agent!.problem, 'unknown word: "HTTP/1.1"');
  // The agent dies: no change, one line, however many polls.
  await agent.down();
  await until(() => h.monitor.status('app', 'a1')!.agent!.problem === 'L4_REFUSED');
  for (let i = 0; i < 5; i++) {
    const last = h.monitor.status('app', 'a1')!.agent!.lastPollAt;
    await until(() => h.monitor.status('app', 'a1')!.agent!.lastPollAt !== last);
  }
  assert.equal(h.lines.filter((l) => l.msg.includes('gives no answer')).length, 1);
  assert.equal(h.health.get('app/a1'), 'up');
  await h.monitor.stop();
});

test('agent command: load from a script sets the weight (LVS load_monitor)', async () => {
  const loads = join(dir, 'loads');
  writeFileSync(`${loads}-c1`, '0.25\n');
  const h = harness(`
backends:
  - name: app
    health: { agent: { command: 'cat "${loads}-$CORRAL_SERVER_NAME"', interval: 40ms } }
    servers:
      - { name: c1, address: 127.0.0.1:1, weight: 32 }
`);
  const w = h.event('server-weight', (e) => e.to === 24);
  h.monitor.start();
  await w;
  const w2 = h.event('server-weight', (e) => e.to === 1);
  writeFileSync(`${loads}-c1`, '3.5\n');
  await w2;
  assert.equal(h.monitor.status('app', 'c1')!.agent!.weight?.kind, 'load');
  await h.monitor.stop();
});

test('outlier: consecutive 5xx eject, the server returns after ejectFor, never beyond maxEjectedPercent', async () => {
  const h = harness(`
backends:
  - name: app
    outlier: { consecutive5xx: 3, consecutiveConnectFailures: 2, ejectFor: 150ms, maxEjectedPercent: 50 }
    servers:
      - { name: s1, address: 127.0.0.1:1 }
      - { name: s2, address: 127.0.0.1:2 }
      - { name: s3, address: 127.0.0.1:3 }
      - { name: s4, address: 127.0.0.1:4 }
`);
  h.monitor.start();
  const out = h.state('app/s1', 'down');
  h.monitor.record('app', 's1', '5xx');
  h.monitor.record('app', 's1', '5xx');
  h.monitor.record('app', 's1', 'ok');
  h.monitor.record('app', 's1', '5xx');
  h.monitor.record('app', 's1', '5xx');
  assert.equal(h.health.get('app/s1'), 'up');
  h.monitor.record('app', 's1', '5xx');
  const e = await out;
  assert.equal(e.message, 'server app/s1 is DOWN: OUTLIER_5XX, ejected for 150ms after 3 consecutive 5xx');
  h.monitor.record('app', 's2', 'connect-failure');
  h.monitor.record('app', 's2', 'connect-failure');
  assert.equal(h.health.get('app/s2'), 'down');
  for (let i = 0; i < 10; i++) h.monitor.record('app', 's3', '5xx');
  assert.equal(h.health.get('app/s3'), 'up', '50 % of 4 servers are out already');
  const back = await h.state('app/s1', 'up');
  assert.ok(back.at - e.at >= 149);
  assert.equal(back.reason.code, 'OUTLIER_RETURN');
  await h.monitor.stop();
});

test('status files: rewritten atomically on every change, with every server', async () => {
  const s = await serve(behaviours.http(200));
  const file = join(dir, 'status.json');
  const h = harness(
    backendYaml('{ type: tcp, interval: 40ms, timeout: 200ms, rise: 1, fall: 1 }', `      - { name: app1, address: 127.0.0.1:${s.port} }\n      - { name: app2, address: 127.0.0.1:${s.port}, weight: 5 }`),
    { statusFiles: [file] },
  );
  h.monitor.start();
  await h.monitor.ready();
  await h.monitor.flush();
  let doc = JSON.parse(readFileSync(file, 'utf8')) as StatusDocument;
  assert.equal(doc.version, 1);
  assert.deepEqual(
    doc.servers.map((x) => [x.backend, x.name, x.address, x.state, x.available, x.reason, x.weight]),
    [
      ['app', 'app1', `127.0.0.1:${s.port}`, 'up', true, 'L4_OK', 1],
      ['app', 'app2', `127.0.0.1:${s.port}`, 'up', true, 'L4_OK', 5],
    ],
  );
  assert.ok(!Number.isNaN(Date.parse(doc.servers[0]!.since)));
  const down = Promise.all([h.state('app/app1', 'down'), h.state('app/app2', 'down')]);
  await s.down();
  await down;
  await h.monitor.flush();
  doc = JSON.parse(readFileSync(file, 'utf8')) as StatusDocument;
  assert.deepEqual(doc.servers.map((x) => x.state), ['down', 'down']);
  assert.equal(doc.servers[1]!.reason, 'L4_REFUSED');
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary files left');
  await h.monitor.stop();
});

test('faster checks while transitioning (interval/2)', async () => {
  let answer = 'OK';
  const times: number[] = [];
  const s = await serve((socket) => {
    times.push(performance.now());
    socket.end(answer);
  });
  const h = harness(
    backendYaml('{ type: send-expect, expect: OK, interval: 200ms, timeout: 100ms, rise: 1, fall: 4 }', `      - { name: x, address: 127.0.0.1:${s.port} }`),
  );
  h.monitor.start();
  await h.state('app/x', 'up');
  await waitChecks(s, 2);
  const steady = times.length;
  const down = h.state('app/x', 'down');
  answer = 'NO';
  await down;
  const gaps = times.slice(steady).map((t, i, a) => (i === 0 ? 0 : t - a[i - 1]!)).slice(2);
  // Steady checks are 200 ms ± 10 % apart; while going down, 100 ms ± 10 %.
  assert.ok(gaps.length >= 2);
  for (const g of gaps) assert.ok(g < 150, `gap ${Math.round(g)}ms while transitioning`);
  await h.monitor.stop();
});

test('first checks of many servers are spread, not fired together', async () => {
  const times: number[] = [];
  const s = await serve((socket) => {
    times.push(performance.now());
    socket.end();
  });
  const list = Array.from({ length: 10 }, (_, i) => `      - { name: s${i}, address: 127.0.0.1:${s.port} }`).join('\n');
  const h = harness(backendYaml('{ type: tcp, interval: 400ms, timeout: 200ms }', list));
  h.monitor.start();
  await h.monitor.ready();
  await waitChecks(s, 10, 0);
  const first = times.slice(0, 10);
  const span = Math.max(...first) - Math.min(...first);
  assert.ok(span >= 80, `first round spread over ${Math.round(span)}ms`);
  await h.monitor.stop();
});

test('stop() ends hanging checks and agent commands at once; no call after it', async () => {
  const s = await serve(behaviours.hang());
  const h = harness(
    backendYaml('{ type: http, interval: 20ms, timeout: 10s, agent: { command: "sleep 30", interval: 20ms } }', `      - { name: h, address: 127.0.0.1:${s.port} }`),
  );
  h.monitor.start();
  await waitChecks(s, 1, 0);
  const t0 = performance.now();
  await h.monitor.stop();
  assert.ok(performance.now() - t0 < 500, `stop took ${Math.round(performance.now() - t0)}ms`);
  const calls = h.calls.length;
  await new Promise((r) => setImmediate(r));
  assert.equal(h.calls.length, calls);
});

test('timers never keep a process alive', async () => {
  const url = new URL('./index.js', import.meta.url).href;
  const script = `
    import { HealthMonitor, HealthBus } from ${JSON.stringify(url)};
    const backends = [{ name: 'app', health: { type: 'tcp', method: 'GET', path: '/', expectStatus: [[200, 399]], interval: 50, timeout: 100, rise: 2, fall: 3, warmup: 0, slowStart: 1000, agent: { interval: 50, command: 'echo 50%' } },
      outlier: { consecutive5xx: 1, consecutiveConnectFailures: 1, ejectFor: 60000, maxEjectFor: 60000, maxEjectedPercent: 100 },
      servers: [{ name: 'a', address: { host: '127.0.0.1', port: 1 }, weight: 1, backup: false, tls: false }, { name: 'b', address: { host: '127.0.0.1', port: 1 }, weight: 1, backup: false, tls: false }] }];
    const noop = () => {};
    const m = new HealthMonitor({ backends, bus: new HealthBus(), log: { debug: noop, info: noop, warn: noop, error: noop }, sink: { setHealth: noop, setWeight: noop } });
    m.start();
    m.record('app', 'a', '5xx');
    setTimeout(() => console.log('started'), 200);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(killer);
  assert.equal(out.trim(), 'started');
  assert.equal(code, 0, 'exited on its own');
});

test('initial: health carried over from a previous generation', async () => {
  const s = await serve(behaviours.http(200));
  const h = harness(backendYaml('{ type: http, interval: 1s, timeout: 200ms }', `      - { name: kept, address: 127.0.0.1:${s.port} }`), {
    initial: () => 'up',
  });
  h.monitor.start();
  assert.deepEqual(h.calls, [{ kind: 'health', key: 'app/kept', value: 'up' }]);
  await h.monitor.ready();
  await h.monitor.stop();
});

test('check.port / check.host: checks go where the server says, not to its traffic port', async () => {
  const health = await serve(behaviours.http(200));
  const h = harness(
    backendYaml('{ type: http, interval: 40ms, timeout: 200ms }', `      - { name: app4, address: 127.0.0.1:1, check: { port: ${health.port}, host: 127.0.0.1 } }`),
  );
  h.monitor.start();
  await h.monitor.ready();
  assert.equal(h.health.get('app/app4'), 'up');
  assert.equal(h.monitor.status('app', 'app4')!.checkAddress, `127.0.0.1:${health.port}`);
  await h.monitor.stop();
});

test('setConfiguredWeight: the effective weight follows, agent percentages apply to the new weight', async () => {
  const agent = await serve((socket) => socket.end('50%\n'));
  const h = harness(`
backends:
  - name: app
    health: { type: none, agent: { port: ${agent.port}, interval: 30ms } }
    servers:
      - { name: w, address: 127.0.0.1:1, weight: 10 }
`);
  const first = h.event('server-weight', (e) => e.to === 5);
  h.monitor.start();
  await first;
  h.monitor.setConfiguredWeight('app', 'w', 40);
  assert.equal(h.weight.get('app/w'), 20, 'applied at once');
  assert.equal(h.monitor.status('app', 'w')!.configuredWeight, 40);
  h.monitor.setConfiguredWeight('app', 'w', 1000);
  assert.equal(h.monitor.status('app', 'w')!.configuredWeight, 256);
  await h.monitor.stop();
});

test('agent maint takes the server out; ready brings it back', async () => {
  let answer = 'maint\n';
  const agent = await serve((socket) => socket.end(answer));
  const h = harness(`
backends:
  - name: app
    health: { type: none, agent: { port: ${agent.port}, interval: 30ms } }
    servers:
      - { name: m, address: 127.0.0.1:1 }
`);
  const down = h.state('app/m', 'down');
  h.monitor.start();
  assert.equal((await down).reason.code, 'AGENT_MAINT');
  const up = h.state('app/m', 'up');
  answer = 'ready\n';
  assert.equal((await up).reason.code, 'AGENT_UP');
  await h.monitor.stop();
});

/** Resolves once `server` has accepted `n` more connections than `from`. */
async function waitChecks(server: TestServer, n: number, from = server.accepted): Promise<void> {
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      if (server.accepted >= from + n) resolve();
      else setTimeout(tick, 5);
    };
    tick();
  });
}

/**
 * The operator commands against a real admin server in front of a real
 * node, parsed by a commander program set up exactly as main.ts does
 * (exitOverride; CommanderError → exit 2; other errors → one line, exit 1).
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Command, CommanderError } from 'commander';
import { httpFarmYaml, refusedPort, request, startRawServer, startUpstream } from '../../test/support/farm.js';
import type { Upstream } from '../../test/support/farm.js';
import { startAdminFarm, tempDir } from '../admin/testing.js';
import type { AdminFarm } from '../admin/testing.js';
import type { StatusResponse } from '../admin/types.js';
import { registerOperatorCommands } from './operator.js';
import { untar } from './tar.js';

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `corral <args>` in-process, as main.ts would. */
async function corral(args: string[], env: NodeJS.ProcessEnv = {}, tty = false): Promise<Result> {
  let stdout = '';
  let stderr = '';
  let code = 0;
  const program = new Command();
  program
    .name('corral')
    .option('--debug')
    .exitOverride()
    .configureOutput({ writeErr: (s) => (stderr += s), writeOut: (s) => (stdout += s) });
  registerOperatorCommands(program, {
    stdout: { write: (s: string) => (stdout += s), isTTY: tty },
    stderr: { write: (s: string) => (stderr += s) },
    env,
    setExitCode: (c) => (code = c),
  });
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) code = err.exitCode === 0 ? 0 : 2;
    else {
      stderr += `corral: ${(err as Error).message}\n`;
      code = 1;
    }
  }
  return { code, stdout, stderr };
}

describe('corral operator commands', () => {
  let ups: Upstream[];
  let farm: AdminFarm;
  let env: NodeJS.ProcessEnv;
  const secretYaml = (ports: number[]): string =>
    `node: { name: farm1 }\nadmin: { listen: 127.0.0.1:0, auth: { user: ops, password: hunter2-pw } }\ncluster: { key: cluster-secret-key }\n${httpFarmYaml(ports, '    sticky: { cookie: SERVERID }', (p, i) => `{ name: app${i + 1}, address: 127.0.0.1:${p}, weight: ${i === 2 ? 2 : 1} }`)}`;

  before(async () => {
    ups = [await startUpstream('app1'), await startUpstream('app2'), await startUpstream('app3')];
    farm = await startAdminFarm(secretYaml(ups.map((u) => u.port)), { auth: { user: 'ops', password: 'hunter2-pw' }, stateFile: join(tempDir(), 'corral.state.json') });
    env = { CORRAL_ADMIN_URL: farm.url, CORRAL_ADMIN_USER: 'ops', CORRAL_ADMIN_PASSWORD: 'hunter2-pw' };
    for (let i = 0; i < 12; i++) await request(farm.lb, { method: 'POST', path: '/', body: 'x'.repeat(100), headers: { 'content-type': 'text/plain' } });
  });
  after(async () => {
    await farm.close();
    for (const u of ups) await u.close();
  });

  it('corral servers: one aligned row per server, like ipvsadm -L', async () => {
    const r = await corral(['servers'], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0] as string, /^BACKEND\s+SERVER\s+ADDRESS\s+STATE\s+WEIGHT\s+EFF\s+ACTIVE\s+INACTIVE$/);
    assert.equal(lines.length, 4);
    assert.match(lines[1] as string, new RegExp(`^app\\s+app1\\s+127\\.0\\.0\\.1:${ups[0]?.port}\\s+up\\s+1\\s+1\\s+0\\s+\\d+$`));
    assert.match(lines[3] as string, /^app\s+app3\s+\S+\s+up\s+2\s+2\s+0\s+\d+$/);
    // Aligned: every column starts at the same offset on every line.
    const start = (l: string, col: number): number => {
      const m = [...l.matchAll(/\S+/g)];
      return m[col]?.index ?? -1;
    };
    for (const col of [1, 2, 3]) assert.equal(new Set(lines.map((l) => start(l, col))).size, 1, `column ${col} misaligned:\n${r.stdout}`);
    for (const l of lines) assert.equal(l, l.trimEnd(), 'no trailing spaces');
    assert.doesNotMatch(r.stdout, /\x1b\[/, 'no colour when stdout is not a TTY');
  });

  it('corral servers --stats: counters like ipvsadm -L --stats; --exact prints raw numbers', async () => {
    const r = await corral(['servers', '--stats', '--exact'], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0] as string, /^BACKEND\s+SERVER\s+STATE\s+CONNS\s+REQUESTS\s+5XX\s+FAILURES\s+RETRIES\s+INBYTES\s+OUTBYTES$/);
    const s = JSON.parse((await request(farm.url, { path: '/api/v1/status', headers: { authorization: `Basic ${Buffer.from('ops:hunter2-pw').toString('base64')}` } })).body) as StatusResponse;
    for (const [i, srv] of (s.backends[0]?.servers ?? []).entries()) {
      const cols = (lines[i + 1] as string).split(/\s+/);
      assert.deepEqual(cols.slice(0, 5), ['app', srv.name, 'up', srv.connects === null ? '-' : String(srv.connects), String(srv.total)]);
      assert.equal(cols[8], String(srv.bytesIn));
      assert.equal(cols[9], String(srv.bytesOut));
    }
    const total = (s.backends[0]?.servers ?? []).reduce((n, x) => n + x.total, 0);
    assert.ok(total >= 12);
  });

  it('corral server drain|maint|ready and weight change the server, with one line of output', async () => {
    const d = await corral(['server', 'drain', 'app/app1'], env);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.stdout, 'app/app1: drain (state up → drain)\n');
    const again = await corral(['server', 'drain', 'app/app1'], env);
    assert.equal(again.stdout, 'app/app1: already drain (state drain)\n');
    const m = await corral(['server', 'maint', 'app/app2'], env);
    assert.equal(m.stdout, 'app/app2: maint (state up → maint)\n');
    const w = await corral(['server', 'weight', 'app/app3', '7'], env);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout, 'app/app3: weight 7 (was 2; effective 7)\n');
    const servers = await corral(['servers'], env);
    assert.match(servers.stdout, /app1\s+\S+\s+drain/);
    assert.match(servers.stdout, /app2\s+\S+\s+maint/);
    assert.match(servers.stdout, /app3\s+\S+\s+up\s+7\*\s+7/);
    assert.match(servers.stdout, /\* weight set at run time/);
    for (const args of [['server', 'ready', 'app/app1'], ['server', 'ready', 'app/app2'], ['server', 'weight', 'app/app3', '2']]) assert.equal((await corral(args, env)).code, 0);
    assert.equal(farm.node.backends.get('app')?.byName.get('app3')?.weight, 2);
  });

  it('corral status: node, role, cluster, frontends, backends with servers; --json is the API document', async () => {
    const r = await corral(['status'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^node farm1 {2}role primary \(ACTIVE\) {2}generation 1 {2}up /);
    assert.match(r.stdout, /\ncluster farm1 \(primary, this node\)\n/);
    assert.match(r.stdout, /\nFRONTEND\s+LISTEN\s+MODE\s+BACKEND\s+OPEN\s+CONNS\s+REQUESTS\n/);
    assert.match(r.stdout, /\nbackend app \(roundrobin\): 3\/3 up, queue 0\n/);
    assert.match(r.stdout, /\n {2}app2\s+127\.0\.0\.1:\d+\s+up\s+1\s+0\s+\S+\s+\S+ ago\n/);
    const j = await corral(['status', '--json'], env);
    const doc = JSON.parse(j.stdout) as StatusResponse;
    assert.equal(doc.node, 'farm1');
    assert.equal(doc.backends[0]?.servers.length, 3);
    const sj = JSON.parse((await corral(['servers', '--json'], env)).stdout) as { backend: string; name: string }[];
    assert.deepEqual(sj.map((x) => `${x.backend}/${x.name}`), ['app/app1', 'app/app2', 'app/app3']);
  });

  it('colours states only on a TTY, and never with NO_COLOR', async () => {
    await corral(['server', 'drain', 'app/app1'], env);
    const tty = await corral(['servers'], env, true);
    assert.match(tty.stdout, /\x1b\[34mdrain\x1b\[39m/);
    assert.match(tty.stdout, /\x1b\[32mup\x1b\[39m/);
    const noColour = await corral(['servers'], { ...env, NO_COLOR: '1' }, true);
    assert.doesNotMatch(noColour.stdout, /\x1b\[/);
    // Alignment ignores the escape codes.
    const plain = tty.stdout.replace(/\x1b\[\d+m/g, '');
    assert.equal(plain, (await corral(['servers'], env)).stdout);
    await corral(['server', 'ready', 'app/app1'], env);
  });

  it('credentials from flags work; a token works for a token-protected node', async () => {
    const r = await corral(['servers', '--admin', farm.url, '--user', 'ops', '--password', 'hunter2-pw']);
    assert.equal(r.code, 0, r.stderr);
    const tf = await startAdminFarm(httpFarmYaml([ups[0]?.port as number]), { auth: { token: 'tok-abcdef' } });
    try {
      const t = await corral(['status'], { CORRAL_ADMIN_URL: tf.url, CORRAL_ADMIN_TOKEN: 'tok-abcdef' });
      assert.equal(t.code, 0, t.stderr);
      const wrong = await corral(['status'], { CORRAL_ADMIN_URL: tf.url, CORRAL_ADMIN_TOKEN: 'nope' });
      assert.equal(wrong.code, 1);
      assert.equal(wrong.stderr, 'corral: the admin API refused the credentials (check CORRAL_ADMIN_USER/CORRAL_ADMIN_PASSWORD or CORRAL_ADMIN_TOKEN)\n');
    } finally {
      await tf.close();
    }
  });

  const failures: [string, string[], () => NodeJS.ProcessEnv, number, RegExp][] = [
    ['no credentials', ['servers'], () => ({ CORRAL_ADMIN_URL: farm.url }), 1, /^corral: the admin API needs credentials: set CORRAL_ADMIN_USER and CORRAL_ADMIN_PASSWORD, or CORRAL_ADMIN_TOKEN\n$/],
    ['a wrong password', ['status'], () => ({ ...env, CORRAL_ADMIN_PASSWORD: 'nope' }), 1, /^corral: the admin API refused the credentials/],
    ['an unknown server', ['server', 'drain', 'app/ghost'], () => env, 1, /^corral: no server "ghost" in backend "app" \(CORRAL_ERR_ADMIN_NOT_FOUND, HTTP 404\)\n$/],
    ['an unknown backend', ['server', 'weight', 'web/app1', '3'], () => env, 1, /^corral: no backend "web" \(CORRAL_ERR_ADMIN_NOT_FOUND, HTTP 404\)\n$/],
    ['a weight out of range', ['server', 'weight', 'app/app1', '300'], () => env, 1, /^corral: "weight" must be an integer from 0 to 256, got 300 \(CORRAL_ERR_ADMIN_INVALID, HTTP 400\)\n$/],
    ['a weight that is not a number', ['server', 'weight', 'app/app1', 'heavy'], () => env, 2, /weight must be a whole number/],
    ['a target without a slash', ['server', 'drain', 'app1'], () => env, 2, /expected BACKEND\/SERVER \(e\.g\. app\/app1\), got "app1"/],
    ['a missing target', ['server', 'drain'], () => env, 2, /missing required argument/],
    ['an unknown subcommand', ['server', 'explode', 'app/app1'], () => env, 2, /unknown command/],
    ['a bad --admin URL', ['status', '--admin', 'ftp://x'], () => env, 2, /only http and https/],
    ['a user without a password', ['status'], () => ({ CORRAL_ADMIN_URL: farm.url, CORRAL_ADMIN_USER: 'ops' }), 2, /without a password/],
    ['snapshot without -o', ['snapshot'], () => env, 2, /required option '-o, --output <file>'/],
  ];
  for (const [what, args, makeEnv, code, message] of failures) {
    it(`${what}: exit ${code}, one line on stderr, no stack`, async () => {
      const r = await corral(args, makeEnv());
      assert.equal(r.code, code, `${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(r.stdout, '');
    });
  }

  it('an admin server that is not there: exit 1 naming the URL', async () => {
    const port = await refusedPort();
    const r = await corral(['status', '--admin', `127.0.0.1:${port}`]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `corral: cannot reach the admin API at http://127.0.0.1:${port}: connection refused (is corral running? set --admin or CORRAL_ADMIN_URL)\n`);
  });

  it('an admin server that never answers: exit 1 after --timeout', async () => {
    const silent = await startRawServer(() => undefined);
    try {
      const r = await corral(['servers', '--admin', `http://127.0.0.1:${silent.port}`, '--timeout', '150']);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `corral: the admin API at http://127.0.0.1:${silent.port} did not answer within 150 ms\n`);
    } finally {
      await silent.close();
    }
  });

  it('corral snapshot -o FILE: a tar.gz with masked config, status, events, metrics and a manifest', async () => {
    await corral(['server', 'drain', 'app/app2'], env);
    const dir = tempDir();
    const configFile = join(dir, 'corral.yaml');
    writeFileSync(
      configFile,
      `${secretYaml([1, 2, 3])}sessions: { store: redis, redis: { url: "redis://cache:redis-pass@10.0.0.5:6379" } }\nfrontends2: { tls: { cert: c.pem, key: k.pem } }\n# a comment stays\n`,
    );
    const out = join(dir, 'bundle.tar.gz');
    const r = await corral(['snapshot', '-o', out, '-c', configFile], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^wrote .*bundle\.tar\.gz \(.+\): status\.json, config\.json, events\.json, metrics\.txt, corral\.yaml\n$/);
    assert.match(r.stderr, /warning: logs: the node does not keep recent log lines/);
    assert.equal(statSync(out).mode & 0o777, 0o600, 'the bundle is private');
    const entries = untar(gunzipSync(readFileSync(out)));
    const names = entries.map((e) => e.name.replace(/^[^/]+\//, ''));
    assert.match(entries[0]?.name as string, /^corral-snapshot-farm1-\d{8}T\d{6}Z\/$/);
    assert.deepEqual(names.slice(1), ['manifest.json', 'status.json', 'config.json', 'events.json', 'metrics.txt', 'corral.yaml']);
    const file = (n: string): string => entries.find((e) => e.name.endsWith(`/${n}`))?.data.toString('utf8') ?? '';
    const all = entries.map((e) => e.data.toString('utf8')).join('\n');
    for (const secret of ['hunter2-pw', 'cluster-secret-key', 'redis-pass']) assert.ok(!all.includes(secret), `${secret} leaked into the bundle`);
    assert.match(file('corral.yaml'), /password: "\*\*\*"|password: \*\*\*/);
    assert.match(file('corral.yaml'), /redis:\/\/cache:\*\*\*@10\.0\.0\.5:6379/);
    assert.match(file('corral.yaml'), /key: k\.pem/, 'a TLS key path is not a secret');
    assert.match(file('corral.yaml'), /# a comment stays/);
    assert.equal((JSON.parse(file('status.json')) as StatusResponse).node, 'farm1');
    assert.match(file('events.json'), /"admin-action"/);
    assert.match(file('metrics.txt'), /corral_server_requests_total/);
    const manifest = JSON.parse(file('manifest.json')) as { node: string; problems: string[]; files: string[] };
    assert.equal(manifest.node, 'farm1');
    assert.equal(manifest.problems.length, 1);
    await corral(['server', 'ready', 'app/app2'], env);
  });

  it('snapshot with the admin API down still bundles the config file, with a warning', async () => {
    const dir = tempDir();
    const configFile = join(dir, 'corral.yaml');
    writeFileSync(configFile, 'node: { name: offline }\nadmin: { listen: 127.0.0.1:9010, auth: { token: t0ps3cret } }\n');
    const out = join(dir, 'b.tar.gz');
    const r = await corral(['snapshot', '-o', out, '-c', configFile, '--admin', `127.0.0.1:${await refusedPort()}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: status: cannot reach the admin API/);
    const entries = untar(gunzipSync(readFileSync(out)));
    assert.ok(!entries.some((e) => e.data.includes('t0ps3cret')));
    assert.ok(entries.some((e) => e.name.endsWith('/corral.yaml')));
    assert.match(entries[0]?.name as string, /^corral-snapshot-offline-/);
    const none = await corral(['snapshot', '-o', join(dir, 'c.tar.gz'), '--admin', `127.0.0.1:${await refusedPort()}`]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^corral: snapshot: nothing could be collected: status: cannot reach/);
  });
});

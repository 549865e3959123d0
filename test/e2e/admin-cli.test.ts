/**
 * The operator commands as a real process (`node dist/src/cli/main.js …`)
 * against a real admin server: exit codes, one-line errors, no colour on a
 * pipe. Skipped while main.ts does not register the operator commands.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startAdminFarm } from '../../src/admin/testing.js';
import type { AdminFarm } from '../../src/admin/testing.js';
import { httpFarmYaml, startUpstream } from '../support/farm.js';
import type { Upstream } from '../support/farm.js';
import { CLI } from '../support/process.js';

function corral(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('corral operator commands (spawned)', () => {
  let ups: Upstream[];
  let farm: AdminFarm;
  let env: NodeJS.ProcessEnv;
  let wired = false;

  before(async () => {
    const probe = await corral(['servers', '--admin', 'http://127.0.0.1:1'], {});
    wired = !/unknown command/.test(probe.stderr);
    if (!wired) return;
    ups = [await startUpstream('a'), await startUpstream('b')];
    farm = await startAdminFarm(httpFarmYaml(ups.map((u) => u.port)), { auth: { token: 'spawn-token' } });
    env = { CORRAL_ADMIN_URL: farm.url, CORRAL_ADMIN_TOKEN: 'spawn-token' };
  });
  after(async () => {
    if (!wired) return;
    await farm.close();
    for (const u of ups) await u.close();
  });

  it('servers, server drain, servers --stats --json', async (t) => {
    if (!wired) {
      t.skip('main.ts does not register the operator commands yet');
      return;
    }
    const d = await corral(['server', 'drain', 'app/s2'], env);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.stdout, 'app/s2: drain (state up → drain)\n');
    const s = await corral(['servers'], { ...env, FORCE_COLOR: '1' });
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /^BACKEND\s+SERVER\s+ADDRESS\s+STATE/);
    assert.match(s.stdout, /\napp\s+s2\s+\S+\s+drain\s/);
    assert.doesNotMatch(s.stdout, /\x1b\[/, 'no colour on a pipe');
    const j = await corral(['servers', '--stats', '--json'], env);
    assert.deepEqual((JSON.parse(j.stdout) as { name: string; state: string }[]).map((x) => `${x.name}:${x.state}`), ['s1:up', 's2:drain']);
  });

  it('errors: one line and exit 1; usage errors exit 2', async (t) => {
    if (!wired) {
      t.skip('main.ts does not register the operator commands yet');
      return;
    }
    const nf = await corral(['server', 'maint', 'app/zz'], env);
    assert.equal(nf.code, 1);
    assert.equal(nf.stderr, 'corral: no server "zz" in backend "app" (CORRAL_ERR_ADMIN_NOT_FOUND, HTTP 404)\n');
    const auth = await corral(['status'], { CORRAL_ADMIN_URL: farm.url });
    assert.equal(auth.code, 1);
    assert.equal(auth.stderr.split('\n').length, 2);
    const usage = await corral(['server', 'drain', 'nothing'], env);
    assert.equal(usage.code, 2);
  });
});

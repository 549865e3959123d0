import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, it } from 'node:test';
import { startUpstream } from '../support/farm.js';
import { runCorral, runCorralSync, tempFile } from '../support/process.js';

describe('corral check', () => {
  it('exits 0 on a valid file', async () => {
    const file = tempFile('ok.yaml', 'frontends:\n  - { name: web, listen: 127.0.0.1:8080, backend: app }\nbackends:\n  - name: app\n    servers: [{ name: a, address: 127.0.0.1:9001 }]\n');
    const r = await runCorralSync(['check', '-c', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /valid/);
  });

  it('prints every problem as FILE:LINE:COL message and exits 1', async () => {
    const file = tempFile(
      'bad.yaml',
      [
        'frontends:',
        '  - name: web',
        '    listen: 127.0.0.1:99999',
        '    backend: nowhere',
        'backends:',
        '  - name: app',
        '    retries: 3',
        '    colour: blue',
        '    timeouts: { connect: fast }',
        '    servers:',
        '      - { name: a, address: 127.0.0.1:9001, track: app/ghost }',
        '      - { name: a, address: 127.0.0.1:9002 }',
        '',
      ].join('\n'),
    );
    const r = await runCorralSync(['check', '-c', file]);
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    for (const l of lines) assert.match(l, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+ .+`));
    const at = (line: number): string[] => lines.filter((l) => l.startsWith(`${file}:${line}:`));
    assert.ok(at(3).length > 0, `no problem reported for the port on line 3:\n${r.stderr}`);
    assert.ok(at(4).length > 0, `no problem reported for the dangling backend on line 4:\n${r.stderr}`);
    assert.ok(at(8).length > 0, `no problem reported for the unknown key on line 8:\n${r.stderr}`);
    assert.ok(at(9).length > 0, `no problem reported for the duration on line 9:\n${r.stderr}`);
    assert.ok(at(11).length > 0, `no problem reported for the dangling track on line 11:\n${r.stderr}`);
    assert.ok(at(12).length > 0, `no problem reported for the duplicate name on line 12:\n${r.stderr}`);
  });

  it('exits 2 on a usage error', async () => {
    const r = await runCorralSync(['check']);
    assert.equal(r.code, 2);
    const u = await runCorralSync(['no-such-command']);
    assert.equal(u.code, 2);
  });
});

describe('corral start', () => {
  it('logs JSON access lines and drains in-flight requests on SIGTERM, exiting 0', async () => {
    let release: (() => void) | undefined;
    const up = await startUpstream('slow', (req, res) => {
      if (req.url === '/slow') release = () => res.end('finished');
      else res.end('fast');
    });
    const file = tempFile(
      'corral.yaml',
      // Active checks: the node must wait for their first round before listening, and stay alive while it does.
      `workers: 1\nfrontends:\n  - { name: web, listen: 127.0.0.1:0, backend: app }\nbackends:\n  - name: app\n    health: { type: tcp, interval: 2s }\n    servers: [{ name: s, address: 127.0.0.1:${up.port} }]\n`,
    );
    const corral = runCorral(['start', '-c', file]);
    try {
      const line = await corral.waitFor((l) => l.msg === 'frontend listening');
      const port = Number(String(line.address).split(':').pop());
      const fast = await new Promise<string>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/fast', agent: false }, (res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d.toString()));
          res.on('end', () => resolve(b));
        }).on('error', reject);
      });
      assert.equal(fast, 'fast');
      const access = await corral.waitFor((l) => l.type === 'access' && l.path === '/fast');
      for (const k of ['frontend', 'backend', 'server', 'status', 'bytesIn', 'bytesOut', 'queueMs', 'connectMs', 'responseMs', 'totalMs']) {
        assert.ok(k in access, `access line lacks ${k}: ${JSON.stringify(access)}`);
      }
      assert.equal(access.status, 200);
      assert.equal(access.server, 's');

      const slow = new Promise<string>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/slow', agent: false }, (res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d.toString()));
          res.on('end', () => resolve(b));
        }).on('error', reject);
      });
      while (release === undefined) await new Promise((r) => setTimeout(r, 5));
      corral.child.kill('SIGTERM');
      await corral.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('stopping'));
      // New connections are refused once stopping.
      await assert.rejects(
        new Promise((resolve, reject) => http.get({ host: '127.0.0.1', port, agent: false }, resolve).on('error', reject)),
      );
      release();
      assert.equal(await slow, 'finished');
      assert.equal(await corral.exited, 0);
    } finally {
      corral.child.kill('SIGKILL');
      await up.close();
    }
  });

  it('exits 1 with positions when the config is invalid', async () => {
    const file = tempFile('bad.yaml', 'frontends: 3\n');
    const r = await runCorralSync(['start', '-c', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yaml:1:\d+ /);
  });
});

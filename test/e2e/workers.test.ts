/**
 * `workers: 2`: a supervisor and two worker processes sharing the listener.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { describe, it } from 'node:test';
import { startUpstream } from '../support/farm.js';
import { runCorral, tempFile } from '../support/process.js';

function get(port: number): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    }).on('error', reject);
  });
}

describe('workers', () => {
  it('serves from two workers, replaces a killed worker, reloads every worker, and stops with 0', async () => {
    const up = await startUpstream('s');
    const yaml = (header: string): string =>
      `workers: 2\nfrontends:\n  - { name: web, listen: 127.0.0.1:0, backend: app }\nbackends:\n  - name: app\n    serverHeader: ${header}\n    servers: [{ name: s, address: 127.0.0.1:${up.port} }]\n`;
    const file = tempFile('corral.yaml', yaml('X-One'));
    const corral = runCorral(['start', '-c', file]);
    try {
      await corral.waitFor((l) => l.msg === 'workers ready');
      let started = 0;
      await corral.waitFor((l) => l.msg === 'node started' && l.worker !== undefined && ++started === 2);
      const starts = corral.lines.filter((l) => l.msg === 'node started' && l.worker !== undefined);
      assert.equal(starts.length, 2);
      const listening = corral.lines.find((l) => l.msg === 'frontend listening');
      const port = Number(String(listening?.address).split(':').pop());
      for (let i = 0; i < 10; i++) assert.equal((await get(port)).headers['x-one'], 's');

      // A worker killed outright is replaced.
      const victim = Number(starts[0]?.pid);
      process.kill(victim, 'SIGKILL');
      await corral.waitFor((l) => l.msg === 'worker died; replacing it');
      await corral.waitFor((l) => l.msg === 'node started' && l.worker !== undefined && l.pid !== victim && l.pid !== starts[1]?.pid);
      for (let i = 0; i < 10; i++) assert.equal((await get(port)).status, 200);

      // A changed file reaches every worker.
      writeFileSync(file, yaml('X-Two'));
      corral.child.kill('SIGHUP');
      let reloaded = 0;
      await corral.waitFor((l) => l.msg === 'configuration reloaded' && ++reloaded === 2);
      for (let i = 0; i < 20; i++) {
        const r = await get(port);
        assert.equal(r.headers['x-two'], 's', 'a worker still serves the old generation');
      }

      // An invalid file is rejected once, with its position, and service continues.
      writeFileSync(file, `${yaml('X-Two')}bogus: 1\n`);
      corral.child.kill('SIGHUP');
      await corral.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('reload rejected'));
      assert.ok(corral.lines.some((l) => typeof l.msg === 'string' && /corral\.yaml:\d+:\d+ /.test(l.msg)));
      assert.equal((await get(port)).status, 200);

      corral.child.kill('SIGTERM');
      assert.equal(await corral.exited, 0);
    } finally {
      corral.child.kill('SIGKILL');
      await up.close();
    }
  });

  it('runs health checks once in the supervisor and steers every worker', async () => {
    const a = await startUpstream('a');
    let checks = 0;
    const b = await startUpstream('b', (req, res) => {
      if (req.url === '/health') checks++;
      res.end('b');
    });
    const file = tempFile(
      'corral.yaml',
      `workers: 2\nfrontends:\n  - { name: web, listen: 127.0.0.1:0, backend: app }\nbackends:\n  - name: app\n    retries: 2\n    health: { type: http, path: /health, interval: 200ms, timeout: 200ms, rise: 1, fall: 1 }\n    servers:\n      - { name: a, address: 127.0.0.1:${a.port} }\n      - { name: b, address: 127.0.0.1:${b.port} }\n`,
    );
    const corral = runCorral(['start', '-c', file]);
    try {
      await corral.waitFor((l) => l.msg === 'workers ready');
      const listening = await corral.waitFor((l) => l.msg === 'frontend listening');
      const port = Number(String(listening.address).split(':').pop());
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const r = await new Promise<string>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port, agent: false }, (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve(body));
          }).on('error', reject);
        });
        seen.add(r);
      }
      assert.deepEqual([...seen].sort(), ['a', 'b'], 'both servers serve through both workers');
      // Over ~1 s at a 200 ms interval, one checker makes about 5 checks; one per worker would make twice that.
      const c0 = checks;
      const t0 = Date.now();
      while (Date.now() - t0 < 1000) await new Promise((r) => setTimeout(r, 50));
      const made = checks - c0;
      assert.ok(made >= 3 && made <= 8, `${made} checks in 1 s`);
      await b.close();
      await corral.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('server app/b is DOWN'));
      for (let i = 0; i < 10; i++) assert.equal((await get(port)).status, 200);
      assert.equal(corral.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('server app/b is DOWN')).length, 1);
      corral.child.kill('SIGTERM');
      assert.equal(await corral.exited, 0);
    } finally {
      corral.child.kill('SIGKILL');
      await a.close();
      await b.close();
    }
  });
});

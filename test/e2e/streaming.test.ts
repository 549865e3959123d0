/**
 * 100 MB up and down through a Corral process: bodies stream with
 * backpressure, so the balancer's peak RSS stays bounded.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startUpstream } from '../support/farm.js';
import type { Upstream } from '../support/farm.js';
import { peakRssMiB, runCorral, tempFile } from '../support/process.js';
import type { Running } from '../support/process.js';

const SIZE = 100 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'x');

/** Writes `size` bytes honouring backpressure. */
function pump(out: NodeJS.WritableStream & { write(b: Buffer): boolean }, size: number, done: () => void): void {
  let left = size;
  const go = (): void => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      if (!out.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        out.once('drain', go);
        return;
      }
    }
    done();
  };
  go();
}

describe('streaming through a corral process', () => {
  let up: Upstream;
  let corral: Running;
  let port = 0;
  let baseline = 0;
  before(async () => {
    up = await startUpstream('big', (req, res) => {
      if (req.method === 'POST') {
        let n = 0;
        req.on('data', (c: Buffer) => (n += c.length));
        req.on('end', () => res.end(String(n)));
        return;
      }
      res.writeHead(200, { 'content-length': SIZE });
      pump(res, SIZE, () => res.end());
    });
    const file = tempFile(
      'corral.yaml',
      `workers: 1\nfrontends:\n  - { name: web, listen: 127.0.0.1:0, backend: app }\nbackends:\n  - name: app\n    servers: [{ name: big, address: 127.0.0.1:${up.port} }]\n`,
    );
    corral = runCorral(['start', '-c', file]);
    const line = await corral.waitFor((l) => l.msg === 'frontend listening');
    port = Number(String(line.address).split(':').pop());
    baseline = await peakRssMiB(corral.child.pid as number);
  });
  after(async () => {
    corral.child.kill('SIGTERM');
    await corral.exited;
    await up.close();
  });

  it('uploads and downloads 100 MB each with bounded balancer memory', async () => {
    const uploaded = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/up', headers: { 'content-length': SIZE } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      pump(req, SIZE, () => req.end());
    });
    assert.equal(uploaded, String(SIZE));

    const downloaded = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/down' }, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(n));
          res.on('error', reject);
        })
        .on('error', reject);
    });
    assert.equal(downloaded, SIZE);

    const peak = await peakRssMiB(corral.child.pid as number);
    // Buffering either body whole would add at least 100 MiB to the peak.
    assert.ok(peak - baseline < 64, `peak RSS ${peak.toFixed(1)} MiB, ${baseline.toFixed(1)} MiB after start`);
    console.log(`# balancer RSS after start ${baseline.toFixed(1)} MiB, peak after 2 x 100 MB ${peak.toFixed(1)} MiB`);
  });
});

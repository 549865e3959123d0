import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HealthLog } from './log.js';
import { StatusFiles, type StatusDocument } from './status-files.js';

const dir = mkdtempSync(join(tmpdir(), 'corral-status-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function recorder(): { log: HealthLog; lines: string[] } {
  const lines: string[] = [];
  const push = (_o: object, msg: string): void => void lines.push(msg);
  return { log: { debug: push, info: push, warn: push, error: push }, lines };
}

const doc = (n: number): StatusDocument => ({
  version: 1,
  updatedAt: new Date(0).toISOString(),
  servers: [{ backend: 'app', name: 'app1', address: '127.0.0.1:1', state: n % 2 === 0 ? 'up' : 'down', available: n % 2 === 0, since: new Date(n).toISOString(), reason: `R${n}`, weight: n }],
});

test('a burst of changes is coalesced; the last state is on disk', async () => {
  const a = join(dir, 'a.json');
  const b = join(dir, 'b.json');
  let state = 0;
  let snapshots = 0;
  const files = new StatusFiles([a, b], () => (snapshots++, doc(state)), recorder().log);
  for (state = 1; state <= 1000; state++) files.changed();
  state = 1000;
  await files.flush();
  assert.ok(snapshots <= 2, `${snapshots} writes for 1000 changes`);
  for (const p of [a, b]) assert.equal((JSON.parse(readFileSync(p, 'utf8')) as StatusDocument).servers[0]!.weight, 1000);
});

test('changes during a write get one more write with the newest state', async () => {
  const p = join(dir, 'c.json');
  let state = 1;
  const files = new StatusFiles([p], () => doc(state), recorder().log);
  files.changed();
  // While the first write is under way, more changes arrive.
  await new Promise((r) => setImmediate(r));
  state = 2;
  files.changed();
  state = 3;
  files.changed();
  await files.flush();
  assert.equal((JSON.parse(readFileSync(p, 'utf8')) as StatusDocument).servers[0]!.reason, 'R3');
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('an unwritable path is logged once until it works again; other paths still get written', async () => {
  const bad = join(dir, 'missing-dir', 'x.json');
  const good = join(dir, 'd.json');
  const { log, lines } = recorder();
  let state = 0;
  const files = new StatusFiles([bad, good], () => doc(state), log);
  for (state = 1; state <= 3; state++) {
    files.changed();
    await files.flush();
  }
  assert.equal(lines.filter((l) => l.startsWith('cannot write status file')).length, 1);
  assert.equal((JSON.parse(readFileSync(good, 'utf8')) as StatusDocument).servers[0]!.weight, 3);
});

test('no paths: nothing to do', async () => {
  let called = false;
  const files = new StatusFiles([], () => ((called = true), doc(0)), recorder().log);
  files.changed();
  await files.flush();
  assert.equal(called, false);
});

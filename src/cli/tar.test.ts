import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { tempDir } from '../admin/testing.js';
import { tar, tarGz, untar } from './tar.js';

describe('tar writer', () => {
  const entries = [
    { name: 'bundle/', mtime: new Date('2025-01-02T03:04:05Z') },
    { name: 'bundle/a.txt', data: 'hello\n', mtime: new Date('2025-01-02T03:04:05Z') },
    { name: 'bundle/exact-512.bin', data: Buffer.alloc(512, 7) },
    { name: `bundle/${'d'.repeat(90)}/${'n'.repeat(60)}.json`, data: '{}' },
  ];

  it('round-trips through its reader: names (long ones via prefix), contents, directories', () => {
    const back = untar(tar(entries));
    assert.deepEqual(
      back.map((e) => [e.name, e.type, e.data.length]),
      [
        ['bundle/', 'dir', 0],
        ['bundle/a.txt', 'file', 6],
        ['bundle/exact-512.bin', 'file', 512],
        [entries[3]?.name, 'file', 2],
      ],
    );
    assert.equal(back[1]?.data.toString(), 'hello\n');
    assert.equal(tar(entries).length % 512, 0);
  });

  it('is read by the system tar', (t) => {
    const probe = spawnSync('tar', ['--version']);
    if (probe.status !== 0) {
      t.skip('no tar on this machine');
      return;
    }
    const dir = tempDir();
    const file = join(dir, 'x.tar.gz');
    writeFileSync(file, tarGz(entries));
    const list = spawnSync('tar', ['-tzf', file], { encoding: 'utf8' });
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual(list.stdout.trim().split('\n'), entries.map((e) => e.name));
    const x = spawnSync('tar', ['-xzf', file, '-C', dir], { encoding: 'utf8' });
    assert.equal(x.status, 0, x.stderr);
    assert.equal(readFileSync(join(dir, 'bundle/a.txt'), 'utf8'), 'hello\n');
    assert.equal(gunzipSync(readFileSync(file)).length, tar(entries).length);
  });
});

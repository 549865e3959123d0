import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { converged, startCluster, TEST_KEY } from '../sessions/testing.js';
import type { OperatorIo } from './operator.js';
import { formatSessionStats, registerSessionsCommands } from './sessions.js';

function capture(env: NodeJS.ProcessEnv = {}): OperatorIo & { out: string; err: string; code: number } {
  const io = {
    out: '',
    err: '',
    code: -1,
    env,
    stdout: { write: (s: string) => (io.out += s) },
    stderr: { write: (s: string) => (io.err += s) },
    setExitCode: (c: number) => (io.code = c),
  };
  return io;
}

async function run(args: string[], io: OperatorIo): Promise<void> {
  const program = new Command().exitOverride();
  registerSessionsCommands(program, io);
  await program.parseAsync(['node', 'corral', ...args]);
}

describe('corral sessions stats', () => {
  it('prints one row per peer node with counts, from the config', async () => {
    const cluster = await startCluster(3);
    try {
      const c = cluster.client();
      await converged(c, cluster.ids);
      await Promise.all(Array.from({ length: 30 }, (_, i) => c.set(`s${i}`, 'v')));
      await c.get('s1');
      const dir = mkdtempSync(join(tmpdir(), 'corral-cli-'));
      const file = join(dir, 'corral.yaml');
      writeFileSync(file, `sessions:\n  store: peer\n  listen: ${cluster.ids[0]}\n  peers: [${cluster.ids.join(', ')}]\ncluster:\n  key: ${TEST_KEY}\n`);
      const io = capture();
      await run(['sessions', 'stats', '-c', file], io);
      assert.equal(io.err, '');
      assert.equal(io.code, 0);
      const lines = io.out.trim().split('\n');
      assert.match(lines[0] as string, /^NODE\s+STATE\s+SESSIONS/);
      assert.equal(lines.length, 4);
      const total = lines.slice(1).reduce((sum, l) => sum + Number(l.split(/\s+/)[2]), 0);
      assert.equal(total, 60, 'every session counted twice (R=2)');
      const json = capture();
      await run(['sessions', 'stats', '-c', file, '--json'], json);
      const rows = JSON.parse(json.out) as { node: string; stats: { sessions: number } }[];
      assert.equal(rows.length, 3);
    } finally {
      await cluster.close();
    }
  });

  it('--peers with CORRAL_CLUSTER_KEY; an unreachable node is a row and exit 1', async () => {
    const cluster = await startCluster(1, { replicas: 1 });
    try {
      const io = capture({ CORRAL_CLUSTER_KEY: TEST_KEY });
      await run(['sessions', 'stats', '--peers', `${cluster.ids[0]},127.0.0.1:1`, '--timeout', '500'], io);
      assert.equal(io.code, 1);
      assert.match(io.out, /127\.0\.0\.1:1\s+unreachable/);
      assert.match(io.out, /serving/);
    } finally {
      await cluster.close();
    }
  });

  it('explains the memory store and missing keys in one line, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-cli-'));
    const file = join(dir, 'corral.yaml');
    writeFileSync(file, 'sessions:\n  store: memory\n');
    const io = capture();
    await run(['sessions', 'stats', '-c', file], io);
    assert.equal(io.code, 1);
    assert.match(io.err, /^corral: sessions.store is memory/);
    const io2 = capture();
    await run(['sessions', 'stats', '--peers', '127.0.0.1:1'], io2);
    assert.match(io2.err, /CORRAL_CLUSTER_KEY/);
  });

  it('formats hand-off progress and catching-up nodes', () => {
    const base = { store: 'peer' as const, sessions: 5, bytes: 2048, hits: 1, misses: 2, sets: 3, conflicts: 0, destroys: 0, evictions: 0, expired: 0, errors: 0 };
    const out = formatSessionStats(
      [
        { node: 'a:1', stats: { ...base, ready: false, handoff: { running: true, pending: 10, sent: 5, lastDurationMs: 0, lastRecords: 0, completed: 0 } } },
        { node: 'b:1', stats: { ...base, handoff: { running: false, pending: 0, sent: 0, lastDurationMs: 12, lastRecords: 300, completed: 1 } } },
      ],
      false,
    );
    assert.match(out, /a:1\s+catching up\s+5/);
    assert.match(out, /running: 5 sent, 10 to go/);
    assert.match(out, /last: 300 in 12ms/);
    assert.match(out, /2\.0K/);
  });
});

import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '../log.js';
import type { AdminNode, Change } from './admin-node.js';
import { AdminError } from './errors.js';
import { RuntimeState, applyPersistedState, stateFileFor, writeFileAtomically } from './state-file.js';
import { captureLogger, tempDir } from './testing.js';
import type { AdminState, StatusResponse } from './types.js';

/** An AdminNode over a table of servers, recording what was applied. */
function fakeNode(servers: Record<string, { admin: AdminState; weight: number; configWeight: number }>): AdminNode {
  const find = (b: string, s: string): { admin: AdminState; weight: number; configWeight: number } => {
    const x = servers[`${b}/${s}`];
    if (x === undefined) throw new AdminError('CORRAL_ERR_ADMIN_NOT_FOUND', `no server "${s}" in backend "${b}"`);
    return x;
  };
  return {
    name: 'fake',
    role: () => 'primary',
    status: () => ({}) as StatusResponse,
    server: () => {
      throw new Error('unused');
    },
    config: () => {
      throw new Error('unused');
    },
    setServerState(b, s, state): Change<AdminState> {
      const x = find(b, s);
      const from = x.admin;
      x.admin = state;
      return { changed: from !== state, from, to: state };
    },
    setServerWeight(b, s, weight): Change<number> {
      const x = find(b, s);
      const from = x.weight;
      x.weight = weight;
      return { changed: from !== weight, from, to: weight };
    },
    configWeight: (b, s) => find(b, s).configWeight,
    onReload: () => () => undefined,
  };
}

describe('state file', () => {
  it('lives beside the config: corral.yaml → corral.state.json', () => {
    assert.equal(stateFileFor('/etc/corral/corral.yaml'), '/etc/corral/corral.state.json');
    assert.equal(stateFileFor('lb.yml'), 'lb.state.json');
    assert.equal(stateFileFor('/x/config'), '/x/config.state.json');
  });

  it('keeps only what differs from the config, and round-trips through the file', async () => {
    const file = join(tempDir(), 'corral.state.json');
    const st = new RuntimeState(file, silentLogger());
    await st.update('app', 'a', { admin: 'drain', configWeight: 1 }, 'alice');
    await st.update('app', 'b', { weight: 7, configWeight: 1 }, 'token');
    await st.update('app', 'c', { admin: 'maint', configWeight: 1 }, 'alice');
    await st.update('app', 'c', { admin: 'ready', configWeight: 1 }, 'alice');
    await st.update('app', 'b', { admin: 'maint', configWeight: 1 }, 'bob');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { version: number; servers: { backend: string; server: string; admin?: string; weight?: number; by: string }[] };
    assert.equal(doc.version, 1);
    assert.deepEqual(
      doc.servers.map(({ backend, server, admin, weight, by }) => ({ backend, server, admin, weight, by })),
      [
        { backend: 'app', server: 'a', admin: 'drain', weight: undefined, by: 'alice' },
        { backend: 'app', server: 'b', admin: 'maint', weight: 7, by: 'bob' },
      ],
    );
    const loaded = await RuntimeState.load(file, silentLogger());
    assert.deepEqual(loaded.document(), st.document());
    // No temporary files left behind.
    assert.deepEqual(readdirSync(join(file, '..')), ['corral.state.json']);
  });

  it('applies entries to the node and drops (with a log line) those whose server is gone', async () => {
    const file = join(tempDir(), 'corral.state.json');
    writeFileSync(
      file,
      JSON.stringify({
        version: 1,
        servers: [
          { backend: 'app', server: 'a', admin: 'drain', by: 'alice', at: '2025-01-01T00:00:00.000Z' },
          { backend: 'app', server: 'b', weight: 9, by: 'alice', at: '2025-01-01T00:00:00.000Z' },
          { backend: 'app', server: 'gone', admin: 'maint', by: 'alice', at: '2025-01-01T00:00:00.000Z' },
          { backend: 'old', server: 'x', admin: 'maint', by: 'alice', at: '2025-01-01T00:00:00.000Z' },
          { backend: 'app', server: 'a', admin: 'sleeping' },
        ],
      }),
    );
    const servers = {
      'app/a': { admin: 'ready' as AdminState, weight: 1, configWeight: 1 },
      'app/b': { admin: 'ready' as AdminState, weight: 1, configWeight: 1 },
    };
    const { log, lines } = captureLogger();
    const st = await applyPersistedState(fakeNode(servers), file, log);
    assert.equal(servers['app/a'].admin, 'drain');
    assert.equal(servers['app/b'].weight, 9);
    assert.equal(st.size, 2);
    assert.ok(lines.some((l) => typeof l.msg === 'string' && l.msg.includes('app/gone dropped')));
    assert.ok(lines.some((l) => typeof l.msg === 'string' && l.msg.includes('old/x dropped')));
    assert.ok(lines.some((l) => typeof l.msg === 'string' && l.msg.includes('invalid entry')));
    const rewritten = JSON.parse(readFileSync(file, 'utf8')) as { servers: { server: string }[] };
    assert.deepEqual(rewritten.servers.map((s) => s.server), ['a', 'b']);
  });

  it('a missing file is an empty state; a corrupt one is logged and ignored', async () => {
    const dir = tempDir();
    assert.equal((await RuntimeState.load(join(dir, 'none.json'), silentLogger())).size, 0);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ not json');
    const { log, lines } = captureLogger();
    assert.equal((await RuntimeState.load(bad, log)).size, 0);
    assert.ok(lines.some((l) => l.level === 50));
  });

  it('a change that cannot be written is not recorded', async (t) => {
    if (process.getuid?.() === 0) {
      t.skip('root writes anywhere');
      return;
    }
    const dir = tempDir();
    const st = new RuntimeState(join(dir, 'corral.state.json'), silentLogger());
    chmodSync(dir, 0o500);
    try {
      await assert.rejects(st.update('app', 'a', { admin: 'maint', configWeight: 1 }, 'alice'), (e: unknown) => e instanceof AdminError && e.code === 'CORRAL_ERR_ADMIN_STATE_FILE');
      assert.equal(st.size, 0);
    } finally {
      chmodSync(dir, 0o700);
    }
  });

  it('a change that cannot be written is not recorded (unwritable path)', async () => {
    const st = new RuntimeState(join(tempDir(), 'no-such-dir', 'corral.state.json'), silentLogger());
    await assert.rejects(st.update('app', 'a', { admin: 'maint', configWeight: 1 }, 'alice'), (e: unknown) => e instanceof AdminError && e.code === 'CORRAL_ERR_ADMIN_STATE_FILE');
    assert.equal(st.size, 0);
  });

  it('writeFileAtomically replaces the whole file', async () => {
    const file = join(tempDir(), 'f.json');
    await writeFileAtomically(file, 'one');
    await writeFileAtomically(file, 'two');
    assert.equal(readFileSync(file, 'utf8'), 'two');
    assert.ok(existsSync(file));
  });
});

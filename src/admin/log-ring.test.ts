import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { httpFarmYaml, request, startUpstream } from '../../test/support/farm.js';
import { LogRing } from './log-ring.js';
import { startAdminFarm } from './testing.js';
import type { RecentLogsResponse } from './types.js';

describe('LogRing', () => {
  it('keeps the last lines as a pino destination, bounded by count and bytes, redaction intact', () => {
    const ring = new LogRing(3, 1 << 20);
    const log = pino({ redact: ['password'] }, ring);
    for (let i = 0; i < 5; i++) log.info({ i, password: 'hunter2' }, `line ${i}`);
    const lines = ring.recent() as { i: number; msg: string; password: string }[];
    assert.deepEqual(lines.map((l) => l.i), [2, 3, 4]);
    assert.equal(lines[0]?.password, '[Redacted]');
    const small = new LogRing(100, 50);
    small.write(`${'a'.repeat(30)}\n${'b'.repeat(30)}\n`);
    assert.deepEqual(small.recent(), ['b'.repeat(30)]);
  });

  it('GET /api/v1/logs/recent serves them', async () => {
    const up = await startUpstream('a');
    const ring = new LogRing();
    ring.write('{"msg":"hello"}\n');
    const farm = await startAdminFarm(httpFarmYaml([up.port]), { server: { logs: ring } });
    try {
      const r = JSON.parse((await request(farm.url, { path: '/api/v1/logs/recent' })).body) as RecentLogsResponse;
      assert.deepEqual(r, { available: true, lines: [{ msg: 'hello' }] });
    } finally {
      await farm.close();
      await up.close();
    }
  });
});

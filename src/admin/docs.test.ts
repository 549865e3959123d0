import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ADMIN_ERROR_CODES } from './errors.js';
import { nodeAdapter } from './admin-node.js';
import { LatencyHistograms } from './latency.js';
import { createMetrics } from './metrics.js';
import { parseTestConfig } from './testing.js';
import { silentLogger } from '../log.js';
import { CorralNode } from '../node.js';

const doc = readFileSync(new URL('../../../docs/admin.md', import.meta.url), 'utf8');

describe('docs/admin.md', () => {
  it('lists every admin error code with its status', () => {
    for (const [code, e] of Object.entries(ADMIN_ERROR_CODES)) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      assert.ok(row !== undefined, `${code} is missing from docs/admin.md`);
      assert.ok(row.includes(e.status === 0 ? ' – ' : ` ${e.status} `), `${code}: status ${e.status} not in its row`);
    }
  });

  it('lists exactly the corral_* metrics /metrics exposes', async () => {
    const node = await CorralNode.start({
      config: parseTestConfig('frontends:\n  - { name: web, listen: 127.0.0.1:0, backend: app }\nbackends:\n  - name: app\n    servers: [{ name: a, address: 127.0.0.1:1 }]\n'),
      log: silentLogger(),
    });
    try {
      const latency = new LatencyHistograms();
      latency.observe('app', 'a', 0.01);
      const text = await createMetrics({ node: nodeAdapter(node), latency, processMetrics: false }).scrape();
      const exposed = new Set([...text.matchAll(/^# TYPE (corral_\w+) /gm)].map((m) => m[1] as string));
      const documented = new Set([...doc.matchAll(/^\| `(corral_\w+)[{`]/gm)].map((m) => m[1] as string));
      assert.deepEqual([...exposed].sort(), [...documented].sort());
    } finally {
      await node.stop(0);
    }
  });
});

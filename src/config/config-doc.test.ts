import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { parseConfig } from './loader.js';
import { formatProblem } from './problem.js';
import { configSchema } from './schema.js';

// Keeps the examples of docs/config.md true. Compiled to dist/src/config/.
const doc = readFileSync(new URL('../../../docs/config.md', import.meta.url), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'corral-config-doc-'));
writeFileSync(join(dir, 'cert.pem'), 'cert');
writeFileSync(join(dir, 'key.pem'), 'key');
after(() => rmSync(dir, { recursive: true, force: true }));

function block(after: string, lang: string): string {
  const start = doc.indexOf(after);
  assert.ok(start >= 0, `"${after}" not in docs/config.md`);
  const open = doc.indexOf(`\`\`\`${lang}\n`, start) + lang.length + 4;
  return doc.slice(open, doc.indexOf('```', open));
}

describe('docs/config.md', () => {
  it('has a full example that is valid', () => {
    const env = { CORRAL_ADMIN_PASSWORD: 'pw', CORRAL_CLUSTER_KEY: 'key' };
    const result = parseConfig(block('## Full example', 'yaml'), join(dir, 'corral.yaml'), env);
    assert.ok(result.ok, result.ok ? '' : result.problems.map(formatProblem).join('\n'));
  });

  it('shows the problems its error example really has', () => {
    const result = parseConfig(block('This file:', 'yaml'), 'corral.yaml', {});
    assert.ok(!result.ok);
    assert.equal(result.problems.map(formatProblem).join('\n') + '\n', block('is reported as:', ''));
  });

  it('documents every key the schema knows', () => {
    // The first cell of each key table row, e.g. "`auth.user`, `auth.password`".
    const rows = doc.split('\n').filter((line) => line.startsWith('| `')).map((line) => line.split(' | ')[0] ?? '');
    const missing = [...schemaKeys(configSchema(dir))].filter((key) => {
      const named = new RegExp(`\`([\\w.\\[\\]]*\\.)?${key}(\\.[\\w.]*)?\``);
      return !rows.some((cell) => named.test(cell));
    });
    assert.deepEqual(missing, [], 'keys without a row in docs/config.md');
  });
});

/** Every key name of every mapping in a schema. */
function schemaKeys(schema: z.ZodType): Set<string> {
  const keys = new Set<string>();
  const visit = (node: z.ZodType): void => {
    const def = node._zod.def as unknown as {
      shape?: Record<string, z.ZodType>;
      element?: z.ZodType;
      innerType?: z.ZodType;
      in?: z.ZodType;
    };
    for (const [key, child] of Object.entries(def.shape ?? {})) {
      keys.add(key);
      visit(child);
    }
    for (const child of [def.element, def.innerType, def.in]) if (child !== undefined) visit(child);
  };
  visit(schema);
  return keys;
}

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SESSION_ERROR_CODES } from './errors.js';

// dist/src/sessions → repository root
const doc = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../../docs/sessions.md'), 'utf8');

describe('docs/sessions.md', () => {
  it('documents every session error code with its status and text', () => {
    const rows = new Map<string, string>();
    for (const m of doc.matchAll(/^\| `(CORRAL_ERR_SESSION_[A-Z_]+)` \| (\d+) \| (.+) \|$/gm)) rows.set(m[1] as string, `${m[2]} ${m[3]}`);
    for (const [code, { status, doc: text }] of Object.entries(SESSION_ERROR_CODES)) {
      assert.equal(rows.get(code), `${status} ${text}`, code);
    }
    assert.equal(rows.size, Object.keys(SESSION_ERROR_CODES).length, 'no stale codes in the doc');
  });

  it('keeps the Express example at ten lines', () => {
    const m = /## Express in ten lines\n\n```js\n([\s\S]*?)```/.exec(doc);
    assert.ok(m);
    assert.equal((m[1] as string).trim().split('\n').length, 10);
  });
});

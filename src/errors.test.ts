import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES, errorResponse } from './errors.js';

describe('error codes', () => {
  it('every code is documented in docs/errors.md with its status', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    for (const [code, e] of Object.entries(ERROR_CODES)) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      assert.ok(row !== undefined, `${code} is missing from docs/errors.md`);
      if (e.status !== 0) assert.ok(row.includes(` ${e.status} `), `${code}: status ${e.status} not in its row`);
    }
  });

  it('error responses are complete HTTP/1.1 messages with a plain body naming the code', () => {
    const r = errorResponse('CORRAL_ERR_NO_SERVER', true).toString('latin1');
    const [head, body] = r.split('\r\n\r\n') as [string, string];
    assert.match(head, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(head, /\r\nconnection: close(\r\n|$)/);
    assert.match(head, new RegExp(`content-length: ${Buffer.byteLength(body)}`));
    assert.match(body, /CORRAL_ERR_NO_SERVER/);
  });
});

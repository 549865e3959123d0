import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { protectReferences, substitute } from './env.js';

describe('substitute', () => {
  const env = { HOST: 'db', PORT: '6379', EMPTY: '' };

  it('replaces references', () => {
    assert.deepEqual(substitute('redis://${HOST}:${PORT}/0', env), { text: 'redis://db:6379/0' });
    assert.deepEqual(substitute('${EMPTY}x', env), { text: 'x' });
    assert.deepEqual(substitute('no references, $HOST or $ alone', env), { text: 'no references, $HOST or $ alone' });
  });

  it('reads $${ as a literal ${', () => {
    assert.deepEqual(substitute('$${HOST} is ${HOST}', env), { text: '${HOST} is db' });
    assert.deepEqual(substitute('$$${HOST}', env), { text: '$${HOST}' });
  });

  it('names every unset variable', () => {
    assert.deepEqual(substitute('${NOPE}', env), { error: 'environment variable NOPE is not set' });
    assert.deepEqual(substitute('${A}:${HOST}:${B}', env), { error: 'environment variables A, B are not set' });
  });

  it('rejects malformed references', () => {
    assert.match((substitute('${HOST', env) as { error: string }).error, /unterminated/);
    assert.match((substitute('${1X}', env) as { error: string }).error, /invalid variable reference "\$\{1X\}"/);
    assert.match((substitute('${X:-d}', env) as { error: string }).error, /invalid variable reference/);
  });
});

describe('protectReferences', () => {
  it('keeps the text length so positions do not move', () => {
    const text = 'a: { password: ${PW}, b: "${X}" }\n';
    const protectedText = protectReferences(text);
    assert.equal(protectedText.length, text.length);
    assert.ok(!protectedText.includes('${'));
  });
});

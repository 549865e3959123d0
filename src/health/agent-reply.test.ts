import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseAgentReply } from './agent-reply.js';

const ok = (text: string): unknown => {
  const r = parseAgentReply(text);
  assert.ok(r.ok, `${JSON.stringify(text)}: ${r.ok ? '' : r.error}`);
  return r.reply;
};
const bad = (text: string): string => {
  const r = parseAgentReply(text);
  assert.ok(!r.ok, `${JSON.stringify(text)} should be nonsense`);
  return r.error;
};

test('HAProxy agent words', () => {
  assert.deepEqual(ok('75%\n'), { weight: { kind: 'percent', percent: 75 } });
  assert.deepEqual(ok('up'), { operational: 'up' });
  assert.deepEqual(ok('down'), { operational: 'down' });
  assert.deepEqual(ok('fail'), { operational: 'down' });
  assert.deepEqual(ok('stopped'), { operational: 'down' });
  assert.deepEqual(ok('drain'), { admin: 'drain' });
  assert.deepEqual(ok('maint'), { admin: 'maint' });
  assert.deepEqual(ok('ready'), { admin: 'ready' });
  assert.deepEqual(ok('maxconn:30'), { maxConn: 30 });
  assert.deepEqual(ok('up 75%'), { operational: 'up', weight: { kind: 'percent', percent: 75 } });
  assert.deepEqual(ok('ready,up,50%\r\n'), { admin: 'ready', operational: 'up', weight: { kind: 'percent', percent: 50 } });
  assert.deepEqual(ok('DOWN #disk full'), { operational: 'down', description: 'disk full' });
  assert.deepEqual(ok('  UP\t100%  '), { operational: 'up', weight: { kind: 'percent', percent: 100 } });
});

test('corral additions: weight:N and a bare load number', () => {
  assert.deepEqual(ok('weight:40'), { weight: { kind: 'absolute', weight: 40 } });
  assert.deepEqual(ok('0.35'), { weight: { kind: 'load', load: 0.35 } });
  assert.deepEqual(ok('2'), { weight: { kind: 'load', load: 2 } });
  assert.deepEqual(ok('up 0.5'), { operational: 'up', weight: { kind: 'load', load: 0.5 } });
});

test('only the first line counts', () => {
  assert.deepEqual(ok('up\ngarbage here'), { operational: 'up' });
});

test('nonsense is rejected as a whole', () => {
  assert.match(bad(''), /empty/);
  assert.match(bad('\n'), /empty/);
  assert.match(bad('# only a comment'), /no word/);
  assert.match(bad('HTTP/1.1 200 OK'), /unknown word/);
  assert.match(bad('up banana'), /unknown word: "banana"/);
  assert.match(bad('weight:999'), /out of range/);
  assert.match(bad('weight:-1'), /out of range/);
  assert.match(bad('5000%'), /out of range/);
  assert.match(bad('-3'), /unknown word/);
  assert.match(bad('maxconn:x'), /maxconn/);
});

test('property: parsing never throws and never accepts control bytes', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 2000 }), (s) => {
      const r = parseAgentReply(s);
      if (r.ok) assert.ok(!/[\x00-\x08\x0e-\x1f]/.test(s.split(/\r?\n/, 1)[0]!.split('#')[0]!));
    }),
  );
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { sessionMetricSamples } from '../sessions/metrics.js';
import { renderExtra } from './metrics.js';

describe('metrics of other roles', () => {
  it('renders samples as Prometheus text that a real parser reads back, one HELP/TYPE per name', () => {
    const text = renderExtra([
      ...sessionMetricSamples({ store: 'memory', sessions: 3, bytes: 120, hits: 5, misses: 1, sets: 4, conflicts: 0, evictions: 0 } as Parameters<typeof sessionMetricSamples>[0]),
      { name: 'corral_test', help: 'a "quoted"\nhelp', type: 'gauge', labels: { node: 'a"b\\c' }, value: 2 },
      { name: 'corral_test', help: 'a "quoted"\nhelp', type: 'gauge', labels: { node: 'd' }, value: 3 },
    ]);
    const families = parsePrometheusTextFormat(text);
    const sessions = families.find((f) => f.name === 'corral_sessions');
    assert.equal(sessions?.metrics[0]?.value, '3');
    const test = families.find((f) => f.name === 'corral_test');
    assert.equal(test?.metrics.length, 2);
    assert.equal(text.match(/^# TYPE corral_test /gm)?.length, 1);
  });
});

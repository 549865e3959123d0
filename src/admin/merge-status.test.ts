import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeStatuses } from './merge-status.js';
import type { ServerStatus, StatusResponse } from './types.js';

function server(name: string, n: number, state: ServerStatus['state'] = 'up'): ServerStatus {
  return {
    name, address: '127.0.0.1:1', backup: false, state, admin: state === 'drain' ? 'drain' : 'ready', health: 'up',
    weight: 1, weightSource: 'config', configWeight: 1, effectiveWeight: 1,
    active: n, inactive: n, total: 10 * n, connects: null, responses: { '1xx': 0, '2xx': 10 * n, '3xx': 0, '4xx': 0, '5xx': n },
    failures: n, connectFailures: 0, retries: 0, bytesIn: 100 * n, bytesOut: 1000 * n, maxConn: 0,
    lastChange: `2025-01-01T00:00:0${n}.000Z`, check: null,
  };
}

function worker(n: number, state: ServerStatus['state']): StatusResponse {
  return {
    node: 'lb1', role: 'primary', generation: n, startedAt: `2025-01-01T00:00:0${n}.000Z`, time: '2025-01-01T00:01:00.000Z',
    cluster: { members: [{ name: 'lb1', role: 'primary', self: true }], primary: 'lb1' },
    frontends: [{ name: 'web', listen: '0.0.0.0:80', mode: 'http', backend: 'app', current: n, connections: 5 * n, requests: 7 * n, rejected: 0, responses: null }],
    backends: [{ name: 'app', balance: 'roundrobin', queueLength: n, servers: [server('a', n, state), server('b', n)] }],
  };
}

describe('mergeStatuses', () => {
  it('sums the workers\' counters and keeps the shared state', () => {
    const m = mergeStatuses([worker(1, 'drain'), worker(2, 'drain'), worker(3, 'drain')]);
    const a = m.backends[0]?.servers[0];
    assert.equal(a?.state, 'drain');
    assert.equal(a?.total, 60);
    assert.equal(a?.responses['5xx'], 6);
    assert.equal(a?.bytesOut, 6000);
    assert.equal(a?.active, 6);
    assert.equal(a?.connects, null);
    assert.equal(a?.lastChange, '2025-01-01T00:00:03.000Z');
    assert.equal(m.backends[0]?.queueLength, 6);
    assert.equal(m.frontends[0]?.requests, 42);
    assert.equal(m.frontends[0]?.current, 6);
    assert.equal(m.generation, 3);
    assert.equal(m.startedAt, '2025-01-01T00:00:01.000Z');
    assert.deepEqual(mergeStatuses([worker(1, 'up')]), worker(1, 'up'));
  });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashString } from './hash32.js';
import { HashRing } from './hash-ring.js';
import { createSourceHash } from './source-hash.js';
import type { BackendView, PickRequest, ServerView } from './types.js';

const request: PickRequest = { clientIp: '10.0.0.1', clientPort: 40000, host: '', hashKey: undefined, now: 0 };
const view: BackendView = {
  primaries: [1, 2, 3, 4, 5].map(
    (n, id): ServerView => ({ id, name: `app${n}`, weight: 1, active: 0, maxConn: 0, eligible: true, backup: false }),
  ),
  backups: [],
  weightsVersion: 0,
};

test('a client keeps its server, whatever its port', () => {
  const source = createSourceHash();
  const first = source.pick(view, request);
  for (let port = 1024; port < 1100; port++) {
    assert.equal(source.pick(view, { ...request, clientPort: port }), first);
  }
});

test('the key is the client IP, or ip:port with includePort', () => {
  const ring = new HashRing();
  const byIp = createSourceHash();
  const byIpPort = createSourceHash({ includePort: true });
  for (let i = 0; i < 200; i++) {
    const req = { ...request, clientIp: `192.168.${i >> 4}.${i}`, clientPort: 1000 + i * 7 };
    assert.equal(byIp.pick(view, req), ring.pick(view.primaries, 0, hashString(req.clientIp), req));
    assert.equal(
      byIpPort.pick(view, req),
      ring.pick(view.primaries, 0, hashString(`${req.clientIp}:${req.clientPort}`), req),
    );
  }
});

test('with includePort one client spreads over the servers', () => {
  const byIpPort = createSourceHash({ includePort: true });
  const seen = new Set<string>();
  for (let port = 30000; port < 30200; port++) seen.add(byIpPort.pick(view, { ...request, clientPort: port })!.name);
  assert.equal(seen.size, 5);
});

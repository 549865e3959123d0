/**
 * Every scheduler, backup and stickiness behaviour against real servers:
 * the ratios each balance mode produces over real sockets.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { httpFarmYaml, request, startNode, startUpstream } from '../../test/support/farm.js';
import type { Upstream } from '../../test/support/farm.js';

let ups: Upstream[] = [];
before(async () => {
  ups = await Promise.all(['a', 'b', 'c'].map((n) => startUpstream(n)));
});
after(async () => {
  await Promise.all(ups.map((u) => u.close()));
});

async function counts(
  backend: string,
  n: number,
  weights: number[],
  opts: (i: number) => Parameters<typeof request>[1] = () => ({}),
): Promise<Record<string, number>> {
  const farm = await startNode(
    httpFarmYaml(
      ups.map((u) => u.port),
      backend,
      (p, i) => `{ name: ${['a', 'b', 'c'][i]}, address: 127.0.0.1:${p}, weight: ${weights[i]} }`,
    ),
  );
  const seen: Record<string, number> = { a: 0, b: 0, c: 0 };
  try {
    for (let i = 0; i < n; i++) {
      const r = await request(farm.url, opts(i));
      assert.equal(r.status, 200);
      seen[r.body] = (seen[r.body] ?? 0) + 1;
    }
  } finally {
    await farm.close();
  }
  console.log(`# ${backend.trim()} weights ${weights.join(',')} over ${n} requests: ${JSON.stringify(seen)}`);
  return seen;
}

describe('distribution over real servers', () => {
  it('roundrobin follows weights exactly, interleaved', async () => {
    const farm = await startNode(
      httpFarmYaml(ups.map((u) => u.port), '    balance: roundrobin', (p, i) => `{ name: ${'abc'[i]}, address: 127.0.0.1:${p}, weight: ${[5, 1, 1][i]} }`),
    );
    try {
      let seq = '';
      for (let i = 0; i < 14; i++) seq += (await request(farm.url)).body;
      // nginx's smooth weighted round robin for 5,1,1.
      assert.equal(seq, 'aabacaaaabacaa');
    } finally {
      await farm.close();
    }
    const c = await counts('    balance: roundrobin', 600, [1, 2, 3]);
    assert.deepEqual(c, { a: 100, b: 200, c: 300 });
  });

  it('leastconn with sequential requests spreads by weight', async () => {
    const c = await counts('    balance: leastconn', 300, [1, 1, 1]);
    assert.deepEqual(c, { a: 100, b: 100, c: 100 });
  });

  it('random (power of two choices) follows weights', async () => {
    const c = await counts('    balance: random', 1200, [1, 1, 2]);
    assert.ok(Math.abs((c.c as number) / 1200 - 0.5) < 0.075, JSON.stringify(c));
    // Bounds are 5 standard deviations of a binomial share over 1200 picks.
    assert.ok(Math.abs((c.a as number) / 1200 - 0.25) < 0.0625, JSON.stringify(c));
  });

  it('first sends everything to the first server with free slots', async () => {
    const c = await counts('    balance: first', 50, [1, 1, 1]);
    assert.deepEqual(c, { a: 50, b: 0, c: 0 });
  });

  it('source hashes the client address: same address, same server; addresses spread', async () => {
    const seen = new Map<string, Set<string>>();
    const totals: Record<string, number> = { a: 0, b: 0, c: 0 };
    const farm = await startNode(httpFarmYaml(ups.map((u) => u.port), '    balance: source'));
    try {
      for (let ip = 1; ip <= 60; ip++) {
        for (let k = 0; k < 3; k++) {
          const r = await request(farm.url, { localAddress: `127.0.${ip}.1` });
          const set = seen.get(`${ip}`) ?? new Set();
          set.add(r.body);
          seen.set(`${ip}`, set);
          if (k === 0) totals[r.body] = (totals[r.body] ?? 0) + 1;
        }
      }
    } finally {
      await farm.close();
    }
    for (const [ip, set] of seen) assert.equal(set.size, 1, `client ${ip} moved between servers`);
    for (const n of ['a', 'b', 'c']) assert.ok((totals[n] as number) >= 8, `server ${n} got ${totals[n]} of 60 clients`);
  });

  it('hash on a header keeps each key on one server', async () => {
    const farm = await startNode(httpFarmYaml(ups.map((u) => u.port), '    balance: hash\n    hashOn: { header: X-User }'));
    const byKey = new Map<string, string>();
    const used = new Set<string>();
    try {
      for (let round = 0; round < 3; round++) {
        for (let u = 0; u < 40; u++) {
          const r = await request(farm.url, { headers: { 'x-user': `user-${u}` } });
          const prev = byKey.get(`user-${u}`);
          if (prev !== undefined) assert.equal(r.body, prev);
          byKey.set(`user-${u}`, r.body);
          used.add(r.body);
        }
      }
    } finally {
      await farm.close();
    }
    assert.equal(used.size, 3);
  });

  it('lblc keeps a Host on one server while it is not overloaded', async () => {
    const farm = await startNode(httpFarmYaml(ups.map((u) => u.port), '    balance: lblc'));
    try {
      const first = new Map<string, string>();
      for (let round = 0; round < 3; round++) {
        for (let h = 0; h < 9; h++) {
          const r = await request(farm.url, { headers: { host: `site${h}.example` } });
          const prev = first.get(`site${h}`);
          if (prev === undefined) first.set(`site${h}`, r.body);
          else assert.equal(r.body, prev);
        }
      }
      assert.ok(new Set(first.values()).size >= 2, 'all sites landed on one server');
    } finally {
      await farm.close();
    }
  });
});

describe('stickiness', () => {
  it('a signed cookie holds a client on one server across 50 requests and re-pins when it dies', async () => {
    const local = await Promise.all(['x', 'y'].map((n) => startUpstream(n)));
    const farm = await startNode(
      httpFarmYaml(local.map((u) => u.port), '    sticky: { cookie: SRV }\n    retries: 2', (p, i) => `{ name: ${'xy'[i]}, address: 127.0.0.1:${p} }`),
    );
    try {
      const first = await request(farm.url);
      const setCookie = first.headers['set-cookie']?.[0] ?? '';
      assert.match(setCookie, /^SRV=[xy]\.[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Lax$/);
      const cookie = setCookie.split(';')[0] as string;
      const pinned = first.body;
      for (let i = 0; i < 50; i++) {
        const r = await request(farm.url, { headers: { cookie: `other=1; ${cookie}` } });
        assert.equal(r.body, pinned);
        assert.equal(r.headers['set-cookie'], undefined);
      }
      // A forged cookie naming the other server is ignored (not signed).
      const other = pinned === 'x' ? 'y' : 'x';
      const forged = await request(farm.url, { headers: { cookie: `SRV=${other}.AAAAAAAAAAAAAAAAAAAAAA` } });
      assert.ok(forged.headers['set-cookie'] !== undefined, 'a forged cookie was accepted');
      // The pinned server dies: the request goes elsewhere and the cookie is rewritten.
      await (local.find((u) => u.name === pinned) as Upstream).close();
      const moved = await request(farm.url, { headers: { cookie } });
      assert.equal(moved.status, 200);
      assert.equal(moved.body, other);
      assert.match(moved.headers['set-cookie']?.[0] ?? '', new RegExp(`^SRV=${other}\\.`));
    } finally {
      await farm.close();
      await Promise.all(local.map((u) => u.close()));
    }
  });

  it('source affinity keeps a client address on one server', async () => {
    const farm = await startNode(httpFarmYaml(ups.map((u) => u.port), '    sticky: { source: true, timeout: 1m }'));
    try {
      const agent = new http.Agent({ keepAlive: false });
      for (let ip = 1; ip <= 5; ip++) {
        const got = new Set<string>();
        for (let i = 0; i < 6; i++) got.add((await request(farm.url, { localAddress: `127.0.0.${ip + 10}`, agent })).body);
        assert.equal(got.size, 1);
      }
    } finally {
      await farm.close();
    }
  });
});

import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import express from 'express';
import session from 'express-session';
import { CorralSessionStore, type ConflictPolicy } from './express-store.js';
import { MemoryStore } from './memory-store.js';
import { until } from './testing.js';

interface App {
  url: string;
  store: CorralSessionStore;
  backing: MemoryStore;
  /** Requests parked at /set and /peek until released. */
  release(): void;
  /** How many requests have parked (their session loaded) since the last release. */
  arrived(): number;
  close(): Promise<void>;
}

async function app(onConflict?: ConflictPolicy, resave = false): Promise<App> {
  const backing = new MemoryStore();
  const store = new CorralSessionStore({ store: backing, onConflict });
  const a = express();
  a.use(session({ store, secret: 'test secret', resave, saveUninitialized: false }));
  let gate: () => void = () => {};
  let parked = new Promise<void>((r) => (gate = r));
  let arrivals = 0;
  a.post('/login', (req, res) => {
    (req.session as unknown as Record<string, unknown>).user = req.query.user;
    res.send('ok');
  });
  a.get('/me', (req, res) => {
    res.json(req.session);
  });
  // sets a property after every parked request has loaded the same session version
  a.post('/set', async (req, res) => {
    arrivals++;
    await parked;
    (req.session as unknown as Record<string, unknown>)[String(req.query.k)] = req.query.v;
    // Saving before answering lets the handler act on a lost race (after res.end express-session can only pass it to next).
    req.session.save((err?: Error & { code?: string }) => (err ? res.status(409).send(err.code ?? err.message) : res.send('set')));
  });
  // loads the session, changes nothing, and answers (saving, with resave) after the parked writers
  a.post('/peek', async (req, res) => {
    arrivals++;
    await parked;
    await new Promise((r) => setTimeout(r, 50));
    res.json(req.session);
  });
  a.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.send('bye')));
  });
  a.use((err: Error & { code?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    void _next;
    res.status(409).send(err.code ?? err.message);
  });
  const server = a.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    store,
    backing,
    arrived: () => arrivals,
    release() {
      arrivals = 0;
      gate();
      parked = new Promise<void>((r) => (gate = r));
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await backing.close();
    },
  };
}

async function login(url: string): Promise<string> {
  const r = await fetch(`${url}/login?user=ann`, { method: 'POST' });
  const cookie = r.headers.get('set-cookie');
  assert.ok(cookie);
  return cookie.split(';')[0] as string;
}

/** Sends both requests, lets them load the session, then releases them together. */
async function together(a: App, cookie: string, paths: string[]): Promise<Response[]> {
  const inflight = paths.map((p) => fetch(`${a.url}${p}`, { method: 'POST', headers: { cookie } }));
  await until(() => a.arrived() === paths.length, 5000, 'every request parked');
  a.release();
  return Promise.all(inflight);
}

describe('CorralSessionStore with express-session', () => {
  it('keeps a login across requests and forgets it on logout', async () => {
    const a = await app();
    try {
      const cookie = await login(a.url);
      const me = (await (await fetch(`${a.url}/me`, { headers: { cookie } })).json()) as { user?: string };
      assert.equal(me.user, 'ann');
      assert.equal(await a.backing.length(), 1);
      await fetch(`${a.url}/logout`, { method: 'POST', headers: { cookie } });
      assert.equal(await a.backing.length(), 0);
      const after = (await (await fetch(`${a.url}/me`, { headers: { cookie } })).json()) as { user?: string };
      assert.equal(after.user, undefined);
    } finally {
      await a.close();
    }
  });

  it('merges concurrent saves that changed different properties (the resave race)', async () => {
    const a = await app();
    try {
      const cookie = await login(a.url);
      const rs = await together(a, cookie, ['/set?k=cart&v=book', '/set?k=theme&v=dark']);
      assert.deepEqual(rs.map((r) => r.status), [200, 200]);
      const me = (await (await fetch(`${a.url}/me`, { headers: { cookie } })).json()) as Record<string, unknown>;
      assert.equal(me.cart, 'book');
      assert.equal(me.theme, 'dark');
      assert.equal(me.user, 'ann');
      assert.equal(a.store.merges, 1);
    } finally {
      await a.close();
    }
  });

  it('refuses the second of two concurrent changes to the same property', async () => {
    const a = await app();
    try {
      const cookie = await login(a.url);
      const rs = await together(a, cookie, ['/set?k=cart&v=book', '/set?k=cart&v=pen']);
      const statuses = rs.map((r) => r.status).sort();
      assert.deepEqual(statuses, [200, 409]);
      const loser = rs.find((r) => r.status === 409);
      assert.equal(await loser?.text(), 'CORRAL_ERR_SESSION_CONFLICT');
    } finally {
      await a.close();
    }
  });

  it("onConflict 'error' refuses any lost race; 'overwrite' lets the last save win", async () => {
    const e = await app('error');
    try {
      const cookie = await login(e.url);
      const rs = await together(e, cookie, ['/set?k=a&v=1', '/set?k=b&v=2']);
      assert.deepEqual(rs.map((r) => r.status).sort(), [200, 409]);
    } finally {
      await e.close();
    }
    const o = await app('overwrite');
    try {
      const cookie = await login(o.url);
      const rs = await together(o, cookie, ['/set?k=a&v=1', '/set?k=b&v=2']);
      assert.deepEqual(rs.map((r) => r.status), [200, 200]);
      const me = (await (await fetch(`${o.url}/me`, { headers: { cookie } })).json()) as Record<string, unknown>;
      assert.equal(Number(me.a === '1') + Number(me.b === '2'), 1, 'one change was overwritten');
    } finally {
      await o.close();
    }
  });

  it('with resave: true, a request that changed nothing does not clobber or fail', async () => {
    const a = await app('merge', true);
    try {
      const cookie = await login(a.url);
      const rs = await together(a, cookie, ['/set?k=cart&v=book', '/peek']);
      assert.deepEqual(rs.map((r) => r.status), [200, 200]);
      assert.ok(a.store.conflicts >= 1, 'the unchanged save lost the race');
      assert.equal(a.store.merges, 0, 'and was not merged: it changed nothing');
      const me = (await (await fetch(`${a.url}/me`, { headers: { cookie } })).json()) as Record<string, unknown>;
      assert.equal(me.cart, 'book');
    } finally {
      await a.close();
    }
  });

  it('stores what the session holds, without the version marks', async () => {
    const a = await app();
    try {
      await login(a.url);
      const e = [...(await a.backing.all()).values()][0];
      assert.ok(e);
      assert.ok(!e.value.includes('corral'), e.value);
      assert.equal((JSON.parse(e.value) as { user: string }).user, 'ann');
    } finally {
      await a.close();
    }
  });
});

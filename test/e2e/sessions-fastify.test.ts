/**
 * A Fastify app with @fastify/session and CorralSessionStore over three
 * session nodes (in this process): a session lives across requests, keeps
 * its changes, survives the death of the node that owns it, and a destroyed
 * session does not come back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import Fastify from 'fastify';
import { CorralSessionStore } from '../../src/sessions/express-store.js';
import { HashRing } from '../../src/sessions/ring.js';
import { converged, startCluster, TEST_KEY, until } from '../../src/sessions/testing.js';

declare module 'fastify' {
  interface Session {
    user?: string;
    visits?: number;
  }
}

describe('@fastify/session over the peer store', () => {
  it('keeps a session across requests and across the death of the node that owns it', { timeout: 30_000 }, async () => {
    const cluster = await startCluster(3);
    const probe = cluster.client();
    const store = new CorralSessionStore({ peers: cluster.ids, key: TEST_KEY });
    const app = Fastify();
    await app.register(fastifyCookie);
    await app.register(fastifySession, { store, secret: 'a secret of at least thirty-two characters', saveUninitialized: false, cookie: { secure: false, maxAge: 60_000 } });
    app.post('/login', async (req) => {
      req.session.user = (req.query as { user: string }).user;
      req.session.visits = 0;
      return `hello ${req.session.user}`;
    });
    app.get('/me', async (req) => {
      if (req.session.user === undefined) return 'anonymous';
      req.session.visits = (req.session.visits ?? 0) + 1;
      return `${req.session.user} ${req.session.visits}`;
    });
    app.post('/logout', async (req) => {
      await req.session.destroy();
      return 'bye';
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const get = async (path: string, cookie?: string): Promise<string> => (await fetch(`${url}${path}`, cookie === undefined ? {} : { headers: { cookie } })).text();
    try {
      await converged(probe, cluster.ids);
      const r = await fetch(`${url}/login?user=ann`, { method: 'POST' });
      assert.equal(await r.text(), 'hello ann');
      const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0] as string;
      assert.match(cookie, /^sessionId=/);
      const sid = decodeURIComponent(cookie.slice('sessionId='.length)).split('.')[0] as string;
      assert.equal(await get('/me', cookie), 'ann 1');
      assert.equal(await get('/me', cookie), 'ann 2');
      const stored = await probe.get(sid);
      assert.ok(stored !== undefined, 'the session is in the peer store under its id');
      assert.equal((JSON.parse(stored.value) as { visits: number }).visits, 2);
      assert.ok(stored.expiresAt - Date.now() <= 60_000 && stored.expiresAt - Date.now() > 50_000, 'the cookie maxAge is the TTL');

      // The first owner of the session dies: the next request reads it from the other owner.
      const [first] = new HashRing(cluster.ids).owners(sid, 2);
      const i = cluster.ids.indexOf(first as string);
      await cluster.nodes[i]?.close();
      await until(() => !probe.membership.isLive(first as string), 3000, 'owner down');
      assert.equal(await get('/me', cookie), 'ann 3');
      assert.equal(await get('/me', cookie), 'ann 4');
      assert.equal(await get('/me'), 'anonymous');

      assert.equal(await (await fetch(`${url}/logout`, { method: 'POST', headers: { cookie } })).text(), 'bye');
      assert.equal(await get('/me', cookie), 'anonymous');
      assert.equal(await probe.get(sid), undefined);
    } finally {
      await app.close();
      await store.close();
      await cluster.close();
    }
  });
});

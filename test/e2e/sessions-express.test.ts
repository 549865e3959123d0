/**
 * An Express app with CorralSessionStore over three session nodes (separate
 * processes): a user logs in, the node that owns the session is SIGKILLed,
 * and the user is still logged in on the next request.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import express from 'express';
import session from 'express-session';
import { CorralSessionStore } from '../../src/sessions/express-store.js';
import { PeerClient } from '../../src/sessions/peer-client.js';
import { HashRing } from '../../src/sessions/ring.js';
import { converged, startPeerProcesses, TEST_KEY } from '../../src/sessions/testing.js';

describe('express-session over the peer store', () => {
  it('a logged-in user stays logged in when the node holding the session dies', { timeout: 30_000 }, async () => {
    const cluster = await startPeerProcesses(3);
    const probe = new PeerClient({ peers: cluster.ids, key: TEST_KEY });
    // the README example, as is
    const store = new CorralSessionStore({ peers: cluster.ids, key: TEST_KEY });
    const app = express();
    app.use(session({ store, secret: 'keyboard cat', resave: false, saveUninitialized: false }));
    app.post('/login', (req, res) => {
      req.session.user = String(req.query.user);
      res.send(`hello ${req.session.user}`);
    });
    app.get('/me', (req, res) => {
      res.send(req.session.user ?? 'anonymous');
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await converged(probe, cluster.ids);
      const r = await fetch(`${url}/login?user=ann`, { method: 'POST' });
      assert.equal(await r.text(), 'hello ann');
      const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0] as string;
      const sid = decodeURIComponent(cookie.split('=')[1] as string).slice(2).split('.')[0] as string;
      assert.equal(await (await fetch(`${url}/me`, { headers: { cookie } })).text(), 'ann');

      const [first] = new HashRing(cluster.ids).owners(sid, 2);
      const victim = cluster.procs[cluster.ids.indexOf(first as string)];
      assert.ok(victim);
      victim.child.kill('SIGKILL');
      await victim.exited;

      assert.equal(await (await fetch(`${url}/me`, { headers: { cookie } })).text(), 'ann');
      const r2 = await fetch(`${url}/login?user=bob`, { method: 'POST' });
      const cookie2 = (r2.headers.get('set-cookie') ?? '').split(';')[0] as string;
      assert.equal(await (await fetch(`${url}/me`, { headers: { cookie: cookie2 } })).text(), 'bob');
      assert.equal(await (await fetch(`${url}/me`)).text(), 'anonymous');
    } finally {
      server.closeAllConnections();
      server.close();
      await store.close();
      await probe.close();
      await cluster.stop();
    }
  });
});

declare module 'express-session' {
  interface SessionData {
    user?: string;
  }
}

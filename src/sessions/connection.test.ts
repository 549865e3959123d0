import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { SecureConnection } from './connection.js';
import { SessionError } from './errors.js';
import { PeerClient } from './peer-client.js';
import { PeerNode } from './peer-node.js';
import { startCluster, TEST_KEY, until } from './testing.js';
import { msg, T, type Msg } from './wire.js';

async function oneNode(): Promise<{ node: PeerNode; id: string; host: string; port: number; close(): Promise<void> }> {
  const cluster = await startCluster(1, { replicas: 1 });
  const node = cluster.nodes[0] as PeerNode;
  const id = cluster.ids[0] as string;
  const port = Number(id.split(':')[1]);
  return { node, id, host: '127.0.0.1', port, close: () => cluster.close() };
}

const opts = { key: TEST_KEY, id: 'test-client', role: 'client' as const };

/** Counts the writes a connection makes to its (TLS) socket: one per flushed batch of frames. */
function writesOf(conn: SecureConnection): Buffer[] {
  const seen: Buffer[] = [];
  const write = conn.socket.write.bind(conn.socket) as (b: Buffer) => boolean;
  conn.socket.write = ((b: Buffer) => {
    seen.push(Buffer.from(b));
    return write(b);
  }) as typeof conn.socket.write;
  return seen;
}

/** A TCP relay in front of a node: records the bytes the client sends on the wire, and can inject bytes into that stream. */
interface Relay {
  port: number;
  /** What the client sent, chunk by chunk as read. */
  sent: Buffer[];
  /** Applied to the next chunk from the client before it is forwarded (then cleared). */
  alterNext: ((b: Buffer) => Buffer) | undefined;
  inject(b: Buffer): void;
  close(): void;
}
async function relay(port: number): Promise<Relay> {
  let upstream: Socket | undefined;
  const r: Relay = {
    port: 0,
    sent: [],
    alterNext: undefined,
    inject: (b) => upstream?.write(b),
    close: () => srv.close(),
  };
  const srv = createServer((down) => {
    const up = connect(port, '127.0.0.1');
    upstream = up;
    down.on('data', (d: Buffer) => {
      r.sent.push(Buffer.from(d));
      const alter = r.alterNext;
      r.alterNext = undefined;
      up.write(alter === undefined ? d : alter(Buffer.from(d)));
    });
    up.on('data', (d: Buffer) => down.write(d));
    const end = (): void => {
      down.destroy();
      up.destroy();
    };
    for (const s of [down, up]) {
      s.on('close', end);
      s.on('error', end);
    }
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  r.port = (srv.address() as { port: number }).port;
  return r;
}

/** Runs `fn` against one node reached through a relay, and closes both whatever happens. */
async function withRelayedNode(fn: (n: Awaited<ReturnType<typeof oneNode>>, r: Relay) => Promise<void>): Promise<void> {
  const n = await oneNode();
  const r = await relay(n.port);
  try {
    await fn(n, r);
  } finally {
    r.close();
    await n.close();
  }
}

describe('peer connection security', () => {
  it('a peer without the key fails the handshake and is counted; others are unaffected', async () => {
    const n = await oneNode();
    try {
      await assert.rejects(SecureConnection.connect(n.host, n.port, { ...opts, key: 'wrong key' }), (e: unknown) => e instanceof SessionError && e.code === 'CORRAL_ERR_SESSION_AUTH');
      const c = new PeerClient({ peers: [n.id], key: 'wrong key', replicas: 1, connectTimeout: 800 });
      await assert.rejects(c.get('x'), (e: unknown) => e instanceof SessionError && e.code === 'CORRAL_ERR_SESSION_AUTH');
      await c.close();
      const good = new PeerClient({ peers: [n.id], key: TEST_KEY, replicas: 1 });
      await good.set('x', 'v');
      assert.equal((await good.get('x'))?.value, 'v');
      await good.close();
    } finally {
      await n.close();
    }
  });

  it('a node with the wrong key never joins or serves the cluster', async () => {
    const cluster = await startCluster(2);
    const intruder = new PeerNode({ listen: { host: '127.0.0.1', port: 0 }, key: 'not the key', heartbeatInterval: 100, joinTimeout: 500 });
    try {
      const { port } = await intruder.listen();
      const me = `127.0.0.1:${port}`;
      await intruder.start([...cluster.ids, me], me);
      const c = cluster.client();
      await until(() => cluster.ids.every((id) => c.membership.isLive(id)), 3000, 'peers live');
      await c.set('secret', 'v');
      assert.equal(intruder.stats().sessions, 0);
      assert.ok(intruder.stats().members?.filter((m) => m.live).length === 1);
      for (const node of cluster.nodes) {
        assert.notEqual(node.stats().members?.find((m) => m.id === me)?.live, true);
        await until(() => node.stats().security.authFailures >= 1, 3000, 'refused handshake counted');
      }
    } finally {
      await intruder.close();
      await cluster.close();
    }
  });

  it('values never cross the wire in clear', async () => {
    await withRelayedNode(async (n, r) => {
      const conn = await SecureConnection.connect(n.host, r.port, opts);
      const mark = r.sent.length;
      assert.equal((await conn.request(msg(T.SET, { k: 'sid', v: 'PLAINTEXT-SECRET-VALUE' }), 2000)).t, T.R_OK);
      const wire = Buffer.concat(r.sent.slice(mark));
      assert.ok(wire.length > 'PLAINTEXT-SECRET-VALUE'.length, 'the request crossed the relay');
      assert.ok(!Buffer.concat(r.sent).includes('PLAINTEXT-SECRET-VALUE'));
      assert.ok(!Buffer.concat(r.sent).includes('sid'));
      conn.close();
    });
  });

  // On the wire: the next record changed in flight, or an earlier one sent again. Inside TLS, from a peer that holds
  // the key: a frame length over the limit. `earlier`: the bytes of the record that carried an earlier request.
  const flip = (b: Buffer): Buffer => ((b[b.length - 20] as number) ^= 1, b);
  for (const [name, attack] of [
    ['a record changed in flight', (r: Relay) => (r.alterNext = flip)],
    ['a replayed record', (r: Relay, _c: SecureConnection, earlier: Buffer) => r.inject(earlier)],
    ['an oversized frame length', (_r: Relay, c: SecureConnection) => c.socket.write(Buffer.from([0xff, 0xff, 0xff, 0x00, 1, 2, 3]))],
  ] as const) {
    it(`${name} closes that connection only`, async () => {
      await withRelayedNode(async (n, r) => {
        const other = await SecureConnection.connect(n.host, n.port, opts);
        const conn = await SecureConnection.connect(n.host, r.port, opts);
        const mark = r.sent.length;
        await conn.request(msg(T.SET, { k: 'a', v: '1' }), 2000);
        // the record that carried the SET
        const frame = Buffer.concat(r.sent.slice(mark));
        assert.ok(frame.length > 0);
        const closed = once(conn, 'close');
        const pending = conn.request(msg(T.GET, { k: 'a' }), 2000).catch((e: unknown) => e);
        // the GET is queued for the next tick: the attack comes first (or, changed in flight, is the GET itself)
        attack(r, conn, frame);
        await closed;
        const err = await pending;
        assert.ok(err instanceof SessionError);
        await until(() => n.node.stats().security.protocolErrors === 1, 2000, 'protocol error counted');
        const got = await other.request(msg(T.GET, { k: 'a' }), 2000);
        assert.equal(got.v, '1');
        other.close();
      });
    });
  }

  it('a handshake changed in flight fails: the role byte is covered by the proofs, and so is an id', async () => {
    await withRelayedNode(async (n, r) => {
      // the client's hello: "CRS2" role nonce[32] idLen id; turn the client into a peer
      r.alterNext = (b) => ((b[4] as number) ^= 1, b);
      await assert.rejects(SecureConnection.connect(n.host, r.port, opts), (e: unknown) => e instanceof SessionError && e.code === 'CORRAL_ERR_SESSION_AUTH');
      // move the id's last byte out of it (length one shorter): the server reads another id
      r.alterNext = (b) => (b.writeUInt16BE(b.readUInt16BE(37) - 1, 37), b);
      await assert.rejects(SecureConnection.connect(n.host, r.port, opts), (e: unknown) => e instanceof SessionError);
      const c = await SecureConnection.connect(n.host, r.port, opts);
      assert.equal((await c.request(msg(T.GET, { k: 'zz' }), 2000)).t, T.R_GET);
      c.close();
    });
  });

  it('messages of one flush over the frame batch size travel in several frames, every byte intact', async () => {
    const n = await oneNode();
    try {
      const conn = await SecureConnection.connect(n.host, n.port, opts);
      conn.start();
      // one tick: 40 KiB values (a frame each: two exceed the batch) and one of 200 KiB (a frame of its own)
      const values = [40, 40, 1, 40, 200, 1].map((kb, i) => String.fromCharCode(97 + i).repeat(kb * 1024 - 1) + 'é');
      const sets = values.map((v, i) => conn.request(msg(T.SET, { k: `big-${i}`, v }), 5000));
      for (const r of await Promise.all(sets)) assert.equal(r.t, T.R_OK);
      const gets = values.map((_, i) => conn.request(msg(T.GET, { k: `big-${i}` }), 5000));
      assert.deepEqual((await Promise.all(gets)).map((r) => r.v), values);
      conn.close();
    } finally {
      await n.close();
    }
  });

  it('garbage instead of a handshake is dropped without harm', async () => {
    const n = await oneNode();
    try {
      const s = connect(n.port, n.host);
      await once(s, 'connect');
      s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n' + 'x'.repeat(100));
      await once(s, 'close');
      await until(() => n.node.stats().security.protocolErrors === 1, 2000, 'protocol error counted');
      const c = await SecureConnection.connect(n.host, n.port, opts);
      assert.equal((await c.request(msg(T.GET, { k: 'zz' }), 2000)).t, T.R_GET);
      c.close();
    } finally {
      await n.close();
    }
  });

  it('a silent server fails the handshake within its bound', async () => {
    const { createServer } = await import('node:net');
    const srv = createServer(() => {}).listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as { port: number }).port;
    const t0 = Date.now();
    await assert.rejects(SecureConnection.connect('127.0.0.1', port, { ...opts, handshakeTimeout: 300 }), (e: unknown) => e instanceof SessionError && e.code === 'CORRAL_ERR_SESSION_TIMEOUT');
    assert.ok(Date.now() - t0 < 1500);
    srv.close();
  });
});

describe('client send window', () => {
  /** A server side that records the key of every message it receives; tests answer by hand. */
  async function server(): Promise<{ port: number; seen: string[]; conn: Promise<SecureConnection>; close(): void }> {
    const { createServer } = await import('node:net');
    let accepted!: (c: SecureConnection) => void;
    const conn = new Promise<SecureConnection>((r) => (accepted = r));
    const seen: string[] = [];
    const srv = createServer((s) => {
      void SecureConnection.accept(s, { ...opts, id: 'srv', role: 'peer' }).then((c) => {
        c.on('message', (m) => seen.push(m.k));
        c.start();
        accepted(c);
      });
    }).listen(0, '127.0.0.1');
    await once(srv, 'listening');
    return { port: (srv.address() as { port: number }).port, seen, conn, close: () => srv.close() };
  }

  /** A client connection with a window of one request, its server side, and what the server saw. */
  async function windowed(): Promise<{ c: SecureConnection; srv: SecureConnection; seen: string[]; close(): void }> {
    const s = await server();
    const c = await SecureConnection.connect('127.0.0.1', s.port, opts);
    c.sendWindow = 1;
    const srv = await s.conn;
    return {
      c,
      srv,
      seen: s.seen,
      close: () => {
        c.close();
        srv.close();
        s.close();
      },
    };
  }

  it('holds requests while the window is full and sends them in one frame with the next answer', async () => {
    const { c, srv, seen, close } = await windowed();
    const writes = writesOf(c);
    const msgs = new Map<string, Msg>();
    srv.on('message', (m) => msgs.set(m.k, m));
    try {
      const a = c.request(msg(T.GET, { k: 'a' }), 5000);
      await until(() => seen.length === 1, 2000, 'a on the wire');
      const rest = ['b', 'c', 'd', 'e'].map((k) => c.request(msg(T.GET, { k }), 5000));
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(writes.length, 1, 'b..e wait while a is unanswered');
      assert.deepEqual(seen, ['a']);
      srv.reply(msgs.get('a') as Msg, msg(T.R_GET, { v: 'A' }));
      assert.equal((await a).v, 'A');
      await until(() => seen.length === 5, 2000, 'b..e on the wire');
      assert.equal(writes.length, 2, 'b..e leave in one write');
      const batch = writes[1] as Buffer;
      assert.equal(batch.readUInt32BE(0) + 4, batch.length, 'and that write is one frame');
      for (const k of ['b', 'c', 'd', 'e']) srv.reply(msgs.get(k) as Msg, msg(T.R_GET, { v: k.toUpperCase() }));
      assert.deepEqual((await Promise.all(rest)).map((r) => r.v), ['B', 'C', 'D', 'E']);
    } finally {
      close();
    }
  });

  it('an open stream does not hold the window: a request behind it is sent and answered', async () => {
    const { c, srv, close } = await windowed();
    // ALL gets items but no END (the stream stays open); GETs are answered
    srv.on('message', (m) => (m.t === T.ALL ? srv.reply(m, msg(T.R_ITEM, { k: 'i' })) : srv.reply(m, msg(T.R_GET, { v: m.k }))));
    const items: string[] = [];
    try {
      void c.request(msg(T.ALL), 60_000, { item: (m) => items.push(m.k) }).catch(() => undefined);
      await until(() => items.length === 1, 2000, 'first stream item');
      assert.equal((await c.request(msg(T.GET, { k: 'after' }), 3000)).v, 'after');
    } finally {
      close();
    }
  });

  it('a request that times out while held is never sent', async () => {
    const { c, srv, seen, close } = await windowed();
    const msgs = new Map<string, Msg>();
    srv.on('message', (m) => (m.k === 'first' ? msgs.set(m.k, m) : srv.reply(m, msg(T.R_GET, { v: m.k }))));
    try {
      const first = c.request(msg(T.GET, { k: 'first' }), 5000);
      await until(() => seen.length === 1, 2000, 'first on the wire');
      const held = await c.request(msg(T.GET, { k: 'held' }), 100).catch((e: unknown) => e);
      assert.ok(held instanceof SessionError && held.code === 'CORRAL_ERR_SESSION_TIMEOUT');
      srv.reply(msgs.get('first') as Msg, msg(T.R_GET, { v: 'F' }));
      assert.equal((await first).v, 'F');
      assert.equal((await c.request(msg(T.GET, { k: 'next' }), 3000)).v, 'next');
      assert.deepEqual(seen, ['first', 'next']);
    } finally {
      close();
    }
  });

  it('a request that times out reopens the window: what waited behind it is sent and answered', async () => {
    const { c, srv, seen, close } = await windowed();
    srv.on('message', (m) => m.k !== 'lost' && srv.reply(m, msg(T.R_GET, { v: m.k })));
    try {
      const lost = c.request(msg(T.GET, { k: 'lost' }), 150).catch((e: unknown) => e);
      await until(() => seen.length === 1, 2000, 'first request on the wire');
      const next = c.request(msg(T.GET, { k: 'next' }), 5000);
      const err = await lost;
      assert.ok(err instanceof SessionError && err.code === 'CORRAL_ERR_SESSION_TIMEOUT');
      assert.equal((await next).v, 'next');
      assert.deepEqual(seen, ['lost', 'next']);
    } finally {
      close();
    }
  });
});

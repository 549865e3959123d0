/**
 * One node of the `peer` session store: holds its share of the sessions in
 * memory, serves clients, replicates writes to the other owners of each key
 * and hands keys off when membership changes.
 *
 * Write path (the node that receives a write is its coordinator, normally
 * the key's first live owner): check the compare-and-set and assign the next
 * version synchronously (so two writes of one key on one coordinator never
 * interleave), apply locally, send the record to every other live owner and
 * answer only when each has acknowledged it. A replica that fails is dropped
 * from the live set and the record goes to the owner that replaces it.
 *
 * With two owners and a client that allows it (F.DIRECT), the replica
 * answers the client itself once it has applied the record (client →
 * coordinator → replica → client: three messages instead of four), and
 * acknowledges to the coordinator in batches (DACK). A replica that holds a
 * newer record, or has no connection with the client, tells the coordinator
 * (DNAK), which decides again or answers. When the replica's connection
 * fails or it stays silent past the request timeout, the coordinator sends
 * every unacknowledged record to the owners it sees now and answers the
 * client itself: the client is never answered before both owners hold the
 * write.
 *
 * A plain set with two or more live owners normally takes none of these
 * paths: the client sends it to every owner itself (SETALL) and each owner
 * assigns its next version. See #setAll.
 *
 * Conflicts: a record is (value | tombstone, version, expiresAt, origin);
 * the higher version wins, the origin breaks ties, equal records keep the
 * later expiry. A destroy writes a tombstone with the next version, kept at
 * least as long as the session would have lived, so an older copy that
 * surfaces later loses to it.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { SecureConnection, wireCounters } from './connection.js';
import { checkValue, SessionError } from './errors.js';
import { PeerLinks, StaticMembership } from './links.js';
import { joinId, splitId, type Membership } from './membership.js';
import { HashRing } from './ring.js';
import type { HandoffStats, SessionStats } from './types.js';
import { F, msg, T, type Msg } from './wire.js';

export interface PeerNodeOptions {
  /** The state-service address to bind (`sessions.listen`). */
  readonly listen: { readonly host: string; readonly port: number };
  /** Shared secret (`cluster.key`). */
  readonly key: string;
  readonly replicas?: number;
  /** Default TTL (ms) when a write gives none. */
  readonly ttl?: number;
  readonly maxValueBytes?: number;
  /** LRU bound on the live sessions this node holds (`sessions.maxEntries`; default unbounded). */
  readonly maxEntries?: number;
  /** LRU bound on the bytes of keys and values of the live sessions this node holds (`sessions.maxBytes`; default unbounded). */
  readonly maxBytes?: number;
  readonly heartbeatInterval?: number;
  readonly heartbeatTimeout?: number;
  /** Bound on one request to another node (default 2 s). */
  readonly requestTimeout?: number;
  /** How long a starting node waits to reach its peers before catching up from those it reached (default 3 s). */
  readonly joinTimeout?: number;
  readonly log?: (event: string, fields?: Record<string, unknown>) => void;
}

interface Rec {
  v: string | null;
  n: number;
  e: number;
  o: string;
}

/** A write answered by its replica directly, until the replica's cumulative ack (or its failure). */
interface Direct {
  readonly seq: number;
  readonly key: string;
  readonly rec: Rec;
  /** The client's connection and request. */
  readonly conn: SecureConnection;
  readonly m: Msg;
  readonly t0: number;
  done: boolean;
}

/** Direct writes sent on one connection to a replica, oldest first. */
interface DirectQueue {
  readonly peer: string;
  sent: number;
  items: Direct[];
  head: number;
}

/** DPUTs received on one inbound connection, and how many were acknowledged. */
interface DirectIn {
  received: number;
  acked: number;
  lastAt: number;
}

/** How long a replica gathers direct acknowledgements before sending one DACK. */
const DACK_MS = 10;

const recBytes = (k: string, r: Rec): number => Buffer.byteLength(k) + (r.v === null ? 0 : Buffer.byteLength(r.v));

/** The entry of `peers` that names this node: same port, and the listen host or an address of this machine. */
export function findSelf(peers: readonly string[], listen: { host: string; port: number }): string | undefined {
  const local = new Set<string>(['localhost', '127.0.0.1', '::1', listen.host, hostname()]);
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) local.add(a.address);
  const wildcard = listen.host === '0.0.0.0' || listen.host === '::' || listen.host === '';
  const same = peers.filter((p) => splitId(p).port === listen.port);
  return same.find((p) => splitId(p).host === listen.host) ?? (wildcard || local.has(listen.host) ? same.find((p) => local.has(splitId(p).host)) : undefined);
}

export class PeerNode {
  readonly #o: PeerNodeOptions;
  readonly #replicas: number;
  readonly #ttl: number;
  readonly #maxValueBytes: number;
  readonly #timeout: number;
  readonly #server: Server;
  readonly #inbound = new Set<SecureConnection>();
  /** Every record held; with a memory bound, in recency order (the first is the least recently used). */
  readonly #table = new Map<string, Rec>();
  #bytes = 0;
  /** Live records (not tombstones, expired or not) and their bytes: what the memory bounds count. */
  #live = 0;
  #liveBytes = 0;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #bounded: boolean;
  #self = '';
  #ring: HashRing = new HashRing([]);
  #links: PeerLinks | undefined;
  #membership: Membership | undefined;
  #ready = false;
  #closed = false;
  #timers: NodeJS.Timeout[] = [];
  /** Nodes catching up from this one: writes go to them too, best effort. */
  readonly #joining = new Set<string>();
  /** Nodes that caught up from this one and need no hand-off from it when they turn live. */
  readonly #syncedBy = new Set<string>();
  #view = new Set<string>();
  #handing = false;
  /** Pulls in flight from peers that came back; reads repair while any runs. */
  #pulls = 0;
  /** A peer came back and its pull has not started yet: reads repair meanwhile. */
  #gained = false;
  #hbTimeout = 3000;
  #lastTick = 0;
  #again = false;
  #debounce: NodeJS.Timeout | undefined;
  readonly #c = { hits: 0, misses: 0, sets: 0, conflicts: 0, destroys: 0, evictions: 0, expired: 0, errors: 0 };
  readonly #repl = { inflight: 0, lastLagMs: 0, avgLagMs: 0, replicated: 0, failures: 0 };
  #handoff: { running: boolean; pending: number; sent: number; lastDurationMs: number; lastRecords: number; completed: number } = {
    running: false, pending: 0, sent: 0, lastDurationMs: 0, lastRecords: 0, completed: 0,
  };
  readonly #security = { authFailures: 0, protocolErrors: 0 };
  /** Coordinator side of direct writes, by outbound connection. */
  readonly #directOut = new Map<SecureConnection, DirectQueue>();
  /** Replica side: DPUT counts by inbound connection, and those with an ack due. */
  readonly #directIn = new Map<SecureConnection, DirectIn>();
  readonly #ackDue = new Set<SecureConnection>();
  #ackTimer: NodeJS.Timeout | undefined;
  /** Inbound client connections by the client's id, for answers from this node as a replica. */
  readonly #clients = new Map<string, SecureConnection>();

  constructor(options: PeerNodeOptions) {
    this.#o = options;
    this.#replicas = options.replicas ?? 2;
    this.#ttl = options.ttl ?? 30 * 60_000;
    this.#maxValueBytes = options.maxValueBytes ?? 1024 * 1024;
    this.#timeout = options.requestTimeout ?? 2000;
    this.#maxEntries = options.maxEntries ?? Infinity;
    this.#maxBytes = options.maxBytes ?? Infinity;
    this.#bounded = Number.isFinite(this.#maxEntries) || Number.isFinite(this.#maxBytes);
    this.#server = createServer((s) => this.#accept(s));
  }

  get id(): string {
    return this.#self;
  }

  get ready(): boolean {
    return this.#ready;
  }

  get membership(): Membership | undefined {
    return this.#membership;
  }

  /** Binds `listen`; resolves with the bound address (port 0 picks one). */
  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new Error(`sessions.listen ${joinId(this.#o.listen.host, this.#o.listen.port)}: ${e.code ?? e.message}`)),
      );
      this.#server.listen(this.#o.listen.port, this.#o.listen.host, () => resolve());
    });
    const a = this.#server.address() as { address: string; port: number };
    return { host: a.address, port: a.port };
  }

  /**
   * Joins the cluster: dials every peer, catches up from the live ones
   * (every record this node owns), then announces itself ready.
   */
  async start(peers: readonly string[], self?: string): Promise<void> {
    const bound = this.#server.address() as { address: string; port: number } | null;
    if (bound === null) await this.listen();
    const addr = this.#server.address() as { address: string; port: number };
    const me = self ?? findSelf(peers, { host: this.#o.listen.host, port: addr.port });
    if (me === undefined) throw new Error(`sessions.peers does not list this node's address (sessions.listen ${joinId(this.#o.listen.host, addr.port)})`);
    this.#self = me;
    const members = [...new Set([...peers, me])];
    this.#ring = new HashRing(members);
    const others = members.filter((m) => m !== me);
    const hbInterval = this.#o.heartbeatInterval ?? 250;
    this.#hbTimeout = this.#o.heartbeatTimeout ?? Math.max(3000, hbInterval * 12);
    this.#links = new PeerLinks(others, {
      key: this.#o.key,
      id: me,
      role: 'peer',
      heartbeatTimeout: this.#hbTimeout,
      maxFrameBytes: this.#maxValueBytes + 96 * 1024,
      onMessage: (from, m, conn) => this.#fromReplica(from, m, conn),
    });
    this.#membership = new StaticMembership(members, this.#links, me, () => this.#ready);
    this.#links.onChange(() => this.#membershipChanged());
    this.#links.start();
    this.#timers.push(setInterval(() => this.#tick(), hbInterval));
    this.#timers.push(setInterval(() => this.sweep(), 1000));
    this.#timers.push(setInterval(() => this.#directSweep(), 100));
    for (const t of this.#timers) t.unref();

    const links = this.#links;
    await links.waitFor(() => links.allSettled(), this.#o.joinTimeout ?? 3000);
    await this.#catchUp('sessions.ready');
  }

  /** Pulls every record this node owns from the live peers (which meanwhile send it new writes too), then serves. */
  async #catchUp(event: string): Promise<void> {
    const links = this.#links as PeerLinks;
    const t0 = Date.now();
    let caught = 0;
    await Promise.all(
      links.liveIds().map((p) =>
        links
          .request(p, msg(T.SYNC, { s: this.#self }), 120_000, {
            item: (m) => {
              caught++;
              this.#merge(m.k, { v: m.v, n: m.n1, e: m.n2, o: m.s });
            },
          })
          .catch((err: Error) => this.#log('sessions.sync_failed', { peer: p, error: err.message })),
      ),
    );
    if (this.#closed) return;
    this.#ready = true;
    this.#view = this.#liveSet();
    this.#lastTick = Date.now();
    this.#heartbeat();
    this.#log(event, { node: this.#self, caughtUp: caught, ms: Date.now() - t0, live: [...this.#view] });
  }

  /**
   * Runs every heartbeat interval. A node whose own timers stalled longer
   * than the heartbeat timeout (SIGSTOP, a long pause) has been declared dead
   * by its peers, who moved its keys on; it must not answer from what it held
   * before, so it stops serving and catches up like a rejoining node.
   */
  #tick(): void {
    if (!this.#stalled()) this.#heartbeat();
    this.#lastTick = Date.now();
  }

  /**
   * Checked by the timer and before every request: after a resume, requests
   * queued in the socket (whose callers gave up long ago) may be read before
   * the timer runs, and must not be served from stale state.
   */
  #stalled(): boolean {
    const now = Date.now();
    const gap = this.#lastTick > 0 ? now - this.#lastTick : 0;
    if (this.#ready && gap > this.#hbTimeout && !this.#closed) {
      this.#lastTick = now;
      this.#ready = false;
      this.#heartbeat();
      this.#log('sessions.stalled', { node: this.#self, ms: gap });
      // What this node heard before the stall is stale: hear every peer anew, then catch up.
      const links = this.#links as PeerLinks;
      links.redialAll();
      void links.waitFor(() => links.allSettled(), this.#o.joinTimeout ?? 3000).then(() => this.#catchUp('sessions.ready_again'));
      return true;
    }
    return false;
  }

  #log(event: string, fields?: Record<string, unknown>): void {
    this.#o.log?.(event, fields);
  }

  #liveSet(): Set<string> {
    const m = this.#membership;
    return new Set(m === undefined ? [] : m.members.filter((id) => m.isLive(id)));
  }

  #isLive = (id: string): boolean => (id === this.#self ? this.#ready : (this.#links?.isLive(id) ?? false));

  #owners(key: string): string[] {
    return this.#ring.owners(key, this.#replicas, this.#isLive);
  }

  #accept(socket: Socket): void {
    if (this.#closed) return void socket.destroy();
    SecureConnection.accept(socket, { key: this.#o.key, id: this.#self || 'joining', role: 'peer', maxFrameBytes: this.#maxValueBytes + 96 * 1024 }).then(
      (conn) => {
        if (this.#closed) return conn.close();
        this.#inbound.add(conn);
        if (conn.remoteRole === 'client') this.#clients.set(conn.remoteId, conn);
        conn.send(msg(T.HB, { f: this.#ready ? F.READY : 0, n1: this.#maxValueBytes }));
        conn.on('message', (m) => this.#dispatch(conn, m));
        conn.on('close', (err) => {
          this.#inbound.delete(conn);
          this.#directIn.delete(conn);
          this.#ackDue.delete(conn);
          if (this.#clients.get(conn.remoteId) === conn) this.#clients.delete(conn.remoteId);
          if (conn.remoteRole === 'peer') this.#joining.delete(conn.remoteId);
          if (err instanceof SessionError && err.code === 'CORRAL_ERR_SESSION_PROTOCOL') {
            this.#security.protocolErrors++;
            this.#log('sessions.protocol_error', { peer: conn.remoteId, error: err.message });
          }
        });
        conn.start();
      },
      (err: Error) => {
        if (err instanceof SessionError && err.code === 'CORRAL_ERR_SESSION_AUTH') {
          this.#security.authFailures++;
          this.#log('sessions.auth_failed', { from: socket.remoteAddress, error: err.message });
        } else if (err instanceof SessionError && err.code === 'CORRAL_ERR_SESSION_PROTOCOL') {
          // garbage, or a peer of another protocol version
          this.#security.protocolErrors++;
          this.#log('sessions.protocol_error', { from: socket.remoteAddress, error: err.message });
        }
      },
    );
  }

  #heartbeat(): void {
    const hb = msg(T.HB, { f: this.#ready ? F.READY : 0, n1: this.#maxValueBytes });
    for (const c of this.#inbound) c.send({ ...hb });
  }

  #dispatch(conn: SecureConnection, m: Msg): void {
    if (m.t < T.PUT) this.#stalled();
    switch (m.t) {
      case T.GET:
        if (this.#getFast(conn, m)) return;
        this.#clientOp(conn, m).catch((err: Error) => this.#fail(conn, m, err));
        return;
      case T.SET:
      case T.DEL:
        if ((m.f & F.DIRECT) !== 0 && this.#writeDirect(conn, m)) return;
        this.#clientOp(conn, m).catch((err: Error) => this.#fail(conn, m, err));
        return;
      case T.SETALL:
        this.#setAll(conn, m);
        return;
      case T.TOUCH:
        this.#clientOp(conn, m).catch((err: Error) => this.#fail(conn, m, err));
        return;
      case T.ALL:
      case T.DUMP:
        this.#stream(conn, m, m.t === T.DUMP).catch((err: Error) => this.#fail(conn, m, err));
        return;
      case T.CLEAR:
        this.#clear();
        conn.reply(m, msg(T.R_OK, { f: 1 }));
        return;
      case T.STATS:
        conn.reply(m, msg(T.R_STATS, { s: JSON.stringify(this.stats()) }));
        return;
      case T.PUT: {
        const r = this.#merge(m.k, { v: m.v, n: m.n1, e: m.n2, o: m.s });
        if (r === undefined) conn.reply(m, msg(T.R_PUT, { f: 1 }));
        else conn.reply(m, msg(T.R_PUT, { f: 0, v: r.v, n1: r.n, n2: r.e, s: r.o }));
        return;
      }
      case T.REC:
        this.#merge(m.k, { v: m.v, n: m.n1, e: m.n2, o: m.s });
        return;
      case T.DPUT:
        this.#directPut(conn, m);
        return;
      case T.BARRIER:
        conn.reply(m, msg(T.R_OK, { f: 1 }));
        return;
      case T.SYNC:
        this.#serveSync(conn, m).catch((err: Error) => this.#fail(conn, m, err));
        return;
      case T.HB:
        return;
      default:
        conn.close(new SessionError('CORRAL_ERR_SESSION_PROTOCOL', `unknown message type ${m.t}`));
    }
  }

  /** The common read, answered without a promise: this node is the first owner, or an owner holding the key. */
  #getFast(conn: SecureConnection, m: Msg): boolean {
    if (!this.#ready || this.#pulls > 0 || this.#gained || (m.f & F.RAW) !== 0) return false;
    const r = this.#table.get(m.k);
    const owners = this.#owners(m.k);
    if (owners[0] !== this.#self && !(r !== undefined && owners.includes(this.#self)) && (m.f & F.FORWARDED) === 0) return false;
    if (r === undefined || r.v === null || r.e <= Date.now()) {
      this.#c.misses++;
      conn.reply(m, msg(T.R_GET));
    } else {
      this.#c.hits++;
      if (this.#bounded) this.#used(m.k, r);
      conn.reply(m, msg(T.R_GET, { f: F.FOUND, v: r.v, n1: r.n, n2: r.e }));
    }
    return true;
  }

  #fail(conn: SecureConnection, m: Msg, err: Error): void {
    this.#c.errors++;
    const code = err instanceof SessionError ? err.code : 'CORRAL_ERR_SESSION_UNAVAILABLE';
    conn.reply(m, msg(T.R_ERR, { s: code, v: err.message }));
  }

  async #clientOp(conn: SecureConnection, m: Msg): Promise<void> {
    if (!this.#ready) throw new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', `${this.#self} is catching up`);
    const owners = this.#owners(m.k);
    if (!owners.includes(this.#self) && (m.f & F.FORWARDED) === 0) {
      // The client's view differs from ours: pass the request to the owners we see.
      let last: Error = new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', `no live owner for the key`);
      for (const o of owners) {
        try {
          const r = await (this.#links as PeerLinks).request(o, { ...m, f: m.f | F.FORWARDED }, this.#timeout);
          conn.reply(m, { ...r });
          return;
        } catch (err) {
          last = err as Error;
        }
      }
      throw last;
    }
    switch (m.t) {
      case T.GET:
        return this.#get(conn, m, owners);
      case T.SET:
        return this.#set(conn, m, owners);
      case T.DEL:
        return this.#del(conn, m, owners);
      default:
        return this.#touch(conn, m, owners);
    }
  }

  async #get(conn: SecureConnection, m: Msg, owners: string[]): Promise<void> {
    if ((m.f & F.RAW) !== 0) {
      const r = this.#table.get(m.k);
      if (r === undefined) conn.reply(m, msg(T.R_GET));
      else conn.reply(m, msg(T.R_GET, { f: F.FOUND | (r.v === null ? F.TOMB : 0), v: r.v, n1: r.n, n2: r.e, s: r.o }));
      return;
    }
    let r = this.#table.get(m.k);
    if ((m.f & F.FORWARDED) === 0 && (this.#pulls > 0 || this.#gained || (r === undefined && owners[0] !== this.#self))) r = await this.#repair(m.k, owners);
    if (r === undefined || r.v === null || r.e <= Date.now()) {
      this.#c.misses++;
      conn.reply(m, msg(T.R_GET));
      return;
    }
    this.#c.hits++;
    if (this.#bounded) this.#used(m.k, r);
    conn.reply(m, msg(T.R_GET, { f: F.FOUND, v: r.v, n1: r.n, n2: r.e }));
  }

  /**
   * Read repair. The first live owner of a key always held it before the
   * latest membership change; another owner may be new to the key while a
   * hand-off is still on its way (a client failed over to it). Such an
   * owner asks the others before it answers or decides a version.
   */
  async #repair(key: string, owners: string[]): Promise<Rec | undefined> {
    const others = owners.filter((o) => o !== this.#self);
    await Promise.all(
      others.map(async (o) => {
        try {
          const r = await (this.#links as PeerLinks).request(o, msg(T.GET, { k: key, f: F.RAW | F.FORWARDED }), this.#timeout);
          if (r.t === T.R_GET && (r.f & F.FOUND) !== 0) this.#merge(key, { v: (r.f & F.TOMB) !== 0 ? null : r.v, n: r.n1, e: r.n2, o: r.s });
        } catch {
          // that owner is down: what this node holds is the best answer left
        }
      }),
    );
    return this.#table.get(key);
  }

  async #set(conn: SecureConnection, m: Msg, owners: string[]): Promise<void> {
    const value = m.v ?? '';
    if (Buffer.byteLength(value) > this.#maxValueBytes) {
      throw new SessionError('CORRAL_ERR_SESSION_TOO_LARGE', `session value over the limit of ${this.#maxValueBytes} bytes; nothing stored`);
    }
    const ttl = m.n2 > 0 ? m.n2 : this.#ttl;
    const cas = (m.f & F.CAS) !== 0;
    if (owners[0] !== this.#self || this.#pulls > 0 || this.#gained) await this.#repair(m.k, owners);
    for (let attempt = 0; attempt < 4; attempt++) {
      const now = Date.now();
      const cur = this.#table.get(m.k);
      const version = cur !== undefined && cur.v !== null && cur.e > now ? cur.n : 0;
      if (cas && version !== m.n1) {
        this.#c.conflicts++;
        conn.reply(m, msg(T.R_CAS_FAIL, { n1: version }));
        return;
      }
      const rec: Rec = { v: value, n: (cur?.n ?? 0) + 1, e: now + ttl, o: this.#self };
      this.#store(m.k, rec);
      const newer = await this.#replicate(m.k, rec, owners);
      if (newer === undefined) {
        this.#c.sets++;
        conn.reply(m, msg(T.R_OK, { f: 1, n1: rec.n }));
        return;
      }
      // A replica held a newer record than this coordinator: adopt it and decide again.
      this.#merge(m.k, newer);
    }
    throw new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', 'write kept racing newer replicas');
  }

  async #del(conn: SecureConnection, m: Msg, owners: string[]): Promise<void> {
    if (owners[0] !== this.#self || this.#pulls > 0 || this.#gained) await this.#repair(m.k, owners);
    for (let attempt = 0; attempt < 4; attempt++) {
      const now = Date.now();
      const cur = this.#table.get(m.k);
      const rec: Rec = { v: null, n: (cur?.n ?? 0) + 1, e: Math.max(cur?.e ?? 0, now + this.#ttl), o: this.#self };
      this.#store(m.k, rec);
      const newer = await this.#replicate(m.k, rec, owners);
      if (newer === undefined) {
        this.#c.destroys++;
        conn.reply(m, msg(T.R_OK, { f: 1 }));
        return;
      }
      this.#merge(m.k, newer);
    }
    throw new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', 'destroy kept racing newer replicas');
  }

  async #touch(conn: SecureConnection, m: Msg, owners: string[]): Promise<void> {
    if (owners[0] !== this.#self || this.#pulls > 0 || this.#gained) await this.#repair(m.k, owners);
    const cur = this.#table.get(m.k);
    const now = Date.now();
    if (cur === undefined || cur.v === null || cur.e <= now) {
      conn.reply(m, msg(T.R_OK, { f: 0 }));
      return;
    }
    cur.e = now + (m.n2 > 0 ? m.n2 : this.#ttl);
    if (this.#bounded) this.#used(m.k, cur);
    const newer = await this.#replicate(m.k, { ...cur }, owners);
    if (newer !== undefined) this.#merge(m.k, newer);
    conn.reply(m, msg(T.R_OK, { f: 1 }));
  }

  /**
   * Sends a record to every other live owner and waits for each. Resolves
   * with a newer record if a replica held one (the caller decides again).
   */
  async #replicate(key: string, rec: Rec, owners: string[]): Promise<Rec | undefined> {
    const t0 = performance.now();
    this.#repl.inflight++;
    let newer: Rec | undefined;
    try {
      const done: string[] = [this.#self];
      let targets = owners.filter((o) => o !== this.#self);
      for (let round = 0; round < 3 && targets.length > 0; round++) {
        const results = targets.length === 1 ? [await this.#putTo(targets[0] as string, key, rec)] : await Promise.all(targets.map((o) => this.#putTo(o, key, rec)));
        let failed = false;
        results.forEach((r, i) => {
          if (r === false) failed = true;
          else {
            done.push(targets[i] as string);
            if (r !== true && (newer === undefined || newerThan(r, newer))) newer = r;
          }
        });
        if (!failed || newer !== undefined) break;
        // Failed replicas are out of the live set now: their replacements get the record.
        targets = this.#owners(key).filter((o) => !done.includes(o));
      }
      if (this.#joining.size > 0) this.#sendToJoining(key, rec);
    } finally {
      this.#repl.inflight--;
    }
    this.#repl.replicated++;
    this.#lag(performance.now() - t0);
    return newer;
  }

  /** true: applied; a Rec: the replica holds this newer record; false: the replica failed (and was dropped). */
  async #putTo(o: string, key: string, rec: Rec): Promise<Rec | boolean> {
    const links = this.#links as PeerLinks;
    try {
      const r = await links.request(o, msg(T.PUT, { k: key, v: rec.v, n1: rec.n, n2: rec.e, s: rec.o }), this.#timeout);
      if (r.t === T.R_ERR) throw new SessionError('CORRAL_ERR_SESSION_UNAVAILABLE', r.v ?? 'replica error');
      return r.f === 0 ? { v: r.v, n: r.n1, e: r.n2, o: r.s } : true;
    } catch (err) {
      this.#repl.failures++;
      // A replica that cannot acknowledge is taken out of the live set; its replacement gets the record.
      links.fail(o, err as Error);
      return false;
    }
  }

  /**
   * A plain set the client sent to every owner itself. This node takes it
   * only when it sees exactly the owners the client chose and has nothing to
   * repair; it then assigns its next version, as every other owner does for
   * the same write. Owners that held the same record assign the same
   * version; the client compares the answers and takes the coordinator path
   * when they differ (two writes of the key crossed) or any owner refused.
   */
  #setAll(conn: SecureConnection, m: Msg): void {
    const owners = this.#owners(m.k);
    if (!this.#ready || this.#pulls > 0 || this.#gained || m.n1 !== this.#ring.fingerprint(owners)) {
      conn.reply(m, msg(T.R_OK, { f: 0 }));
      return;
    }
    const value = m.v ?? '';
    try {
      // a UTF-16 code unit is at most 3 UTF-8 bytes: count bytes only for long values
      if (value.length * 3 > this.#maxValueBytes) checkValue(value, this.#maxValueBytes);
    } catch (err) {
      this.#fail(conn, m, err as Error);
      return;
    }
    const cur = this.#table.get(m.k);
    // The origin is the writing client (its id is unique), never a node: a set that reached only some owners (its
    // client died) must not tie with a record a node makes later at the same version, or the owners would keep
    // different records that each take for the other's. Both owners of a completed set hold the same record.
    const rec: Rec = { v: value, n: (cur?.n ?? 0) + 1, e: Date.now() + (m.n2 > 0 ? m.n2 : this.#ttl), o: conn.remoteId };
    this.#store(m.k, rec, cur);
    if (this.#joining.size > 0) this.#sendToJoining(m.k, rec);
    // counted once per write, by its first owner (as the coordinator counts it on the other paths)
    if (owners[0] === this.#self) this.#c.sets++;
    conn.reply(m, msg(T.R_OK, { f: 1, n1: rec.n }));
  }

  /**
   * The common write, decided without a promise: this node is the first of
   * exactly two live owners, nothing is being repaired, and the client lets
   * the replica answer. Returns false to take the general path.
   */
  #writeDirect(conn: SecureConnection, m: Msg): boolean {
    if (!this.#ready || this.#pulls > 0 || this.#gained || conn.remoteRole !== 'client' || (m.f & F.FORWARDED) !== 0) return false;
    const owners = this.#owners(m.k);
    if (owners.length !== 2 || owners[0] !== this.#self) return false;
    const replica = owners[1] as string;
    const to = (this.#links as PeerLinks).conn(replica);
    if (to === undefined) return false;
    const now = Date.now();
    const cur = this.#table.get(m.k);
    let rec: Rec;
    if (m.t === T.SET) {
      const value = m.v ?? '';
      // a UTF-16 code unit is at most 3 UTF-8 bytes: count bytes only for long values
      if (value.length * 3 > this.#maxValueBytes && Buffer.byteLength(value) > this.#maxValueBytes) return false;
      const version = cur !== undefined && cur.v !== null && cur.e > now ? cur.n : 0;
      if ((m.f & F.CAS) !== 0 && version !== m.n1) {
        this.#c.conflicts++;
        conn.reply(m, msg(T.R_CAS_FAIL, { n1: version }));
        return true;
      }
      rec = { v: value, n: (cur?.n ?? 0) + 1, e: now + (m.n2 > 0 ? m.n2 : this.#ttl), o: this.#self };
    } else {
      rec = { v: null, n: (cur?.n ?? 0) + 1, e: Math.max(cur?.e ?? 0, now + this.#ttl), o: this.#self };
    }
    this.#store(m.k, rec);
    if (this.#joining.size > 0) this.#sendToJoining(m.k, rec);
    let q = this.#directOut.get(to);
    if (q === undefined) {
      q = { peer: replica, sent: 0, items: [], head: 0 };
      this.#directOut.set(to, q);
      to.once('close', () => this.#directLost(to));
    }
    q.items.push({ seq: ++q.sent, key: m.k, rec, conn, m, t0: performance.now(), done: false });
    this.#repl.inflight++;
    to.send(msg(T.DPUT, { id: m.id, k: m.k, v: rec.v, n1: rec.n, n2: rec.e, s: conn.remoteId }));
    return true;
  }

  /** Replica side of a direct write: apply, answer the client, and owe the coordinator an ack. */
  #directPut(conn: SecureConnection, m: Msg): void {
    let st = this.#directIn.get(conn);
    if (st === undefined) this.#directIn.set(conn, (st = { received: 0, acked: 0, lastAt: 0 }));
    const seq = ++st.received;
    st.lastAt = performance.now();
    const held = this.#merge(m.k, { v: m.v, n: m.n1, e: m.n2, o: conn.remoteId });
    if (held !== undefined) {
      conn.send(msg(T.DNAK, { id: seq, f: F.FOUND, k: m.k, v: held.v, n1: held.n, n2: held.e, s: held.o }));
    } else {
      const client = this.#clients.get(m.s);
      if (client !== undefined && !client.closed) client.send(msg(T.R_OK, { id: m.id, f: 1, n1: m.n1, s: conn.remoteId }));
      else conn.send(msg(T.DNAK, { id: seq }));
    }
    this.#ackDue.add(conn);
    if (this.#ackTimer === undefined) this.#ackTimer = setTimeout(() => this.#sendAcks(), DACK_MS);
  }

  #sendAcks(): void {
    this.#ackTimer = undefined;
    const now = performance.now();
    for (const c of this.#ackDue) {
      const st = this.#directIn.get(c);
      if (st === undefined || st.received === st.acked) continue;
      st.acked = st.received;
      c.send(msg(T.DACK, { n1: st.received, n2: now - st.lastAt }));
    }
    this.#ackDue.clear();
  }

  /** Messages a replica sends back on this node's outbound connection to it. */
  #fromReplica(_from: string, m: Msg, conn: SecureConnection): void {
    const q = this.#directOut.get(conn);
    if (q === undefined) return;
    if (m.t === T.DACK) {
      let last: Direct | undefined;
      while (q.head < q.items.length && (q.items[q.head] as Direct).seq <= m.n1) {
        const d = q.items[q.head++] as Direct;
        if (d.done) continue;
        d.done = true;
        last = d;
        this.#directAcked(d);
      }
      if (q.head === q.items.length) {
        q.items = [];
        q.head = 0;
      } else if (q.head > 4096) {
        q.items = q.items.slice(q.head);
        q.head = 0;
      }
      if (last !== undefined) this.#lag(Math.max(0, performance.now() - last.t0 - m.n2));
    } else if (m.t === T.DNAK) {
      // ids are 32 bits: the sequence number modulo 2^32, matched within the unacknowledged window
      const first = q.items[q.head];
      const d = first === undefined ? undefined : q.items[q.head + ((m.id - first.seq) >>> 0)];
      if (d === undefined || d.seq >>> 0 !== m.id || d.done) return;
      d.done = true;
      if ((m.f & F.FOUND) !== 0) {
        // The replica holds a newer record: adopt it and decide again (the general path).
        this.#repl.inflight--;
        this.#merge(d.key, { v: m.v, n: m.n1, e: m.n2, o: m.s });
        this.#clientOp(d.conn, d.m).catch((err: Error) => this.#fail(d.conn, d.m, err));
      } else {
        // Applied, but the replica could not answer the client: this node does.
        this.#directAcked(d);
        d.conn.reply(d.m, msg(T.R_OK, { f: 1, n1: d.rec.n }));
      }
    }
  }

  #directAcked(d: Direct): void {
    this.#repl.inflight--;
    this.#repl.replicated++;
    if (d.rec.v === null) this.#c.destroys++;
    else this.#c.sets++;
  }

  #lag(ms: number): void {
    this.#repl.lastLagMs = ms;
    this.#repl.avgLagMs = this.#repl.avgLagMs === 0 ? ms : this.#repl.avgLagMs * 0.9 + ms * 0.1;
  }

  /**
   * The connection to a replica failed with direct writes unacknowledged:
   * the replica is out of the live set now, so each goes to the owners this
   * node sees (the replacement), and the client is answered from here.
   */
  #directLost(conn: SecureConnection): void {
    const q = this.#directOut.get(conn);
    this.#directOut.delete(conn);
    if (q === undefined) return;
    for (let i = q.head; i < q.items.length; i++) {
      const d = q.items[i] as Direct;
      if (d.done) continue;
      d.done = true;
      this.#repl.failures++;
      this.#repl.inflight--;
      this.#redoDirect(d).catch((err: Error) => this.#fail(d.conn, d.m, err));
    }
  }

  async #redoDirect(d: Direct): Promise<void> {
    // What this node holds now is never older than the write (it applied it); send that.
    const cur = this.#table.get(d.key);
    const rec = cur !== undefined && !newerThan(d.rec, cur) ? { ...cur } : d.rec;
    const newer = await this.#replicate(d.key, rec, this.#owners(d.key));
    if (newer !== undefined) {
      this.#merge(d.key, newer);
      return this.#clientOp(d.conn, d.m);
    }
    if (d.rec.v === null) this.#c.destroys++;
    else this.#c.sets++;
    d.conn.reply(d.m, msg(T.R_OK, { f: 1, n1: d.rec.n }));
  }

  /** A replica that leaves a direct write unacknowledged past the request timeout is dropped, like a failed PUT. */
  #directSweep(): void {
    if (this.#directOut.size === 0) return;
    const now = performance.now();
    for (const q of this.#directOut.values()) {
      const d = q.items[q.head];
      if (d !== undefined && now - d.t0 > this.#timeout) {
        (this.#links as PeerLinks).fail(q.peer, new SessionError('CORRAL_ERR_SESSION_TIMEOUT', `${q.peer} did not acknowledge a write within ${this.#timeout} ms`));
      }
    }
  }

  #sendToJoining(key: string, rec: Rec): void {
    for (const j of this.#joining) {
      const owners = this.#ring.owners(key, this.#replicas, (id) => id === j || this.#isLive(id));
      if (owners.includes(j)) this.#links?.conn(j)?.send(msg(T.REC, { k: key, v: rec.v, n1: rec.n, n2: rec.e, s: rec.o }));
    }
  }

  /** `old`: the record held now, when the caller has just looked it up. */
  #store(key: string, rec: Rec, old: Rec | undefined = this.#table.get(key)): void {
    if (old !== undefined) {
      this.#count(key, old, -1);
      // Map.set keeps an existing key's place: move it to the most recent end
      if (this.#bounded) this.#table.delete(key);
    }
    this.#table.set(key, rec);
    this.#count(key, rec, 1);
    if (this.#bounded && (this.#live > this.#maxEntries || this.#liveBytes > this.#maxBytes)) this.#evict(key);
  }

  #count(key: string, rec: Rec, sign: 1 | -1): void {
    const b = recBytes(key, rec);
    this.#bytes += sign * b;
    if (rec.v !== null) {
      this.#live += sign;
      this.#liveBytes += sign * b;
    }
  }

  #drop(key: string, rec: Rec): void {
    this.#table.delete(key);
    this.#count(key, rec, -1);
  }

  /** A record was read or touched: it becomes the most recently used. */
  #used(key: string, rec: Rec): void {
    this.#table.delete(key);
    this.#table.set(key, rec);
  }

  /**
   * Over a memory bound: drops the least recently used live sessions (never
   * `keep`, the one just stored) until within it. Tombstones are never
   * evicted: one that went early would let an older copy of its session (a
   * stale replica, a node coming back) win again; they hold no value and
   * leave when they expire. They are moved to the recent end instead, so
   * the next scan does not walk them again.
   */
  #evict(keep: string): void {
    const now = Date.now();
    let budget = this.#table.size;
    for (const [k, r] of this.#table) {
      if ((this.#live <= this.#maxEntries && this.#liveBytes <= this.#maxBytes) || budget-- <= 0) break;
      if (k === keep) continue;
      if (r.e <= now) {
        this.#drop(k, r);
        if (r.v !== null) this.#c.expired++;
      } else if (r.v === null) {
        this.#used(k, r);
      } else {
        this.#drop(k, r);
        this.#c.evictions++;
      }
    }
  }

  /** Applies a record if it wins; returns the held record when that one is newer. */
  #merge(key: string, inc: Rec): Rec | undefined {
    const cur = this.#table.get(key);
    if (cur === undefined || newerThan(inc, cur)) {
      if (inc.e > Date.now()) this.#store(key, inc);
      else if (cur !== undefined) this.#drop(key, cur);
      return undefined;
    }
    if (inc.n === cur.n && inc.o === cur.o) {
      if (inc.e > cur.e) cur.e = inc.e;
      return undefined;
    }
    return cur;
  }

  async #stream(conn: SecureConnection, m: Msg, keysOnly: boolean): Promise<void> {
    const now = Date.now();
    let i = 0;
    for (const [k, r] of this.#table) {
      if (r.e <= now) continue;
      if (keysOnly) conn.reply(m, msg(T.R_ITEM, { k, n1: r.n, n2: r.e, s: r.o, f: r.v === null ? F.TOMB : 0 }));
      else conn.reply(m, msg(T.R_ITEM, { k, v: r.v, n1: r.n, n2: r.e, s: r.o }));
      if (++i % 1000 === 0) await this.#yield(conn);
    }
    conn.reply(m, msg(T.R_END));
  }

  async #yield(conn: SecureConnection): Promise<void> {
    await new Promise((r) => setImmediate(r));
    if (conn.congested) await conn.drained();
  }

  async #pull(from: string): Promise<void> {
    this.#pulls++;
    const t0 = Date.now();
    let n = 0;
    try {
      await (this.#links as PeerLinks).request(from, msg(T.SYNC, { s: this.#self, f: F.PULL }), 120_000, {
        item: (m) => {
          n++;
          this.#merge(m.k, { v: m.v, n: m.n1, e: m.n2, o: m.s });
        },
      });
      this.#log('sessions.pulled', { from, records: n, ms: Date.now() - t0 });
    } catch (err) {
      this.#log('sessions.pull_failed', { from, error: (err as Error).message });
    } finally {
      this.#pulls--;
    }
  }

  async #serveSync(conn: SecureConnection, m: Msg): Promise<void> {
    const joiner = m.s;
    if ((m.f & F.PULL) === 0) {
      this.#joining.add(joiner);
      this.#syncedBy.add(joiner);
    }
    const view = (id: string): boolean => id === joiner || this.#isLive(id);
    const now = Date.now();
    let i = 0;
    for (const [k, r] of this.#table) {
      if (r.e <= now || !this.#ring.owners(k, this.#replicas, view).includes(joiner)) continue;
      conn.reply(m, msg(T.R_ITEM, { k, v: r.v, n1: r.n, n2: r.e, s: r.o }));
      if (++i % 1000 === 0) await this.#yield(conn);
    }
    conn.reply(m, msg(T.R_END));
    this.#log('sessions.sync_served', { to: joiner, records: i });
  }

  /** `clear`: every live session this node holds becomes a tombstone. */
  #clear(): void {
    const now = Date.now();
    for (const [k, r] of this.#table) {
      if (r.v !== null && r.e > now) this.#store(k, { v: null, n: r.n + 1, e: Math.max(r.e, now + this.#ttl), o: this.#self });
    }
  }

  #membershipChanged(): void {
    if (!this.#ready || this.#closed) return;
    if (!this.#gained && this.#ring.members.some((id) => id !== this.#self && this.#isLive(id) && !this.#view.has(id))) this.#gained = true;
    if (this.#debounce !== undefined) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      void this.#runHandoff();
    }, 20);
  }

  /**
   * Hand-off: after a membership change, every record whose owner set
   * gained a node is pushed to that node (unless it caught up from this one),
   * then records this node no longer owns are dropped.
   */
  async #runHandoff(): Promise<void> {
    if (this.#handing) {
      this.#again = true;
      return;
    }
    this.#handing = true;
    try {
      do {
        this.#again = false;
        const prev = this.#view;
        const next = this.#liveSet();
        this.#view = next;
        const newly = [...next].filter((id) => !prev.has(id));
        const gone = [...prev].filter((id) => !next.has(id));
        if (newly.length === 0 && gone.length === 0) {
          this.#gained = false;
          continue;
        }
        const t0 = Date.now();
        const skip = new Set(newly.filter((id) => this.#syncedBy.has(id)));
        for (const id of [...newly, ...gone]) this.#syncedBy.delete(id);
        for (const id of newly) this.#joining.delete(id);
        // A peer that comes back without having caught up from this node (a hang, a partition)
        // may hold newer records of keys this node owns: pull them, reading with repair meanwhile.
        for (const id of newly) if (id !== this.#self && !skip.has(id)) void this.#pull(id);
        this.#gained = false;
        const queues = new Map<string, string[]>();
        const drop: string[] = [];
        const wasLive = (id: string): boolean => prev.has(id);
        const isLive = (id: string): boolean => next.has(id);
        for (const [k, r] of this.#table) {
          if (r.e <= t0) continue;
          const after = this.#ring.owners(k, this.#replicas, isLive);
          const before = this.#ring.owners(k, this.#replicas, wasLive);
          for (const o of after) {
            if (o === this.#self || before.includes(o) || skip.has(o)) continue;
            let q = queues.get(o);
            if (q === undefined) queues.set(o, (q = []));
            q.push(k);
          }
          if (!after.includes(this.#self)) drop.push(k);
        }
        let total = 0;
        for (const q of queues.values()) total += q.length;
        this.#handoff = { ...this.#handoff, running: true, pending: total, sent: 0 };
        this.#log('sessions.handoff_start', { joined: newly, left: gone, records: total, targets: [...queues.keys()] });
        const results = await Promise.all([...queues].map(([o, keys]) => this.#push(o, keys)));
        if (results.every(Boolean)) {
          for (const k of drop) {
            const r = this.#table.get(k);
            if (r !== undefined && !this.#owners(k).includes(this.#self)) this.#drop(k, r);
          }
        }
        const ms = Date.now() - t0;
        this.#handoff = { running: false, pending: 0, sent: this.#handoff.sent, lastDurationMs: ms, lastRecords: total, completed: this.#handoff.completed + 1 };
        this.#log('sessions.handoff_done', { records: total, dropped: drop.length, ms, ok: results.every(Boolean) });
      } while (this.#again && !this.#closed);
    } finally {
      this.#handing = false;
    }
  }

  async #push(to: string, keys: string[]): Promise<boolean> {
    const links = this.#links as PeerLinks;
    const conn = links.conn(to);
    if (conn === undefined) return false;
    let i = 0;
    for (const k of keys) {
      const r = this.#table.get(k);
      if (r !== undefined) conn.send(msg(T.REC, { k, v: r.v, n1: r.n, n2: r.e, s: r.o }));
      this.#handoff.pending--;
      this.#handoff.sent++;
      if (++i % 1000 === 0) {
        await this.#yield(conn);
        if (conn.closed) return false;
      }
    }
    try {
      await links.request(to, msg(T.BARRIER), 30_000);
      return true;
    } catch (err) {
      this.#log('sessions.handoff_failed', { to, error: (err as Error).message });
      return false;
    }
  }

  /** Drops expired records and tombstones. */
  sweep(): void {
    const now = Date.now();
    for (const [k, r] of this.#table) {
      if (r.e <= now) {
        this.#drop(k, r);
        if (r.v !== null) this.#c.expired++;
      }
    }
  }

  stats(): SessionStats & {
    node: string;
    ready: boolean;
    tombstones: number;
    security: { authFailures: number; protocolErrors: number };
    wire: { flushes: number; frames: number; messages: number };
  } {
    const now = Date.now();
    let sessions = 0;
    let tombstones = 0;
    for (const r of this.#table.values()) {
      if (r.e <= now) continue;
      if (r.v === null) tombstones++;
      else sessions++;
    }
    // Pulls from a peer that came back are part of re-converging too: while they run, writes take the coordinator path.
    const handoff: HandoffStats = { ...this.#handoff, running: this.#handoff.running || this.#pulls > 0 || this.#gained };
    return {
      store: 'peer',
      node: this.#self,
      ready: this.#ready,
      sessions,
      tombstones,
      bytes: this.#bytes,
      ...this.#c,
      replication: { ...this.#repl },
      handoff,
      members: this.#ring.members.map((id) => ({ id, live: this.#isLive(id), self: id === this.#self })),
      security: { ...this.#security },
      wire: { flushes: wireCounters.flushes, frames: wireCounters.frames, messages: wireCounters.messages },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#ready = false;
    for (const t of this.#timers) clearInterval(t);
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    if (this.#ackTimer !== undefined) clearTimeout(this.#ackTimer);
    this.#links?.close();
    for (const c of this.#inbound) c.close();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function newerThan(a: Rec, b: Rec): boolean {
  return a.n > b.n || (a.n === b.n && a.o > b.o);
}

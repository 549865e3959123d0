/**
 * The composition root: builds a node's roles from a config and owns their
 * lifecycle and reloads. Nothing else wires layers together.
 *
 * Reload = parse → validate → build the new generation off the hot path
 * (backends, frontends, certificates) → swap: listeners that did not change
 * keep their sockets and get the new frontend; keep-alive clients move to
 * it at their next request; in-flight requests and tunnels of the old
 * generation finish on it undisturbed. A build failure leaves the running
 * generation untouched.
 */
import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import type { CorralConfig, FrontendConfig } from './config/index.js';
import { RuntimeBackend } from './balancer/backend.js';
import { HttpFrontend } from './balancer/http/proxy.js';
import { TcpFrontend } from './balancer/tcp/tcp-frontend.js';
import { Listener, loadCertificates } from './balancer/listener.js';
import type { CertificateSet } from './balancer/listener.js';
import { CorralError } from './errors.js';
import { HealthBus, HealthMonitor } from './health/index.js';
import type { Health, HealthSink } from './health/index.js';
import type { TrafficOutcome } from './balancer/backend.js';
import type { LatencyRecorder } from './balancer/http/proxy.js';
import type { Logger } from './log.js';

/** Traffic outcomes per `backend/server`, oldest first (see `HealthMode`). */
export type OutcomeBatch = Record<string, TrafficOutcome[]>;

/**
 * Where health checks run. `local` (default): this node runs them. `remote`:
 * a supervisor runs them once for all workers and calls `applyHealth` /
 * `applyWeight`; this node hands its traffic outcomes (for outlier
 * ejection) to `onOutcomes` in batches.
 */
export type HealthMode =
  | { readonly mode: 'local' }
  | {
      readonly mode: 'remote';
      readonly onOutcomes: (batch: OutcomeBatch) => void;
      /** Health known when this node starts, by `backend/server`. */
      readonly initial?: Readonly<Record<string, { readonly health: Health; readonly weight?: number }>>;
    };

export interface NodeOptions {
  readonly config: CorralConfig;
  readonly log: Logger;
  readonly health?: HealthMode;
  /** Access lines for HTTP requests (default: when the logger's info level is on). */
  readonly accessLog?: boolean;
  /** Receives each response's time to first byte (the admin's latency histograms). */
  readonly latency?: LatencyRecorder;
}

/** Outcomes kept per server between two batches: consecutive-failure counting needs only the tail. */
const OUTCOME_TAIL = 64;
const OUTCOME_FLUSH_MS = 100;

export interface BoundFrontend {
  readonly name: string;
  readonly address: AddressInfo;
}

export interface ReloadResult {
  readonly changed: boolean;
  readonly generation: number;
}

/** A frontend of any mode, as the node drives it. */
type Frontend = HttpFrontend | TcpFrontend;

/** The key that signs sticky cookies: derived from `cluster.key` when set, else random per start. */
function stickySecret(config: CorralConfig): Buffer {
  const key = config.cluster?.key;
  if (key === undefined || key === '') return randomBytes(32);
  const salt = createHash('sha256').update('corral').digest();
  return Buffer.from(hkdfSync('sha256', key, salt, 'corral sticky cookie v1', 32));
}

/**
 * Listeners are kept across reloads when address, mode and TLS-ness are
 * unchanged. Keys use the bound port, so `port: 0` and the port it got match.
 */
function listenerKey(f: FrontendConfig, boundPort: number = f.listen.port): string {
  return `${f.listen.host}|${boundPort}|${f.mode}|${f.tls === undefined ? 'plain' : 'tls'}`;
}

interface Generation {
  readonly number: number;
  readonly config: CorralConfig;
  readonly backends: Map<string, RuntimeBackend>;
  readonly frontends: Map<string, Frontend>;
  readonly certs: Map<string, CertificateSet>;
}

export class CorralNode {
  readonly log: Logger;
  private gen: Generation;
  private readonly secret: Buffer;
  /** By listener key. */
  private readonly listeners = new Map<string, Listener>();
  private reloading: Promise<ReloadResult> | null = null;
  /** Health events (state, weight, flapping) of every generation. */
  readonly healthBus = new HealthBus();
  private monitor: HealthMonitor | null = null;
  private readonly healthMode: HealthMode;
  private readonly accessLog: boolean | undefined;
  private readonly latency: LatencyRecorder | undefined;
  private outcomes: OutcomeBatch = {};
  private outcomeTimer: NodeJS.Timeout | null = null;
  /** Frontends of earlier generations that may still have clients. */
  private readonly retired = new Set<Frontend>();

  private constructor(opts: NodeOptions) {
    this.log = opts.log;
    this.healthMode = opts.health ?? { mode: 'local' };
    this.accessLog = opts.accessLog;
    this.latency = opts.latency;
    this.secret = stickySecret(opts.config);
    this.gen = this.build(opts.config, null, 1);
  }

  /** Steers the balancer from health: called only on flips. */
  private readonly sink: HealthSink = {
    setHealth: (backend, server, state) => this.applyHealth(backend, server, state),
    setWeight: (backend, server, weight) => this.applyWeight(backend, server, weight),
  };

  /** Sets a server's health in the running generation (from the local monitor or a supervisor). */
  applyHealth(backend: string, server: string, state: Health): void {
    const b = this.gen.backends.get(backend);
    const s = b?.byName.get(server);
    if (b === undefined || s === undefined) return;
    if (s.setHealth(state)) b.drainQueue();
  }

  /** Sets a server's effective weight in the running generation. */
  applyWeight(backend: string, server: string, weight: number): void {
    const b = this.gen.backends.get(backend);
    const s = b?.byName.get(server);
    if (b === undefined || s === undefined || s.weight === weight) return;
    b.setWeight(s, weight);
  }

  /** The running health monitor (local mode), for status and admin weight changes. */
  get health(): HealthMonitor | null {
    return this.monitor;
  }

  /**
   * Starts health for a generation: a monitor (local mode) or outcome
   * batching towards the supervisor (remote mode). Carries each server's
   * health over from the previous generation.
   */
  private async startHealth(gen: Generation, previous: Generation | null): Promise<void> {
    if (this.healthMode.mode === 'remote') {
      const initial = this.healthMode.initial;
      if (previous === null && initial !== undefined) {
        for (const [key, st] of Object.entries(initial)) {
          const slash = key.indexOf('/');
          this.applyHealth(key.slice(0, slash), key.slice(slash + 1), st.health);
          if (st.weight !== undefined) this.applyWeight(key.slice(0, slash), key.slice(slash + 1), st.weight);
        }
      }
      for (const b of gen.backends.values()) {
        if (b.config.outlier === undefined) continue;
        b.observe = (server, outcome) => this.queueOutcome(b.name, server.name, outcome);
      }
      return;
    }
    const old = this.monitor;
    const monitor = new HealthMonitor({
      backends: gen.config.backends,
      sink: this.sink,
      bus: this.healthBus,
      log: this.log,
      statusFiles: gen.config.statusFiles,
      initial: previous === null ? undefined : (b, s) => previous.backends.get(b)?.byName.get(s)?.health,
    });
    this.monitor = monitor;
    if (old !== null) await old.stop();
    monitor.start();
    for (const b of gen.backends.values()) {
      if (b.config.outlier === undefined) continue;
      b.observe = (server, outcome) => monitor.record(b.name, server.name, outcome);
    }
    await monitor.ready();
  }

  private queueOutcome(backend: string, server: string, outcome: TrafficOutcome): void {
    const key = `${backend}/${server}`;
    const list = this.outcomes[key] ?? (this.outcomes[key] = []);
    list.push(outcome);
    if (list.length > OUTCOME_TAIL) list.shift();
    if (this.outcomeTimer === null) {
      this.outcomeTimer = setTimeout(() => {
        this.outcomeTimer = null;
        const batch = this.outcomes;
        this.outcomes = {};
        if (this.healthMode.mode === 'remote') this.healthMode.onOutcomes(batch);
      }, OUTCOME_FLUSH_MS);
      this.outcomeTimer.unref();
    }
  }

  /** Builds every role and starts listening. Fails with CORRAL_ERR_LISTEN when an address is taken. */
  static async start(opts: NodeOptions): Promise<CorralNode> {
    const node = new CorralNode(opts);
    // First checks complete before traffic is taken, so no request meets a server never checked.
    // Health timers are unref'd and nothing listens yet: hold the process open meanwhile.
    const hold = setInterval(() => {}, 1 << 30);
    try {
      await node.startHealth(node.gen, null);
    } finally {
      clearInterval(hold);
    }
    try {
      for (const [name, fe] of node.gen.frontends) await node.openListener(fe.config, fe, node.gen.certs.get(name));
    } catch (err) {
      await node.stop(0);
      if (err instanceof CorralError) throw err;
      throw new CorralError('CORRAL_ERR_LISTEN', `cannot listen: ${(err as Error).message}`, { cause: err });
    }
    return node;
  }

  get config(): CorralConfig {
    return this.gen.config;
  }

  get generation(): number {
    return this.gen.number;
  }

  get backends(): ReadonlyMap<string, RuntimeBackend> {
    return this.gen.backends;
  }

  get frontends(): ReadonlyMap<string, Frontend> {
    return this.gen.frontends;
  }

  /** Addresses the frontends are bound to (port 0 resolved). */
  get addresses(): readonly BoundFrontend[] {
    const out: BoundFrontend[] = [];
    for (const f of this.gen.config.frontends) {
      const address = this.findListener(f)?.address;
      if (address !== null && address !== undefined) out.push({ name: f.name, address });
    }
    return out;
  }

  /** Port a frontend listens on. */
  port(frontend: string): number {
    const b = this.addresses.find((x) => x.name === frontend);
    if (b === undefined) throw new Error(`no frontend ${frontend}`);
    return b.address.port;
  }

  /** Builds a generation without touching the running one; throws CorralError on failure. */
  private build(config: CorralConfig, previous: Generation | null, number: number): Generation {
    const backends = new Map<string, RuntimeBackend>();
    for (const b of config.backends) backends.set(b.name, new RuntimeBackend(b, this.secret, previous?.backends.get(b.name)));
    const frontends = new Map<string, Frontend>();
    const certs = new Map<string, CertificateSet>();
    for (const f of config.frontends) {
      if (f.tls !== undefined) {
        try {
          certs.set(f.name, loadCertificates(f.tls));
        } catch (err) {
          throw new CorralError('CORRAL_ERR_CONFIG', `frontend ${f.name}: ${(err as Error).message}`, { cause: err });
        }
      }
      if (f.mode === 'tcp') frontends.set(f.name, new TcpFrontend({ config: f, backends, log: this.log }));
      else {
        const { accessLog, latency } = this;
        frontends.set(
          f.name,
          new HttpFrontend({
            config: f,
            backends,
            log: this.log,
            tls: f.tls !== undefined,
            ...(accessLog !== undefined ? { accessLog } : {}),
            ...(latency !== undefined ? { latency } : {}),
          }),
        );
      }
    }
    return { number, config, backends, frontends, certs };
  }

  /** The open listener a frontend config maps to, if any. */
  private findListener(f: FrontendConfig): Listener | undefined {
    const exact = this.listeners.get(listenerKey(f));
    if (exact !== undefined || f.listen.port !== 0) return exact;
    // `port: 0` again: the listener that was opened for port 0 on that host.
    for (const l of this.listeners.values()) if (listenerKey(l.config) === listenerKey(f)) return l;
    return undefined;
  }

  private keyOf(l: Listener): string {
    return listenerKey(l.config, l.address?.port ?? l.config.listen.port);
  }

  private async openListener(config: FrontendConfig, fe: Frontend, certs: CertificateSet | undefined): Promise<void> {
    const listener = new Listener(config, fe, this.log, certs);
    const address = await listener.listen();
    this.listeners.set(this.keyOf(listener), listener);
    this.log.info({ frontend: config.name, address: `${address.address}:${address.port}`, tls: listener.isTls }, 'frontend listening');
  }

  /**
   * Swaps in a new configuration. Rejects with a CorralError (and changes
   * nothing) when the new generation cannot be built. An identical config
   * only reloads certificates.
   */
  reload(config: CorralConfig): Promise<ReloadResult> {
    const run = async (): Promise<ReloadResult> => {
      const old = this.gen;
      if (isDeepStrictEqual(old.config, config)) {
        // Same config: certificate files may still have changed on disk.
        for (const f of config.frontends) {
          if (f.tls === undefined) continue;
          const certs = loadCertificates(f.tls);
          this.findListener(f)?.setCertificates(certs);
        }
        return { changed: false, generation: old.number };
      }
      const next = this.build(config, old, old.number + 1);
      const keep = new Set<Listener>();
      const opened: Listener[] = [];
      // Open new addresses first, so a taken port fails the reload before anything changed.
      try {
        for (const f of config.frontends) {
          const existing = this.findListener(f);
          if (existing !== undefined) {
            keep.add(existing);
            continue;
          }
          const fe = next.frontends.get(f.name) as Frontend;
          const listener = new Listener(f, fe, this.log, next.certs.get(f.name));
          await listener.listen();
          opened.push(listener);
          keep.add(listener);
        }
      } catch (err) {
        for (const l of opened) await l.close();
        throw new CorralError('CORRAL_ERR_LISTEN', `reload rejected: cannot listen: ${(err as Error).message}`, { cause: err });
      }
      // Swap.
      this.gen = next;
      await this.startHealth(next, old);
      const byFrontend = new Map<string, Listener>();
      for (const f of config.frontends) byFrontend.set(f.name, (this.findListener(f) ?? opened.find((l) => l.config === f)) as Listener);
      for (const l of opened) this.listeners.set(this.keyOf(l), l);
      for (const f of config.frontends) {
        const listener = byFrontend.get(f.name) as Listener;
        const fe = next.frontends.get(f.name) as Frontend;
        listener.handler = fe;
        listener.setMaxConn(f.maxConn);
        const certs = next.certs.get(f.name);
        if (certs !== undefined && !opened.includes(listener)) listener.setCertificates(certs);
      }
      for (const fe of this.retired) if (fe.clients.size === 0) this.retired.delete(fe);
      for (const [name, fe] of old.frontends) {
        this.retired.add(fe);
        const successor = next.frontends.get(name);
        if (fe instanceof HttpFrontend && successor instanceof HttpFrontend) fe.successor = successor;
        else if (fe instanceof TcpFrontend && successor instanceof TcpFrontend) fe.successor = successor;
      }
      // Retire what the new generation no longer has.
      const retired: Promise<void>[] = [];
      for (const [key, listener] of this.listeners) {
        if (keep.has(listener)) continue;
        this.listeners.delete(key);
        retired.push(listener.close());
      }
      for (const fe of old.frontends.values()) {
        if (fe.successor === null) retired.push(fe.close(30_000));
      }
      void Promise.all(retired).then(() => undefined);
      this.log.info({ generation: next.number }, 'configuration reloaded');
      return { changed: true, generation: next.number };
    };
    // Reloads run one at a time, in order.
    const p = (this.reloading ?? Promise.resolve()).then(run, run);
    this.reloading = p.catch(() => ({ changed: false, generation: this.gen.number }));
    return p;
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to `graceMs`,
   * then closes whatever is left.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.outcomeTimer !== null) clearTimeout(this.outcomeTimer);
    const monitor = this.monitor;
    this.monitor = null;
    if (monitor !== null) await monitor.stop();
    await Promise.all([...this.listeners.values()].map((l) => l.close()));
    this.listeners.clear();
    await Promise.all([...this.gen.frontends.values(), ...this.retired].map((f) => f.close(graceMs)));
    for (const b of this.gen.backends.values()) b.close();
  }
}

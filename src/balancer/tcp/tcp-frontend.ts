/**
 * A `mode: tcp` frontend: L4 proxying of whole connections to the servers of
 * one backend (`frontend.backend`; routes do not apply). Each connection is a
 * {@link Tunnel}; see there for its lifecycle.
 *
 * @example
 * ```ts
 * const fe = new TcpFrontend({ config: frontendConfig, backends, log });
 * const address = await fe.listen();        // or hand sockets to fe.accept()
 * // ...
 * await fe.close(5_000);                    // open tunnels get 5 s, then are destroyed
 * ```
 */
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import type { FrontendConfig } from '../../config/index.js';
import type { RuntimeBackend } from '../backend.js';
import { Sweep, sweepResolution } from '../io.js';
import { Tunnel } from './tunnel.js';

export interface TcpFrontendOptions {
  readonly config: FrontendConfig;
  readonly backends: ReadonlyMap<string, RuntimeBackend>;
  readonly log: Logger;
}

export interface TcpFrontendCounters {
  /** Client connections accepted. */
  connections: number;
  /** Connections refused at `maxConn` (only counted when this frontend owns its listener). */
  rejected: number;
  /** acceptProxy: connections closed for a missing or invalid PROXY header. */
  proxyHeaderErrors: number;
}

export class TcpFrontend {
  readonly config: FrontendConfig;
  readonly backends: ReadonlyMap<string, RuntimeBackend>;
  readonly log: Logger;
  /** The backend every connection goes to. */
  readonly backend: RuntimeBackend;
  readonly counters: TcpFrontendCounters = { connections: 0, rejected: 0, proxyHeaderErrors: 0 };
  /** Open tunnels (from accept to both sockets closed). */
  readonly clients = new Set<Tunnel>();
  /**
   * Set by a reload, for symmetry with HttpFrontend. Tunnels are never
   * migrated: each finishes on the generation that accepted it (its server
   * slots are shared across generations, so limits still hold).
   */
  successor: TcpFrontend | null = null;
  private server: net.Server | null = null;
  private stopping = false;
  /** Idle and PROXY-header timeouts of the open tunnels: one sweep per frontend (io.ts). */
  private readonly sweep: Sweep<Tunnel>;
  private drained: (() => void) | null = null;

  constructor(opts: TcpFrontendOptions) {
    this.config = opts.config;
    this.backends = opts.backends;
    this.log = opts.log;
    const name = opts.config.backend;
    if (name === undefined) throw new Error(`frontend ${opts.config.name}: mode tcp needs a backend`);
    const backend = opts.backends.get(name);
    if (backend === undefined) throw new Error(`frontend ${opts.config.name}: unknown backend ${name}`);
    this.backend = backend;
    this.sweep = new Sweep(sweepResolution(Math.min(opts.config.timeouts.headers, opts.config.timeouts.idle)), this.clients, (t) => t.onTimeout());
  }

  /**
   * Listens on `config.listen` with its own server (half-open sockets,
   * `maxConn` enforced with a logged refusal); resolves with the bound
   * address. A shared listener may call {@link accept} instead.
   */
  listen(): Promise<AddressInfo> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
    server.maxConnections = this.config.maxConn;
    server.on('drop', (data?: { remoteAddress?: string }) => {
      this.counters.rejected++;
      this.log.warn({ frontend: this.config.name, maxConn: this.config.maxConn, client: data?.remoteAddress }, 'connection refused: frontend maxConn reached');
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.config.listen.host, port: this.config.listen.port }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.error({ err, frontend: this.config.name }, 'listener error'));
        resolve(server.address() as AddressInfo);
      });
    });
  }

  /** Takes over an accepted client connection. */
  accept(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    // Half-close is the point of L4 proxying: a listener created without it still works
    // (the flag is read when the peer's FIN arrives, not at creation).
    socket.allowHalfOpen = true;
    this.counters.connections++;
    this.sweep.ensure();
    const tunnel = new Tunnel(this, socket);
    this.clients.add(tunnel);
    tunnel.start();
  }

  /** Called by a tunnel once both of its sockets are closed. */
  tunnelClosed(tunnel: Tunnel): void {
    this.clients.delete(tunnel);
    if (this.clients.size === 0 && this.drained !== null) this.drained();
  }

  /**
   * Stops accepting; open tunnels keep running until they end or `graceMs`
   * passes, when the rest are destroyed (logged with termination `shutdown`).
   */
  async close(graceMs: number): Promise<void> {
    this.stopping = true;
    const server = this.server;
    // net.Server#close calls back only once every connection is gone, so it is awaited last.
    const closed =
      server === null ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.clients.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          for (const t of [...this.clients]) t.destroy('shutdown');
        }, graceMs);
        this.drained = () => {
          clearTimeout(timer);
          this.drained = null;
          resolve();
        };
      });
    }
    await closed;
  }

  get isStopping(): boolean {
    return this.stopping;
  }
}

/**
 * The composition root: builds a node's roles from a config and owns their
 * lifecycle. Nothing else wires layers together.
 */
import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { CorralConfig } from './config/index.js';
import { RuntimeBackend } from './balancer/backend.js';
import { HttpFrontend } from './balancer/http/proxy.js';
import { CorralError } from './errors.js';
import type { Logger } from './log.js';

export interface NodeOptions {
  readonly config: CorralConfig;
  readonly log: Logger;
}

export interface BoundFrontend {
  readonly name: string;
  readonly address: AddressInfo;
}

/** The key that signs sticky cookies: derived from `cluster.key` when set, else random per start. */
function stickySecret(config: CorralConfig): Buffer {
  const key = config.cluster?.key;
  if (key === undefined || key === '') return randomBytes(32);
  const salt = createHash('sha256').update('corral').digest();
  return Buffer.from(hkdfSync('sha256', key, salt, 'corral sticky cookie v1', 32));
}

export class CorralNode {
  readonly config: CorralConfig;
  readonly log: Logger;
  readonly backends = new Map<string, RuntimeBackend>();
  readonly frontends: HttpFrontend[] = [];
  private bound: BoundFrontend[] = [];

  private constructor(opts: NodeOptions) {
    this.config = opts.config;
    this.log = opts.log;
  }

  /** Builds every role and starts listening. Fails with CORRAL_ERR_LISTEN when an address is taken. */
  static async start(opts: NodeOptions): Promise<CorralNode> {
    const node = new CorralNode(opts);
    await node.startBalancer();
    return node;
  }

  private async startBalancer(): Promise<void> {
    const secret = stickySecret(this.config);
    for (const b of this.config.backends) this.backends.set(b.name, new RuntimeBackend(b, secret));
    for (const f of this.config.frontends) {
      if (f.mode !== 'http') {
        throw new CorralError('CORRAL_ERR_CONFIG', `frontend ${f.name}: mode ${f.mode} is not available in this version`);
      }
      if (f.tls !== undefined) {
        throw new CorralError('CORRAL_ERR_CONFIG', `frontend ${f.name}: tls is not available in this version`);
      }
      this.frontends.push(new HttpFrontend({ config: f, backends: this.backends, log: this.log }));
    }
    try {
      for (const fe of this.frontends) {
        const address = await fe.listen();
        this.bound.push({ name: fe.config.name, address });
        this.log.info({ frontend: fe.config.name, address: `${address.address}:${address.port}` }, 'frontend listening');
      }
    } catch (err) {
      await this.stop(0);
      const e = err as NodeJS.ErrnoException;
      throw new CorralError('CORRAL_ERR_LISTEN', `cannot listen: ${e.message}`, { cause: err });
    }
  }

  /** Addresses the frontends are bound to (port 0 resolved). */
  get addresses(): readonly BoundFrontend[] {
    return this.bound;
  }

  /** Port a frontend listens on. */
  port(frontend: string): number {
    const b = this.bound.find((x) => x.name === frontend);
    if (b === undefined) throw new Error(`no frontend ${frontend}`);
    return b.address.port;
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to `graceMs`,
   * then closes whatever is left.
   */
  async stop(graceMs: number): Promise<void> {
    await Promise.all(this.frontends.map((f) => f.close(graceMs)));
    for (const b of this.backends.values()) b.close();
  }
}

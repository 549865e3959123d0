/**
 * Test farms: real app servers and a real Corral node on 127.0.0.1, port 0.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../src/config/index.js';
import type { CorralConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/log.js';
import type { Logger } from '../../src/log.js';
import { CorralNode } from '../../src/node.js';

export interface Upstream {
  readonly name: string;
  readonly port: number;
  readonly server: net.Server;
  /** Requests seen. */
  hits: number;
  /** Connections accepted. */
  connections: number;
  /** Heads of requests seen, in order. */
  readonly seen: http.IncomingMessage[];
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, up: Upstream) => void;

/** A Node HTTP server that answers with its name (or runs `handler`). */
export async function startUpstream(name: string, handler?: Handler): Promise<Upstream> {
  const server = http.createServer({ keepAliveTimeout: 30_000 });
  const up: Upstream = {
    name,
    port: 0,
    server,
    hits: 0,
    connections: 0,
    seen: [],
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  server.on('connection', () => up.connections++);
  server.on('request', (req, res) => {
    up.hits++;
    up.seen.push(req);
    if (handler !== undefined) {
      handler(req, res, up);
      return;
    }
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(name);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (up as { port: number }).port = (server.address() as AddressInfo).port;
  return up;
}

/** A raw TCP server whose connections are handed to `onSocket` (for misbehaving servers). */
export async function startRawServer(onSocket: (socket: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port on which nothing listens (connections are refused). */
export async function refusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function config(yaml: string): CorralConfig {
  const r = parseConfig(yaml, 'test.yaml', {});
  if (!r.ok) throw new Error(`bad test config:\n${r.problems.map((p) => `${p.line}:${p.col} ${p.message}`).join('\n')}\n${yaml}`);
  return r.config;
}

export interface Farm {
  readonly node: CorralNode;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Starts a node from YAML whose frontends listen on 127.0.0.1:0. */
export async function startNode(yaml: string, log: Logger = silentLogger()): Promise<Farm> {
  const node = await CorralNode.start({ config: config(yaml), log });
  const port = node.addresses[0]?.address.port ?? 0;
  return { node, port, url: `http://127.0.0.1:${port}`, close: () => node.stop(0) };
}

/** A one-backend HTTP farm in front of the given upstream ports. */
export function httpFarmYaml(
  ports: readonly number[],
  backend: string = '',
  servers: (port: number, i: number) => string = (p, i) => `{ name: s${i + 1}, address: 127.0.0.1:${p} }`,
  frontend: string = '',
): string {
  return `
frontends:
  - name: web
    listen: 127.0.0.1:0
    backend: app
${frontend}
backends:
  - name: app
${backend}
    servers:
${ports.map((p, i) => `      - ${servers(p, i)}`).join('\n')}
`;
}

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One request with a keep-alive agent (or `agent: false`). */
export function request(
  url: string,
  opts: {
    method?: string;
    path?: string;
    headers?: http.OutgoingHttpHeaders;
    body?: string | Buffer;
    agent?: http.Agent | false;
    localAddress?: string;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: opts.headers,
        agent: opts.agent ?? false,
        ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Sends raw bytes and collects everything until the peer closes (or `timeoutMs`). */
export function rawExchange(port: number, data: string | Buffer, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    }, timeoutMs);
    socket.on('connect', () => socket.write(data));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (chunks.length > 0) resolve(Buffer.concat(chunks).toString('latin1'));
      else reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

/** Status code of the first response in raw bytes (0 when none). */
export function statusOf(raw: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  return m === null ? 0 : Number(m[1]);
}

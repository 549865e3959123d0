/**
 * Test support for the admin role: a real node with real upstreams and an
 * admin server, all on 127.0.0.1 port 0, and a Server-Sent Events reader.
 * Used by the admin, CLI and e2e tests; not part of the public API.
 */
import http from 'node:http';
import pino from 'pino';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/index.js';
import type { AdminConfig, CorralConfig } from '../config/index.js';
import { silentLogger } from '../log.js';
import type { Logger } from '../log.js';
import { CorralNode } from '../node.js';
import { nodeAdapter } from './admin-node.js';
import type { LocalAdminNode, NodeAdapterOptions } from './admin-node.js';
import { startAdmin } from './admin-server.js';
import type { AdminServer, AdminServerOptions } from './admin-server.js';
import { EventFeed, healthEventSource, mergeSources } from './events.js';
import { LatencyHistograms } from './latency.js';

export function parseTestConfig(yaml: string): CorralConfig {
  const r = parseConfig(yaml, 'test.yaml', {});
  if (!r.ok) throw new Error(`bad test config:\n${r.problems.map((p) => `${p.line}:${p.col} ${p.message}`).join('\n')}\n${yaml}`);
  return r.config;
}

/** A fresh temporary directory. */
export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'corral-admin-'));
}

export interface AdminFarm {
  readonly node: CorralNode;
  readonly adminNode: LocalAdminNode;
  readonly admin: AdminServer;
  readonly feed: EventFeed;
  readonly latency: LatencyHistograms;
  /** Base URL of the balancer's first frontend. */
  readonly lb: string;
  /** Base URL of the admin server. */
  readonly url: string;
  close(): Promise<void>;
}

export interface AdminFarmOptions {
  readonly auth?: AdminConfig['auth'];
  readonly stateFile?: string;
  readonly log?: Logger;
  readonly adapter?: NodeAdapterOptions;
  readonly server?: Partial<Omit<AdminServerOptions, 'config' | 'node' | 'log' | 'events'>>;
}

/** Starts a node from `yaml` (frontends on 127.0.0.1:0) and an admin server on 127.0.0.1:0 in front of it. */
export async function startAdminFarm(yaml: string, opts: AdminFarmOptions = {}): Promise<AdminFarm> {
  const log = opts.log ?? silentLogger();
  const node = await CorralNode.start({ config: parseTestConfig(yaml), log });
  const adminNode = nodeAdapter(node, opts.adapter);
  const feed = new EventFeed();
  const events = mergeSources(feed, healthEventSource(node.healthBus));
  const latency = new LatencyHistograms();
  const config: AdminConfig = { listen: { host: '127.0.0.1', port: 0 }, ...(opts.auth !== undefined ? { auth: opts.auth } : {}) };
  let admin: AdminServer;
  try {
    admin = await startAdmin({
      config,
      node: adminNode,
      log,
      events,
      latency,
      processMetrics: false,
      ...(opts.stateFile !== undefined ? { stateFile: opts.stateFile } : {}),
      ...opts.server,
    });
  } catch (err) {
    await node.stop(0);
    throw err;
  }
  const port = node.addresses[0]?.address.port ?? 0;
  return {
    node,
    adminNode,
    admin,
    feed,
    latency,
    lb: `http://127.0.0.1:${port}`,
    url: admin.url,
    async close() {
      await admin.close();
      await node.stop(0);
    },
  };
}

/** One frame of an event stream. */
export interface SseFrame {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

export interface SseReader {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** Comment lines seen (`: heartbeat`), in order. */
  readonly comments: string[];
  readonly frames: SseFrame[];
  /** Resolves with the first frame (already received or to come) matching `pred`, counting from `from`. */
  next(pred?: (f: SseFrame) => boolean, timeoutMs?: number): Promise<SseFrame>;
  /** Resolves once a comment matching `pred` arrives. */
  comment(pred: (c: string) => boolean, timeoutMs?: number): Promise<string>;
  close(): void;
}

/** Opens an event stream and parses it incrementally (text/event-stream, WHATWG HTML §9.2). */
export function openEventStream(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<SseReader> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
      const frames: SseFrame[] = [];
      const comments: string[] = [];
      const waiters = new Set<() => void>();
      let buf = '';
      let id: string | undefined;
      let event = '';
      let data: string[] = [];
      res.setEncoding('utf8');
      res.on('error', () => undefined);
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) !== -1) {
          const line = buf.slice(0, nl).replace(/\r$/, '');
          buf = buf.slice(nl + 1);
          if (line === '') {
            if (data.length > 0 || event !== '') frames.push({ id, event: event === '' ? 'message' : event, data: data.join('\n') });
            event = '';
            data = [];
            id = undefined;
          } else if (line.startsWith(':')) {
            comments.push(line.slice(1).trim());
          } else {
            const colon = line.indexOf(':');
            const field = colon === -1 ? line : line.slice(0, colon);
            const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'id') id = value;
            else if (field === 'event') event = value;
            else if (field === 'data') data.push(value);
          }
        }
        for (const w of [...waiters]) w();
      });
      const waitFor = <T>(find: () => T | undefined, what: string, timeoutMs: number): Promise<T> => {
        const found = find();
        if (found !== undefined) return Promise.resolve(found);
        return new Promise((res2, rej2) => {
          const check = (): void => {
            const f = find();
            if (f !== undefined) {
              clearTimeout(timer);
              waiters.delete(check);
              res2(f);
            }
          };
          const timer = setTimeout(() => {
            waiters.delete(check);
            rej2(new Error(`no ${what} within ${timeoutMs} ms; frames: ${JSON.stringify(frames)}`));
          }, timeoutMs);
          waiters.add(check);
        });
      };
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        comments,
        frames,
        next: (pred = () => true, timeoutMs = 5_000) => waitFor(() => frames.find(pred), 'matching event', timeoutMs),
        comment: (pred, timeoutMs = 5_000) => waitFor(() => comments.find(pred), 'matching comment', timeoutMs),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

/** `Authorization: Basic …` for a user and password. */
export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** A logger whose JSON lines are kept in memory (for asserting what was logged). */
export function captureLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'info' },
    {
      write(s: string) {
        for (const l of s.split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      },
    },
  );
  return { log, lines };
}

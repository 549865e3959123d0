/**
 * Test helpers: a cluster of peer nodes in this process on 127.0.0.1, port 0.
 */
import { PeerClient, type PeerClientOptions } from './peer-client.js';
import { PeerNode, type PeerNodeOptions } from './peer-node.js';

export const TEST_KEY = 'test-cluster-key-0123456789';

export interface TestCluster {
  readonly nodes: PeerNode[];
  readonly ids: string[];
  client(options?: Partial<PeerClientOptions>): PeerClient;
  close(): Promise<void>;
}

export async function startCluster(n: number, options: Partial<PeerNodeOptions> = {}): Promise<TestCluster> {
  const nodes = Array.from({ length: n }, () => new PeerNode({ listen: { host: '127.0.0.1', port: 0 }, key: TEST_KEY, heartbeatInterval: 100, ...options }));
  const addrs = await Promise.all(nodes.map((x) => x.listen()));
  const ids = addrs.map((a) => `127.0.0.1:${a.port}`);
  await Promise.all(nodes.map((x, i) => x.start(ids, ids[i])));
  const clients: PeerClient[] = [];
  return {
    nodes,
    ids,
    client(o = {}) {
      const c = new PeerClient({ peers: ids, key: TEST_KEY, ...o });
      clients.push(c);
      return c;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(nodes.map((x) => x.close()));
    },
  };
}

/** Polls `pred` every 20 ms until true or `timeoutMs`. */
export async function until(pred: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

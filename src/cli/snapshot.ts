/**
 * `corral snapshot`: a support bundle (SafeKit's "snapshot") as one tar.gz:
 * the config with secrets masked, status, recent events and logs, metrics,
 * and a manifest saying what could not be collected. What can be gathered
 * is written even when some parts fail.
 */
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, parseDocument, visit } from 'yaml';
import { MASK, maskSecrets, maskUrl } from '../admin/mask.js';
import type { AdminClient } from './admin-client.js';
import type { TarEntry } from './tar.js';

/** Masks secrets in YAML text, keeping its layout and comments. */
export function maskYaml(text: string): string {
  const doc = parseDocument(text, { keepSourceTokens: false });
  const secret = /^(password|token|key|secret|passphrase)$|(password|token|secret)$/i;
  visit(doc, {
    Pair(_key, pair, path) {
      if (!isScalar(pair.key) || !isScalar(pair.value)) return;
      const name = String(pair.key.value);
      const parent = path[path.length - 1];
      const tlsKey = name === 'key' && isMap(parent) && parent.has('cert');
      if (secret.test(name) && !tlsKey) pair.value.value = MASK;
    },
    Scalar(_key, node) {
      if (typeof node.value === 'string') {
        const masked = maskUrl(node.value);
        if (masked !== node.value) node.value = masked;
      }
    },
  });
  return doc.toString();
}

export interface SnapshotParts {
  readonly entries: TarEntry[];
  /** What could not be collected, one line each. */
  readonly problems: string[];
  readonly node: string;
}

/** `20250102T030405Z` */
export function compactTime(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

export async function corralVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Collects the bundle's files. `client`: the admin API (null when only a
 * config file is bundled); `configFile`: a local config to include, masked.
 */
export async function collectSnapshot(client: AdminClient | null, configFile: string | undefined, now: Date = new Date()): Promise<SnapshotParts> {
  const problems: string[] = [];
  const files: { name: string; data: string }[] = [];
  let node = 'unknown';
  const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`);
    }
  };
  const pretty = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

  if (client !== null) {
    await attempt('status', async () => {
      const status = await client.status();
      node = status.node;
      files.push({ name: 'status.json', data: pretty(status) });
    });
    // Without status the server is unreachable or refuses us: the rest would fail the same way.
    if (files.length > 0) {
      await attempt('config', async () => files.push({ name: 'config.json', data: pretty(maskSecrets(await client.config())) }));
      await attempt('events', async () => files.push({ name: 'events.json', data: pretty(await client.recentEvents()) }));
      await attempt('logs', async () => {
        const logs = await client.recentLogs();
        if (!logs.available) {
          problems.push('logs: the node does not keep recent log lines (see its stdout)');
          return;
        }
        files.push({ name: 'logs.jsonl', data: logs.lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(maskSecrets(l)))).join('\n') + '\n' });
      });
      await attempt('metrics', async () => files.push({ name: 'metrics.txt', data: await client.metrics() }));
    }
  }
  if (configFile !== undefined) {
    await attempt(`config file ${configFile}`, async () => {
      const text = await readFile(configFile, 'utf8');
      files.push({ name: 'corral.yaml', data: maskYaml(text) });
      if (node === 'unknown') {
        // The admin API did not answer: name the bundle after the config's node.
        const name = (parseDocument(text).toJS() as { node?: { name?: unknown } } | null)?.node?.name;
        if (typeof name === 'string' && name !== '') node = name;
      }
    });
  }

  const dir = `corral-snapshot-${node.replace(/[^A-Za-z0-9._-]/g, '_')}-${compactTime(now)}`;
  const manifest = {
    createdAt: now.toISOString(),
    corral: await corralVersion(),
    node,
    admin: client?.url ?? null,
    configFile: configFile ?? null,
    files: files.map((f) => f.name),
    problems,
    note: 'Secrets (passwords, tokens, keys, URL passwords) are replaced by ***.',
  };
  const entries: TarEntry[] = [
    { name: `${dir}/`, mtime: now },
    { name: `${dir}/manifest.json`, data: pretty(manifest), mtime: now },
    ...files.map((f) => ({ name: `${dir}/${f.name}`, data: f.data, mtime: now })),
  ];
  return { entries, problems, node };
}

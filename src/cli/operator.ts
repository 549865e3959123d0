/**
 * The operator commands, talking to a node's admin API:
 *
 *   corral status                              node, role, cluster, backends and server states
 *   corral servers [--stats] [--exact]         one row per server, like `ipvsadm -L` / `-L --stats`
 *   corral server drain|ready|maint B/S        change a server's administrative state
 *   corral server weight B/S N                 change a server's weight (0..256)
 *   corral snapshot -o FILE [-c corral.yaml]   support bundle (tar.gz, secrets masked)
 *
 * Every command takes `--admin URL` (env CORRAL_ADMIN_URL, default
 * http://127.0.0.1:9010) and credentials from CORRAL_ADMIN_USER +
 * CORRAL_ADMIN_PASSWORD or CORRAL_ADMIN_TOKEN (flags override). Read
 * commands take `--json`. Errors: one line on stderr, exit 1; usage errors
 * exit 2.
 */
import { writeFile } from 'node:fs/promises';
import { Command, CommanderError } from 'commander';
import { age, humanBytes, humanCount, humanDuration } from '../admin/format.js';
import type { AdminState, ChangeResponse, ServerState, ServerStatus, StatusResponse } from '../admin/types.js';
import { ADMIN_STATES } from '../admin/types.js';
import { AdminClient, DEFAULT_ADMIN_URL, parseAdminUrl } from './admin-client.js';
import { collectSnapshot } from './snapshot.js';
import { renderTable, paint, wantColour } from './table.js';
import type { Cell, Colour } from './table.js';
import { tarGz } from './tar.js';

/** Where the commands write, and how they end (tests capture all of it). */
export interface OperatorIo {
  readonly stdout: { write(s: string): unknown; readonly isTTY?: boolean };
  readonly stderr: { write(s: string): unknown };
  readonly env: NodeJS.ProcessEnv;
  setExitCode(code: number): void;
}

export function processIo(): OperatorIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    setExitCode: (code) => {
      process.exitCode = code;
    },
  };
}

/** A command-line mistake: exit 2. */
class UsageError extends Error {}

interface ConnectionOptions {
  readonly admin?: string;
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  readonly timeout?: string;
}

const STATE_COLOUR: Record<ServerState, Colour> = { up: 'green', down: 'red', warming: 'yellow', drain: 'blue', maint: 'grey' };

function clientFrom(opts: ConnectionOptions, env: NodeJS.ProcessEnv): AdminClient {
  const rawUrl = opts.admin ?? env.CORRAL_ADMIN_URL ?? DEFAULT_ADMIN_URL;
  let url: string;
  try {
    url = parseAdminUrl(rawUrl);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const token = opts.token ?? env.CORRAL_ADMIN_TOKEN;
  const user = opts.user ?? env.CORRAL_ADMIN_USER;
  const password = opts.password ?? env.CORRAL_ADMIN_PASSWORD;
  if (token === undefined && user !== undefined && user !== '' && password === undefined) {
    throw new UsageError('a user name without a password: set CORRAL_ADMIN_PASSWORD (or --password)');
  }
  const timeoutMs = opts.timeout === undefined ? 10_000 : Number(opts.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout: expected milliseconds, got ${opts.timeout}`);
  return new AdminClient({
    url,
    ...(token !== undefined && token !== '' ? { token } : {}),
    ...(user !== undefined && user !== '' ? { user, password: password ?? '' } : {}),
    timeoutMs,
  });
}

/** `BACKEND/SERVER` → its two names. */
export function parseTarget(raw: string): { backend: string; server: string } {
  const slash = raw.indexOf('/');
  const backend = raw.slice(0, slash);
  const server = raw.slice(slash + 1);
  if (slash <= 0 || server === '' || server.includes('/')) throw new UsageError(`expected BACKEND/SERVER (e.g. app/app1), got "${raw}"`);
  return { backend, server };
}

function stateCell(s: ServerState, colour: boolean): Cell {
  return colour ? { text: s, colour: STATE_COLOUR[s] } : s;
}

function weightText(s: ServerStatus): string {
  return `${s.weight}${s.weightSource === 'runtime' ? '*' : ''}`;
}

/** `corral servers`: one row per server, like `ipvsadm -L`. */
export function formatServers(status: StatusResponse, colour: boolean): string {
  const rows: Cell[][] = [];
  for (const b of status.backends) {
    for (const s of b.servers) {
      rows.push([b.name, s.name + (s.backup ? ' (backup)' : ''), s.address, stateCell(s.state, colour), weightText(s), s.effectiveWeight, s.active, s.inactive]);
    }
  }
  const table = renderTable(
    [
      { header: 'BACKEND' },
      { header: 'SERVER' },
      { header: 'ADDRESS' },
      { header: 'STATE' },
      { header: 'WEIGHT', align: 'right' },
      { header: 'EFF', align: 'right' },
      { header: 'ACTIVE', align: 'right' },
      { header: 'INACTIVE', align: 'right' },
    ],
    rows,
    colour,
  );
  const runtime = status.backends.some((b) => b.servers.some((s) => s.weightSource === 'runtime'));
  return table + (runtime ? paint('* weight set at run time (persisted)\n', 'grey', colour) : '');
}

/**
 * `corral servers --stats`: traffic counters per server, like `ipvsadm -L --stats`.
 * CONNS: connections opened to the server; REQUESTS: requests (HTTP) or
 * connections (TCP) dispatched to it, retries included.
 */
export function formatServerStats(status: StatusResponse, colour: boolean, exact: boolean): string {
  const n = (v: number): string => (exact ? String(v) : humanCount(v));
  const rows: Cell[][] = [];
  for (const b of status.backends) {
    for (const s of b.servers) {
      rows.push([b.name, s.name, stateCell(s.state, colour), s.connects === null ? '-' : n(s.connects), n(s.total), n(s.responses['5xx']), n(s.failures), n(s.retries), n(s.bytesIn), n(s.bytesOut)]);
    }
  }
  return renderTable(
    [
      { header: 'BACKEND' },
      { header: 'SERVER' },
      { header: 'STATE' },
      { header: 'CONNS', align: 'right' },
      { header: 'REQUESTS', align: 'right' },
      { header: '5XX', align: 'right' },
      { header: 'FAILURES', align: 'right' },
      { header: 'RETRIES', align: 'right' },
      { header: 'INBYTES', align: 'right' },
      { header: 'OUTBYTES', align: 'right' },
    ],
    rows,
    colour,
  );
}

/** `corral status`: who the node is, then each backend with its servers. */
export function formatStatus(status: StatusResponse, colour: boolean, now: number = Date.now()): string {
  const out: string[] = [];
  const roleWord = status.role === 'primary' ? 'ACTIVE' : 'STANDBY';
  out.push(
    `node ${paint(status.node, 'bold', colour)}  role ${status.role} (${paint(roleWord, status.role === 'primary' ? 'green' : 'yellow', colour)})  generation ${status.generation}  up ${humanDuration(now - Date.parse(status.startedAt))}`,
  );
  out.push(`cluster ${status.cluster.members.map((m) => `${m.name} (${m.role}${m.self ? ', this node' : ''})`).join(', ')}`);
  if (status.frontends.length > 0) {
    out.push('');
    out.push(
      renderTable(
        [{ header: 'FRONTEND' }, { header: 'LISTEN' }, { header: 'MODE' }, { header: 'BACKEND' }, { header: 'OPEN', align: 'right' }, { header: 'CONNS', align: 'right' }, { header: 'REQUESTS', align: 'right' }],
        status.frontends.map((f) => [f.name, f.listen, f.mode, f.backend ?? '(routes)', f.current, f.connections, f.requests ?? '-']),
        colour,
      ).trimEnd(),
    );
  }
  for (const b of status.backends) {
    const up = b.servers.filter((s) => s.state === 'up').length;
    out.push('');
    out.push(`backend ${paint(b.name, 'bold', colour)} (${b.balance}): ${up}/${b.servers.length} up, queue ${b.queueLength}`);
    out.push(
      renderTable(
        [{ header: 'SERVER' }, { header: 'ADDRESS' }, { header: 'STATE' }, { header: 'WEIGHT', align: 'right' }, { header: 'ACTIVE', align: 'right' }, { header: 'CHECK' }, { header: 'CHANGED' }],
        b.servers.map((s) => [
          s.name + (s.backup ? ' (backup)' : ''),
          s.address,
          stateCell(s.state, colour),
          weightText(s),
          s.active,
          s.check === null ? '-' : `${s.check.last ?? s.check.reason}${s.check.durationMs === null ? '' : ` ${Math.round(s.check.durationMs)}ms`}`,
          `${age(s.lastChange, now)} ago`,
        ]),
        colour,
        '  ',
      ).trimEnd(),
    );
  }
  return `${out.join('\n')}\n`;
}

function describeChange(c: ChangeResponse, kind: 'state' | 'weight'): string {
  const target = `${c.backend}/${c.server}`;
  if (kind === 'weight') {
    if (!c.changed) return `${target}: weight already ${c.to}`;
    return `${target}: weight ${c.to} (was ${c.from}; effective ${c.status.effectiveWeight})`;
  }
  if (!c.changed) return `${target}: already ${c.to} (state ${c.status.state})`;
  return `${target}: ${c.to} (state ${c.previousState} → ${c.status.state})`;
}

export function registerOperatorCommands(program: Command, io: OperatorIo = processIo()): void {
  const withConnection = (cmd: Command): Command =>
    cmd
      .option('--admin <url>', `admin API URL (env CORRAL_ADMIN_URL; default ${DEFAULT_ADMIN_URL})`)
      .option('--user <name>', 'Basic auth user (env CORRAL_ADMIN_USER)')
      .option('--password <password>', 'Basic auth password (env CORRAL_ADMIN_PASSWORD; prefer the env: flags show in ps)')
      .option('--token <token>', 'bearer token (env CORRAL_ADMIN_TOKEN)')
      .option('--timeout <ms>', 'give up after this many milliseconds', '10000');

  /** Runs an action: one line on stderr and exit 1 on failure; usage errors go to commander (exit 2). */
  const run =
    (fn: (opts: Record<string, unknown>, cmd: Command, args: string[]) => Promise<void>) =>
    async (...received: unknown[]): Promise<void> => {
      const cmd = received[received.length - 1] as Command;
      const opts = cmd.opts();
      const args = received.slice(0, -2).map(String);
      try {
        await fn(opts, cmd, args);
        io.setExitCode(0);
      } catch (err) {
        if (err instanceof CommanderError) throw err;
        if (err instanceof UsageError) cmd.error(`error: ${err.message}`, { exitCode: 2, code: 'corral.usage' });
        const debug = cmd.optsWithGlobals().debug === true;
        const e = err as Error;
        io.stderr.write(`corral: ${debug ? (e.stack ?? e.message) : e.message.split('\n')[0]}\n`);
        io.setExitCode(1);
      }
    };
  const colour = (): boolean => wantColour(io.stdout, io.env);
  const client = (opts: Record<string, unknown>): AdminClient => clientFrom(opts as ConnectionOptions, io.env);
  const printJson = (v: unknown): void => {
    io.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
  };

  withConnection(program.command('status'))
    .description('the node: role, cluster members, backends and their servers\' states')
    .option('--json', 'print the API\'s JSON')
    .action(
      run(async (opts) => {
        const status = await client(opts).status();
        if (opts.json === true) printJson(status);
        else io.stdout.write(formatStatus(status, colour()));
      }),
    );

  withConnection(program.command('servers'))
    .description('one row per server, like ipvsadm -L (--stats: like ipvsadm -L --stats)')
    .option('--stats', 'traffic counters: connections, requests, failures, bytes')
    .option('--exact', 'exact numbers instead of K/M/G')
    .option('--json', 'print the servers as JSON')
    .action(
      run(async (opts) => {
        const status = await client(opts).status();
        if (opts.json === true) {
          printJson(status.backends.flatMap((b) => b.servers.map((s) => ({ backend: b.name, ...s }))));
          return;
        }
        io.stdout.write(opts.stats === true ? formatServerStats(status, colour(), opts.exact === true) : formatServers(status, colour()));
      }),
    );

  const server = program.command('server').description('change a server at run time (persisted across reload and restart)');
  const help: Record<AdminState, string> = {
    drain: 'no new clients; sticky clients keep it until idle; in-flight work finishes',
    ready: 'back to normal: takes new clients again',
    maint: 'no traffic at all (pinned clients move elsewhere)',
  };
  for (const state of ADMIN_STATES) {
    withConnection(server.command(`${state} <backend/server>`))
      .description(help[state])
      .option('--json', 'print the API\'s JSON answer')
      .action(
        run(async (opts, _cmd, [target]) => {
          const { backend, server: name } = parseTarget(target as string);
          const c = await client(opts).setState(backend, name, state);
          if (opts.json === true) printJson(c);
          else io.stdout.write(`${describeChange(c, 'state')}\n`);
        }),
      );
  }
  withConnection(server.command('weight <backend/server> <weight>'))
    .description('set a server\'s weight (0..256; the configured weight clears the override)')
    .option('--json', 'print the API\'s JSON answer')
    .action(
      run(async (opts, _cmd, [target, weight]) => {
        const { backend, server: name } = parseTarget(target as string);
        if (!/^\d+$/.test(weight as string)) throw new UsageError(`weight must be a whole number from 0 to 256, got "${weight}"`);
        const c = await client(opts).setWeight(backend, name, Number(weight));
        if (opts.json === true) printJson(c);
        else io.stdout.write(`${describeChange(c, 'weight')}\n`);
      }),
    );

  withConnection(program.command('snapshot'))
    .description('write a support bundle (tar.gz): config with secrets masked, status, recent events and logs, metrics')
    .requiredOption('-o, --output <file>', 'where to write the .tar.gz')
    .option('-c, --config <file>', 'also bundle this config file (secrets masked)')
    .action(
      run(async (opts) => {
        const output = opts.output as string;
        const parts = await collectSnapshot(client(opts), opts.config as string | undefined);
        const files = parts.entries.filter((e) => !e.name.endsWith('/') && !e.name.endsWith('/manifest.json'));
        if (files.length === 0) throw new Error(`snapshot: nothing could be collected: ${parts.problems.join('; ')}`);
        const archive = tarGz(parts.entries);
        await writeFile(output, archive, { mode: 0o600 });
        for (const p of parts.problems) io.stderr.write(`corral snapshot: warning: ${p}\n`);
        io.stdout.write(`wrote ${output} (${humanBytes(archive.length)}): ${files.map((f) => f.name.slice(f.name.indexOf('/') + 1)).join(', ')}\n`);
      }),
    );
}

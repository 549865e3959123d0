/**
 * Agents report a server's load (thin shells; the reply is parsed by
 * `agent-reply.ts`):
 * - `agent.port`: HAProxy's agent-check. Connect to the server's check host
 *   on that port; the agent answers one line and may close.
 * - `agent.command`: LVS's `load_monitor`. Run a local command per server
 *   (through `/bin/sh -c`) with `CORRAL_BACKEND`, `CORRAL_SERVER_NAME`,
 *   `CORRAL_SERVER_ADDRESS` (host) and `CORRAL_SERVER_PORT` in its
 *   environment; its standard output is the reply.
 * Both are bounded: one deadline, at most `MAX_AGENT_REPLY` bytes kept, and a
 * command that overstays is killed with its whole process group.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { MAX_AGENT_REPLY } from './agent-reply.js';
import { probe, type ProbeTarget } from './probe.js';
import { formatReason } from './reasons.js';

export type AgentPoll =
  | { readonly ok: true; readonly text: string; readonly durationMs: number }
  | { readonly ok: false; readonly error: string; readonly durationMs: number };

/** Asks an agent listening on a TCP port. Never rejects. */
export async function pollAgentPort(target: ProbeTarget, timeoutMs: number, signal?: AbortSignal): Promise<AgentPoll> {
  let text = '';
  const outcome = await probe<string>(target, {
    timeoutMs,
    ...(signal !== undefined ? { signal } : {}),
    reader: {
      data(chunk) {
        text += chunk.toString('latin1');
        const nl = text.indexOf('\n');
        if (nl >= 0) return text.slice(0, nl + 1);
        if (text.length >= MAX_AGENT_REPLY) return text.slice(0, MAX_AGENT_REPLY);
        return undefined;
      },
      end: () => text,
    },
  });
  if (!outcome.ok) return { ok: false, error: formatReason(outcome.reason), durationMs: outcome.durationMs };
  return { ok: true, text: outcome.value ?? '', durationMs: outcome.durationMs };
}

export interface AgentCommandServer {
  readonly backend: string;
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

/** Runs an agent command for one server. Never rejects. */
export function runAgentCommand(command: string, server: AgentCommandServer, timeoutMs: number, signal?: AbortSignal): Promise<AgentPoll> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    let out = '';
    let done = false;
    let exited = false;
    const child = spawn('/bin/sh', ['-c', command], {
      env: {
        ...process.env,
        CORRAL_BACKEND: server.backend,
        CORRAL_SERVER_NAME: server.name,
        CORRAL_SERVER_ADDRESS: server.host,
        CORRAL_SERVER_PORT: String(server.port),
      },
      stdio: ['ignore', 'pipe', 'ignore'],
      // Its own process group, so a timeout kills what it started too.
      detached: true,
    });
    /** Kills the command's process group (what it started in the background too). */
    const kill = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        if (!exited) child.kill('SIGKILL');
      }
    };
    const finish = (poll: AgentPoll, overstayed = false): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (overstayed) kill();
      resolve(poll);
    };
    const onAbort = (): void => finish({ ok: false, error: 'aborted', durationMs: elapsed() }, true);
    const timer = setTimeout(() => finish({ ok: false, error: `no reply within ${timeoutMs}ms`, durationMs: elapsed() }, true), timeoutMs);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted === true) onAbort();
    child.stdout!.on('data', (chunk: Buffer) => {
      // Keep reading past the limit (so the command is never blocked on a full pipe) but keep nothing more.
      if (out.length < MAX_AGENT_REPLY) out += chunk.toString('utf8').slice(0, MAX_AGENT_REPLY - out.length);
    });
    child.on('error', (err) => finish({ ok: false, error: err.message, durationMs: elapsed() }));
    child.on('exit', () => {
      exited = true;
    });
    child.on('close', (code, sig) => {
      exited = true;
      if (code === 0) finish({ ok: true, text: out, durationMs: elapsed() });
      else finish({ ok: false, error: sig !== null ? `killed by ${sig}` : `exited with code ${code}`, durationMs: elapsed() });
    });
  });
}

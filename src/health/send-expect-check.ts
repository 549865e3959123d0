/**
 * The `send-expect` check (LVS nanny's `send`/`expect`): write a string,
 * then the reply must contain a text or match a pattern within the timeout.
 * At most `maxReply` bytes (64 KiB) are looked at.
 */
import { probe, type ProbeTarget, type Reader } from './probe.js';
import type { CheckResult, Reason } from './reasons.js';

export interface SendExpectOptions {
  /** Bytes written once connected (none: read the server's banner). */
  readonly send?: string;
  /** What the reply must contain (none: connecting and sending suffice). */
  readonly expect?: string | RegExp;
  readonly timeoutMs: number;
  readonly maxReply?: number;
}

export const DEFAULT_MAX_REPLY = 64 * 1024;

const show = (e: string | RegExp): string => (typeof e === 'string' ? JSON.stringify(e.slice(0, 40)) : String(e));

/** The reply side as a `Reader`. */
export function expectReader(expect: string | RegExp, maxReply = DEFAULT_MAX_REPLY): Reader<Reason> {
  const needle = typeof expect === 'string' ? Buffer.from(expect, 'utf8') : undefined;
  let reply: Buffer = Buffer.alloc(0);
  const matches = (): boolean => {
    if (needle !== undefined) return reply.indexOf(needle) >= 0;
    const re = expect as RegExp;
    re.lastIndex = 0;
    return re.test(reply.toString('utf8'));
  };
  return {
    data(chunk) {
      reply = Buffer.concat([reply, chunk.subarray(0, maxReply - reply.length)]);
      if (matches()) return { code: 'L7_OK' };
      if (reply.length >= maxReply) return { code: 'L7_EXPECT', detail: `no ${show(expect)} in the first ${maxReply} bytes` };
      return undefined;
    },
    end() {
      return { code: 'L7_EXPECT', detail: `closed without ${show(expect)} in ${reply.length} bytes` };
    },
  };
}

/** Runs one send-expect check. Never rejects. */
export async function sendExpectCheck(target: ProbeTarget, opts: SendExpectOptions, signal?: AbortSignal): Promise<CheckResult> {
  const outcome = await probe(target, {
    timeoutMs: opts.timeoutMs,
    ...(opts.send !== undefined ? { send: opts.send } : {}),
    ...(opts.expect !== undefined ? { reader: expectReader(opts.expect, opts.maxReply) } : {}),
    ...(signal !== undefined ? { signal } : {}),
  });
  if (!outcome.ok) return { reason: outcome.reason, durationMs: outcome.durationMs };
  return { reason: outcome.value ?? { code: 'L4_OK' }, durationMs: outcome.durationMs };
}

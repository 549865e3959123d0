/** The `tcp` check: a connection established within the timeout passes (L4_OK). */
import { probe, type ProbeTarget } from './probe.js';
import type { CheckResult } from './reasons.js';

/** Connects, then closes at once. Never rejects. */
export async function tcpCheck(target: ProbeTarget, opts: { readonly timeoutMs: number }, signal?: AbortSignal): Promise<CheckResult> {
  // A TCP check does not speak TLS: L4 only, even for a `tls` server.
  const plain: ProbeTarget = { host: target.host, port: target.port };
  const outcome = await probe(plain, { timeoutMs: opts.timeoutMs, ...(signal !== undefined ? { signal } : {}) });
  return { reason: outcome.ok ? { code: 'L4_OK' } : outcome.reason, durationMs: outcome.durationMs };
}

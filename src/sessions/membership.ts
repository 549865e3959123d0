/**
 * Who is in the session cluster and who is live. The `peer` store only
 * reads this interface; today it is backed by the static peer list and
 * heartbeats (PeerLinks), later by the cluster role.
 */
export interface Membership {
  /** This node's id; undefined for a client. */
  readonly self: string | undefined;
  /** Every member of the ring, live or not. */
  readonly members: readonly string[];
  isLive(id: string): boolean;
  /** Calls `listener` after any liveness change; returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/** `host:port` (IPv6 in brackets) → parts. */
export function splitId(id: string): { host: string; port: number } {
  const i = id.lastIndexOf(':');
  let host = id.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(id.slice(i + 1)) };
}

export function joinId(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

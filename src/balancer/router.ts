/**
 * Routes a request to a backend by host and path prefix; first match wins,
 * then the frontend's default backend.
 */

export interface Route<T> {
  /** Exact host (case-insensitive), or `*.example.com` for any subdomain. Absent: any host. */
  readonly host?: string | undefined;
  /** Path prefix (`/v1` matches `/v1`, `/v1/…`, `/v1?…`, not `/v10`). Absent: any path. */
  readonly pathPrefix?: string | undefined;
  readonly target: T;
}

interface CompiledRoute<T> {
  readonly exact: string | null;
  readonly suffix: string | null;
  readonly prefix: string | null;
  readonly target: T;
}

export class Router<T> {
  private readonly routes: readonly CompiledRoute<T>[];
  private readonly fallback: T | undefined;

  constructor(routes: readonly Route<T>[], fallback: T | undefined) {
    this.routes = routes.map((r) => {
      const host = r.host?.toLowerCase();
      const wildcard = host !== undefined && host.startsWith('*.');
      let prefix = r.pathPrefix ?? null;
      if (prefix !== null && prefix.length > 1 && prefix.endsWith('/')) prefix = prefix.slice(0, -1);
      return {
        exact: host !== undefined && !wildcard ? host : null,
        suffix: wildcard ? (host as string).slice(1) : null,
        prefix: prefix === '/' ? null : prefix,
        target: r.target,
      };
    });
    this.fallback = fallback;
  }

  /** `hostname`: lower-case without port; `path`: the request target. */
  match(hostname: string, path: string): T | undefined {
    for (const r of this.routes) {
      if (r.exact !== null && r.exact !== hostname) continue;
      if (r.suffix !== null && !(hostname.endsWith(r.suffix) && hostname.length > r.suffix.length)) continue;
      if (r.prefix !== null) {
        if (!path.startsWith(r.prefix)) continue;
        const next = path.charCodeAt(r.prefix.length);
        // Segment boundary: end, '/', '?' or '#'.
        if (!(Number.isNaN(next) || next === 47 || next === 63 || next === 35)) continue;
      }
      return r.target;
    }
    return this.fallback;
  }
}

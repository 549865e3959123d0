/**
 * Small formatting helpers shared by the stats page and the operator
 * commands: byte counts like `ipvsadm` prints them, ages, HTML escaping.
 */

/** `1234` → `1234`, `12345` → `12K`, `3456789` → `3M` (ipvsadm's rounding: K/M/G/T, base 1000). */
export function humanCount(n: number): string {
  const units = ['', 'K', 'M', 'G', 'T', 'P'];
  let v = n;
  let i = 0;
  while (v >= 10_000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Math.round(v)}${units[i]}`;
}

/** Bytes in binary units: `512B`, `1.5KiB`, `20MiB`. */
export function humanBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[i]}`;
}

/** Milliseconds as `850ms`, `12s`, `3m12s`, `2h5m`, `3d4h`. */
export function humanDuration(ms: number): string {
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${m % 60}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

/** Time since an ISO timestamp, from `now` (ms). */
export function age(iso: string, now: number): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '?' : humanDuration(now - t);
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string);
}

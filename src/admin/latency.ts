/**
 * Latency histograms filled on the hot path with no allocation and no
 * metrics-library call: a fixed bucket array per server, bumped in place.
 * `/metrics` reads them at scrape time.
 */

/**
 * What the proxy calls once per exchange. The balancer declares the same
 * interface on its side (structural typing makes them one); admin
 * implements it.
 */
export interface LatencyRecorder {
  observe(backend: string, server: string, seconds: number): void;
}

/** Upper bounds in seconds (Prometheus `le`), plus the implicit +Inf. */
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

interface Series {
  /** Non-cumulative counts: counts[i] for bucket i, counts[buckets.length] for +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** One server's histogram as read at scrape time (bucket counts cumulative, as Prometheus wants). */
export interface HistogramSnapshot {
  readonly backend: string;
  readonly server: string;
  /** Same length as the bucket list, cumulative; the +Inf bucket is `count`. */
  readonly cumulative: readonly number[];
  readonly sum: number;
  readonly count: number;
}

export class LatencyHistograms implements LatencyRecorder {
  readonly buckets: readonly number[];
  /** backend → server → series; two lookups, no key string built per observation. */
  private readonly series = new Map<string, Map<string, Series>>();

  constructor(buckets: readonly number[] = LATENCY_BUCKETS) {
    this.buckets = buckets;
  }

  observe(backend: string, server: string, seconds: number): void {
    let byServer = this.series.get(backend);
    if (byServer === undefined) {
      byServer = new Map();
      this.series.set(backend, byServer);
    }
    let s = byServer.get(server);
    if (s === undefined) {
      s = { counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
      byServer.set(server, s);
    }
    const b = this.buckets;
    let i = 0;
    while (i < b.length && seconds > (b[i] as number)) i++;
    s.counts[i] = (s.counts[i] as number) + 1;
    s.sum += seconds;
    s.count++;
  }

  snapshot(): HistogramSnapshot[] {
    const out: HistogramSnapshot[] = [];
    for (const [backend, byServer] of this.series) {
      for (const [server, s] of byServer) {
        const cumulative: number[] = [];
        let acc = 0;
        for (let i = 0; i < this.buckets.length; i++) {
          acc += s.counts[i] as number;
          cumulative.push(acc);
        }
        out.push({ backend, server, cumulative, sum: s.sum, count: s.count });
      }
    }
    return out;
  }
}

/**
 * The request loop of the network benchmarks (bench/http-signing.ts, bench/jsonrpc-signing.ts): `concurrency` workers
 * send requests back to back until `total` have been sent, each request timed on its own; the run's latency
 * percentiles and throughput; the scripts' Markdown table row for a run. The scripts print their figures (these
 * RequestStats) as JSON on their last line, which bench/lib/network.ts parses for bench/run.ts.
 */

export interface RequestStats {
  count: number;
  /** Wall time of the whole run: count / seconds is its throughput. */
  seconds: number;
  /** Latencies in milliseconds. */
  p50: number;
  p99: number;
  max: number;
}

export function latencyStats(latencies: number[], seconds: number): RequestStats {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { count: sorted.length, seconds, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? NaN };
}

export interface RequestLoop<T> {
  concurrency: number;
  /** Requests in the run, numbered 0 to total - 1 in the order the workers take them. */
  total: number;
  /** Request n's input, made before its clock starts (e.g. a fresh duty and its hash); none when left out. */
  prepare?: (n: number, worker: number) => T;
  /** One request; its latency is the time this takes. */
  request: (n: number, worker: number, prepared: T) => Promise<void>;
}

export async function runRequests<T = undefined>({ concurrency, total, prepare, request }: RequestLoop<T>): Promise<RequestStats> {
  const latencies: number[] = [];
  let issued = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (;;) {
        const n = issued++;
        if (n >= total) return;
        const prepared = prepare?.(n, worker) as T;
        const t0 = performance.now();
        await request(n, worker, prepared);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return latencyStats(latencies, (performance.now() - started) / 1000);
}

/** Unmeasured requests before the measured runs, so that JIT, connection pools and prepared statements are warm. */
export async function warmUp(total: number, request: (n: number, worker: number) => Promise<void>): Promise<void> {
  await runRequests({ concurrency: 4, total, request });
}

export const ms = (value: number): string => `${value.toFixed(2)} ms`;

export interface RowOptions {
  /** What the count counts (`duties`, `calls`); a bare number when left out. */
  counted?: string;
  /** Throughput unit; `req/s` when left out. */
  rate?: string;
  /** Adds the max latency column. */
  max?: boolean;
}

/** `| label | concurrency | n | throughput | p50 | p99 |`, with ` max |` when asked: one run's row in the scripts' tables. */
export function statsRow(label: string, concurrency: number | string, s: RequestStats, options: RowOptions = {}): string {
  const cells = [
    label,
    concurrency,
    options.counted ? `${s.count} ${options.counted}` : s.count,
    `${(s.count / s.seconds).toFixed(0)} ${options.rate ?? 'req/s'}`,
    ms(s.p50),
    ms(s.p99),
    ...(options.max ? [ms(s.max)] : []),
  ];
  return `| ${cells.join(' | ')} |`;
}

/**
 * Scale: (a) validator keys served by one group (1, 10, 100, 1,000 addresses the duties rotate over); (b) stored
 * history: the same table grown from 1 thousand to 1 million to 10 million signed duties, measured with pruning off
 * and on (on: every validator has a low watermark and a prune round, deleting an old slice of the same size at every
 * table size, runs during the measurement), with the plans of the hot statements at each size.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type BenchPostgres } from './postgres.ts';
import { BENCH_FIRST_SLOT, LOADED_VALIDATORS, loadHistory, loadOldSlice, tableSize } from './bulk.ts';
import { type CoreCell, summarize } from './core.ts';
import { explainHotStatements, type Plan } from './plans.ts';
import { ourNode } from './nodes.ts';
import { type RunResult, runScenario, signingLoop } from './scenario.ts';
import { percentile, type Spread, spread } from './stats.ts';

/**
 * Rows per validator in the old slice a pruning-on measurement deletes: 10,000 rows in all, at every table size. A
 * prune round deletes what aged out since the last round (a function of the signing rate, not of the table size),
 * so the baseline and the grown table get the same prune work and the comparison isolates the table size.
 */
export const PRUNE_SLICE_PER_VALIDATOR = 100;

export interface ScaleOptions {
  repeats: number;
  warmupMs: number;
  measureMs: number;
  /** Stored history, pruning on: rows per validator in the old slice each measurement prunes (default PRUNE_SLICE_PER_VALIDATOR). */
  pruneSlicePerValidator?: number;
  log?: (line: string) => void;
}

export async function runKeyScale(
  server: BenchPostgres,
  keyCounts: number[],
  concurrencies: number[],
  options: ScaleOptions,
): Promise<CoreCell[]> {
  const cells: CoreCell[] = [];
  for (const concurrency of concurrencies) {
    for (const validators of keyCounts) {
      const runs: RunResult[] = [];
      for (let repeat = 0; repeat < options.repeats; repeat++) {
        runs.push(
          await runScenario(server, {
            impl: 'ha-signer',
            nodes: 1,
            concurrency,
            validators,
            warmupMs: options.warmupMs,
            measureMs: options.measureMs,
          }),
        );
      }
      const cell = { ...summarize('ha-signer', 1, concurrency, runs), validators };
      options.log?.(
        `keys ${validators} c=${concurrency}: ${cell.dutiesPerSecond.median.toFixed(0)} duties/s, p50 ${cell.p50.median.toFixed(2)} p99 ${cell.p99.median.toFixed(2)} ms`,
      );
      cells.push(cell);
    }
  }
  return cells;
}

export interface StoredCell {
  /** Rows when the measurements of this cell began (the benchmark's own duties add to it as it runs). */
  storedDuties: number;
  tableBytes: number;
  pruning: boolean;
  concurrency: number;
  /** For a baseline cell: the size of the grown table it was measured alongside (alternating, repeat by repeat). */
  baselineFor?: number;
  dutiesPerSecond: Spread;
  /** Per measured window: the median over repeats and the range. */
  p50: Spread;
  p99: Spread;
  /**
   * Percentiles of every duty of every repeat taken together. At concurrency 32 the slow tail comes in stalls that
   * hold all 32 duties in flight at once, so one window's p99 rests on about ten such stalls; pooling the repeats
   * rests it on five times as many, which is what the size comparison uses. (Absent from results before it.)
   */
  pooled?: { duties: number; p50: number; p99: number };
  /** Pruning on: rows the concurrent prune round deleted (median) and how long it took (median). */
  pruned?: number;
  pruneSeconds?: number;
}

export interface StoredScale {
  cells: StoredCell[];
  loadSeconds: Record<string, number>;
  plans: Record<string, Plan[]>;
}

interface Sample {
  dps: number;
  /** Every measured duty's latency, ascending. */
  latencies: number[];
  pruned?: number;
  pruneSeconds?: number;
}

/**
 * One measurement on a table: a node (pruning on: with a prune round over a freshly added old slice, started when
 * the measured window opens, so its batches fall inside the window rather than in the warm-up).
 */
async function measure(
  url: string,
  pruning: boolean,
  concurrency: number,
  slice: number,
  firstSlot: number,
  options: ScaleOptions,
): Promise<{ sample: Sample; signed: number }> {
  const node = await ourNode({ url, nodeId: `stored-${slice}`, ...(pruning ? { pruneAfterHours: 1 } : {}) });
  let prune: Promise<void> | undefined;
  const sample: Partial<Sample> = {};
  try {
    if (pruning) {
      await loadOldSlice(url, slice, options.pruneSlicePerValidator ?? PRUNE_SLICE_PER_VALIDATOR);
      prune = sleep(options.warmupMs).then(async () => {
        const t0 = performance.now();
        sample.pruned = await node.prune(3_600_000);
        sample.pruneSeconds = (performance.now() - t0) / 1000;
      });
    }
    const loop = await signingLoop({
      nodes: [node],
      concurrency,
      validators: LOADED_VALIDATORS,
      firstSlot,
      warmupMs: options.warmupMs,
      measureMs: options.measureMs,
    });
    await prune;
    return {
      sample: { ...sample, dps: loop.duties / loop.seconds, latencies: loop.latencies },
      signed: loop.signedTotal,
    };
  } finally {
    await node.stop();
  }
}

function storedCell(storedDuties: number, tableBytes: number, pruning: boolean, concurrency: number, samples: Sample[]): StoredCell {
  const pruned = samples.map((x) => x.pruned).filter((x): x is number => x !== undefined);
  const pruneSeconds = samples.map((x) => x.pruneSeconds).filter((x): x is number => x !== undefined);
  const pooled = samples.flatMap((x) => x.latencies).sort((a, b) => a - b);
  return {
    storedDuties,
    tableBytes,
    pruning,
    concurrency,
    dutiesPerSecond: spread(samples.map((x) => x.dps)),
    p50: spread(samples.map((x) => percentile(x.latencies, 50))),
    p99: spread(samples.map((x) => percentile(x.latencies, 99))),
    pooled: { duties: pooled.length, p50: percentile(pooled, 50), p99: percentile(pooled, 99) },
    ...(pruned.length ? { pruned: spread(pruned).median, pruneSeconds: spread(pruneSeconds).median } : {}),
  };
}

/**
 * The grown table is measured at each size; at every size after the first, each repeat also measures a fresh
 * table of the first size right before it (a baseline taken under the same machine conditions), so "10 million vs
 * 1 thousand" compares runs taken back to back rather than minutes apart.
 */
export async function runStoredScale(
  server: BenchPostgres,
  sizes: number[],
  concurrencies: number[],
  options: ScaleOptions,
): Promise<StoredScale> {
  const db = await server.freshDatabase('stored');
  const cells: StoredCell[] = [];
  const loadSeconds: Record<string, number> = {};
  const plans: Record<string, Plan[]> = {};
  const baseSize = sizes[0]!;
  let loaded = 0;
  let nextSlot = BENCH_FIRST_SLOT;
  let slice = 1;
  const log = (label: string, cell: StoredCell): void =>
    options.log?.(
      `${label} ${cell.storedDuties.toLocaleString('en-US')} pruning ${cell.pruning ? 'on ' : 'off'} c=${cell.concurrency}: ` +
        `${cell.dutiesPerSecond.median.toFixed(0)} duties/s, p50 ${cell.p50.median.toFixed(2)} p99 ${cell.p99.median.toFixed(2)} ms ` +
        `(all ${cell.pooled?.duties} duties: p50 ${cell.pooled?.p50.toFixed(2)} p99 ${cell.pooled?.p99.toFixed(2)} ms)` +
        `${cell.pruned !== undefined ? `, prune deleted ${cell.pruned} in ${cell.pruneSeconds?.toFixed(2)} s` : ''}`,
    );
  try {
    for (const [stage, size] of sizes.entries()) {
      loadSeconds[size] = await loadHistory(db.url, loaded, size, options.log);
      loaded = size;
      const { rows, bytes } = await tableSize(db.url);
      options.log?.(`stored duties: ${rows.toLocaleString('en-US')} rows, ${(bytes / 2 ** 20).toFixed(0)} MiB`);
      plans[size] = await explainHotStatements(db.url, nextSlot);
      for (const pruning of [false, true]) {
        for (const concurrency of concurrencies) {
          const grown: Sample[] = [];
          const base: Sample[] = [];
          let baseRows = baseSize;
          let baseBytes = 0;
          for (let repeat = 0; repeat < options.repeats; repeat++) {
            if (stage > 0) {
              const small = await server.freshDatabase('stored_base');
              try {
                await loadHistory(small.url, 0, baseSize);
                ({ rows: baseRows, bytes: baseBytes } = await tableSize(small.url));
                base.push((await measure(small.url, pruning, concurrency, slice++, BENCH_FIRST_SLOT, options)).sample);
              } finally {
                await server.dropDatabase(small.name);
              }
            }
            const run = await measure(db.url, pruning, concurrency, slice++, nextSlot, options);
            nextSlot += run.signed + concurrency * 2 + 1000;
            grown.push(run.sample);
          }
          if (stage > 0) {
            const cell = { ...storedCell(baseRows, baseBytes, pruning, concurrency, base), baselineFor: rows };
            cells.push(cell);
            log('  baseline', cell);
          }
          const cell = storedCell(rows, bytes, pruning, concurrency, grown);
          cells.push(cell);
          log('stored', cell);
        }
      }
    }
  } finally {
    await server.dropDatabase(db.name);
  }
  return { cells, loadSeconds, plans };
}

/**
 * Scale: (a) validator keys served by one group (1, 10, 100, 1,000 addresses the duties rotate over); (b) stored
 * history: the same table grown from 1 thousand to 1 million to 10 million signed duties, measured with pruning off
 * and on (on: every validator has a low watermark and a prune round, deleting an old slice, runs during the
 * measurement), with the plans of the hot statements at each size.
 */
import { type BenchPostgres } from './postgres.ts';
import { BENCH_FIRST_SLOT, LOADED_VALIDATORS, loadHistory, loadOldSlice, tableSize } from './bulk.ts';
import { type CoreCell, summarize } from './core.ts';
import { explainHotStatements, type Plan } from './plans.ts';
import { ourNode } from './nodes.ts';
import { type RunResult, runScenario, signingLoop } from './scenario.ts';
import { percentile, type Spread, spread } from './stats.ts';

export interface ScaleOptions {
  repeats: number;
  warmupMs: number;
  measureMs: number;
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
  storedDuties: number;
  tableBytes: number;
  pruning: boolean;
  concurrency: number;
  dutiesPerSecond: Spread;
  p50: Spread;
  p99: Spread;
  /** Pruning on: rows the concurrent prune round deleted and how long it took. */
  pruned?: number;
  pruneSeconds?: number;
}

export interface StoredScale {
  cells: StoredCell[];
  loadSeconds: Record<string, number>;
  plans: Record<string, Plan[]>;
}

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
  let loaded = 0;
  let nextSlot = BENCH_FIRST_SLOT;
  try {
    for (const [stage, size] of sizes.entries()) {
      loadSeconds[size] = await loadHistory(db.url, loaded, size, options.log);
      loaded = size;
      const { rows, bytes } = await tableSize(db.url);
      options.log?.(`stored duties: ${rows.toLocaleString('en-US')} rows, ${(bytes / 2 ** 20).toFixed(0)} MiB`);
      plans[size] = await explainHotStatements(db.url, nextSlot);
      for (const pruning of [false, true]) {
        for (const concurrency of concurrencies) {
          const results: { dps: number; p50: number; p99: number }[] = [];
          let pruned: number | undefined;
          let pruneSeconds: number | undefined;
          for (let repeat = 0; repeat < options.repeats; repeat++) {
            const node = await ourNode({ url: db.url, nodeId: `stored-${repeat}`, ...(pruning ? { pruneAfterHours: 1 } : {}) });
            let prune: Promise<void> | undefined;
            if (pruning) {
              // An old slice per validator, deleted by a prune round that runs while the duties are signed.
              await loadOldSlice(db.url, stage * 10 + repeat + 1 + concurrency, Math.max(1, Math.round(size / LOADED_VALIDATORS / 1000)));
              const t0 = performance.now();
              prune = node.prune(3_600_000).then((n) => {
                pruned = n;
                pruneSeconds = (performance.now() - t0) / 1000;
              });
            }
            try {
              const loop = await signingLoop({
                nodes: [node],
                concurrency,
                validators: LOADED_VALIDATORS,
                firstSlot: nextSlot,
                warmupMs: options.warmupMs,
                measureMs: options.measureMs,
              });
              nextSlot += loop.signedTotal + concurrency * 2 + 1000;
              results.push({ dps: loop.duties / loop.seconds, p50: percentile(loop.latencies, 50), p99: percentile(loop.latencies, 99) });
              await prune;
            } finally {
              await node.stop();
            }
          }
          const cell: StoredCell = {
            storedDuties: rows,
            tableBytes: bytes,
            pruning,
            concurrency,
            dutiesPerSecond: spread(results.map((r) => r.dps)),
            p50: spread(results.map((r) => r.p50)),
            p99: spread(results.map((r) => r.p99)),
            ...(pruned !== undefined ? { pruned, pruneSeconds } : {}),
          };
          cells.push(cell);
          options.log?.(
            `stored ${rows.toLocaleString('en-US')} pruning ${pruning ? 'on ' : 'off'} c=${concurrency}: ${cell.dutiesPerSecond.median.toFixed(0)} duties/s, ` +
              `p50 ${cell.p50.median.toFixed(2)} p99 ${cell.p99.median.toFixed(2)} ms${pruned !== undefined ? `, prune deleted ${pruned} in ${pruneSeconds?.toFixed(2)} s` : ''}`,
          );
        }
      }
    }
  } finally {
    await server.dropDatabase(db.name);
  }
  return { cells, loadSeconds, plans };
}

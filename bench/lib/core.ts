/**
 * Protection core: ha-signer, the published package and the floor at concurrency 1, 8, 32 and 128, with 1 node and
 * with 3 nodes racing each duty (the floor only with 1 node: racing needs the engine's waiting). Repeats alternate
 * the implementations (a different order in each repeat), so a slow spell of the machine hits all of them.
 */
import type { BenchPostgres } from './postgres.ts';
import { type Impl, IMPLS } from './nodes.ts';
import { type RunResult, runScenario } from './scenario.ts';
import { type Spread, spread } from './stats.ts';

export interface CoreOptions {
  concurrencies: number[];
  nodeCounts: number[];
  repeats: number;
  warmupMs: number;
  measureMs: number;
  log?: (line: string) => void;
}

export interface CoreCell {
  impl: Impl;
  nodes: number;
  concurrency: number;
  runs: RunResult[];
  dutiesPerSecond: Spread;
  p50: Spread;
  p90: Spread;
  p99: Spread;
  loserP50: Spread;
  loserP99: Spread;
  roundTripsPerDuty: Spread;
  commitsPerDuty: Spread;
}

export function summarize(impl: Impl, nodes: number, concurrency: number, runs: RunResult[]): CoreCell {
  const of = (pick: (r: RunResult) => number): Spread => spread(runs.map(pick));
  return {
    impl,
    nodes,
    concurrency,
    runs,
    dutiesPerSecond: of((r) => r.dutiesPerSecond),
    p50: of((r) => r.p50),
    p90: of((r) => r.p90),
    p99: of((r) => r.p99),
    loserP50: of((r) => r.loserP50),
    loserP99: of((r) => r.loserP99),
    roundTripsPerDuty: of((r) => r.roundTripsPerDuty),
    commitsPerDuty: of((r) => r.commitsPerDuty),
  };
}

export async function runCore(server: BenchPostgres, options: CoreOptions): Promise<CoreCell[]> {
  const cells: CoreCell[] = [];
  for (const nodes of options.nodeCounts) {
    for (const concurrency of options.concurrencies) {
      const impls = IMPLS.filter((impl) => impl !== 'floor' || nodes === 1);
      const runs = new Map<Impl, RunResult[]>(impls.map((impl) => [impl, []]));
      for (let repeat = 0; repeat < options.repeats; repeat++) {
        const order = impls.map((_, i) => impls[(i + repeat) % impls.length]!);
        for (const impl of order) {
          const result = await runScenario(server, { impl, nodes, concurrency, warmupMs: options.warmupMs, measureMs: options.measureMs });
          runs.get(impl)!.push(result);
          options.log?.(
            `core ${impl.padEnd(9)} nodes=${nodes} c=${String(concurrency).padEnd(3)} #${repeat + 1}: ${result.dutiesPerSecond.toFixed(0)} duties/s, ` +
              `p50 ${result.p50.toFixed(2)} p99 ${result.p99.toFixed(2)} ms, losers p99 ${result.loserP99.toFixed(2)} ms, ` +
              `${result.roundTripsPerDuty.toFixed(2)} queries and ${result.commitsPerDuty.toFixed(2)} commits per duty`,
          );
        }
      }
      for (const impl of impls) cells.push(summarize(impl, nodes, concurrency, runs.get(impl)!));
    }
  }
  return cells;
}

/** Per-repeat ratio of two cells' throughput (the runs of one repeat ran back to back). */
export function repeatRatios(cells: CoreCell[], a: Impl, b: Impl, nodes: number, concurrency: number): Spread | undefined {
  const x = cells.find((c) => c.impl === a && c.nodes === nodes && c.concurrency === concurrency);
  const y = cells.find((c) => c.impl === b && c.nodes === nodes && c.concurrency === concurrency);
  if (!x || !y) return undefined;
  return spread(x.runs.map((r, i) => r.dutiesPerSecond / (y.runs[i]?.dutiesPerSecond ?? NaN)));
}

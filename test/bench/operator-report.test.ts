/**
 * The operator section's own logic, apart from the control plane it needs (which `npm run bench` and the opt-in e2e
 * tests exercise): reading the JSON line a test prints, summarising runs, rendering RESULTS.md, refusing bad counts.
 */
import { describe, expect, it } from 'vitest';
import {
  type OperatorBenchResult,
  type OperatorReadyRun,
  type OperatorScaleRun,
  markedJson,
  renderOperatorSection,
  runOperatorBench,
  summarizeOperatorRuns,
} from '../../bench/lib/operator.ts';

const scaleRun = (allFirstReconciledMs: number, operatorRssMiB: number): OperatorScaleRun => ({
  resources: 200,
  workers: 4,
  createMs: 2_000,
  allFirstReconciledMs,
  firstWaveResourcesPerSec: 200 / (allFirstReconciledMs / 1000),
  reconcilesFirstWave: 420,
  meanReconcileMs: 180,
  specWaveMs: 4_700,
  specWaveResourcesPerSec: 42.6,
  reconcilesSpecWave: 210,
  migrationJobs: 200,
  operatorRssBeforeMiB: 90,
  operatorRssMiB,
  operatorHeapUsedMiB: 60,
  nodeOptions: '--max-old-space-size=192',
});

const readyRun = (readyMs: number[]): OperatorReadyRun => ({
  resources: readyMs.length,
  replicas: 2,
  timings: readyMs.map((ms, i) => ({ name: `r${i}`, migratedMs: 1_300, availableMs: ms - 500, readyMs: ms })),
  runningPods: readyMs.length * 2,
  operatorRssBeforeMiB: 80,
  operatorRssMiB: 110,
  operatorHeapUsedMiB: 40,
});

const base = { resources: 200, readyResources: 2, repeats: 3, startedAt: '', wallMs: 75_000, loadBefore: [1, 1, 1], loadAfter: [2, 2, 2] };

describe('operator benchmark report', () => {
  it("finds the test's JSON line among vitest's output, and nothing when the line is missing", () => {
    const output = ['stdout | test/operator/e2e/scale.e2e.test.ts > scale', 'OPERATOR_BENCH {"resources":3,"createMs":12}', ' ✓ 1 test'];
    expect(markedJson(output.join('\n'), 'OPERATOR_BENCH')).toEqual({ resources: 3, createMs: 12 });
    // A longer marker sharing the prefix is not mistaken for this one.
    expect(markedJson('OPERATOR_BENCH_READY {"x":1}', 'OPERATOR_BENCH')).toBeUndefined();
    expect(markedJson(' ↓ scale (skipped)', 'OPERATOR_BENCH')).toBeUndefined();
  });

  it('summarises runs as medians with their range; ready times over every resource of every run', () => {
    const summary = summarizeOperatorRuns(
      [scaleRun(13_000, 340), scaleRun(12_000, 345), scaleRun(14_000, 330)],
      [readyRun([4_200, 4_500]), readyRun([4_300, 4_400])],
    );
    expect(summary.scale?.allFirstReconciledMs).toMatchObject({ median: 13_000, min: 12_000, max: 14_000 });
    expect(summary.scale?.operatorRssMiB.max).toBe(345);
    expect(summary.ready?.readyMs).toMatchObject({ median: 4_350, min: 4_200, max: 4_500, values: [4_200, 4_500, 4_300, 4_400] });
    expect(summarizeOperatorRuns([], [])).toEqual({});
  });

  it('renders the tables with the median row, per-resource Ready times and operator memory; a skipped section says why', () => {
    const result: OperatorBenchResult = {
      ...base,
      ...summarizeOperatorRuns([scaleRun(13_000, 340), scaleRun(12_000, 345)], [readyRun([4_200, 4_500]), readyRun([4_300, 4_400])]),
    };
    const markdown = renderOperatorSection(result);
    expect(markdown).toContain('**Control loop, 200 resources** (median (min–max) of 2 runs)');
    expect(markdown).toContain('`NODE_OPTIONS=--max-old-space-size=192`');
    expect(markdown).toContain('| 1 | 2.0 | 13.0 | 15.4 |');
    expect(markdown).toContain('| median | | 12.5 |');
    expect(markdown).toContain('| Ready | 4.3 | 4.2 | 4.5 |');
    expect(markdown).toContain('Per resource, Ready in order of creation (s): 4.2, 4.5; 4.3, 4.4.');
    expect(markdown).toContain('RSS idle 80.0 → 110.0 MiB');

    expect(renderOperatorSection({ ...base, skipped: 'Go not installed' })).toBe('Not run: Go not installed.\n');
  });

  it('refuses counts that are not whole numbers, naming the option', async () => {
    await expect(runOperatorBench({ resources: -1, readyResources: 0 })).rejects.toThrow('resources must be an integer >= 0, got -1');
    await expect(runOperatorBench({ resources: 1, readyResources: 0.5 })).rejects.toThrow('readyResources must be an integer >= 0');
    await expect(runOperatorBench({ resources: 1, readyResources: 0, repeats: 0 })).rejects.toThrow('repeats must be an integer >= 1');
  });
});

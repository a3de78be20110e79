/**
 * Smoke test of the benchmark suite (bench/): every piece `npm run bench` runs, with tiny counts on the test run's
 * PostgreSQL, so the suite cannot rot. Nothing here is timed: the assertions are about what was measured and
 * written (every cell present, duties signed, counters read, plans and files produced), never about speed.
 * The network section (bench/http-signing.ts, bench/jsonrpc-signing.ts) starts serve replicas and is left to
 * `npm run bench:quick`.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject, describe, expect, it } from 'vitest';
import '../../bench/lib/quiet.ts';
import { runCore } from '../../bench/lib/core.ts';
import { explainHotStatements } from '../../bench/lib/plans.ts';
import { benchPostgresOn } from '../../bench/lib/postgres.ts';
import { runProfile, summarizeProfile } from '../../bench/lib/profile.ts';
import { evaluateTargets, type Results, writeResults } from '../../bench/lib/report.ts';
import { runKeyScale, runStoredScale, type StoredCell } from '../../bench/lib/scale.ts';
import { fmtSpread, spread } from '../../bench/lib/stats.ts';

const server = benchPostgresOn(inject('postgresAdminUrl'), false);
const timing = { repeats: 1, warmupMs: 20, measureMs: 150 };

describe('benchmark suite (quick pieces)', () => {
  it('runs ha-signer, the published package and the floor, 1 node and 3 racing, and writes the report', async () => {
    const cells = await runCore(server, { ...timing, concurrencies: [1, 4], nodeCounts: [1, 3] });
    const names = cells.map((c) => `${c.impl}/${c.nodes}/${c.concurrency}`).sort();
    expect(names).toEqual(
      [
        'aztec/1/1',
        'aztec/1/4',
        'aztec/3/1',
        'aztec/3/4',
        'floor/1/1',
        'floor/1/4',
        'ha-signer/1/1',
        'ha-signer/1/4',
        'ha-signer/3/1',
        'ha-signer/3/4',
      ].sort(),
    );
    for (const cell of cells) {
      expect(cell.runs).toHaveLength(1);
      expect(cell.runs[0]!.duties).toBeGreaterThan(0);
      // claim + record at least once per duty for every implementation; commits read from pg_stat_database
      expect(cell.roundTripsPerDuty.median).toBeGreaterThan(0);
      expect(cell.commitsPerDuty.median).toBeGreaterThan(0);
      expect(Number.isFinite(cell.p99.median)).toBe(true);
      if (cell.nodes === 3) expect(Number.isFinite(cell.loserP50.median)).toBe(true);
    }
    // Concurrency 1, one node: nothing to batch, so each implementation sends at least claim and record per duty.
    for (const impl of ['ha-signer', 'floor', 'aztec']) {
      expect(cells.find((c) => c.impl === impl && c.nodes === 1 && c.concurrency === 1)!.roundTripsPerDuty.median).toBeGreaterThanOrEqual(
        1.9,
      );
    }

    const dir = await mkdtemp(join(tmpdir(), 'bench-smoke-'));
    try {
      const meta = {
        startedAt: new Date().toISOString(),
        finishedAt: new Date().toISOString(),
        loadBefore: [1, 1, 1],
        loadAfter: [1, 1, 1],
        quick: true,
      };
      const results: Results = { generatedAt: meta.startedAt, node: process.version, cpus: 2, sections: { core: { ...meta, cells } } };
      results.targets = evaluateTargets(results);
      expect(results.targets.map((t) => t.name)).toContain('3 nodes racing, concurrency 1: p99 latency');
      await writeResults(dir, results);
      const png = await readFile(join(dir, 'latency.png'));
      expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
      expect(png.readUInt32BE(16)).toBeGreaterThan(500); // IHDR width
      const markdown = await readFile(join(dir, 'RESULTS.md'), 'utf8');
      expect(markdown).toContain('## Protection core');
      expect(markdown).toContain('](latency.png)');
      expect(JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')).sections.core.cells).toHaveLength(cells.length);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('measures key counts and a grown history with pruning off and on, with the plans of the hot statements', async () => {
    const keys = await runKeyScale(server, [1, 10], [4], timing);
    expect(keys.map((k) => (k as { validators?: number }).validators)).toEqual([1, 10]);
    const stored = await runStoredScale(server, [100, 500], [2], { ...timing, pruneSlicePerValidator: 1 });
    // Size 100, then 500 measured alternately with a fresh 100-row baseline, pruning off then on.
    expect(
      stored.cells.map((c) => `${c.baselineFor !== undefined ? 'baseline' : c.storedDuties >= 500 ? 'large' : 'small'}/${c.pruning}`),
    ).toEqual(['small/false', 'small/true', 'baseline/false', 'large/false', 'baseline/true', 'large/true']);
    for (const cell of stored.cells) {
      expect(cell.dutiesPerSecond.median).toBeGreaterThan(0);
      // Every measured duty of the cell's repeats, pooled (one repeat here: the window's own percentiles).
      expect(cell.pooled?.duties).toBeGreaterThan(0);
      expect(cell.pooled?.p50).toBe(cell.p50.median);
      expect(cell.pooled?.p99).toBe(cell.p99.median);
    }
    // The prune round running during the measurement deleted the old slice (100 validators x 1 slot).
    for (const cell of stored.cells.filter((c) => c.pruning)) expect(cell.pruned).toBeGreaterThanOrEqual(100);
    expect(Object.keys(stored.plans)).toEqual(['100', '500']);
    for (const plans of Object.values(stored.plans)) {
      expect(plans.map((p) => p.statement)).toContain('claim, 32 duties');
      for (const plan of plans.filter((p) => p.analyzed)) expect(plan.executionMs).toBeGreaterThanOrEqual(0);
    }
  });

  it('judges stored history on every duty of the repeats pooled, not on the median window', () => {
    const cell = (storedDuties: number, windowP99: number[], pooledP99: number, baselineFor?: number): StoredCell => ({
      storedDuties,
      tableBytes: 0,
      pruning: false,
      concurrency: 32,
      ...(baselineFor !== undefined ? { baselineFor } : {}),
      dutiesPerSecond: spread([1000, 1000, 1000]),
      p50: spread([3, 3, 3]),
      p99: spread(windowP99),
      pooled: { duties: 90_000, p50: 3, p99: pooledP99 },
    });
    const verdict = (grown: StoredCell): { met?: boolean; measured: string } => {
      const meta = { startedAt: '', finishedAt: '', loadBefore: [], loadAfter: [], quick: false };
      const stored = { ...meta, cells: [cell(1_000, [5, 5, 5], 5, 10_000_000), grown], loadSeconds: {}, plans: {} };
      return evaluateTargets({ generatedAt: '', node: '', cpus: 2, sections: { stored } })[0]!;
    };
    // Two windows with a stall each lift the median window's p99 by 30%; over all duties the tail is 10% longer.
    const stalls = verdict(cell(10_000_000, [6.5, 6.5, 5], 5.5));
    expect(stalls.met).toBe(true);
    expect(stalls.measured).toContain('p99 5.00 -> 5.50 ms (+10%)');
    expect(verdict(cell(10_000_000, [5, 5, 5], 6.5)).met).toBe(false);
  });

  it('plans every hot and maintenance statement on a fresh database', async () => {
    const db = await server.freshDatabase('plans');
    try {
      const plans = await explainHotStatements(db.url);
      expect(plans.map((p) => p.statement)).toEqual([
        'claim, 1 duty',
        'claim, 32 duties',
        'claim of an existing duty (loser)',
        'record',
        'cleanup own stuck duties',
        'raise watermarks (prune)',
        'prune below watermarks (one batch)',
      ]);
    } finally {
      await server.dropDatabase(db.name);
    }
  });

  it('profiles a signing process and summarises the profile by component', async () => {
    const profile = await runProfile(server, 4, 300);
    expect(profile.duties).toBeGreaterThan(0);
    const total = profile.components.reduce((sum, c) => sum + c.share, 0);
    expect(total).toBeCloseTo(1, 5);
    expect(profile.topFunctions.length).toBeGreaterThan(0);
    const synthetic = summarizeProfile({
      startTime: 0,
      endTime: 1,
      samples: [],
      nodes: [
        { id: 1, callFrame: { functionName: '(idle)', url: '', lineNumber: 0 }, hitCount: 3 },
        { id: 2, callFrame: { functionName: 'parse', url: 'file:///x/node_modules/pg/lib/client.js', lineNumber: 9 }, hitCount: 1 },
      ],
    });
    expect(synthetic.components).toEqual([
      { component: 'idle (waiting for I/O)', share: 0.75 },
      { component: 'pg driver', share: 0.25 },
    ]);
  });

  it('reports a median with its spread over repeats', () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, values: [3, 1, 2] });
    expect(spread([4, 1, 3, 2]).median).toBe(2.5);
    expect(fmtSpread(spread([1200, 1000, 1100]))).toBe('1,100 (1,000–1,200)');
  });
});

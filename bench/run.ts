/**
 * The benchmark suite: `npm run bench` (after the build) writes bench/results.json, bench/RESULTS.md and
 * bench/latency.png. Sections: core (ha-signer vs the published package vs the floor), keys, stored (history grown
 * to 10 million duties, pruning off and on, query plans), network (/v1 through 3 replicas, JSON-RPC), profile (CPU
 * profile + pg_stat_statements), operator (200 resources' control loop and apply-to-Ready on the test control plane;
 * builds the control plane when Go is there, else notes why it was skipped). Nothing here is asserted: it measures
 * and reports.
 *
 * Usage: node bench/run.ts [--quick] [--sections core,keys,stored,network,profile,operator] [--out DIR]
 *   --quick     small counts and short runs (a smoke test of the whole suite)
 *   --out       where to write (default: bench/, or a temp directory with --quick)
 *   --sections  run only these; the other sections already in DIR/results.json are kept (each notes its own time and load)
 */
import './lib/quiet.ts';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runCore } from './lib/core.ts';
import { runNetworkBench } from './lib/network.ts';
import { runOperatorBench } from './lib/operator.ts';
import { startBenchPostgres } from './lib/postgres.ts';
import { runProfile } from './lib/profile.ts';
import { type Results, type SectionMeta, evaluateTargets, writeResults } from './lib/report.ts';
import { PRUNE_SLICE_PER_VALIDATOR, runKeyScale, runStoredScale } from './lib/scale.ts';

const SECTIONS = ['core', 'keys', 'stored', 'network', 'profile', 'operator'] as const;
type Section = (typeof SECTIONS)[number];

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sections: { type: 'string' },
    out: { type: 'string' },
  },
});
const quick = args.quick === true;
const requested = (args.sections?.split(',').map((s) => s.trim()) ?? [...SECTIONS]) as Section[];
for (const s of requested)
  if (!SECTIONS.includes(s)) throw new Error(`--sections: unknown section ${JSON.stringify(s)}; use ${SECTIONS.join(',')}`);
// --quick writes to a temp directory by default: its figures are a smoke test, not results to publish.
const outDir = (args.out ?? (quick ? join(tmpdir(), 'ha-signer-bench-quick') : fileURLToPath(new URL('.', import.meta.url)))).replace(
  /\/$/,
  '',
);
await mkdir(outDir, { recursive: true });

const plan = quick
  ? {
      repeats: 1,
      warmupMs: 50,
      measureMs: 250,
      concurrencies: [1, 8],
      keys: [1, 10],
      keyConcurrency: [8],
      sizes: [100, 1_000],
      storedConcurrency: [4],
      storedRepeats: 1,
      pruneSlicePerValidator: 1,
      operatorResources: 10,
      operatorReadyResources: 1,
      operatorRepeats: 1,
    }
  : {
      repeats: 3,
      warmupMs: 500,
      measureMs: 3_000,
      concurrencies: [1, 8, 32, 128],
      keys: [1, 10, 100, 1_000],
      keyConcurrency: [32],
      sizes: [1_000, 1_000_000, 10_000_000],
      storedConcurrency: [1, 32],
      // p99 of a 3-second window is its ~30th-slowest duty at concurrency 1: more repeats steady the medians.
      storedRepeats: 5,
      pruneSlicePerValidator: PRUNE_SLICE_PER_VALIDATOR,
      operatorResources: 200,
      operatorReadyResources: 5,
      operatorRepeats: 3,
    };

const log = (line: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

const previous: Results | undefined =
  args.sections && existsSync(`${outDir}/results.json`)
    ? (JSON.parse(await readFile(`${outDir}/results.json`, 'utf8')) as Results)
    : undefined;
const git = (...args: string[]): string => {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
};
const results: Results = {
  generatedAt: new Date().toISOString(),
  // What was measured: dist/ is built from the working tree, so uncommitted changes under src/ are named too.
  commit: git('rev-parse', '--short', 'HEAD'),
  uncommittedSrc: git('status', '--porcelain', '--', 'src')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(3)),
  node: process.version,
  cpus: cpus().length,
  sections: { ...(previous?.sections ?? {}) },
};

async function section<T extends object>(name: Section, body: () => Promise<T>): Promise<void> {
  if (!requested.includes(name)) return;
  const startedAt = new Date().toISOString();
  const loadBefore = loadavg();
  log(`${name}: start (load average ${loadBefore.map((v) => v.toFixed(1)).join(' ')})`);
  const value = await body();
  const meta: SectionMeta = { startedAt, finishedAt: new Date().toISOString(), loadBefore, loadAfter: loadavg(), quick };
  (results.sections as Record<string, unknown>)[name] = { ...meta, ...value };
  log(`${name}: done`);
}

const server = await startBenchPostgres();
try {
  const timing = { repeats: plan.repeats, warmupMs: plan.warmupMs, measureMs: plan.measureMs, log };
  await section('core', async () => ({
    cells: await runCore(server, { ...timing, concurrencies: plan.concurrencies, nodeCounts: [1, 3] }),
  }));
  await section('keys', async () => ({ cells: await runKeyScale(server, plan.keys, plan.keyConcurrency, timing) }));
  await section(
    'stored',
    async () =>
      await runStoredScale(server, plan.sizes, plan.storedConcurrency, {
        ...timing,
        repeats: plan.storedRepeats,
        pruneSlicePerValidator: plan.pruneSlicePerValidator,
      }),
  );
  await section('profile', async () => await runProfile(server, 32, quick ? 500 : 5_000));
  await section('network', async () => {
    const http = [];
    const jsonrpc = [];
    // Quarter-size runs (n = 250 to 750 requests per row), repeated: the spread says more than one long run.
    for (let i = 0; i < plan.repeats; i++) {
      http.push(await runNetworkBench('http-signing.ts', true));
      jsonrpc.push(await runNetworkBench('jsonrpc-signing.ts', true));
    }
    return { http, jsonrpc };
  });
} finally {
  await server.stop();
}
// Last, with the benchmark's PostgreSQL stopped: the control plane, the operator and its pods need the cores.
// The operator runs with the heap limit the chart gives it (values.yaml maxHeapMiB: 192, with a 384Mi memory limit).
process.env.HA_SIGNER_OPERATOR_BENCH_NODE_OPTIONS ??= '--max-old-space-size=192';
await section(
  'operator',
  async () =>
    await runOperatorBench({
      resources: plan.operatorResources,
      readyResources: plan.operatorReadyResources,
      repeats: plan.operatorRepeats,
      log,
    }),
);
results.targets = evaluateTargets(results);
await writeResults(outDir, results);
log(`wrote ${outDir}/results.json, ${outDir}/RESULTS.md${results.sections.core ? `, ${outDir}/latency.png` : ''}`);
for (const t of results.targets) log(`target: ${t.name}: ${t.measured} (${t.target}) -> ${t.met ? 'met' : 'MISSED'}`);
// The published package leaves a cleanup timer running after stop(); do not wait for it.
process.exit(0);

/**
 * Operator benchmark (`npm run bench` section operator, or `node bench/operator.ts`): two opt-in e2e tests run by
 * vitest against the real test control plane (etcd + kube-apiserver + kube-controller-manager, test/harness/) and the
 * run's real PostgreSQL. The tests talk to the API server and print one JSON line each; this module runs them, parses
 * the lines and summarises:
 * - scale (test/operator/e2e/scale.e2e.test.ts): N ValidatorHASigners whose signer pods stay Pending, so the control
 *   loop alone: claim + migration Job + status for every resource, then a spec wave; operator memory.
 * - ready (test/operator/e2e/ready-latency.e2e.test.ts): resources applied one at a time with real signer pods run by
 *   the local kubelet from this checkout; create → Migrated / Available / Ready=True per resource.
 * Needs dist/ built (the operator, the signer pods and the migration Jobs run dist/cli.js).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Spread, fmtSpread, spread } from './stats.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUILD_COMMAND = 'bash test/control-plane/build.sh';
const SCALE_TEST = 'test/operator/e2e/scale.e2e.test.ts';
const READY_TEST = 'test/operator/e2e/ready-latency.e2e.test.ts';

/** One run of the scale test (the fields its OPERATOR_BENCH line prints). */
export interface OperatorScaleRun {
  resources: number;
  workers: number;
  createMs: number;
  allFirstReconciledMs: number;
  firstWaveResourcesPerSec: number;
  reconcilesFirstWave: number;
  meanReconcileMs: number;
  specWaveMs: number;
  specWaveResourcesPerSec: number;
  reconcilesSpecWave: number;
  migrationJobs: number;
  operatorRssBeforeMiB?: number;
  operatorRssMiB?: number;
  operatorHeapUsedMiB?: number;
  /** NODE_OPTIONS of the operator process (HA_SIGNER_OPERATOR_BENCH_NODE_OPTIONS), e.g. the chart's heap limit. */
  nodeOptions?: string;
}

/** One resource of the apply-to-Ready test: milliseconds from create. */
export interface ReadyTiming {
  name: string;
  migratedMs: number;
  availableMs: number;
  readyMs: number;
}

/** One run of the apply-to-Ready test (its OPERATOR_READY_BENCH line). */
export interface OperatorReadyRun {
  resources: number;
  replicas: number;
  timings: ReadyTiming[];
  runningPods: number;
  operatorRssBeforeMiB?: number;
  operatorRssMiB?: number;
  operatorHeapUsedMiB?: number;
}

export interface OperatorBenchResult {
  /** Why the section did not run (one line naming the command that fixes it). */
  skipped?: string;
  resources: number;
  readyResources: number;
  repeats: number;
  startedAt: string;
  wallMs: number;
  loadBefore: number[];
  loadAfter: number[];
  scale?: {
    runs: OperatorScaleRun[];
    allFirstReconciledMs: Spread;
    firstWaveResourcesPerSec: Spread;
    specWaveMs: Spread;
    specWaveResourcesPerSec: Spread;
    meanReconcileMs: Spread;
    operatorRssMiB: Spread;
  };
  ready?: {
    runs: OperatorReadyRun[];
    /** Over every resource of every run. */
    migratedMs: Spread;
    availableMs: Spread;
    readyMs: Spread;
  };
}

export interface OperatorBenchOptions {
  /** ValidatorHASigners in the scale (control loop) test; 0 leaves it out. */
  resources: number;
  /** ValidatorHASigners applied one at a time with real signer pods; 0 leaves it out. */
  readyResources: number;
  /** Runs of each test, each with its own control plane (default 1; 200 + 5 resources take about 75 s a run on 2 cores). */
  repeats?: number;
  log?: (line: string) => void;
}

/** Where test/harness/controlPlane.ts findControlPlaneBinaries() looks (that file is not loadable by type stripping). */
function controlPlaneBuilt(): boolean {
  const envFile = join(ROOT, 'test/control-plane/versions.env');
  if (!existsSync(envFile)) return false;
  const version = /^K8S_VERSION=(\S+)/m.exec(readFileSync(envFile, 'utf8'))?.[1];
  return version !== undefined && existsSync(join(ROOT, '.cache/control-plane', version, 'bin/kcp'));
}

/** `go` on PATH, or where build.sh also looks. */
function goAvailable(): boolean {
  const onPath = (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, 'go')));
  return onPath || existsSync('/usr/local/go/bin/go');
}

/** Runs one opt-in test file under vitest and returns the JSON after `marker` on its stdout. */
async function runTestFile(file: string, marker: string, env: Record<string, string>): Promise<unknown> {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/operator/vitest.operator.config.ts', file],
    // HA_SIGNER_REQUIRE_K8S: a control plane that fails to start is an error here, not a skipped test.
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HA_SIGNER_REQUIRE_K8S: '1', ...env } },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const found = code === 0 ? markedJson(out, marker) : undefined;
  if (found === undefined) {
    const tail = out.split('\n').slice(-60).join('\n');
    throw new Error(`${file} ${code !== 0 ? `exited with ${code}` : `printed no ${marker} line (was it skipped?)`}:\n${tail}`);
  }
  return found;
}

/** The JSON after the first `marker ` in a test's output (vitest prefixes and interleaves lines), or undefined. */
export function markedJson(output: string, marker: string): unknown {
  const line = output.split('\n').find((l) => l.includes(`${marker} `));
  return line === undefined ? undefined : (JSON.parse(line.slice(line.indexOf(`${marker} `) + marker.length + 1)) as unknown);
}

function validateCount(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) throw new Error(`runOperatorBench: ${name} must be an integer >= ${min}, got ${value}`);
}

export async function runOperatorBench(options: OperatorBenchOptions): Promise<OperatorBenchResult> {
  const { resources, readyResources, repeats = 1 } = options;
  validateCount('resources', resources, 0);
  validateCount('readyResources', readyResources, 0);
  validateCount('repeats', repeats, 1);
  const log = options.log ?? (() => {});
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const loadBefore = loadavg();
  const base = { resources, readyResources, repeats, startedAt, loadBefore };
  const finish = (rest: Partial<OperatorBenchResult>): OperatorBenchResult => ({
    ...base,
    ...rest,
    wallMs: Math.round(performance.now() - t0),
    loadAfter: loadavg(),
  });

  if (!existsSync(join(ROOT, 'dist/cli.js'))) return finish({ skipped: 'dist/cli.js not built: run `npm run build`' });
  if (!existsSync(join(ROOT, 'node_modules/vitest/vitest.mjs'))) return finish({ skipped: 'vitest not installed: run `npm ci`' });
  if (!controlPlaneBuilt()) {
    if (!goAvailable())
      return finish({ skipped: `control-plane binaries not built and Go not installed: install Go, then run \`${BUILD_COMMAND}\`` });
    log(`operator: control-plane binaries not built; running \`${BUILD_COMMAND}\` (takes minutes)`);
    const build = spawnSync('bash', ['test/control-plane/build.sh'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    if (build.status !== 0 || !controlPlaneBuilt()) throw new Error(`${BUILD_COMMAND} failed (exit ${build.status})`);
  }

  const scaleRuns: OperatorScaleRun[] = [];
  const readyRuns: OperatorReadyRun[] = [];
  for (let r = 0; r < repeats; r++) {
    const of = `run ${r + 1}/${repeats}`;
    if (resources > 0) {
      log(`operator: scale, ${resources} resources, control loop only (${of})`);
      const run = (await runTestFile(SCALE_TEST, 'OPERATOR_BENCH', {
        HA_SIGNER_OPERATOR_BENCH: '1',
        HA_SIGNER_OPERATOR_BENCH_N: String(resources),
      })) as OperatorScaleRun;
      log(
        `operator: scale: all reconciled in ${(run.allFirstReconciledMs / 1000).toFixed(1)} s, spec wave ${(run.specWaveMs / 1000).toFixed(1)} s`,
      );
      scaleRuns.push(run);
    }
    if (readyResources > 0) {
      log(`operator: apply-to-Ready, ${readyResources} resources with real signer pods (${of})`);
      const run = (await runTestFile(READY_TEST, 'OPERATOR_READY_BENCH', {
        HA_SIGNER_OPERATOR_BENCH_READY: '1',
        HA_SIGNER_OPERATOR_BENCH_READY_N: String(readyResources),
      })) as OperatorReadyRun;
      log(`operator: apply-to-Ready: ${run.timings.map((t) => (t.readyMs / 1000).toFixed(1)).join(', ')} s`);
      readyRuns.push(run);
    }
  }
  return finish(summarizeOperatorRuns(scaleRuns, readyRuns));
}

/** Medians and ranges over the runs of each test (the ready figures over every resource of every run). */
export function summarizeOperatorRuns(
  scaleRuns: OperatorScaleRun[],
  readyRuns: OperatorReadyRun[],
): Pick<OperatorBenchResult, 'scale' | 'ready'> {
  const over = (pick: (r: OperatorScaleRun) => number | undefined): Spread => spread(scaleRuns.map((r) => pick(r) ?? NaN));
  const timings = readyRuns.flatMap((r) => r.timings);
  return {
    ...(scaleRuns.length > 0
      ? {
          scale: {
            runs: scaleRuns,
            allFirstReconciledMs: over((r) => r.allFirstReconciledMs),
            firstWaveResourcesPerSec: over((r) => r.firstWaveResourcesPerSec),
            specWaveMs: over((r) => r.specWaveMs),
            specWaveResourcesPerSec: over((r) => r.specWaveResourcesPerSec),
            meanReconcileMs: over((r) => r.meanReconcileMs),
            operatorRssMiB: over((r) => r.operatorRssMiB),
          },
        }
      : {}),
    ...(readyRuns.length > 0
      ? {
          ready: {
            runs: readyRuns,
            migratedMs: spread(timings.map((t) => t.migratedMs)),
            availableMs: spread(timings.map((t) => t.availableMs)),
            readyMs: spread(timings.map((t) => t.readyMs)),
          },
        }
      : {}),
  };
}

const sec = (ms: number | undefined): string => (ms === undefined || !Number.isFinite(ms) ? '–' : (ms / 1000).toFixed(1));
const mib = (v: number | undefined): string => (v === undefined ? '–' : v.toFixed(1));

/** Markdown for bench/RESULTS.md (the caller adds the `## Operator` heading). */
export function renderOperatorSection(result: OperatorBenchResult): string {
  const load = `load average ${result.loadBefore.map((v) => v.toFixed(1)).join(' ')} before, ${result.loadAfter.map((v) => v.toFixed(1)).join(' ')} after`;
  if (result.skipped) return `Not run: ${result.skipped}.\n`;
  const parts: string[] = [
    'One `ha-signer operator` process (`dist/cli.js`) against the real test control plane (etcd, kube-apiserver and ' +
      "kube-controller-manager from `test/control-plane/`) with the local kubelet of `test/harness/`, and the run's " +
      'PostgreSQL. Measured by the opt-in tests `test/operator/e2e/scale.e2e.test.ts` and ' +
      '`test/operator/e2e/ready-latency.e2e.test.ts`, run under vitest; times are taken by the test polling the API ' +
      `server. Section wall time ${sec(result.wallMs)} s, ${load}.`,
  ];
  const scale = result.scale;
  if (scale) {
    const runs = scale.runs.length;
    parts.push(
      `**Control loop, ${result.resources} resources** (${runs === 1 ? 'one run, so no spread is given' : `median (min–max) of ${runs} runs`}). ` +
        'Signer pods stay Pending (their image is not run), so this is the operator alone: per resource a database ' +
        'claim, a migration Job and status, created 16 at a time with one database Secret each; then a spec wave ' +
        '(replicas 2 → 3 on every resource through the scale subresource). `--workers 4`. First-reconciled is from the ' +
        'first create call until every resource has status for its generation (resources/s = resources / that time); the ' +
        "spec wave from the first patch until every resource observed it. Memory from the operator's own /metrics: RSS " +
        'idle (before any resource) → after the spec wave' +
        (scale.runs[0]?.nodeOptions ? `, with \`NODE_OPTIONS=${scale.runs[0].nodeOptions}\` as the chart sets it (\`maxHeapMiB\`).` : '.'),
      [
        '| run | create all (s) | all first-reconciled (s) | resources/s | reconciles | mean reconcile (ms) | spec wave (s) | spec wave resources/s | RSS before → after (MiB) | heap used (MiB) |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
        ...scale.runs.map(
          (r, i) =>
            `| ${i + 1} | ${sec(r.createMs)} | ${sec(r.allFirstReconciledMs)} | ${r.firstWaveResourcesPerSec.toFixed(1)} | ` +
            `${r.reconcilesFirstWave} + ${r.reconcilesSpecWave} | ${r.meanReconcileMs.toFixed(1)} | ${sec(r.specWaveMs)} | ` +
            `${r.specWaveResourcesPerSec.toFixed(1)} | ${mib(r.operatorRssBeforeMiB)} → ${mib(r.operatorRssMiB)} | ${mib(r.operatorHeapUsedMiB)} |`,
        ),
        ...(runs > 1
          ? [
              `| median | | ${sec(scale.allFirstReconciledMs.median)} | ${fmtSpread(scale.firstWaveResourcesPerSec, 1)} | | ` +
                `${fmtSpread(scale.meanReconcileMs, 1)} | ${sec(scale.specWaveMs.median)} | ${fmtSpread(scale.specWaveResourcesPerSec, 1)} | ` +
                `${fmtSpread(scale.operatorRssMiB, 1)} | |`,
            ]
          : []),
      ].join('\n'),
      'Reconciles are first wave + spec wave; the mean reconcile time is over the first wave.',
    );
  }
  const ready = result.ready;
  if (ready) {
    const replicas = ready.runs[0]?.replicas ?? 0;
    const n = ready.readyMs.values.length;
    const last = ready.runs[ready.runs.length - 1];
    parts.push(
      `**Apply-to-Ready with real signer pods** (${n} resources over ${ready.runs.length} run${ready.runs.length === 1 ? '' : 's'}, ` +
        `${replicas} replicas each, median (min–max) over the resources). Each ValidatorHASigner is created once the ` +
        'previous one is Ready (earlier ones keep running), with its own database; the local kubelet runs the ' +
        'migration Job and the signer pods as `node dist/cli.js` processes with real readiness probes. Times from the ' +
        'create call, polled every 50 ms: Migrated=True (migration Job done), Available=True (one pod serving), ' +
        'Ready=True (every replica serving).',
      [
        '| create → | median (s) | min (s) | max (s) |',
        '| --- | ---: | ---: | ---: |',
        `| Migrated (migration Job done) | ${sec(ready.migratedMs.median)} | ${sec(ready.migratedMs.min)} | ${sec(ready.migratedMs.max)} |`,
        `| Available | ${sec(ready.availableMs.median)} | ${sec(ready.availableMs.min)} | ${sec(ready.availableMs.max)} |`,
        `| Ready | ${sec(ready.readyMs.median)} | ${sec(ready.readyMs.min)} | ${sec(ready.readyMs.max)} |`,
      ].join('\n'),
      `Per resource, Ready in order of creation (s): ${ready.runs.map((r) => r.timings.map((t) => sec(t.readyMs)).join(', ')).join('; ')}. ` +
        (last
          ? `Operator memory with ${last.resources} resource${last.resources === 1 ? '' : 's'} and ${last.runningPods} running pods: RSS idle ` +
            `${mib(last.operatorRssBeforeMiB)} → ${mib(last.operatorRssMiB)} MiB, heap used ${mib(last.operatorHeapUsedMiB)} MiB.`
          : ''),
    );
  }
  return `${parts.join('\n\n')}\n`;
}

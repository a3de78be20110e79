/** bench/results.json, bench/RESULTS.md and the latency chart from the sections measured. */
import { writeFile } from 'node:fs/promises';
import * as prettier from 'prettier';
import { type CoreCell, repeatRatios } from './core.ts';
import type { NetworkFigures, HttpStats } from './network.ts';
import { type OperatorBenchResult, renderOperatorSection } from './operator.ts';
import type { ProfileSummary } from './profile.ts';
import { latencyChart, type Series } from './png.ts';
import type { StoredCell, StoredScale } from './scale.ts';
import { type Spread, fmtMs, fmtSpread, spread } from './stats.ts';
import type { Plan } from './plans.ts';

export interface SectionMeta {
  startedAt: string;
  finishedAt: string;
  /** os.loadavg() (1, 5, 15 min) when the section started and when it finished. */
  loadBefore: number[];
  loadAfter: number[];
  quick: boolean;
}

export interface Results {
  generatedAt: string;
  commit?: string;
  uncommittedSrc?: string[];
  node: string;
  cpus: number;
  sections: {
    core?: SectionMeta & { cells: CoreCell[] };
    keys?: SectionMeta & { cells: (CoreCell & { validators?: number })[] };
    stored?: SectionMeta & StoredScale;
    network?: SectionMeta & { http: NetworkFigures[]; jsonrpc: NetworkFigures[] };
    profile?: SectionMeta & ProfileSummary;
    operator?: SectionMeta & OperatorBenchResult;
  };
  targets?: Target[];
}

export interface Target {
  name: string;
  target: string;
  measured: string;
  met: boolean | undefined;
}

const cell = (cells: CoreCell[], impl: string, nodes: number, c: number): CoreCell | undefined =>
  cells.find((x) => x.impl === impl && x.nodes === nodes && x.concurrency === c);

export function evaluateTargets(results: Results): Target[] {
  const targets: Target[] = [];
  const core = results.sections.core;
  if (core) {
    const vsAztec = repeatRatios(core.cells, 'ha-signer', 'aztec', 1, 32);
    if (vsAztec)
      targets.push({
        name: 'concurrency 32, 1 node: throughput vs the published package',
        target: '>= 3x in every repeat',
        measured: `${vsAztec.values.map((v) => `${v.toFixed(2)}x`).join(', ')} (median ${vsAztec.median.toFixed(2)}x)`,
        met: vsAztec.min >= 3,
      });
    const vsFloor = repeatRatios(core.cells, 'ha-signer', 'floor', 1, 32);
    if (vsFloor)
      targets.push({
        name: 'concurrency 32, 1 node: throughput vs the floor (same SQL, plain pg)',
        target: '>= 60%',
        measured: `${vsFloor.values.map((v) => `${(v * 100).toFixed(0)}%`).join(', ')} (median ${(vsFloor.median * 100).toFixed(0)}%)`,
        met: vsFloor.median >= 0.6,
      });
    const racing = cell(core.cells, 'ha-signer', 3, 1);
    if (racing)
      targets.push({
        name: '3 nodes racing, concurrency 1: p99 latency',
        target: '<= 10 ms',
        measured: `${fmtSpread(racing.p99, 2)} ms (median, range over repeats)`,
        met: racing.p99.median <= 10,
      });
  }
  const stored = results.sections.stored;
  if (stored && stored.cells.length > 0) {
    const grown = stored.cells.filter((c) => c.baselineFor === undefined);
    const largest = Math.max(...grown.map((c) => c.storedDuties));
    for (const b of grown.filter((c) => c.storedDuties === largest)) {
      // The baseline measured alongside, repeat by repeat (older results: the first size, measured earlier).
      const a =
        stored.cells.find((x) => x.baselineFor === b.storedDuties && x.pruning === b.pruning && x.concurrency === b.concurrency) ??
        grown.find(
          (x) =>
            x.storedDuties === Math.min(...grown.map((g) => g.storedDuties)) && x.pruning === b.pruning && x.concurrency === b.concurrency,
        );
      if (!a || a === b) continue;
      // Every duty of every repeat taken together (older results without it: the median of the per-window figures).
      const p50Of = (c: StoredCell): number => c.pooled?.p50 ?? c.p50.median;
      const p99Of = (c: StoredCell): number => c.pooled?.p99 ?? c.p99.median;
      const r50 = p50Of(b) / p50Of(a);
      const r99 = p99Of(b) / p99Of(a);
      // Repeat by repeat (each grown run against the baseline run just before it), when they were alternated.
      const paired = (x: Spread, y: Spread): string =>
        a.baselineFor !== undefined && x.values.length === y.values.length
          ? pct(spread(y.values.map((v, i) => v / x.values[i]!)).median)
          : '–';
      targets.push({
        name: `${b.storedDuties.toLocaleString('en-US')} vs ${a.storedDuties.toLocaleString('en-US')} stored duties, pruning ${b.pruning ? 'on' : 'off'}, concurrency ${b.concurrency}`,
        target: 'p50 and p99 within +20%',
        measured:
          `all duties of ${b.p99.values.length} repeats: p50 ${fmtMs(p50Of(a))} -> ${fmtMs(p50Of(b))} ms (${pct(r50)}), ` +
          `p99 ${fmtMs(p99Of(a))} -> ${fmtMs(p99Of(b))} ms (${pct(r99)}); per window, median: p50 ${pct(b.p50.median / a.p50.median)}, ` +
          `p99 ${pct(b.p99.median / a.p99.median)}; median of the per-repeat pairs: p50 ${paired(a.p50, b.p50)}, p99 ${paired(a.p99, b.p99)}`,
        met: r50 <= 1.2 && r99 <= 1.2,
      });
    }
  }
  const operatorRss = results.sections.operator?.scale?.operatorRssMiB;
  if (operatorRss && Number.isFinite(operatorRss.max))
    targets.push({
      name: `operator memory with ${results.sections.operator!.resources} resources`,
      target: "RSS below the chart's 384Mi limit",
      measured: `${operatorRss.max.toFixed(1)} MiB (largest over runs)`,
      met: operatorRss.max < 384,
    });
  return targets;
}

const pct = (ratio: number): string => `${ratio >= 1 ? '+' : ''}${((ratio - 1) * 100).toFixed(0)}%`;
const load = (m: SectionMeta): string =>
  `load average ${m.loadBefore.map((v) => v.toFixed(1)).join(' / ')} at start, ${m.loadAfter.map((v) => v.toFixed(1)).join(' / ')} at end (1 / 5 / 15 min)`;
const when = (m: SectionMeta): string =>
  `${m.startedAt.slice(0, 16).replace('T', ' ')}–${m.finishedAt.slice(11, 16)} UTC${m.quick ? ', --quick' : ''}`;

function coreTable(cells: CoreCell[]): string[] {
  const lines = [
    '| nodes | concurrency | implementation | duties/s | p50 ms | p99 ms | losers learn p50 / p99 ms | queries / duty | commits / duty |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const c of cells) {
    lines.push(
      `| ${c.nodes} | ${c.concurrency} | ${c.impl} | ${fmtSpread(c.dutiesPerSecond)} | ${fmtSpread(c.p50, 2)} | ${fmtSpread(c.p99, 2)} | ` +
        `${c.nodes > 1 ? `${fmtMs(c.loserP50.median)} / ${fmtMs(c.loserP99.median)}` : '–'} | ${c.roundTripsPerDuty.median.toFixed(2)} | ${c.commitsPerDuty.median.toFixed(2)} |`,
    );
  }
  return lines;
}

function planLines(plans: Record<string, Plan[]>): string[] {
  const lines: string[] = [];
  for (const [size, list] of Object.entries(plans)) {
    lines.push(`<details><summary>Plans at ${Number(size).toLocaleString('en-US')} loaded duties</summary>`, '');
    for (const p of list) {
      lines.push(
        `**${p.statement}**${p.executionMs !== undefined ? ` (${p.executionMs} ms)` : ''}${p.seqScanOnDuties ? ' — sequential scan of validator_duties' : ''}`,
        '',
        '```',
        p.text,
        '```',
        '',
      );
    }
    lines.push('</details>', '');
  }
  return lines;
}

function httpRow(name: string, concurrency: number, runs: HttpStats[]): string {
  const s = (pick: (x: HttpStats) => number): Spread => spread(runs.map(pick));
  return `| ${name} | ${concurrency} | ${fmtSpread(s((x) => x.count / x.seconds))} | ${fmtSpread(
    s((x) => x.p50),
    2,
  )} | ${fmtSpread(
    s((x) => x.p99),
    2,
  )} |`;
}

export function renderMarkdown(results: Results, chartFile: string): string {
  const { core, keys, stored, network, profile, operator } = results.sections;
  const out: string[] = [
    '# Benchmark results',
    '',
    `Written by \`npm run bench\` (bench/run.ts); raw figures in [results.json](results.json). Commit ${results.commit ?? '?'}` +
      `${results.uncommittedSrc?.length ? ` with uncommitted changes in ${results.uncommittedSrc.join(', ')}` : ''}; Node ${results.node}, ${results.cpus} CPU cores, ` +
      'embedded PostgreSQL 18 with fsync on, everything (benchmark, signers, PostgreSQL) on the same machine. Each figure is the median over ' +
      'repeated runs with the range in parentheses; the implementations alternate within each repeat. Machine load is given per section: this ' +
      'machine was shared with other work, so absolute figures move with it; the ratios come from runs taken back to back.',
    '',
  ];
  if (results.targets?.length) {
    out.push('## Targets', '', '| target | required | measured | met |', '|---|---|---|---|');
    for (const t of results.targets)
      out.push(`| ${t.name} | ${t.target} | ${t.measured} | ${t.met === undefined ? '–' : t.met ? 'yes' : '**no**'} |`);
    out.push('');
  }
  if (core) {
    out.push(
      '## Protection core',
      '',
      `${when(core)}; ${load(core)}. No-op signFn; a fresh database per run. "ha-signer" is this project's library API, "aztec" the published ` +
        '`@aztec/validator-ha-signer@4.1.2` on the same server, "floor" the same SQL work (the core\'s claim and record statements, batched the same ' +
        'way: one statement in flight, whatever arrived meanwhile goes next) issued directly with `pg`. Queries per duty: `pool.query()` calls counted ' +
        "on every node's pool, divided by signed duties; commits per duty: `pg_stat_database.xact_commit` delta over the run (set-up included). " +
        '"Losers learn": from the winner\'s answer to each other node\'s `DutyAlreadySignedError`.',
      '',
      `![latency percentiles against concurrency](${chartFile})`,
      '',
      ...coreTable(core.cells),
      '',
    );
  }
  if (keys) {
    out.push(
      '## Validator keys served by one node',
      '',
      `${when(keys)}; ${load(keys)}. Duties rotate over the given number of validator addresses.`,
      '',
    );
    out.push('| keys | concurrency | duties/s | p50 ms | p99 ms |', '|---|---|---|---|---|');
    for (const c of keys.cells)
      out.push(
        `| ${c.validators} | ${c.concurrency} | ${fmtSpread(c.dutiesPerSecond)} | ${fmtSpread(c.p50, 2)} | ${fmtSpread(c.p99, 2)} |`,
      );
    out.push('');
  }
  if (stored) {
    out.push(
      '## Stored history',
      '',
      `${when(stored)}; ${load(stored)}. One table grown by bulk load (INSERT … SELECT generate_series, 100 validators, then ANALYZE) and ` +
        'measured at each size; the benchmark signs new slots of the same validators. At each size after the first, every repeat also measures a fresh table of the first size just before (the baseline rows), so the comparison is between runs taken back to back. Pruning on: the node has `cleanupOldDutiesAfterHours: 1`, ' +
        'every validator has a low watermark, and a prune round deleting an old slice of 10,000 rows (the same at every size: a round deletes what aged out since the last one) starts when the measured window opens (batches of 500 rows, a transaction each, paced to at most a third of a core). ' +
        'p50 / p99 per window are the median over repeats (range); "all duties" takes every duty of every repeat together, which the size comparison uses (at concurrency 32 the slow tail comes in stalls that hold all 32 duties in flight, so one window\'s p99 rests on about ten of them). ' +
        `Load time: ${Object.entries(stored.loadSeconds)
          .map(([size, s]) => `${Number(size).toLocaleString('en-US')} rows ${s.toFixed(0)} s`)
          .join(', ')}.`,
      '',
      '| stored duties | table size | pruning | concurrency | duties/s | p50 ms | p99 ms | all duties: p50 / p99 ms | prune round (median) |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const c of stored.cells) {
      const label =
        c.baselineFor !== undefined
          ? `${c.storedDuties.toLocaleString('en-US')} (baseline, alternated with ${c.baselineFor.toLocaleString('en-US')})`
          : c.storedDuties.toLocaleString('en-US');
      out.push(
        `| ${label} | ${(c.tableBytes / 2 ** 20).toFixed(0)} MiB | ${c.pruning ? 'on' : 'off'} | ${c.concurrency} | ` +
          `${fmtSpread(c.dutiesPerSecond)} | ${fmtSpread(c.p50, 2)} | ${fmtSpread(c.p99, 2)} | ` +
          `${c.pooled ? `${fmtMs(c.pooled.p50)} / ${fmtMs(c.pooled.p99)} (${c.pooled.duties.toLocaleString('en-US')})` : '–'} | ${c.pruned !== undefined ? `${c.pruned} rows in ${c.pruneSeconds?.toFixed(2)} s` : '–'} |`,
      );
    }
    out.push('', ...planLines(stored.plans));
  }
  if (network) {
    out.push(
      '## Over the network',
      '',
      `${when(network)}; ${load(network)}. \`bench/http-signing.ts\`: three \`ha-signer serve\` processes, /v1 through \`RemoteHASigner\` ` +
        '(keep-alive HTTP on 127.0.0.1, bearer token, local keys), requests spread over the replicas. `bench/jsonrpc-signing.ts`: one replica, ' +
        'the JSON-RPC `eth_sign` of a stock Aztec node, with the claim check and without a lookup (baseline). Every process shares the 2 cores.',
      '',
      '| path | concurrency | requests/s | p50 ms | p99 ms |',
      '|---|---|---|---|---|',
    );
    const pick = (list: NetworkFigures[], key: string): HttpStats[] => list.map((f) => f[key] as HttpStats).filter(Boolean);
    for (const c of [1, 8, 32])
      if (pick(network.http, `uncontested_c${c}`).length)
        out.push(httpRow('/v1 sign, 3 replicas', c, pick(network.http, `uncontested_c${c}`)));
    for (const c of [1, 8]) {
      const all = network.http
        .map((f) => (f[`contested_c${c}`] as { allResolved: HttpStats } | undefined)?.allResolved)
        .filter((x): x is HttpStats => !!x);
      if (all.length) out.push(httpRow('/v1, each duty by 3 nodes via 3 replicas (all answered)', c, all));
    }
    for (const c of [1, 32]) {
      if (pick(network.jsonrpc, `claimed_c${c}`).length)
        out.push(httpRow('JSON-RPC eth_sign with claim check', c, pick(network.jsonrpc, `claimed_c${c}`)));
      if (pick(network.jsonrpc, `baseline_c${c}`).length)
        out.push(httpRow('JSON-RPC eth_sign, no lookup (baseline)', c, pick(network.jsonrpc, `baseline_c${c}`)));
    }
    out.push('');
  }
  if (profile) {
    out.push(
      '## Where the time goes',
      '',
      `${when(profile)}; ${load(profile)}. One ha-signer node at concurrency ${profile.concurrency} under the V8 CPU profiler (as \`node --cpu-prof\`, measured window only) ` +
        `(${profile.dutiesPerSecond.toFixed(0)} duties/s while profiled), and \`pg_stat_statements\` of the same run.`,
      '',
      '| component of the signing process | share of samples |',
      '|---|---|',
      ...profile.components.map((c) => `| ${c.component} | ${(c.share * 100).toFixed(1)}% |`),
      '',
      '| top functions (self time) | where | share |',
      '|---|---|---|',
      ...profile.topFunctions.slice(0, 10).map((f) => `| \`${f.fn}\` | ${f.where} | ${(f.share * 100).toFixed(1)}% |`),
      '',
      `Database execution time per duty (pg_stat_statements, all statements of the run): ${profile.databaseMsPerDuty.toFixed(3)} ms.`,
      '',
      '| statement | calls | mean ms | total ms | ms per duty |',
      '|---|---|---|---|---|',
      ...profile.statements.map(
        (s) =>
          `| \`${s.query.replace(/\|/g, '\\|')}\` | ${s.calls} | ${s.meanMs.toFixed(3)} | ${s.totalMs.toFixed(0)} | ${s.msPerDuty.toFixed(3)} |`,
      ),
      '',
    );
  }
  if (operator) out.push('## Operator', '', `${when(operator)}.`, '', renderOperatorSection(operator), '');
  return out.join('\n');
}

export function renderChart(core: CoreCell[]): Buffer {
  const colors = { 'ha-signer': [31, 119, 180], aztec: [230, 120, 20], floor: [120, 120, 120] } as const;
  const panel = (nodes: number, title: string): { title: string; series: Series[] } => {
    const series: Series[] = [];
    const names = { 'ha-signer': 'ha-signer', aztec: '@aztec/validator-ha-signer 4.1.2', floor: 'floor (same SQL, plain pg)' } as const;
    for (const impl of ['ha-signer', 'aztec', 'floor'] as const) {
      const cells = core.filter((c) => c.impl === impl && c.nodes === nodes).sort((a, b) => a.concurrency - b.concurrency);
      if (cells.length === 0) continue;
      series.push({ label: `${names[impl]} p50`, color: colors[impl], points: cells.map((c) => ({ x: c.concurrency, y: c.p50.median })) });
      series.push({
        label: `${impl} p99`,
        color: colors[impl],
        dashed: true,
        points: cells.map((c) => ({ x: c.concurrency, y: c.p99.median })),
      });
    }
    return { title, series };
  };
  const panels = [panel(1, '1 node'), panel(3, '3 nodes racing each duty')].filter((p) => p.series.length > 0);
  return latencyChart(panels, 'Signing latency (ms, log scale) vs concurrency, medians of repeats', 'concurrency', 'latency ms');
}

export async function writeResults(dir: string, results: Results): Promise<void> {
  const chartFile = 'latency.png';
  if (results.sections.core) await writeFile(`${dir}/${chartFile}`, renderChart(results.sections.core.cells));
  // Laid out by the project's Prettier config, so the written file passes `npm run lint` as committed.
  const jsonFile = `${dir}/results.json`;
  const options = (await prettier.resolveConfig(jsonFile)) ?? {};
  await writeFile(jsonFile, await prettier.format(JSON.stringify(results), { ...options, parser: 'json' }));
  await writeFile(`${dir}/RESULTS.md`, `${renderMarkdown(results, chartFile)}\n`);
}

// npm run chaos -- [--seed N] [--duration S] [--long]: one chaos run (random seed unless given), its summary, exit 1
// on any violation. Runs test/chaos/chaos.test.ts through vitest (the suite imports the TypeScript sources) with the
// settings in HA_SIGNER_CHAOS_* variables; `npm run chaos` builds dist/ first (the replicas are dist/cli.js serve).
import { spawnSync } from 'node:child_process';
import { readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const usage = 'usage: npm run chaos -- [--seed N] [--duration S] [--long]   (--seeds N,M,... for several runs)';
let values;
try {
  ({ values } = parseArgs({
    options: {
      seed: { type: 'string' },
      seeds: { type: 'string' },
      duration: { type: 'string' },
      long: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (error) {
  console.error(`${error.message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const seeds = values.seeds ?? values.seed ?? String(Math.floor(Math.random() * 2 ** 31));
if (!/^[0-9]+(,[0-9]+)*$/.test(seeds)) {
  console.error(`--seed: expected a non-negative integer, got ${JSON.stringify(seeds)}\n${usage}`);
  process.exit(2);
}
const duration = values.duration ?? (values.long ? '600' : '60');
if (!/^[1-9][0-9]*$/.test(duration)) {
  console.error(`--duration: expected seconds (a positive integer), got ${JSON.stringify(duration)}\n${usage}`);
  process.exit(2);
}
const report = join(tmpdir(), `ha-signer-chaos-${process.pid}.json`);
console.log(
  `chaos: seeds ${seeds}, ${duration} s each${values.long ? ', long form' : ''} (replay: npm run chaos -- --seeds ${seeds} --duration ${duration}${values.long ? ' --long' : ''})`,
);
const result = spawnSync('npx', ['vitest', 'run', '--project', 'chaos', 'test/chaos/chaos.test.ts'], {
  stdio: 'inherit',
  env: {
    ...process.env,
    HA_SIGNER_CHAOS_SEEDS: seeds,
    HA_SIGNER_CHAOS_DURATION_S: duration,
    HA_SIGNER_CHAOS_LONG: values.long ? '1' : '0',
    HA_SIGNER_CHAOS_REPORT: report,
  },
});
try {
  const summaries = JSON.parse(readFileSync(report, 'utf8'));
  console.log(`\nchaos summary (full report: ${report}.kept)`);
  for (const s of summaries) {
    console.log(
      `seed ${s.seed}: duties ${s.duties} (${s.conflictingDuties} conflicting), requests ${s.requests}, released ${s.releasedSignatures}, faults ${JSON.stringify(s.faults)}, violations ${s.violations.length}`,
    );
    for (const r of s.recovery)
      console.log(
        `  recovery ${r.kind}: service p50 ${r.p50} ms, max ${r.max} ms${r.replicaP50 !== null ? `; replica it hit p50 ${r.replicaP50} ms, max ${r.replicaMax} ms` : ''} (${r.count} faults${r.unrecovered ? `, ${r.unrecovered} unrecovered` : ''})`,
      );
    for (const d of s.drift)
      console.log(
        `  ${d.replica}: RSS ${d.rssFirstMiB} -> ${d.rssLastMiB} MiB (max ${d.rssMaxMiB}), signed p50 ${d.p50FirstQuarterMs} -> ${d.p50LastQuarterMs} ms (first -> last quarter)`,
      );
  }
  renameSync(report, `${report}.kept`);
} catch {
  console.log('chaos: no summary was written (see the output above)');
}
process.exit(result.status ?? 1);

/**
 * The chaos suite's bounded form (part of npm test): two seeded runs of 3 replicas on one real PostgreSQL under
 * every fault kind. `npm run chaos -- [--seed N] [--duration S] [--long]` runs it by hand (see test/chaos/cli.mjs);
 * the settings come in through HA_SIGNER_CHAOS_* variables. Only safety and liveness with generous bounds are
 * asserted: nothing is timed.
 */
import { writeFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { CLI_PATH } from '../../src/demo/replicas.js';
import { existsSync } from 'node:fs';
import { type ChaosSummary, formatSummary, runChaos } from './run.js';

const seeds = (process.env.HA_SIGNER_CHAOS_SEEDS ?? '1,2').split(',').map((s) => Number(s.trim()));
const durationS = Number(process.env.HA_SIGNER_CHAOS_DURATION_S ?? '40');
const long = process.env.HA_SIGNER_CHAOS_LONG === '1';
const report = process.env.HA_SIGNER_CHAOS_REPORT;
const summaries: ChaosSummary[] = [];

for (const seed of seeds) {
  it(
    `chaos seed ${seed}: no two signatures over different hashes, every released signature recorded, nothing recorded lost, recovery after every fault`,
    async () => {
      if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`HA_SIGNER_CHAOS_SEEDS: expected non-negative integers, got ${seed}`);
      if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run npm run build first (npm test does)`);
      const summary = await runChaos({ seed, durationS, long, log: (line) => console.log(`[chaos ${seed}] ${line}`) });
      summaries.push(summary);
      console.log(formatSummary(summary));
      if (report) await writeFile(report, JSON.stringify(summaries, null, 2));
      expect(summary.violations, `replay: npm run chaos -- --seed ${seed} --duration ${durationS}${long ? ' --long' : ''}`).toEqual([]);
      expect(summary.unexpectedExits).toEqual([]);
      expect(summary.outcomes.signed ?? 0).toBeGreaterThan(0);
    },
    (durationS + 240) * 1_000,
  );
}

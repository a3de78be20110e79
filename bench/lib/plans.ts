/**
 * EXPLAIN of the hot statements (claim of 1 and 32 duties, record) with ANALYZE inside a rolled-back transaction,
 * and of the maintenance statements (without ANALYZE), so the report shows whether each one stays an index lookup as
 * the table grows.
 */
import pg from 'pg';
import { RECORD_SIGNED, claimDuties } from '../../dist/protection/db/statements.js';
import { CLEANUP_OWN_STUCK_DUTIES, PRUNE_BATCH_BELOW_WATERMARKS, RAISE_WATERMARKS } from '../../dist/protection/schema.js';
import { BENCH_FIRST_SLOT, HISTORY_FIRST_SLOT } from './bulk.ts';
import { ROLLUP } from './postgres.ts';
import { validatorAddress } from './scenario.ts';

export interface Plan {
  statement: string;
  analyzed: boolean;
  /** Execution time reported by EXPLAIN ANALYZE (ms). */
  executionMs?: number;
  seqScanOnDuties: boolean;
  text: string;
}

function claimValues(withCheckpoint: boolean, firstSlot: number, n: number): unknown[] {
  const col = <T>(f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));
  return [
    col(() => ROLLUP),
    col((i) => validatorAddress(i % 100)),
    col((i) => String(firstSlot + i)),
    col(() => '1'),
    col(() => 0),
    col(() => 'ATTESTATION'),
    col((i) => `0x${(firstSlot + i).toString(16).padStart(64, '0')}`),
    col(() => 'explain'),
    col((i) => `explain-${i}`),
    ...(withCheckpoint ? [col(() => '0')] : []),
    144_000,
  ];
}

export async function explainHotStatements(url: string, freeSlot = BENCH_FIRST_SLOT): Promise<Plan[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const plans: Plan[] = [];
  const explain = async (statement: string, text: string, values: unknown[], analyze: boolean): Promise<void> => {
    await client.query('BEGIN');
    try {
      const result = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (${analyze ? 'ANALYZE, BUFFERS, ' : ''}COSTS OFF) ${text}`,
        values,
      );
      const lines = result.rows.map((r) => r['QUERY PLAN']);
      const execution = lines.find((l) => l.startsWith('Execution Time'));
      plans.push({
        statement,
        analyzed: analyze,
        ...(execution ? { executionMs: Number(/([\d.]+) ms/.exec(execution)?.[1]) } : {}),
        seqScanOnDuties: lines.some((l) => /Seq Scan on validator_duties/.test(l)),
        text: lines.join('\n'),
      });
    } finally {
      await client.query('ROLLBACK');
    }
  };
  try {
    const columns = await client.query(
      `SELECT 1 FROM information_schema.columns WHERE table_name = 'validator_duties' AND column_name = 'checkpoint_number'`,
    );
    const withCheckpoint = (columns.rowCount ?? 0) > 0;
    const claim = claimDuties(withCheckpoint);
    await explain('claim, 1 duty', claim.text, claimValues(withCheckpoint, freeSlot, 1), true);
    await explain('claim, 32 duties', claim.text, claimValues(withCheckpoint, freeSlot, 32), true);
    await explain('claim of an existing duty (loser)', claim.text, claimValues(withCheckpoint, HISTORY_FIRST_SLOT + 5, 1), true);
    const recordValues = [
      [ROLLUP],
      [validatorAddress(0)],
      [String(HISTORY_FIRST_SLOT + 5)],
      ['ATTESTATION'],
      [0],
      ['no-such-token'],
      [`0x${'ab'.repeat(65)}`],
    ];
    await explain('record', RECORD_SIGNED.text, recordValues, true);
    await explain('cleanup own stuck duties', CLEANUP_OWN_STUCK_DUTIES, ['explain', 144_000], false);
    await explain('raise watermarks (prune)', RAISE_WATERMARKS, [ROLLUP, 3_600_000], false);
    await explain('prune below watermarks (one batch)', PRUNE_BATCH_BELOW_WATERMARKS, [ROLLUP, 3_600_000, 1_000], false);
  } finally {
    await client.end();
  }
  return plans;
}

/**
 * A prune batch must not pay again for the rows earlier rounds deleted. On a large table autovacuum comes rarely
 * (by default after 20% of the rows are dead: 2 million at 10 million), so every round leaves its deleted rows
 * behind as dead tuples. A batch that reaches its rows through a bitmap scan visits every dead tuple of every earlier
 * round on the heap, each batch, each round (measured at 1 million rows: rounds of 10,000 rows took 337 ms, then
 * 646, 870, 1,197, 1,410, 1,859 ms). A plain scan of the primary key marks those index entries dead on the first
 * visit and skips them after, so the round stays flat (101–119 ms).
 */
import { describe, expect, it } from 'vitest';
import { PRUNE_BATCH_BELOW_WATERMARKS, RAISE_WATERMARKS } from '../../src/protection/schema.js';
import { ROLLUP, migratedDatabase, sql, startSigner, stopAllSigners } from '../support/protection.js';

const VALIDATORS = 100;
const SLICE_PER_VALIDATOR = 20;
const HOUR_MS = 3_600_000;

const validator = (i: string): string => `'0x' || lpad(to_hex(${0xbe000000} + (${i}) % ${VALIDATORS}), 40, '0')`;

/** Signed rows (fixture: triggers off), `perValidator` slots each from `firstSlot`, started `age` ago. */
function seed(firstSlot: number, perValidator: number, age: string): string {
  return `SET session_replication_role = replica;
    INSERT INTO validator_duties (rollup_address, validator_address, slot, block_number, duty_type, status, message_hash,
                                  signature, node_id, lock_token, started_at, completed_at)
    SELECT '${ROLLUP}', ${validator('i')}, ${firstSlot} + i / ${VALIDATORS}, 1, 'ATTESTATION', 'signed',
           '0x' || md5(i::text) || md5((i + 1)::text), '0x' || repeat(md5(i::text), 4) || '1b', 'seed', md5((-i)::text),
           LOCALTIMESTAMP - interval '${age}', LOCALTIMESTAMP - interval '${age}'
    FROM generate_series(0, ${perValidator * VALIDATORS - 1}) AS i;
    ANALYZE validator_duties;`;
}

/** Buffers (shared hit + read) one batch touches, from EXPLAIN (ANALYZE, BUFFERS): the batch runs for real. */
async function batchBuffers(url: string, batchRows: number): Promise<number> {
  const text = PRUNE_BATCH_BELOW_WATERMARKS.replaceAll('$1', `'${ROLLUP}'`)
    .replaceAll('$2', String(HOUR_MS))
    .replaceAll('$3', String(batchRows));
  const [row] = await sql<{ 'QUERY PLAN': [{ Plan: { 'Shared Hit Blocks': number; 'Shared Read Blocks': number } }] }>(
    url,
    `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`,
  );
  const plan = row!['QUERY PLAN'][0].Plan;
  return plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
}

describe('pruning next to the dead rows of earlier rounds', () => {
  it('a batch touches about as many buffers in the sixth round as in the first', async () => {
    const url = await migratedDatabase();
    const { db } = await startSigner(url, { nodeId: 'pruner' });
    try {
      // Recent history above, never pruned: 30,000 rows.
      await sql(url, seed(1_000_000, 300, '10 minutes'));
      const buffers: number[] = [];
      for (let round = 1; round <= 6; round++) {
        await sql(url, seed(round * 1_000, SLICE_PER_VALIDATOR, '3 hours'));
        await sql(url, RAISE_WATERMARKS, [ROLLUP, HOUR_MS]);
        // The first batch of the round, measured, takes half the slice; the round then deletes the rest.
        buffers.push(await batchBuffers(url, (VALIDATORS * SLICE_PER_VALIDATOR) / 2));
        expect(await db.cleanupOldDuties(HOUR_MS, { batchRows: 250 })).toBe((VALIDATORS * SLICE_PER_VALIDATOR) / 2);
      }
      const [{ n }] = (await sql<{ n: string }>(url, 'SELECT count(*) AS n FROM validator_duties')) as [{ n: string }];
      expect(Number(n)).toBe(300 * VALIDATORS);
      // 1,000 more dead rows each round. The bitmap-scan statement visited them all again: 10,645 buffers in round 1,
      // 11,823 in round 2, 16,292 in round 6. This one: 10,363, then 10,365 in every later round.
      expect(buffers[5]!, `buffers per round: ${buffers.join(', ')}`).toBeLessThan(buffers[0]! * 1.1);
    } finally {
      await stopAllSigners();
    }
  });
});

/**
 * Bulk-loads signed duties into validator_duties (INSERT ... SELECT generate_series in 1M-row transactions), the way
 * a long-running group's history looks: VALIDATORS validators, one attestation per slot each. Triggers are skipped
 * for the load (session_replication_role = replica: the rows are valid by construction) and the secondary indexes
 * are rebuilt after a large load instead of being maintained row by row; then VACUUM (ANALYZE) and CHECKPOINT.
 */
import pg from 'pg';
import { ROLLUP } from './postgres.ts';

export const LOADED_VALIDATORS = 100;
/** Loaded history starts at this slot; old slices (for pruning) sit below it, benchmark duties far above. */
export const HISTORY_FIRST_SLOT = 10_000_000;
export const BENCH_FIRST_SLOT = 200_000_000;

const VALIDATOR_SQL = (i: string): string => `'0x' || lpad(to_hex(${0xbe000000} + (${i}) % ${LOADED_VALIDATORS}), 40, '0')`;

async function withClient<T>(url: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`SET session_replication_role = replica`);
    await client.query(`SET maintenance_work_mem = '512MB'`);
    await client.query(`SET synchronous_commit = off`);
    return await body(client);
  } finally {
    await client.end();
  }
}

function insertRows(first: string, last: string, slotExpr: string, age: string): string {
  return `
INSERT INTO validator_duties (rollup_address, validator_address, slot, block_number, block_index_within_checkpoint, duty_type,
                              status, message_hash, signature, node_id, lock_token, started_at, completed_at)
SELECT '${ROLLUP}', ${VALIDATOR_SQL('i')}, ${slotExpr}, ${slotExpr}, 0, 'ATTESTATION', 'signed',
       '0x' || md5(i::text) || md5((i + 1)::text), '0x' || repeat(md5(i::text), 4) || '1b', 'loader', md5((-i)::text),
       LOCALTIMESTAMP - interval '${age}', LOCALTIMESTAMP - interval '${age}'
FROM generate_series(${first}::int8, ${last}::int8) AS i
ON CONFLICT DO NOTHING`;
}

/** Grows the loaded history from `from` to `to` rows (row i: validator i % 100, slot HISTORY_FIRST_SLOT + i / 100). */
export async function loadHistory(url: string, from: number, to: number, log?: (line: string) => void): Promise<number> {
  if (to <= from) return 0;
  const started = performance.now();
  await withClient(url, async (client) => {
    const rebuild = to - from > 2_000_000;
    const indexes = rebuild
      ? (
          await client.query<{ indexname: string; indexdef: string }>(
            `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'validator_duties' AND indexname NOT LIKE '%pkey'`,
          )
        ).rows
      : [];
    for (const index of indexes) await client.query(`DROP INDEX ${index.indexname}`);
    const chunk = 1_000_000;
    for (let first = from; first < to; first += chunk) {
      const last = Math.min(to, first + chunk) - 1;
      await client.query(insertRows(String(first), String(last), `${HISTORY_FIRST_SLOT} + i / ${LOADED_VALIDATORS}`, '10 minutes'));
      log?.(`  loaded ${(last + 1).toLocaleString('en-US')} rows (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }
    for (const index of indexes) await client.query(index.indexdef);
    // VACUUM sets hint bits and the visibility map now, and CHECKPOINT writes the loaded pages out, so neither
    // happens during the measurement (that would time the load's write-back, not the signing path).
    await client.query('VACUUM (ANALYZE) validator_duties');
    await client.query('CHECKPOINT');
  });
  return (performance.now() - started) / 1000;
}

/**
 * Adds an old slice (started 3 hours ago) below the history for every loaded validator: what a prune with a 1-hour
 * age deletes. Slice k sits at slots [k * 100_000, k * 100_000 + perValidator).
 */
export async function loadOldSlice(url: string, slice: number, perValidator: number): Promise<void> {
  await withClient(url, async (client) => {
    const rows = perValidator * LOADED_VALIDATORS;
    await client.query(insertRows('0', String(rows - 1), `${slice * 100_000} + i / ${LOADED_VALIDATORS}`, '3 hours'));
    await client.query('ANALYZE validator_duties');
  });
}

export async function tableSize(url: string): Promise<{ rows: number; bytes: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<{ rows: string; bytes: string }>(
      `SELECT (SELECT count(*) FROM validator_duties) AS rows, pg_total_relation_size('validator_duties') AS bytes`,
    );
    return { rows: Number(result.rows[0]?.rows ?? 0), bytes: Number(result.rows[0]?.bytes ?? 0) };
  } finally {
    await client.end();
  }
}

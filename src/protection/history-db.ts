/** What history.ts and watermarks.ts share: the database handle, the binding check, transactions, the lock. */
import type pg from 'pg';

export type Db = pg.ClientBase;

/** The history cannot move between these databases (rollup binding, schema): the message says what to do. */
export class HistoryRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HistoryRefusedError';
  }
}

/** Imports, watermark raises and pruning's watermark upsert exclude each other; reads (signing) go on. */
export const LOCK_WATERMARKS = 'LOCK TABLE ha_signer_watermarks IN SHARE ROW EXCLUSIVE MODE';

/** The rollup the database is bound to; refuses an unmigrated or unbound database with the command that fixes it. */
export async function boundRollup(db: Db): Promise<string> {
  let rollup: string | null | undefined;
  try {
    rollup = (await db.query<{ rollup: string | null }>('SELECT ha_signer_bound_rollup() AS rollup')).rows[0]?.rollup;
  } catch (error) {
    if ((error as { code?: string }).code === '42883' || (error as { code?: string }).code === '42P01') {
      throw new HistoryRefusedError(
        'this database has no ha-signer protection schema; run `ha-signer migrate up --database-url <url> --rollup-address 0x..` first',
      );
    }
    throw error;
  }
  if (!rollup)
    throw new HistoryRefusedError(
      'this database is bound to no rollup yet; bind it with `ha-signer migrate up --database-url <url> --rollup-address 0x..` first',
    );
  return rollup;
}

export async function inTransaction<T>(db: Db, begin: string, body: () => Promise<T>, commit = true): Promise<T> {
  await db.query(begin);
  try {
    const result = await body();
    await db.query(commit ? 'COMMIT' : 'ROLLBACK');
    return result;
  } catch (error) {
    await db.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

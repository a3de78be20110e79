/**
 * What the store needs to know of the schema before signing. The version checks are the ones initialize() has
 * always made; they move to src/protection/schema.ts (`verifySchema`, returning `aztecSchemaVersion: 1 | 2`) with
 * the Aztec-schema-2 migrations. Until then, whether the database has `checkpoint_number` is detected here, in
 * this one place: with verifySchema's result it becomes `aztecSchemaVersion === 2`.
 */
import { verifySchema } from '../schema.js';
import type { StatementRunner } from './runner.js';

export interface SchemaState {
  aztecSchemaVersion: number;
  /** The database has `validator_duties.checkpoint_number` (Aztec schema 2): the store reads and writes it. */
  withCheckpoint: boolean;
}

/** Whether `validator_duties` has `checkpoint_number` in the session's schema. */
export async function hasCheckpointColumn(runner: StatementRunner): Promise<boolean> {
  const result = await runner.run(
    `SELECT 1 FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name = 'validator_duties' AND column_name = 'checkpoint_number'`,
    [],
  );
  return result.rowCount === 1;
}

/**
 * Throws SchemaVersionError when the schema is missing, old or unknown (saying which command to run),
 * DatabaseUnavailableError when the database cannot be asked. No side effects (readiness probes call it).
 */
export async function verifySchemaState(runner: StatementRunner): Promise<SchemaState> {
  // The version checks live with the migrations (src/protection/schema.ts); checkpoint_number is Aztec schema 2's.
  const check = await verifySchema((text, values) => runner.run(text, values));
  return { aztecSchemaVersion: check.aztecSchemaVersion, withCheckpoint: check.aztecSchemaVersion === 2 };
}

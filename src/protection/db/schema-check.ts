/**
 * What the store needs to know of the schema before signing. The version checks live with the migrations
 * (src/protection/schema.ts `verifySchema`); the store reads and writes `checkpoint_number` exactly when the
 * database is at Aztec schema 2 (Aztec's migration `2_add-checkpoint-number` added the column).
 */
import { verifySchema } from '../schema.js';
import type { StatementRunner } from './runner.js';

export interface SchemaState {
  aztecSchemaVersion: number;
  /** The database has `validator_duties.checkpoint_number` (Aztec schema 2): the store reads and writes it. */
  withCheckpoint: boolean;
}

/**
 * Throws SchemaVersionError when the schema is missing, old or unknown (saying which command to run),
 * DatabaseUnavailableError when the database cannot be asked. No side effects (readiness probes call it).
 */
export async function verifySchemaState(runner: StatementRunner): Promise<SchemaState> {
  const check = await verifySchema((text, values) => runner.run(text, values));
  return { aztecSchemaVersion: check.aztecSchemaVersion, withCheckpoint: check.aztecSchemaVersion === 2 };
}

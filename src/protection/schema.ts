/**
 * Schema versions, migration names, SQLSTATEs and the maintenance SQL of the protection core, and the schema check.
 * The hot-path SQL is in db/statements.ts; the schema itself in the top-level migrations/ folder.
 */
import type pg from 'pg';
import { DatabaseUnavailableError, SchemaVersionError } from './errors.js';

/**
 * Aztec's `schema_version`s that ha-signer serves: 1 (`1_initial-schema`, what @aztec/validator-ha-signer 4.1.x and
 * 4.3.0-nightly.20260417 accept) and 2 (`2_add-checkpoint-number`, adds validator_duties.checkpoint_number).
 */
export const AZTEC_SCHEMA_VERSIONS = [1, 2] as const;
export type AztecSchemaVersion = (typeof AZTEC_SCHEMA_VERSIONS)[number];
/** The version a new database gets: what the published `latest` @aztec/validator-ha-signer (4.1.2) accepts. */
export const AZTEC_SCHEMA_VERSION: AztecSchemaVersion = 1;
/** Aztec's node-pg-migrate table and its migration names, per schema version (migrations/aztec/ mirrors them). */
export const AZTEC_MIGRATIONS_TABLE = 'pgmigrations';
export const AZTEC_MIGRATIONS = ['1_initial-schema', '2_add-checkpoint-number'] as const;

/** ha-signer's own migrations, in order; initialize() requires all of them (kept apart from `schema_version`). */
export const HA_SIGNER_MIGRATIONS = [
  '1700000000001_aztec-compatible-schema',
  '1700000000002_ha-signer-protection',
  '1700000000003_history-guards',
  '1700000000004_claim-lookup-index',
  '1700000000005_cheaper-writes',
] as const;
export const HA_SIGNER_SCHEMA_VERSION = HA_SIGNER_MIGRATIONS.length;
export const MIGRATIONS_TABLE = 'ha_signer_migrations';
export const NOTIFY_CHANNEL = 'ha_signer_duty';

/** SQLSTATEs raised by the database's own guards (migrations/…_ha-signer-protection.sql). */
export const SQLSTATE = {
  rollupNotBound: 'HA001',
  belowWatermark: 'HA002',
  immutable: 'HA003',
  foreignHolder: 'HA004',
  deleteSignedRefused: 'HA005',
  deadlock: '40P01',
  serializationFailure: '40001',
  undefinedTable: '42P01',
  protectionDownRefused: 'HA006',
  adoptionNeedsRollup: 'HA007',
} as const;

/** Deletes this node's own claims left in signing past the lease (after a crash of this node). */
export const CLEANUP_OWN_STUCK_DUTIES = `
DELETE FROM validator_duties
WHERE node_id = $1 AND status = 'signing' AND started_at < LOCALTIMESTAMP - make_interval(secs => $2::float8 / 1000)`;

/** Raises each validator's low watermark to its newest old signed duty, then prunes signed duties at or below it. */
export const RAISE_WATERMARKS = `
INSERT INTO ha_signer_watermarks AS w (rollup_address, validator_address, low_slot)
SELECT rollup_address, validator_address, max(slot)
FROM validator_duties
WHERE status = 'signed' AND rollup_address = $1
  AND started_at < LOCALTIMESTAMP - make_interval(secs => $2::float8 / 1000)
GROUP BY rollup_address, validator_address
ON CONFLICT (rollup_address, validator_address)
DO UPDATE SET low_slot = greatest(w.low_slot, excluded.low_slot), updated_at = now()`;

/**
 * Deletes up to $3 signed duties at or below their validator's low watermark (one batch of a prune round). Each
 * validator's rows are read through the primary key from its lowest slot (ORDER BY + LIMIT: a plain index scan). A
 * plain scan marks the index entries of rows that earlier batches and rounds deleted as dead on its first visit and
 * skips them after; autovacuum, which would remove them, comes rarely on a large table (after 20% of its rows are
 * dead). The age bound is written `started_at + interval '0 s'` so no index on started_at is used for it: with one,
 * the planner picks a bitmap scan, which never marks entries dead and visits every dead row of every earlier round
 * again in every batch (measured at 1M rows: rounds of 10,000 rows grew from 337 ms to 1,859 ms over six rounds;
 * flat at 101-119 ms this way). A younger row below the watermark waits for a later round, still covered by the
 * watermark. The rows are deleted by ctid (a TID scan: no second index walk); a row changed meanwhile gets a new
 * ctid and is skipped, and the delete trigger still refuses anything above a watermark.
 */
export const PRUNE_BATCH_BELOW_WATERMARKS = `
DELETE FROM validator_duties
WHERE status = 'signed' AND ctid = ANY (ARRAY(
  SELECT d.ctid FROM ha_signer_watermarks w
  CROSS JOIN LATERAL (
    SELECT d.ctid FROM validator_duties d
    WHERE d.rollup_address = w.rollup_address AND d.validator_address = w.validator_address AND d.slot <= w.low_slot
      AND d.status = 'signed' AND d.started_at + interval '0 s' < LOCALTIMESTAMP - make_interval(secs => $2::float8 / 1000)
    ORDER BY d.rollup_address, d.validator_address, d.slot
    LIMIT $3) d
  WHERE w.rollup_address = $1
  LIMIT $3))`;

export const BIND_ROLLUP = `
INSERT INTO ha_signer_rollup_binding (rollup_address) VALUES ($1) ON CONFLICT DO NOTHING`;
export const SELECT_BOUND_ROLLUP = `SELECT rollup_address FROM ha_signer_rollup_binding WHERE singleton`;

export const SELECT_DUTIES_OF_VALIDATOR = `
SELECT d.* FROM validator_duties d
WHERE d.rollup_address = $1 AND d.validator_address = $2 AND d.slot >= $3 AND d.slot <= $4
ORDER BY d.slot, d.duty_type, d.block_index_within_checkpoint
LIMIT $5`;

/** What verifySchema found: the store reads and writes checkpoint_number only at Aztec schema 2. */
export interface SchemaCheck {
  aztecSchemaVersion: AztecSchemaVersion;
  haSignerSchemaVersion: number;
}

/** Runs one statement (pg.Pool#query, or the store's statement runner with its timeouts and error mapping). */
export type RunStatement = <R extends pg.QueryResultRow>(text: string, values: unknown[]) => Promise<pg.QueryResult<R>>;

const MIGRATE_HINT = 'run `ha-signer migrate up --database-url <url>`';

export function isAztecSchemaVersion(version: number | undefined): version is AztecSchemaVersion {
  return (AZTEC_SCHEMA_VERSIONS as readonly number[]).includes(version ?? -1);
}

/**
 * Throws SchemaVersionError when the schema is missing, old, unknown or inconsistent (Aztec schema 2 without its
 * checkpoint_number column), DatabaseUnavailableError when the database cannot be asked. No side effects.
 */
export async function verifySchema(run: RunStatement): Promise<SchemaCheck> {
  let aztecVersion: number | undefined;
  let applied: string[];
  let hasCheckpointNumber: boolean;
  try {
    // Aztec's own check reads the highest version the same way.
    const version = await run<{ version: number }>('SELECT version FROM schema_version ORDER BY version DESC LIMIT 1', []);
    aztecVersion = version.rows[0]?.version;
    const migrations = await run<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY run_on, id`, []);
    applied = migrations.rows.map((row) => row.name);
    const column = await run(
      `SELECT 1 FROM information_schema.columns
       WHERE table_schema = current_schema() AND table_name = 'validator_duties' AND column_name = 'checkpoint_number'`,
      [],
    );
    hasCheckpointNumber = column.rows.length > 0;
  } catch (error) {
    if ((error as { code?: string }).code === SQLSTATE.undefinedTable) {
      throw new SchemaVersionError(`Database schema not initialized (${(error as Error).message}); ${MIGRATE_HINT}`);
    }
    if (error instanceof DatabaseUnavailableError) throw error;
    throw new DatabaseUnavailableError(`PostgreSQL unavailable while verifying the schema: ${(error as Error).message}`, { cause: error });
  }
  if (aztecVersion === undefined) throw new SchemaVersionError(`Database schema not initialized (no schema_version row); ${MIGRATE_HINT}`);
  if (!isAztecSchemaVersion(aztecVersion)) {
    throw new SchemaVersionError(
      `Database schema_version ${aztecVersion} is not one this signer knows (${AZTEC_SCHEMA_VERSIONS.join(', ')}); refusing to sign. ` +
        (aztecVersion < 1 ? MIGRATE_HINT : 'upgrade ha-signer to a release that knows this Aztec schema'),
    );
  }
  if (aztecVersion === 2 && !hasCheckpointNumber) {
    throw new SchemaVersionError(
      'Database says Aztec schema_version 2 but validator_duties has no checkpoint_number column (Aztec migration ' +
        `2_add-checkpoint-number half applied?); refusing to sign. ${MIGRATE_HINT} --aztec-schema 2`,
    );
  }
  const unknown = applied.filter((name) => !(HA_SIGNER_MIGRATIONS as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new SchemaVersionError(
      `Database has ha-signer migrations this release does not know (${unknown.join(', ')}): it was migrated by a newer ` +
        `release; upgrade ha-signer. Refusing to sign.`,
    );
  }
  const missing = HA_SIGNER_MIGRATIONS.filter((name) => !applied.includes(name));
  if (missing.length > 0) {
    throw new SchemaVersionError(
      `Database ha-signer schema version ${applied.length} is older than ${HA_SIGNER_SCHEMA_VERSION} (missing ${missing.join(', ')}); ${MIGRATE_HINT}`,
    );
  }
  return { aztecSchemaVersion: aztecVersion, haSignerSchemaVersion: applied.length };
}

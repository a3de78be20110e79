/**
 * Schema migrations (node-pg-migrate, SQL files in the package's top-level migrations/ folder), Aztec's schema
 * version (migrations/aztec/, recorded where Aztec's own runner looks), adoption and rollup rebinding.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { normalizeAddress } from './values.js';
import {
  AZTEC_MIGRATIONS,
  AZTEC_MIGRATIONS_TABLE,
  AZTEC_SCHEMA_VERSION,
  type AztecSchemaVersion,
  HA_SIGNER_MIGRATIONS,
  isAztecSchemaVersion,
  MIGRATIONS_TABLE,
  SELECT_BOUND_ROLLUP,
} from './schema.js';
import { RollupBindingError } from './errors.js';
import { describeDown, describeSchema, type MigrationReport } from './migration-report.js';
import { aztecMigrationsRecorded, aztecVersionOf, hasColumn, inspect, rollupsFound, watermarksSummary } from './migration-inspect.js';

export type { MigrationReport } from './migration-report.js';

/** node-pg-migrate's advisory lock id, which Aztec's `migrate-ha-db` also takes: the two runners exclude each other. */
const MIGRATION_LOCK_ID = '7241865325823964';
const PROTECTION_MIGRATION = HA_SIGNER_MIGRATIONS[1];

/** The migrations/ folder shipped beside dist/ (and src/) in the package. */
export function migrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'migrations');
    if (existsSync(join(candidate, '1700000000001_aztec-compatible-schema.sql'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('migrations folder not found beside the ha-signer package');
}

export interface MigrateOptions {
  databaseUrl: string;
  direction: 'up' | 'down';
  /** For down: how many of ha-signer's migrations to undo (default 1). */
  count?: number;
  /** Bind the database to this rollup (up only); required to adopt a database that already holds duties. */
  rollupAddress?: string;
  /** Up only: the Aztec schema to leave the database at (default: keep what it has; a new database gets 1). */
  aztecSchema?: AztecSchemaVersion;
  /** Down only: remove the protection triggers even though pruned history exists (prints what is lost). */
  force?: boolean;
  log?: (message: string) => void;
}

/** A refusal of `migrate` that names what it found and the flag that decides (the CLI prints it and exits 1). */
export class MigrationRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationRefusedError';
  }
}

/** Runs migrations and returns the names applied (up) or reverted (down). See migrate() for the full report. */
export async function runMigrations(options: MigrateOptions): Promise<string[]> {
  return (await migrate(options)).applied;
}

/**
 * Up: ha-signer's migrations, then Aztec's schema track to the requested version, then the rollup binding. Down:
 * reverts ha-signer's own migrations only, which never drop, truncate or alter Aztec's tables or delete a row.
 * Everything runs under node-pg-migrate's advisory lock (waiting for it), so concurrent runs apply each step once.
 */
export async function migrate(options: MigrateOptions): Promise<MigrationReport> {
  const rollup = options.rollupAddress === undefined ? undefined : normalizeAddress('rollupAddress', options.rollupAddress);
  if (options.aztecSchema !== undefined && !isAztecSchemaVersion(options.aztecSchema)) {
    throw new MigrationRefusedError(`aztecSchema: expected 1 or 2, got ${String(options.aztecSchema)}`);
  }
  const client = new pg.Client({ connectionString: options.databaseUrl });
  await client.connect();
  try {
    await client.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_ID})`);
    try {
      return options.direction === 'up' ? await up(client, options, rollup) : await down(client, options);
    } finally {
      await client.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_ID})`).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}

async function up(client: pg.Client, options: MigrateOptions, rollup: string | undefined): Promise<MigrationReport> {
  const before = await inspect(client);
  if (before.aztecVersion !== undefined && !isAztecSchemaVersion(before.aztecVersion)) {
    throw new MigrationRefusedError(
      `schema_version says Aztec schema ${before.aztecVersion}, which this ha-signer does not know (it knows 1 and 2); upgrade ha-signer`,
    );
  }
  if (options.aztecSchema !== undefined && before.aztecVersion !== undefined && options.aztecSchema < before.aztecVersion) {
    throw new MigrationRefusedError(
      `--aztec-schema ${options.aztecSchema}: the database is at Aztec schema ${before.aztecVersion} and ha-signer never lowers it ` +
        "(that would drop Aztec's checkpoint_number); Aztec nodes that only accept schema 1 cannot use this database",
    );
  }
  if (rollup === undefined && before.boundRollup === undefined && before.counts.validatorDuties > 0) {
    throw new MigrationRefusedError(
      `this database already holds ${before.counts.validatorDuties} duties and is bound to no rollup; found: ${await rollupsFound(client)}. ` +
        'Adopt it explicitly: `ha-signer migrate up --rollup-address <the rollup your validators sign for>` (docs/migrations.md)',
    );
  }
  // Migration 1700000000002 binds the rollup in its own transaction, from this session setting (adoption).
  await client.query(`SELECT set_config('ha_signer.bind_rollup', $1, false)`, [rollup ?? '']);
  const applied = await runner({
    dbClient: client,
    noLock: true,
    dir: migrationsDir(),
    direction: 'up',
    migrationsTable: MIGRATIONS_TABLE,
    singleTransaction: true,
    checkOrder: true,
    log: options.log ?? (() => {}),
    verbose: false,
  });
  const settled = await settleAztecSchema(client, options);
  if (rollup !== undefined) await bindRollupWith(client, rollup);
  const after = await inspect(client);
  const aztecSchemaVersion = after.aztecVersion as AztecSchemaVersion;
  return {
    direction: 'up',
    applied: [...applied.map((m) => m.name), ...settled.applied.map((name) => `aztec:${name}`)],
    aztecSchemaVersion,
    acceptedBy: describeSchema(aztecSchemaVersion),
    counts: after.counts,
    ...(after.boundRollup !== undefined ? { boundRollup: after.boundRollup } : {}),
    notes: settled.notes,
  };
}

/**
 * Brings Aztec's schema to the requested version by Aztec's own migration names, recorded in Aztec's `pgmigrations`
 * (migrations/aztec/), so Aztec's runner finds them applied. Keeps the version by default.
 */
async function settleAztecSchema(client: pg.Client, options: MigrateOptions): Promise<{ applied: string[]; notes: string[] }> {
  // A new database got AZTEC_SCHEMA_VERSION from migration 1700000000001; an existing one keeps its version.
  const current = (await aztecVersionOf(client)) ?? AZTEC_SCHEMA_VERSION;
  const target = options.aztecSchema ?? (current as AztecSchemaVersion);
  const notes: string[] = [];
  const recorded = await aztecMigrationsRecorded(client);
  const pending = target - AZTEC_MIGRATIONS.filter((name) => recorded.includes(name)).length;
  if (target === 1 && !recorded.includes(AZTEC_MIGRATIONS[1]) && (await hasColumn(client, 'checkpoint_number'))) {
    // Left by ha-signer before 0.2 (it added the column while reporting version 1). Aztec's migration 2 would fail on
    // it ("already exists"); renamed, values kept, and renamed back by migration 2 when the database moves to 2.
    await client.query('ALTER TABLE validator_duties RENAME COLUMN checkpoint_number TO ha_signer_checkpoint_number');
    notes.push(
      'validator_duties.checkpoint_number (added by ha-signer < 0.2 at Aztec schema 1) was renamed to ha_signer_checkpoint_number, ' +
        "values kept, so that Aztec's migration 2_add-checkpoint-number applies; `migrate up --aztec-schema 2` renames it back",
    );
  }
  if (pending <= 0) return { applied: [], notes };
  const applied = await runner({
    dbClient: client,
    noLock: true,
    dir: join(migrationsDir(), 'aztec'),
    direction: 'up',
    migrationsTable: AZTEC_MIGRATIONS_TABLE,
    count: pending,
    singleTransaction: true,
    checkOrder: true,
    log: options.log ?? (() => {}),
    verbose: false,
  });
  return { applied: applied.map((m) => m.name), notes };
}

async function down(client: pg.Client, options: MigrateOptions): Promise<MigrationReport> {
  const before = await inspect(client);
  const count = options.count ?? 1;
  const toRevert = before.haSignerMigrations.slice(-count).reverse();
  if (toRevert.includes(PROTECTION_MIGRATION) && before.counts.watermarks > 0) {
    const lost = await watermarksSummary(client);
    if (!options.force) {
      throw new MigrationRefusedError(
        `refusing to revert ${PROTECTION_MIGRATION}: ${lost}. Without its triggers the database would accept a pruned slot again, ` +
          'so an Aztec node could sign it with another hash. Keep the protection; `migrate down --force` removes it anyway',
      );
    }
    await client.query(`SELECT set_config('ha_signer.force_down', 'on', false)`);
  }
  const reverted = await runner({
    dbClient: client,
    noLock: true,
    dir: migrationsDir(),
    direction: 'down',
    count,
    migrationsTable: MIGRATIONS_TABLE,
    singleTransaction: true,
    checkOrder: true,
    log: options.log ?? (() => {}),
    verbose: false,
  });
  const after = await inspect(client);
  const names = reverted.map((m) => m.name);
  return {
    direction: 'down',
    applied: names,
    ...(isAztecSchemaVersion(after.aztecVersion) ? { aztecSchemaVersion: after.aztecVersion } : {}),
    counts: after.counts,
    ...(after.boundRollup !== undefined ? { boundRollup: after.boundRollup } : {}),
    ...describeDown(
      names,
      before.counts,
      after.counts,
      names.includes(PROTECTION_MIGRATION) && before.counts.watermarks > 0 ? await watermarksSummary(client) : undefined,
    ),
  };
}

async function bindRollupWith(client: pg.Client, rollup: string): Promise<void> {
  await client.query('INSERT INTO ha_signer_rollup_binding (rollup_address) VALUES ($1) ON CONFLICT DO NOTHING', [rollup]);
  const bound = (await client.query<{ rollup_address: string }>(SELECT_BOUND_ROLLUP)).rows[0]?.rollup_address;
  if (bound !== rollup) throw new RollupBindingError(bound ?? '(none)', rollup);
}

async function withClient<T>(databaseUrl: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Binds an unbound database to `rollupAddress`; throws RollupBindingError when it is bound to another. */
export async function bindRollup(databaseUrl: string, rollupAddress: string): Promise<void> {
  const rollup = normalizeAddress('rollupAddress', rollupAddress);
  await withClient(databaseUrl, (client) => bindRollupWith(client, rollup));
}

/**
 * Re-binds the database to a new rollup after a rollup upgrade. History is kept: the old rollup's duties stay
 * (and can no longer be deleted by other clients), and no new duty of the old rollup is accepted.
 */
export async function rebindRollup(databaseUrl: string, fromRollup: string, toRollup: string): Promise<void> {
  const from = normalizeAddress('--from', fromRollup);
  const to = normalizeAddress('--to', toRollup);
  await withClient(databaseUrl, async (client) => {
    const result = await client.query(
      `UPDATE ha_signer_rollup_binding
       SET rollup_address = $2, bound_at = now(), previous_rollup_addresses = previous_rollup_addresses || $1::varchar
       WHERE singleton AND rollup_address = $1`,
      [from, to],
    );
    if (result.rowCount !== 1) {
      const bound = (await client.query<{ rollup_address: string }>(SELECT_BOUND_ROLLUP)).rows[0]?.rollup_address;
      if (bound === to) return;
      throw new RollupBindingError(bound ?? '(none)', from);
    }
  });
}

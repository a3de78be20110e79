/**
 * Aztec's published @aztec/validator-ha-signer (4.1.2 and 4.3.0-nightly.20260417, devDependencies) as nodes and
 * migration runners for the version-matrix tests, plus Aztec schema 2, which no published package ships yet.
 */
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createHASigner as createAztec412 } from '@aztec/validator-ha-signer/factory';
import { PostgresSlashingProtectionDatabase as Aztec412Database } from '@aztec/validator-ha-signer/db';
import { runMigrations as aztec412Migrations } from '@aztec/validator-ha-signer/migrations';
import { ValidatorHASigner as Aztec412Signer } from '@aztec/validator-ha-signer/validator-ha-signer';
import { createHASigner as createAztecNightly } from '@aztec/validator-ha-signer-nightly/factory';
import { runMigrations as aztecNightlyMigrations } from '@aztec/validator-ha-signer-nightly/migrations';
import pg from 'pg';
import { ROLLUP, VALIDATOR } from '../support/protection.js';

/** '4.1.2' and 'nightly' are the published packages; 'v2' stands in for an Aztec release with migration 2 (see below). */
export type AztecRelease = '4.1.2' | 'nightly' | 'v2';
export const PUBLISHED: readonly AztecRelease[] = ['4.1.2', 'nightly'];

export interface AztecNode {
  release: AztecRelease;
  nodeId: string;
  /** signWithProtection of an attestation: resolves with the signature signFn returned, or rejects as the package does. */
  sign(slot: number, messageHash: string, signature: string, validator?: string): Promise<string>;
  stop(): Promise<void>;
}

interface AztecSignerLike {
  start(): Promise<void>;
  stop(): Promise<void>;
  signWithProtection(
    validator: unknown,
    messageHash: unknown,
    context: unknown,
    signFn: (hash: unknown) => Promise<unknown>,
  ): Promise<unknown>;
}

const config = (databaseUrl: string, nodeId: string, rollup: string) => ({
  databaseUrl,
  haSigningEnabled: true,
  nodeId,
  pollingIntervalMs: 20,
  signingTimeoutMs: 3_000,
  maxStuckDutiesAgeMs: 144_000,
  l1Contracts: { rollupAddress: { toString: () => rollup } },
});

/**
 * An Aztec node "with migration 2": no published package has it (npm: 4.1.2, 4.3.0-nightly.20260417 ship only
 * 1_initial-schema), so this is 4.1.2's store and signer with the version check of Aztec's source at schema 2
 * (`initialize()` demands exactly the package's SCHEMA_VERSION, here 2). Its statements do not name
 * checkpoint_number; the column's default fills it.
 */
class AztecV2Database extends Aztec412Database {
  constructor(private readonly versionPool: pg.Pool) {
    super(versionPool as never);
  }

  override async initialize(): Promise<void> {
    const version = (await this.versionPool.query<{ version: number }>('SELECT version FROM schema_version ORDER BY version DESC LIMIT 1'))
      .rows[0]?.version;
    if (version === undefined) throw new Error('Database schema not initialized. Please run migrations first');
    if (version < 2) throw new Error(`Database schema version ${version} is outdated (expected 2)`);
    if (version > 2) throw new Error(`Database schema version ${version} is newer than expected (2)`);
  }
}

/** Creates and starts an Aztec node of `release` (createHASigner runs initialize(), which checks the schema version). */
export async function startAztecNode(release: AztecRelease, databaseUrl: string, nodeId: string, rollup = ROLLUP): Promise<AztecNode> {
  let signer: AztecSignerLike;
  if (release === 'v2') {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
    const db = new AztecV2Database(pool);
    try {
      await db.initialize();
    } catch (error) {
      await pool.end();
      throw error;
    }
    signer = new Aztec412Signer(db as never, config(databaseUrl, nodeId, rollup) as never) as unknown as AztecSignerLike;
  } else {
    const create = release === '4.1.2' ? createAztec412 : createAztecNightly;
    signer = (await create(config(databaseUrl, nodeId, rollup) as never)).signer as unknown as AztecSignerLike;
  }
  try {
    await signer.start();
  } catch (error) {
    await signer.stop().catch(() => {});
    throw error;
  }
  return {
    release,
    nodeId,
    sign: async (slot, messageHash, signature, validator = VALIDATOR) =>
      String(
        await signer.signWithProtection(
          { toString: () => validator },
          { toString: () => messageHash },
          { dutyType: 'ATTESTATION', slot: BigInt(slot), blockNumber: 7n },
          async () => ({ toString: () => signature }),
        ),
      ),
    stop: () => signer.stop(),
  };
}

/** Aztec's own `migrate-ha-db up|down` (the published package's runner: table pgmigrations, one step down). */
export async function aztecMigrate(release: '4.1.2' | 'nightly', databaseUrl: string, direction: 'up' | 'down'): Promise<string[]> {
  const run = release === '4.1.2' ? aztec412Migrations : aztecNightlyMigrations;
  return await run(databaseUrl, { direction });
}

interface NodePgMigrateRunner {
  runner(options: Record<string, unknown>): Promise<{ name: string }[]>;
}

const PUBLISHED_PACKAGE = fileURLToPath(new URL('../../node_modules/@aztec/validator-ha-signer/', import.meta.url));

/**
 * Aztec's migration 2 (`2_add-checkpoint-number`, aztec-packages yarn-project/validator-ha-signer/src/db/migrations):
 * adds validator_duties.checkpoint_number (bigint, not null, default 0) and moves schema_version 1 -> 2; its down
 * drops the column and moves 2 -> 1. Expressed here with node-pg-migrate's builder, as the source does.
 */
const MIGRATION_2 = `
export function up(pgm) {
  pgm.addColumn('validator_duties', { checkpoint_number: { type: 'bigint', notNull: true, default: 0 } });
  pgm.sql('UPDATE schema_version SET version = 2 WHERE version = 1');
}
export function down(pgm) {
  pgm.dropColumn('validator_duties', 'checkpoint_number');
  pgm.sql('UPDATE schema_version SET version = 1 WHERE version = 2');
}
`;

let migrationsWithV2: Promise<string> | undefined;

/** The published package's migrations folder plus migration 2, in a temporary folder. */
function aztecV2MigrationsDir(): Promise<string> {
  migrationsWithV2 ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aztec-ha-v2-'));
    await mkdir(join(dir, 'migrations'));
    await copyFile(join(PUBLISHED_PACKAGE, 'dest/db/schema.js'), join(dir, 'schema.js'));
    await copyFile(join(PUBLISHED_PACKAGE, 'dest/db/migrations/1_initial-schema.js'), join(dir, 'migrations/1_initial-schema.js'));
    await writeFile(join(dir, 'migrations/2_add-checkpoint-number.js'), MIGRATION_2);
    return join(dir, 'migrations');
  })();
  return migrationsWithV2;
}

/**
 * Aztec's runner with migrations 1 and 2: the published package's node-pg-migrate and exactly the options of its
 * `runMigrations` (table pgmigrations, every pending migration up, one down, its ignorePattern).
 */
export async function aztecV2Migrate(databaseUrl: string, direction: 'up' | 'down'): Promise<string[]> {
  const bundle = join(PUBLISHED_PACKAGE, 'node_modules/node-pg-migrate/dist/bundle/index.js');
  const { runner } = (await import(pathToFileURL(bundle).href)) as NodePgMigrateRunner;
  const applied = await runner({
    databaseUrl,
    dir: await aztecV2MigrationsDir(),
    direction,
    migrationsTable: 'pgmigrations',
    count: direction === 'down' ? 1 : Infinity,
    verbose: false,
    log: () => {},
    ignorePattern: '.*\\.d\\.(ts|js)$|.*\\.d\\.ts\\.map$',
  });
  return applied.map((migration) => migration.name);
}

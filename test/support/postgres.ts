/** Per-test-file access to the run's real PostgreSQL server (started by postgres-global-setup.ts). */
import { inject } from 'vitest';
import { externalPostgres } from '../../src/dev/embedded-postgres.js';

let counter = 0;

/** Creates a fresh, empty database on the shared test server and returns its URL. */
export async function createTestDatabase(prefix = 't'): Promise<string> {
  const server = externalPostgres(inject('postgresAdminUrl'));
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return await server.createDatabase(name);
}

export function postgresAdminUrl(): string {
  return inject('postgresAdminUrl');
}

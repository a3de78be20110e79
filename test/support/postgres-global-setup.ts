/** vitest globalSetup: one real PostgreSQL server per test run; each test file creates its own database. */
import type { TestProject } from 'vitest/node';
import { externalPostgres, startEmbeddedPostgres, type RunningPostgres } from '../../src/dev/embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresAdminUrl: string;
  }
}

let server: RunningPostgres | undefined;

export async function setup(project: TestProject): Promise<void> {
  const external = process.env.HA_SIGNER_TEST_POSTGRES_URL;
  server = external ? externalPostgres(external) : await startEmbeddedPostgres();
  project.provide('postgresAdminUrl', server.adminUrl);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}

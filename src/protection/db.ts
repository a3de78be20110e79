/** The package subpath `./db` (PostgreSQL store); the implementation lives in ./db/. */
export { PostgresSlashingProtectionDatabase, type PostgresDatabaseOptions } from './db/postgres.js';
export type { ProtectionStore, ClaimResult } from './db/store.js';
export { type QueryablePool, type StoreHealth, DEFAULT_STATEMENT_TIMEOUT_MS } from './db/runner.js';
export type { SchemaState } from './db/schema-check.js';
export { isUnavailable } from './db/classify.js';

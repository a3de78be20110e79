export * from './types.js';
export * from './errors.js';
export * from './config.js';
export {
  PostgresSlashingProtectionDatabase,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  type ClaimResult,
  type PostgresDatabaseOptions,
  type ProtectionStore,
  type QueryablePool,
  type SchemaState,
  type StoreHealth,
} from './db.js';
export { SlashingProtectionService, type SlashingProtectionServiceDeps } from './slashing-protection-service.js';
export { ValidatorHASigner, type ValidatorHASignerDeps } from './validator-ha-signer.js';
export { createHASigner, createPool, type CreateHASignerDeps } from './factory.js';
export {
  migrate,
  runMigrations,
  rebindRollup,
  bindRollup,
  migrationsDir,
  MigrationRefusedError,
  type MigrateOptions,
  type MigrationReport,
} from './migrations.js';
export {
  AZTEC_SCHEMA_VERSION,
  AZTEC_SCHEMA_VERSIONS,
  type AztecSchemaVersion,
  HA_SIGNER_SCHEMA_VERSION,
  type SchemaCheck,
} from './schema.js';
export {
  claimParams,
  dutyFromContext,
  normalizeAddress,
  normalizeHash32,
  normalizeSignature,
  parseDuty,
  toUint64,
  toDutyType,
} from './values.js';
export { silentLogger } from './logger.js';
export {
  ReplicationMonitor,
  readReplicationStatus,
  evaluateReplication,
  requiredSynchronousStandbys,
  type ReplicationStatus,
  type StandbyState,
} from './replication.js';
export { FileHighWaterMarkStore, type HighWaterMarkStore, type HighWaterMarks, markKey, mergeMarks } from './high-water-mark.js';
export { HistoryGuard, type HistoryGuardOptions, type Regression } from './history-guard.js';
export { SafetyGates, type SafetyGateOptions } from './safety-gates.js';

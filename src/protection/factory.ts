/** createHASigner: the package's entry point, on a pg pool (or one you pass). */
import pg from 'pg';
import { type CreateHASignerConfig, DEFAULTS, resolveSignerConfig, ENV, parseDatabaseUrl } from './config.js';
import { PostgresSlashingProtectionDatabase } from './db/postgres.js';
import { DEFAULT_STATEMENT_TIMEOUT_MS, type QueryablePool } from './db/runner.js';
import { ConfigError } from './errors.js';
import { HistoryGuard, type HistoryGuardOptions } from './history-guard.js';
import type { HighWaterMarkStore } from './high-water-mark.js';
import { silentLogger } from './logger.js';
import { ReplicationMonitor } from './replication.js';
import type { Logger, ProtectionObserver } from './types.js';
import { ValidatorHASigner } from './validator-ha-signer.js';

export interface CreateHASignerDeps {
  pool?: QueryablePool;
  logger?: Logger;
  observer?: ProtectionObserver;
  /** Bound of each database statement of the signing path (default DEFAULT_STATEMENT_TIMEOUT_MS). */
  statementTimeoutMs?: number;
  /** Refuse duties (and, in `serve`, readiness) while record commits are not synchronously replicated (replication.ts). */
  requireSynchronousReplication?: boolean;
  /** How often replication is re-checked (default 5000 ms); the status is always watched, and required only on request. */
  replicationCheckIntervalMs?: number;
  /** External high-water marks (high-water-mark.ts): detects a database that went back in time (history-guard.ts). */
  highWaterMarks?: HighWaterMarkStore;
  /** Timing of the history guard (mark writes at most every flushIntervalMs, database comparison every checkIntervalMs). */
  historyGuard?: Pick<HistoryGuardOptions, 'flushIntervalMs' | 'checkIntervalMs'>;
}

/**
 * A pool whose sessions bound every statement and lock wait in PostgreSQL itself (statement_timeout,
 * lock_timeout), so a blocked statement is cancelled by the server and its connection kept; a dead or frozen
 * connection is caught by the store's client-side timeout instead.
 */
export function createPool(
  config: CreateHASignerConfig,
  logger: Logger = silentLogger,
  statementTimeoutMs = DEFAULT_STATEMENT_TIMEOUT_MS,
): pg.Pool {
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: config.poolMaxCount ?? DEFAULTS.poolMaxCount,
    min: config.poolMinCount ?? DEFAULTS.poolMinCount,
    idleTimeoutMillis: config.poolIdleTimeoutMs ?? DEFAULTS.poolIdleTimeoutMs,
    connectionTimeoutMillis: config.poolConnectionTimeoutMs ?? DEFAULTS.poolConnectionTimeoutMs,
    application_name: `ha-signer:${config.nodeId}`.slice(0, 63),
    statement_timeout: statementTimeoutMs,
    lock_timeout: statementTimeoutMs,
    // A session left inside a transaction (a process paused mid-prune) must not hold row locks for long.
    idle_in_transaction_session_timeout: 60_000,
  });
  // Without a listener an idle client's error (PostgreSQL restarting) would crash the process.
  pool.on('error', (error) => logger.warn({ err: error.message }, 'idle PostgreSQL connection failed'));
  return pool;
}

/**
 * Creates the signer and its database, verifying the schema (migrations must have run). Call `signer.start()`
 * next: it checks the database's rollup binding and starts cleanup.
 */
export async function createHASigner(
  config: CreateHASignerConfig,
  deps: CreateHASignerDeps = {},
): Promise<{ signer: ValidatorHASigner; db: PostgresSlashingProtectionDatabase }> {
  const resolved = resolveSignerConfig(config);
  if (!deps.pool) {
    if (!config.databaseUrl) throw new ConfigError(`databaseUrl (${ENV.databaseUrl})`, 'is required for createHASigner');
    parseDatabaseUrl(`databaseUrl (${ENV.databaseUrl})`, config.databaseUrl);
  }
  const logger = deps.logger ?? silentLogger;
  const statementTimeoutMs = deps.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const pool = deps.pool ?? createPool(config, logger, statementTimeoutMs);
  const db = new PostgresSlashingProtectionDatabase(pool, {
    logger,
    leaseMs: resolved.leaseMs,
    statementTimeoutMs,
    requireSynchronousReplication: deps.requireSynchronousReplication === true,
  });
  try {
    await db.initialize();
  } catch (error) {
    if (!deps.pool) await db.close().catch(() => {});
    throw error;
  }
  const observer = deps.observer;
  const monitor = new ReplicationMonitor((text) => db.replicationQuery(text), {
    logger,
    ...(deps.replicationCheckIntervalMs !== undefined ? { intervalMs: deps.replicationCheckIntervalMs } : {}),
    onStatus: (status) => observer?.replicationChecked?.(status.synchronous),
  });
  const historyGuard = deps.highWaterMarks
    ? new HistoryGuard(deps.highWaterMarks, (rollup, keys) => db.historyTops(rollup, keys), resolved.rollupAddress, {
        ...deps.historyGuard,
        logger,
        onCheck: (regressions) => observer?.historyChecked?.(regressions.length),
      })
    : undefined;
  const signer = new ValidatorHASigner(db, config, {
    logger,
    ...(observer ? { observer } : {}),
    replication: { monitor, required: deps.requireSynchronousReplication === true },
    ...(historyGuard ? { historyGuard } : {}),
  });
  return { signer, db };
}

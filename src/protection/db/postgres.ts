/** PostgreSQL implementation of the slashing-protection database (API of @aztec/validator-ha-signer's `./db`). */
import type pg from 'pg';
import { DEFAULT_MAX_STUCK_DUTIES_AGE_MS } from '../config.js';
import { belowWatermarkError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { DutyNotifications, type DutySubscription } from '../notifications.js';
import type {
  CheckAndRecordParams,
  DutyKey,
  DutyType,
  HexLike,
  IntegerLike,
  Logger,
  SlashingProtectionDatabase,
  TryInsertOrGetResult,
  ValidatorDutyRecord,
} from '../types.js';
import { dutyKeyString, normalizeAddress, normalizeDutyKey, normalizeSignature } from '../values.js';
import type { HistoryTop } from '../history-guard.js';
import { type ReplicationStatus, readReplicationStatus } from '../replication.js';
import { DutyLocks } from './hot-path.js';
import { Maintenance, type PruneOptions } from './maintenance.js';
import type { ClaimResult } from './rows.js';
import { DEFAULT_STATEMENT_TIMEOUT_MS, type QueryablePool, StatementRunner, type StoreHealth } from './runner.js';
import { type SchemaState, verifySchemaState } from './schema-check.js';
import type { ProtectionStore } from './store.js';

export interface PostgresDatabaseOptions {
  logger?: Logger;
  /** Lease of duties claimed through tryInsertOrGetExisting (the service passes its own). */
  leaseMs?: number;
  /** Largest number of duties one claim or record statement carries. */
  maxBatchSize?: number;
  /** Statements of each kind in flight at once (default 1: measured best, larger batches share one commit flush). */
  maxInFlight?: number;
  /** A batch statement running longer than this no longer holds back the next one (default 250 ms). */
  stallAfterMs?: number;
  /**
   * Bound of each statement (default 5000 ms): enforced client-side (the connection is discarded) for any pool,
   * and by PostgreSQL's statement_timeout and lock_timeout for pools made by createPool.
   */
  statementTimeoutMs?: number;
  /** Withhold a signature whose record committed only locally (its wait for the synchronous standby was cancelled). */
  requireSynchronousReplication?: boolean;
  /** LISTEN connection settings; default: the pool's options. Set false to poll only. */
  notifications?: pg.ClientConfig | false;
}

export class PostgresSlashingProtectionDatabase implements SlashingProtectionDatabase, ProtectionStore {
  private readonly logger: Logger;
  private readonly leaseMs: number;
  private readonly runner: StatementRunner;
  private readonly locks: DutyLocks;
  private readonly maintenance: Maintenance;
  readonly notifications: DutyNotifications | undefined;
  /** Whether the database has checkpoint_number; decided once (initialize, or the first statement that needs it). */
  private withCheckpoint: Promise<boolean> | undefined;
  private closed = false;

  constructor(
    private readonly pool: QueryablePool,
    options: PostgresDatabaseOptions = {},
  ) {
    this.logger = options.logger ?? silentLogger;
    this.leaseMs = options.leaseMs ?? DEFAULT_MAX_STUCK_DUTIES_AGE_MS;
    this.runner = new StatementRunner(pool, options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS);
    const batching = {
      ...(options.maxBatchSize !== undefined ? { maxBatchSize: options.maxBatchSize } : {}),
      ...(options.maxInFlight !== undefined ? { maxInFlight: options.maxInFlight } : {}),
      ...(options.stallAfterMs !== undefined ? { stallAfterMs: options.stallAfterMs } : {}),
    };
    this.locks = new DutyLocks(
      this.runner,
      () => this.checkpointColumn(),
      this.logger,
      batching,
      options.requireSynchronousReplication === true,
    );
    this.maintenance = new Maintenance(this.runner);
    // A pool without an error listener crashes the process when PostgreSQL restarts (aztec-packages#24556).
    pool.on?.('error', (error) => this.logger.warn({ err: error.message }, 'idle PostgreSQL connection failed'));
    const listenConfig = options.notifications === false ? undefined : (options.notifications ?? pool.options);
    this.notifications = listenConfig ? new DutyNotifications(listenConfig, this.logger) : undefined;
    // The database answers again: reconnect LISTEN now rather than at the next backoff step.
    this.runner.onRecovered(() => this.notifications?.reconnectNow());
  }

  /** Verifies the schema (see verifySchema), fixes the statement variant, and starts the LISTEN connection. */
  async initialize(): Promise<void> {
    const state = await this.verifySchema();
    this.withCheckpoint = Promise.resolve(state.withCheckpoint);
    await this.notifications?.start();
  }

  /**
   * The schema checks of initialize(), without side effects (for readiness probes): throws SchemaVersionError
   * when the schema is missing, old or unknown, DatabaseUnavailableError when the database cannot be asked.
   */
  async verifySchema(): Promise<SchemaState> {
    return await verifySchemaState(this.runner);
  }

  /** Without initialize() (the package's API asks for it first), the first statement that needs it verifies the schema. */
  private checkpointColumn(): Promise<boolean> {
    this.withCheckpoint ??= verifySchemaState(this.runner).then(
      (state) => state.withCheckpoint,
      (error: unknown) => {
        this.withCheckpoint = undefined;
        throw error;
      },
    );
    return this.withCheckpoint;
  }

  /** Resolves when the database answers `SELECT 1` within timeoutMs (pool wait included); else DatabaseUnavailableError. */
  async ping(timeoutMs?: number): Promise<void> {
    await this.runner.ping(timeoutMs);
  }

  /** Whether the last statements were answered (false after a timeout or connection failure, until one succeeds). */
  health(): StoreHealth {
    return this.runner.health();
  }

  async ensureRollupBinding(rollupAddress: HexLike): Promise<void> {
    await this.maintenance.ensureRollupBinding(normalizeAddress('rollupAddress', rollupAddress));
  }

  /** Whether record commits on this pool are synchronously replicated (see replication.ts). */
  async replicationStatus(staleReplyMs?: number): Promise<ReplicationStatus> {
    return await readReplicationStatus((text) => this.replicationQuery(text), staleReplyMs);
  }

  /** One bounded statement without parameters (the replication monitor's query). */
  replicationQuery(text: string): Promise<pg.QueryResult> {
    return this.runner.run(text, []);
  }

  /** Per (validator, duty kind): the highest signed slot and the low watermark (the history guard's reader). */
  historyTops(rollupAddress: string, marks: { validatorAddress: string; dutyType: string; slot: bigint }[]): Promise<HistoryTop[]> {
    return this.maintenance.historyTops(rollupAddress, marks);
  }

  async boundRollup(): Promise<string | undefined> {
    return await this.maintenance.boundRollup();
  }

  /** Compatible with the package: inserts the duty (isNew) or returns the existing record. */
  async tryInsertOrGetExisting(params: CheckAndRecordParams): Promise<TryInsertOrGetResult> {
    const claim = await this.claim(params, this.leaseMs);
    if (!claim.record) throw belowWatermarkError(params, claim.watermarkLowSlot ?? 0n);
    return { isNew: claim.isNew, record: claim.record };
  }

  claim(params: CheckAndRecordParams, leaseMs: number): Promise<ClaimResult> {
    return this.locks.claim(params, leaseMs);
  }

  takeOver(params: CheckAndRecordParams, leaseMs: number): Promise<string | undefined> {
    return this.locks.takeOver(params, leaseMs);
  }

  recordSigned(key: DutyKey, lockToken: string, signature: string): Promise<boolean> {
    return this.locks.recordSigned(key, lockToken, signature);
  }

  release(key: DutyKey, lockToken: string): Promise<boolean> {
    return this.locks.release(key, lockToken);
  }

  readDuty(key: DutyKey): Promise<ValidatorDutyRecord | undefined> {
    return this.locks.readDuty(key);
  }

  /** The package's record call (validates its input): true only if this token still held the duty (durable on return). */
  async updateDutySigned(
    rollupAddress: HexLike,
    validatorAddress: HexLike,
    slot: IntegerLike,
    dutyType: DutyType,
    signature: string,
    lockToken: string,
    blockIndexWithinCheckpoint: number,
  ): Promise<boolean> {
    const key = normalizeDutyKey({ rollupAddress, validatorAddress, slot, dutyType, blockIndexWithinCheckpoint });
    return await this.locks.recordSigned(key, lockToken, normalizeSignature('signature', signature));
  }

  /** The package's release call (validates its input): deletes a duty held under `lockToken`. */
  async deleteDuty(
    rollupAddress: HexLike,
    validatorAddress: HexLike,
    slot: IntegerLike,
    dutyType: DutyType,
    lockToken: string,
    blockIndexWithinCheckpoint: number,
  ): Promise<boolean> {
    const key = normalizeDutyKey({ rollupAddress, validatorAddress, slot, dutyType, blockIndexWithinCheckpoint });
    return await this.locks.release(key, lockToken);
  }

  /** Recorded duties of one validator in a slot range (for audit). */
  listDuties(
    rollupAddress: string,
    validatorAddress: string,
    fromSlot: bigint,
    toSlot: bigint,
    limit = 1000,
  ): Promise<ValidatorDutyRecord[]> {
    return this.maintenance.listDuties(rollupAddress, validatorAddress, fromSlot, toSlot, limit);
  }

  subscribe(key: DutyKey): DutySubscription | undefined {
    return this.notifications?.subscribe(dutyKeyString(key));
  }

  get notificationsConnected(): boolean {
    return this.notifications?.connected === true;
  }

  async startNotifications(): Promise<void> {
    await this.notifications?.start();
  }

  cleanupOwnStuckDuties(nodeId: string, maxAgeMs: number): Promise<number> {
    return this.maintenance.cleanupOwnStuckDuties(nodeId, maxAgeMs);
  }

  cleanupOldDuties(maxAgeMs: number, options?: PruneOptions): Promise<number> {
    return this.maintenance.cleanupOldDuties(maxAgeMs, options);
  }

  /** Stops notifications and closes the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.notifications?.close();
    await this.pool.end();
  }

  /** Pool gauges for metrics. */
  poolStats(): { total: number; idle: number; waiting: number } {
    return { total: this.pool.totalCount ?? 0, idle: this.pool.idleCount ?? 0, waiting: this.pool.waitingCount ?? 0 };
  }
}

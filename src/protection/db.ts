/** PostgreSQL implementation of the slashing-protection database (API of @aztec/validator-ha-signer's `./db`). */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { Coalescer } from './batcher.js';
import { DEFAULT_MAX_STUCK_DUTIES_AGE_MS } from './config.js';
import { DatabaseUnavailableError, RollupBindingError, SchemaVersionError, SlashingProtectionError } from './errors.js';
import { silentLogger } from './logger.js';
import { DutyNotifications, type DutySubscription } from './notifications.js';
import {
  AZTEC_SCHEMA_VERSION,
  BIND_ROLLUP,
  CLAIM_DUTIES,
  CLEANUP_OWN_STUCK_DUTIES,
  HA_SIGNER_MIGRATIONS,
  HA_SIGNER_SCHEMA_VERSION,
  MIGRATIONS_TABLE,
  PRUNE_BELOW_WATERMARKS,
  RAISE_WATERMARKS,
  RECORD_SIGNED,
  RELEASE_DUTY,
  SELECT_BOUND_ROLLUP,
  SELECT_DUTIES_OF_VALIDATOR,
  SELECT_DUTY,
  SQLSTATE,
  TAKE_OVER_DUTY,
} from './schema.js';
import {
  type CheckAndRecordParams,
  type DutyKey,
  DutyStatus,
  type DutyType,
  type HexLike,
  type IntegerLike,
  type Logger,
  type SlashingProtectionDatabase,
  type TryInsertOrGetResult,
  type ValidatorDutyRecord,
} from './types.js';
import { dutyKeyString, normalizeAddress, normalizeDutyKey, normalizeSignature } from './values.js';

/** What a claim found: the lock (isNew), or the existing record and what may be done about it. */
export interface ClaimResult {
  isNew: boolean;
  /** The inserted or existing record; absent only when the slot is below the watermark and no record exists. */
  record?: ValidatorDutyRecord;
  /** The slot is at or below this validator's low watermark: refused without a record. */
  watermarkLowSlot?: bigint;
  /** The existing in-progress record's lease has expired (database time): it may be taken over. */
  leaseExpired: boolean;
  /** The existing in-progress record is older than the lease (for holders without leases). */
  stuck: boolean;
}

/** The subset of pg.Pool the database uses (pg.Pool fits; so do pool wrappers). */
export interface QueryablePool {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult<R>>;
  end(): Promise<void>;
  on?(event: 'error', listener: (error: Error) => void): unknown;
  options?: pg.PoolConfig;
  totalCount?: number;
  idleCount?: number;
  waitingCount?: number;
}

export interface PostgresDatabaseOptions {
  logger?: Logger;
  /** Lease of duties claimed through tryInsertOrGetExisting (the service passes its own). */
  leaseMs?: number;
  /** Largest number of duties one claim or record statement carries. */
  maxBatchSize?: number;
  /** Statements of each kind in flight at once (default 1: measured best, larger batches share one commit flush). */
  maxInFlight?: number;
  /** LISTEN connection settings; default: the pool's options. Set false to poll only. */
  notifications?: pg.ClientConfig | false;
}

interface DutyRow {
  rollup_address?: string;
  validator_address?: string;
  slot?: string;
  duty_type?: DutyType;
  block_index_within_checkpoint?: number;
  status: DutyStatus | null;
  message_hash: string | null;
  signature: string | null;
  node_id: string | null;
  block_number: string | null;
  checkpoint_number: string | null;
  started_at: Date | null;
  completed_at: Date | null;
  error_message: string | null;
  lease_expires_at: Date | null;
  takeovers: number | null;
  lease_expired?: boolean | null;
}

interface ClaimRow extends DutyRow {
  ord: string;
  is_new: boolean;
  watermark_low_slot: string | null;
  stuck: boolean | null;
}

interface ClaimInput {
  params: CheckAndRecordParams;
  lockToken: string;
  leaseMs: number;
}

interface RecordInput {
  key: DutyKey;
  lockToken: string;
  signature: string;
}

/** A claim whose existing row was not yet visible to the statement's snapshot: retried at once, this many times. */
const MAX_INVISIBLE_RETRIES = 50;

/** A duty at or below its validator's low watermark: its history was pruned, so it is refused outright. */
export function belowWatermarkError(params: CheckAndRecordParams, lowSlot: bigint): SlashingProtectionError {
  return new SlashingProtectionError(
    params.slot,
    params.dutyType,
    params.blockIndexWithinCheckpoint,
    'unknown (pruned)',
    params.messageHash,
    'unknown (pruned)',
    `Slashing protection: ${params.dutyType} for slot ${params.slot} is at or below validator ` +
      `${params.validatorAddress}'s low watermark ${lowSlot} (its history was pruned), so it can never be signed again`,
  );
}

export function newLockToken(): string {
  return randomBytes(16).toString('hex');
}

function keyParams(key: DutyKey): unknown[] {
  return [key.rollupAddress, key.validatorAddress, key.slot.toString(), key.dutyType, key.blockIndexWithinCheckpoint];
}

/**
 * Connection-level failures: no SQLSTATE (socket errors, timeouts) or the classes for connection exceptions (08),
 * resources (53), operator intervention such as shutdown (57), system errors (58, XX) and refused connections.
 */
export function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return ['08', '53', '57', '58', 'XX'].includes(code.slice(0, 2)) || code === '55000';
}

function isTransient(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === SQLSTATE.deadlock || code === SQLSTATE.serializationFailure;
}

export class PostgresSlashingProtectionDatabase implements SlashingProtectionDatabase {
  private readonly logger: Logger;
  private readonly leaseMs: number;
  private readonly claims: Coalescer<ClaimInput, ClaimRow | undefined>;
  private readonly records: Coalescer<RecordInput, boolean>;
  readonly notifications: DutyNotifications | undefined;
  private closed = false;

  constructor(
    private readonly pool: QueryablePool,
    options: PostgresDatabaseOptions = {},
  ) {
    this.logger = options.logger ?? silentLogger;
    this.leaseMs = options.leaseMs ?? DEFAULT_MAX_STUCK_DUTIES_AGE_MS;
    const maxBatch = options.maxBatchSize ?? 256;
    const maxInFlight = options.maxInFlight ?? 1;
    this.claims = new Coalescer((batch) => this.claimBatch(batch), maxBatch, maxInFlight);
    this.records = new Coalescer((batch) => this.recordBatch(batch), maxBatch, maxInFlight);
    // A pool without an error listener crashes the process when PostgreSQL restarts (aztec-packages#24556).
    pool.on?.('error', (error) => this.logger.warn({ err: error.message }, 'idle PostgreSQL connection failed'));
    const listenConfig = options.notifications === false ? undefined : (options.notifications ?? pool.options);
    this.notifications = listenConfig ? new DutyNotifications(listenConfig, this.logger) : undefined;
  }

  /** Runs a statement; hot-path statements pass a name so each connection parses and plans them once. */
  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[], name?: string): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(name ? { name, text, values } : text, name ? undefined : values);
    } catch (error) {
      if (isUnavailable(error)) throw new DatabaseUnavailableError(`PostgreSQL unavailable: ${(error as Error).message}`, { cause: error });
      // Errors the database raised on purpose (guards, constraints) pass on as they are.
      throw error;
    }
  }

  /**
   * Verifies the schema: Aztec's `schema_version` must be the published one and all of ha-signer's migrations
   * applied. Says which command to run when the schema is missing or old. Also starts the LISTEN connection.
   */
  async initialize(): Promise<void> {
    await this.verifySchema();
    await this.notifications?.start();
  }

  /**
   * The schema checks of initialize(), without side effects (for readiness probes): throws SchemaVersionError
   * when the schema is missing, old or unknown, DatabaseUnavailableError when the database cannot be asked.
   */
  async verifySchema(): Promise<void> {
    const migrateHint = 'run `ha-signer migrate up --database-url <url>`';
    let aztecVersion: number | undefined;
    let applied: string[];
    try {
      const version = await this.pool.query<{ version: number }>('SELECT version FROM schema_version ORDER BY version DESC LIMIT 1');
      aztecVersion = version.rows[0]?.version;
      const migrations = await this.pool.query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY run_on, id`);
      applied = migrations.rows.map((row) => row.name);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === SQLSTATE.undefinedTable) {
        throw new SchemaVersionError(`Database schema not initialized (${(error as Error).message}); ${migrateHint}`);
      }
      throw new DatabaseUnavailableError(`PostgreSQL unavailable while verifying the schema: ${(error as Error).message}`, { cause: error });
    }
    if (aztecVersion === undefined) throw new SchemaVersionError(`Database schema not initialized (no schema_version row); ${migrateHint}`);
    if (aztecVersion !== AZTEC_SCHEMA_VERSION) {
      throw new SchemaVersionError(
        `Database schema_version ${aztecVersion} is not the one this signer knows (${AZTEC_SCHEMA_VERSION}); refusing to sign. ` +
          (aztecVersion < AZTEC_SCHEMA_VERSION ? migrateHint : 'upgrade ha-signer to a release that knows this schema'),
      );
    }
    const unknown = applied.filter((name) => !(HA_SIGNER_MIGRATIONS as readonly string[]).includes(name));
    if (unknown.length > 0) {
      throw new SchemaVersionError(
        `Database has ha-signer migrations this release does not know (${unknown.join(', ')}): it was migrated by a newer ` +
          `release; upgrade ha-signer. Refusing to sign.`,
      );
    }
    const missing = HA_SIGNER_MIGRATIONS.filter((name) => !applied.includes(name));
    if (missing.length > 0) {
      throw new SchemaVersionError(
        `Database ha-signer schema version ${applied.length} is older than ${HA_SIGNER_SCHEMA_VERSION} (missing ${missing.join(', ')}); ${migrateHint}`,
      );
    }
  }

  /** The schema version of ha-signer's own migrations that this database has (for status and readiness). */
  async schemaVersion(): Promise<number> {
    const result = await this.query<{ count: string }>(`SELECT count(*) AS count FROM ${MIGRATIONS_TABLE}`, []);
    return Number(result.rows[0]?.count ?? 0);
  }

  /**
   * Binds the database to `rollupAddress` when it is unbound and checks the binding: a signer configured for
   * another rollup refuses to start instead of touching that rollup's duties.
   */
  async ensureRollupBinding(rollupAddress: HexLike): Promise<void> {
    const rollup = normalizeAddress('rollupAddress', rollupAddress);
    await this.query(BIND_ROLLUP, [rollup]);
    const bound = await this.boundRollup();
    if (bound !== rollup) throw new RollupBindingError(bound ?? '(none)', rollup);
  }

  async boundRollup(): Promise<string | undefined> {
    const result = await this.query<{ rollup_address: string }>(SELECT_BOUND_ROLLUP, []);
    return result.rows[0]?.rollup_address;
  }

  /** Compatible with the package: inserts the duty (isNew) or returns the existing record. */
  async tryInsertOrGetExisting(params: CheckAndRecordParams): Promise<TryInsertOrGetResult> {
    const claim = await this.claim(params, this.leaseMs);
    if (!claim.record) throw belowWatermarkError(params, claim.watermarkLowSlot ?? 0n);
    return { isNew: claim.isNew, record: claim.record };
  }

  /** Claims a duty: inserts it holding a fresh lock token (isNew), or reports the existing record. */
  async claim(params: CheckAndRecordParams, leaseMs: number): Promise<ClaimResult> {
    const lockToken = newLockToken();
    for (let attempt = 0; ; attempt++) {
      const row = await this.claims.submit({ params, lockToken, leaseMs });
      if (row && (row.is_new || row.status !== null || row.watermark_low_slot !== null)) {
        return {
          isNew: row.is_new,
          ...(row.is_new || row.status !== null ? { record: this.toRecord(row, params, row.is_new ? lockToken : '') } : {}),
          ...(row.watermark_low_slot !== null ? { watermarkLowSlot: BigInt(row.watermark_low_slot) } : {}),
          leaseExpired: row.lease_expired === true,
          stuck: row.stuck === true,
        };
      }
      // Conflict with a row committed after this statement's snapshot was taken: the next statement sees it.
      if (attempt >= MAX_INVISIBLE_RETRIES) {
        throw new DatabaseUnavailableError(`claim of ${params.dutyType} at slot ${params.slot} found neither a free slot nor a visible record after ${attempt} attempts`);
      }
    }
  }

  private async claimBatch(batch: ClaimInput[]): Promise<(ClaimRow | undefined)[]> {
    const column = <T>(pick: (input: ClaimInput) => T): T[] => batch.map(pick);
    const leaseMs = Math.max(...batch.map((input) => input.leaseMs));
    const values = [
      column((b) => b.params.rollupAddress),
      column((b) => b.params.validatorAddress),
      column((b) => b.params.slot.toString()),
      column((b) => b.params.blockNumber.toString()),
      column((b) => b.params.blockIndexWithinCheckpoint),
      column((b) => b.params.dutyType),
      column((b) => b.params.messageHash),
      column((b) => b.params.nodeId),
      column((b) => b.lockToken),
      column((b) => b.params.checkpointNumber.toString()),
      leaseMs,
    ];
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.query<ClaimRow>(CLAIM_DUTIES, values, 'ha_signer_claim');
        const byOrd = new Map(result.rows.map((row) => [Number(row.ord), row]));
        return batch.map((_, i) => byOrd.get(i + 1));
      } catch (error) {
        if (!isTransient(error) || attempt >= 5) throw error;
      }
    }
  }

  /**
   * Takes over an in-progress duty whose lease expired (or, held without a lease, is stuck and has the same
   * hash). Returns the new lock token, or undefined when another node took it first or it completed meanwhile.
   */
  async takeOver(params: CheckAndRecordParams, leaseMs: number): Promise<string | undefined> {
    const lockToken = newLockToken();
    const result = await this.query(TAKE_OVER_DUTY, [
      ...keyParams(params),
      lockToken,
      params.nodeId,
      params.messageHash,
      params.blockNumber.toString(),
      params.checkpointNumber.toString(),
      leaseMs,
    ], 'ha_signer_take_over');
    return result.rowCount === 1 ? lockToken : undefined;
  }

  /** Records the signature under the lock token; true only if this token still held the duty (durable on return). */
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
    return await this.records.submit({ key, lockToken, signature: normalizeSignature('signature', signature) });
  }

  private async recordBatch(batch: RecordInput[]): Promise<boolean[]> {
    const column = <T>(pick: (input: RecordInput) => T): T[] => batch.map(pick);
    const result = await this.query<{ lock_token: string }>(RECORD_SIGNED, [
      column((b) => b.key.rollupAddress),
      column((b) => b.key.validatorAddress),
      column((b) => b.key.slot.toString()),
      column((b) => b.key.dutyType),
      column((b) => b.key.blockIndexWithinCheckpoint),
      column((b) => b.lockToken),
      column((b) => b.signature),
    ], 'ha_signer_record');
    const recorded = new Set(result.rows.map((row) => row.lock_token));
    return batch.map((input) => recorded.has(input.lockToken));
  }

  /** Releases a duty held under `lockToken` (after a failed signing) so another attempt can take it. */
  async deleteDuty(
    rollupAddress: HexLike,
    validatorAddress: HexLike,
    slot: IntegerLike,
    dutyType: DutyType,
    lockToken: string,
    blockIndexWithinCheckpoint: number,
  ): Promise<boolean> {
    const key = normalizeDutyKey({ rollupAddress, validatorAddress, slot, dutyType, blockIndexWithinCheckpoint });
    const result = await this.query(RELEASE_DUTY, [...keyParams(key), lockToken], 'ha_signer_release');
    return result.rowCount === 1;
  }

  /** The current record of a duty, or undefined. */
  async getDuty(key: DutyKey): Promise<ValidatorDutyRecord | undefined> {
    const result = await this.query<DutyRow>(SELECT_DUTY, keyParams(key));
    const row = result.rows[0];
    return row ? this.toRecord(row, key, '') : undefined;
  }

  /** Recorded duties of one validator in a slot range (for audit). */
  async listDuties(rollupAddress: string, validatorAddress: string, fromSlot: bigint, toSlot: bigint, limit = 1000): Promise<ValidatorDutyRecord[]> {
    const result = await this.query<DutyRow>(SELECT_DUTIES_OF_VALIDATOR, [rollupAddress, validatorAddress, fromSlot.toString(), toSlot.toString(), limit]);
    return result.rows.map((row) => this.toRecord(row, undefined, ''));
  }

  subscribe(key: DutyKey): DutySubscription | undefined {
    return this.notifications?.subscribe(dutyKeyString(key));
  }

  /** Deletes this node's in-progress duties older than maxAgeMs (the package's cleanup; leases cover other nodes). */
  async cleanupOwnStuckDuties(nodeId: string, maxAgeMs: number): Promise<number> {
    const result = await this.query(CLEANUP_OWN_STUCK_DUTIES, [nodeId, maxAgeMs]);
    return result.rowCount ?? 0;
  }

  /**
   * Prunes signed duties of the bound rollup older than maxAgeMs. Each validator's low watermark is raised to its
   * newest pruned slot first, in the same transaction, so no pruned slot can ever be signed again.
   */
  async cleanupOldDuties(maxAgeMs: number): Promise<number> {
    const rollup = await this.boundRollup();
    if (!rollup) return 0;
    const pool = this.pool as Partial<pg.Pool>;
    if (typeof pool.connect !== 'function') throw new Error('cleanupOldDuties needs a pool with connect()');
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(RAISE_WATERMARKS, [rollup, maxAgeMs]);
      const result = await client.query(PRUNE_BELOW_WATERMARKS, [rollup]);
      await client.query('COMMIT');
      return result.rowCount ?? 0;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  /** Stops notifications and closes the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.notifications?.close();
    await this.pool.end();
  }

  private toRecord(row: DutyRow, params: Partial<CheckAndRecordParams> | DutyKey | undefined, lockToken: string): ValidatorDutyRecord {
    const p = (params ?? {}) as Partial<CheckAndRecordParams>;
    const record: ValidatorDutyRecord = {
      rollupAddress: row.rollup_address ?? p.rollupAddress ?? '',
      validatorAddress: row.validator_address ?? p.validatorAddress ?? '',
      slot: row.slot !== undefined ? BigInt(row.slot) : (p.slot ?? 0n),
      blockNumber: row.block_number !== null ? BigInt(row.block_number) : (p.blockNumber ?? 0n),
      checkpointNumber: row.checkpoint_number !== null ? BigInt(row.checkpoint_number) : (p.checkpointNumber ?? 0n),
      blockIndexWithinCheckpoint: row.block_index_within_checkpoint ?? p.blockIndexWithinCheckpoint ?? -1,
      dutyType: (row.duty_type ?? p.dutyType) as DutyType,
      status: row.status ?? DutyStatus.SIGNING,
      messageHash: row.message_hash ?? p.messageHash ?? '',
      nodeId: row.node_id ?? p.nodeId ?? '',
      lockToken,
      startedAt: row.started_at ?? new Date(),
      takeovers: row.takeovers ?? 0,
    };
    if (row.signature) record.signature = row.signature;
    if (row.completed_at) record.completedAt = row.completed_at;
    if (row.error_message) record.errorMessage = row.error_message;
    if (row.lease_expires_at) record.leaseExpiresAt = row.lease_expires_at;
    return record;
  }

  /** Pool gauges for metrics. */
  poolStats(): { total: number; idle: number; waiting: number } {
    return { total: this.pool.totalCount ?? 0, idle: this.pool.idleCount ?? 0, waiting: this.pool.waitingCount ?? 0 };
  }
}


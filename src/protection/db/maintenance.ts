/** Rollup binding, cleanup of stuck duties, pruning under the low watermark, and audit reads: off the hot path. */
import type pg from 'pg';
import { RollupBindingError } from '../errors.js';
import {
  BIND_ROLLUP,
  CLEANUP_OWN_STUCK_DUTIES,
  PRUNE_BELOW_WATERMARKS,
  RAISE_WATERMARKS,
  SELECT_BOUND_ROLLUP,
  SELECT_DUTIES_OF_VALIDATOR,
} from '../schema.js';
import type { ValidatorDutyRecord } from '../types.js';
import { classify } from './classify.js';
import { type DutyRow, toRecord } from './rows.js';
import type { StatementRunner } from './runner.js';
import { SELECT_HISTORY_TOPS } from './statements.js';
import type { HistoryTop } from '../history-guard.js';

/** Pruning may touch many rows; it gets more time than a signing-path statement. */
const PRUNE_TIMEOUT_MS = 120_000;

export class Maintenance {
  constructor(private readonly runner: StatementRunner) {}

  /**
   * Binds the database to `rollupAddress` (normalized) when it is unbound and checks the binding: a signer
   * configured for another rollup refuses to start instead of touching that rollup's duties.
   */
  async ensureRollupBinding(rollupAddress: string): Promise<void> {
    await this.runner.run(BIND_ROLLUP, [rollupAddress]);
    const bound = await this.boundRollup();
    if (bound !== rollupAddress) throw new RollupBindingError(bound ?? '(none)', rollupAddress);
  }

  async boundRollup(): Promise<string | undefined> {
    const result = await this.runner.run<{ rollup_address: string }>(SELECT_BOUND_ROLLUP, []);
    return result.rows[0]?.rollup_address;
  }

  /** Deletes this node's in-progress duties older than maxAgeMs (the package's cleanup; leases cover other nodes). */
  async cleanupOwnStuckDuties(nodeId: string, maxAgeMs: number): Promise<number> {
    const result = await this.runner.run(CLEANUP_OWN_STUCK_DUTIES, [nodeId, maxAgeMs]);
    return result.rowCount ?? 0;
  }

  /**
   * Prunes signed duties of the bound rollup older than maxAgeMs. Each validator's low watermark is raised to its
   * newest pruned slot first, in the same transaction, so no pruned slot can ever be signed again.
   */
  async cleanupOldDuties(maxAgeMs: number): Promise<number> {
    const rollup = await this.boundRollup();
    if (!rollup) return 0;
    const pool = this.runner.pool as Partial<pg.Pool>;
    if (typeof pool.connect !== 'function') throw new Error('cleanupOldDuties needs a pool with connect()');
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw classify(error);
    }
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL statement_timeout = ${PRUNE_TIMEOUT_MS}`);
      await client.query(RAISE_WATERMARKS, [rollup, maxAgeMs]);
      const result = await client.query(PRUNE_BELOW_WATERMARKS, [rollup, maxAgeMs]);
      await client.query('COMMIT');
      return result.rowCount ?? 0;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw classify(error);
    } finally {
      client.release();
    }
  }

  /** Recorded duties of one validator in a slot range (for audit). */
  async listDuties(
    rollupAddress: string,
    validatorAddress: string,
    fromSlot: bigint,
    toSlot: bigint,
    limit = 1000,
  ): Promise<ValidatorDutyRecord[]> {
    const result = await this.runner.run<DutyRow>(SELECT_DUTIES_OF_VALIDATOR, [
      rollupAddress,
      validatorAddress,
      fromSlot.toString(),
      toSlot.toString(),
      limit,
    ]);
    return result.rows.map((row) => toRecord(row, undefined, ''));
  }

  /** For the history guard: per asked (validator, duty kind, slot), whether it is held signed, the top, the low watermark. */
  async historyTops(rollupAddress: string, marks: { validatorAddress: string; dutyType: string; slot: bigint }[]): Promise<HistoryTop[]> {
    type Row = {
      validator_address: string;
      duty_type: string;
      slot: string;
      holds_slot: boolean;
      top_slot: string | null;
      low_slot: string | null;
    };
    const result = await this.runner.run<Row>(SELECT_HISTORY_TOPS, [
      rollupAddress,
      marks.map((m) => m.validatorAddress),
      marks.map((m) => m.dutyType),
      marks.map((m) => m.slot.toString()),
    ]);
    return result.rows.map((row) => ({
      validatorAddress: row.validator_address,
      dutyType: row.duty_type,
      slot: BigInt(row.slot),
      holdsSlot: row.holds_slot,
      topSlot: row.top_slot === null ? undefined : BigInt(row.top_slot),
      lowWatermarkSlot: row.low_slot === null ? undefined : BigInt(row.low_slot),
    }));
  }
}

/** Rollup binding, cleanup of stuck duties, pruning under the low watermark, and audit reads: off the hot path. */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { RollupBindingError } from '../errors.js';
import { inTransaction } from '../history-db.js';
import {
  BIND_ROLLUP,
  CLEANUP_OWN_STUCK_DUTIES,
  PRUNE_BATCH_BELOW_WATERMARKS,
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

/** A prune statement may touch many rows; it gets more time than a signing-path statement. */
const PRUNE_TIMEOUT_MS = 120_000;
/**
 * Rows deleted per transaction. An hourly round at a busy group's rate is hundreds of thousands of rows; as one
 * transaction that is seconds of one core, a WAL burst a synchronous standby must flush before the next signing
 * commit, and one notification per row. In batches, signing commits interleave with short ones.
 */
export const PRUNE_BATCH_ROWS = 500;
/** Between batches the prune pauses twice as long as the batch took (at least this): at most a third of a core. */
const PRUNE_MIN_PAUSE_MS = 5;
const PRUNE_PAUSE_FACTOR = 2;

export interface PruneOptions {
  /** Ends the round between batches (e.g. on shutdown); what was deleted stays deleted, the rest waits for the next round. */
  signal?: AbortSignal;
  batchRows?: number;
}

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
   * newest old signed slot first and committed, so no slot about to be deleted can ever be signed again; then the
   * rows at or below the watermarks go in batches of `batchRows`, a transaction each, paced (see PRUNE_BATCH_ROWS).
   */
  async cleanupOldDuties(maxAgeMs: number, options: PruneOptions = {}): Promise<number> {
    const rollup = await this.boundRollup();
    if (!rollup) return 0;
    const batchRows = options.batchRows ?? PRUNE_BATCH_ROWS;
    await this.inPruneTransaction((client) => client.query(RAISE_WATERMARKS, [rollup, maxAgeMs]));
    let pruned = 0;
    while (!options.signal?.aborted) {
      const started = performance.now();
      const result = await this.inPruneTransaction((client) => client.query(PRUNE_BATCH_BELOW_WATERMARKS, [rollup, maxAgeMs, batchRows]));
      const deleted = result.rowCount ?? 0;
      pruned += deleted;
      if (deleted < batchRows) break;
      // An abort (shutdown) ends the pause early; the loop condition then ends the round.
      await sleep(Math.max(PRUNE_MIN_PAUSE_MS, PRUNE_PAUSE_FACTOR * (performance.now() - started)), undefined, {
        signal: options.signal,
      }).catch(() => {});
    }
    return pruned;
  }

  /** One transaction on a connection of its own, with the prune's longer statement timeout. */
  private async inPruneTransaction<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const pool = this.runner.pool as Partial<pg.Pool>;
    if (typeof pool.connect !== 'function') throw new Error('cleanupOldDuties needs a pool with connect()');
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw classify(error);
    }
    try {
      return await inTransaction(client, 'BEGIN', async () => {
        await client.query(`SET LOCAL statement_timeout = ${PRUNE_TIMEOUT_MS}`);
        return await body(client);
      });
    } catch (error) {
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

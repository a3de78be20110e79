/** The signing hot path: claim, take over, record, release and re-read a duty; claims and records are batched. */
import { randomBytes } from 'node:crypto';
import { DatabaseUnavailableError, SynchronousReplicationRequiredError } from '../errors.js';
import type { CheckAndRecordParams, DutyKey, Logger, ValidatorDutyRecord } from '../types.js';
import { BatchQueue, type BatchQueueOptions } from './batch-queue.js';
import { isTransient } from './classify.js';
import { type ClaimResult, type ClaimRow, type DutyRow, claimResult, toRecord } from './rows.js';
import type { StatementRunner } from './runner.js';
import { RECORD_SIGNED, RELEASE_DUTY, SELECT_DUTY, claimDuties, takeOverDuty } from './statements.js';

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
/** Deadlocks and serialization failures of a claim batch are retried this many times. */
const MAX_TRANSIENT_RETRIES = 5;

export function newLockToken(): string {
  return randomBytes(16).toString('hex');
}

function keyParams(key: DutyKey): unknown[] {
  return [key.rollupAddress, key.validatorAddress, key.slot.toString(), key.dutyType, key.blockIndexWithinCheckpoint];
}

export class DutyLocks {
  private readonly claims: BatchQueue<ClaimInput, ClaimRow | undefined>;
  private readonly records: BatchQueue<RecordInput, boolean>;

  /** `withCheckpoint` tells once whether the database has `checkpoint_number` (Aztec schema 2). */
  constructor(
    private readonly runner: StatementRunner,
    private readonly withCheckpoint: () => Promise<boolean>,
    private readonly logger: Logger,
    batching: BatchQueueOptions = {},
    /** Withhold signatures whose record's wait for a synchronous standby was cancelled (requireSynchronousReplication). */
    private readonly requireSynchronousRecords = false,
  ) {
    this.claims = new BatchQueue((batch) => this.claimBatch(batch), batching);
    this.records = new BatchQueue((batch) => this.recordBatch(batch), batching);
  }

  /** Claims a duty: inserts it holding a fresh lock token (isNew), or reports the existing record. */
  async claim(params: CheckAndRecordParams, leaseMs: number): Promise<ClaimResult> {
    const lockToken = newLockToken();
    for (let attempt = 0; ; attempt++) {
      let row: ClaimRow | undefined;
      try {
        row = await this.claims.submit({ params, lockToken, leaseMs });
      } catch (error) {
        // The claim may have committed before the answer was lost: free it (by its unique token) once the
        // database answers again, so other nodes need not wait for the lease.
        if (error instanceof DatabaseUnavailableError) this.releaseAbandoned(params, lockToken);
        throw error;
      }
      const result = claimResult(row, params, lockToken);
      if (result) return result;
      // Conflict with a row committed after this statement's snapshot was taken: the next statement sees it.
      if (attempt >= MAX_INVISIBLE_RETRIES) {
        throw new DatabaseUnavailableError(
          `claim of ${params.dutyType} at slot ${params.slot} found neither a free slot nor a visible record after ${attempt} attempts`,
        );
      }
    }
  }

  private async claimBatch(batch: ClaimInput[]): Promise<(ClaimRow | undefined)[]> {
    const withCheckpoint = await this.withCheckpoint();
    const column = <T>(pick: (input: ClaimInput) => T): T[] => batch.map(pick);
    const values: unknown[] = [
      column((b) => b.params.rollupAddress),
      column((b) => b.params.validatorAddress),
      column((b) => b.params.slot.toString()),
      column((b) => b.params.blockNumber.toString()),
      column((b) => b.params.blockIndexWithinCheckpoint),
      column((b) => b.params.dutyType),
      column((b) => b.params.messageHash),
      column((b) => b.params.nodeId),
      column((b) => b.lockToken),
      ...(withCheckpoint ? [column((b) => b.params.checkpointNumber.toString())] : []),
      Math.max(...batch.map((input) => input.leaseMs)),
    ];
    const statement = claimDuties(withCheckpoint);
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.runner.run<ClaimRow>(statement.text, values, statement.name);
        const byOrd = new Map(result.rows.map((row) => [Number(row.ord), row]));
        return batch.map((_, i) => byOrd.get(i + 1));
      } catch (error) {
        if (!isTransient(error) || attempt >= MAX_TRANSIENT_RETRIES) throw error;
      }
    }
  }

  /**
   * Takes over an in-progress duty whose lease expired (or, held without a lease, is stuck and has the same
   * hash). Returns the new lock token, or undefined when another node took it first or it completed meanwhile.
   */
  async takeOver(params: CheckAndRecordParams, leaseMs: number): Promise<string | undefined> {
    const withCheckpoint = await this.withCheckpoint();
    const lockToken = newLockToken();
    const statement = takeOverDuty(withCheckpoint);
    const values = [
      ...keyParams(params),
      lockToken,
      params.nodeId,
      params.messageHash,
      params.blockNumber.toString(),
      ...(withCheckpoint ? [params.checkpointNumber.toString()] : []),
      leaseMs,
    ];
    try {
      const result = await this.runner.run(statement.text, values, statement.name);
      return result.rowCount === 1 ? lockToken : undefined;
    } catch (error) {
      if (error instanceof DatabaseUnavailableError) this.releaseAbandoned(params, lockToken);
      throw error;
    }
  }

  /** Records a normalized signature under the lock token; true only if this token still held the duty (durable on return). */
  async recordSigned(key: DutyKey, lockToken: string, signature: string): Promise<boolean> {
    return await this.records.submit({ key, lockToken, signature });
  }

  private async recordBatch(batch: RecordInput[]): Promise<boolean[]> {
    const column = <T>(pick: (input: RecordInput) => T): T[] => batch.map(pick);
    const { result, notices } = await this.runner.runWithNotices<{ lock_token: string }>(
      RECORD_SIGNED.text,
      [
        column((b) => b.key.rollupAddress),
        column((b) => b.key.validatorAddress),
        column((b) => b.key.slot.toString()),
        column((b) => b.key.dutyType),
        column((b) => b.key.blockIndexWithinCheckpoint),
        column((b) => b.lockToken),
        column((b) => b.signature),
      ],
      RECORD_SIGNED.name,
    );
    // statement_timeout cancelled the commit's wait for the synchronous standby: PostgreSQL reports the records
    // committed, but only locally. Where replication is required, their signatures are withheld (a retry is refused
    // by the replication gate until a standby confirms again, and then gets the stored signature).
    const lost = notices.find((n) => /canceling wait for synchronous replication/i.test(n.message ?? ''));
    if (lost && this.requireSynchronousRecords) {
      this.logger.error({ records: batch.length, notice: lost.message }, 'record committed only locally: signatures withheld');
      throw new SynchronousReplicationRequiredError([`the record committed only locally (${lost.message}): signature withheld`]);
    }
    const recorded = new Set(result.rows.map((row) => row.lock_token));
    return batch.map((input) => recorded.has(input.lockToken));
  }

  /** Releases a duty held under `lockToken` (after a failed signing) so another attempt can take it. */
  async release(key: DutyKey, lockToken: string): Promise<boolean> {
    const result = await this.runner.run(RELEASE_DUTY.text, [...keyParams(key), lockToken], RELEASE_DUTY.name);
    return result.rowCount === 1;
  }

  /** The current record of a duty, read with a fresh snapshot, or undefined. */
  async readDuty(key: DutyKey): Promise<ValidatorDutyRecord | undefined> {
    const result = await this.runner.run<DutyRow>(SELECT_DUTY.text, keyParams(key), SELECT_DUTY.name);
    const row = result.rows[0];
    return row ? toRecord(row, key, '') : undefined;
  }

  /**
   * Best-effort release of a claim whose outcome is unknown, by its unique token: now, and again once the
   * server-side statement bound has passed (a claim that committed late is gone then too). Errors are retried a
   * few times; whatever remains ends with its lease.
   */
  private releaseAbandoned(key: DutyKey, lockToken: string): void {
    const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());
    void (async () => {
      let failures = 0;
      for (const delayMs of [0, this.runner.statementTimeoutMs + 1_000]) {
        await sleep(delayMs);
        for (;;) {
          try {
            if (await this.release(key, lockToken)) return;
            break;
          } catch {
            if (++failures > 5) {
              this.logger.warn(
                { dutyType: key.dutyType, slot: key.slot.toString() },
                'could not release a claim whose outcome was unknown; its lease ends it',
              );
              return;
            }
            await sleep(500 * failures);
          }
        }
      }
    })();
  }
}

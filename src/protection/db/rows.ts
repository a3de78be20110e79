/** Rows of `validator_duties` as the statements return them, and their mapping to the package's record type. */
import { type CheckAndRecordParams, type DutyKey, DutyStatus, type DutyType, type ValidatorDutyRecord } from '../types.js';

export interface DutyRow {
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
  /** Absent on databases at Aztec schema 1 (no such column) and in the claim statement's variant for them. */
  checkpoint_number?: string | null;
  started_at: Date | null;
  completed_at: Date | null;
  error_message: string | null;
  lease_expires_at: Date | null;
  takeovers: number | null;
  lease_expired?: boolean | null;
}

export interface ClaimRow extends DutyRow {
  ord: string;
  is_new: boolean;
  watermark_low_slot: string | null;
  stuck: boolean | null;
}

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

/** A claim row that answers the claim, or undefined when the existing row was not visible to the statement yet. */
export function claimResult(row: ClaimRow | undefined, params: CheckAndRecordParams, lockToken: string): ClaimResult | undefined {
  if (!row || !(row.is_new || row.status !== null || row.watermark_low_slot !== null)) return undefined;
  return {
    isNew: row.is_new,
    ...(row.is_new || row.status !== null ? { record: toRecord(row, params, row.is_new ? lockToken : '') } : {}),
    ...(row.watermark_low_slot !== null ? { watermarkLowSlot: BigInt(row.watermark_low_slot) } : {}),
    leaseExpired: row.lease_expired === true,
    stuck: row.stuck === true,
  };
}

/**
 * Maps a row to the package's record. Why missing columns fall back to `params`: the claim statement does not
 * return the key columns (they are its input), and for a row it has just inserted it returns no row columns at
 * all, because a data-modifying CTE's rows are invisible to the same statement's snapshot (the LEFT JOIN on
 * validator_duties finds nothing). A new claim's record is therefore built from the parameters it inserted, which
 * are exactly what the row holds; this saves the second round trip a RETURNING-then-read would cost.
 */
export function toRecord(
  row: DutyRow,
  params: Partial<CheckAndRecordParams> | DutyKey | undefined,
  lockToken: string,
): ValidatorDutyRecord {
  const p = (params ?? {}) as Partial<CheckAndRecordParams>;
  const record: ValidatorDutyRecord = {
    rollupAddress: row.rollup_address ?? p.rollupAddress ?? '',
    validatorAddress: row.validator_address ?? p.validatorAddress ?? '',
    slot: row.slot !== undefined ? BigInt(row.slot) : (p.slot ?? 0n),
    blockNumber: row.block_number !== null ? BigInt(row.block_number) : (p.blockNumber ?? 0n),
    checkpointNumber: row.checkpoint_number != null ? BigInt(row.checkpoint_number) : (p.checkpointNumber ?? 0n),
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

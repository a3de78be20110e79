/**
 * Read-only lookup of duty claims by message hash, for the signer's protected Web3Signer JSON-RPC: a stock Aztec
 * node's own HA signer (@aztec/validator-ha-signer, same database) claims a duty, then asks the signer for the
 * signature with no duty context but the hash. The signer signs only when such a claim exists. Nothing is written.
 * Served by idx_validator_duties_claim_lookup (migrations/1700000000004_claim-lookup-index.sql).
 */
import { DutyStatus, type DutyType } from './types.js';

/** What the lookup needs of a pg Pool or Client. */
export interface Queryable {
  query(text: string, params: unknown[]): Promise<{ rows: unknown[] }>;
}

export interface ClaimForHash {
  slot: bigint;
  dutyType: DutyType;
  blockIndexWithinCheckpoint: number;
  status: DutyStatus;
  nodeId: string;
}

interface Row {
  slot: string;
  duty_type: DutyType;
  block_index_within_checkpoint: number;
  status: DutyStatus;
  node_id: string;
}

/** More than a handful of duties with one hash would be a bug elsewhere; the bound keeps a lookup cheap regardless. */
const MAX_CLAIMS = 16;

const SQL =
  'SELECT slot::text, duty_type, block_index_within_checkpoint, status, node_id FROM validator_duties ' +
  'WHERE validator_address = $2 AND message_hash = $3 AND rollup_address = $1 ' +
  `AND status IN ('${DutyStatus.SIGNING}', '${DutyStatus.SIGNED}') ORDER BY slot DESC LIMIT ${MAX_CLAIMS}`;

/**
 * The duties of `validatorAddress` under `rollupAddress` claimed (signing) or signed with exactly `messageHash`.
 * Addresses and hash must be normalized (lower-case 0x hex), as every writer stores them.
 */
export async function findClaimsForHash(db: Queryable, rollupAddress: string, validatorAddress: string, messageHash: string): Promise<ClaimForHash[]> {
  const result = await db.query(SQL, [rollupAddress, validatorAddress, messageHash]);
  return (result.rows as Row[]).map((row) => ({
    slot: BigInt(row.slot),
    dutyType: row.duty_type,
    blockIndexWithinCheckpoint: row.block_index_within_checkpoint,
    status: row.status,
    nodeId: row.node_id,
  }));
}

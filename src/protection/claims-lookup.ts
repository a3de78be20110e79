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
export async function findClaimsForHash(
  db: Queryable,
  rollupAddress: string,
  validatorAddress: string,
  messageHash: string,
): Promise<ClaimForHash[]> {
  const result = await db.query(SQL, [rollupAddress, validatorAddress, messageHash]);
  return (result.rows as Row[]).map((row) => ({
    slot: BigInt(row.slot),
    dutyType: row.duty_type,
    blockIndexWithinCheckpoint: row.block_index_within_checkpoint,
    status: row.status,
    nodeId: row.node_id,
  }));
}

const BATCH_SQL =
  'SELECT d.validator_address, d.message_hash, d.slot::text, d.duty_type, d.block_index_within_checkpoint, d.status, d.node_id ' +
  'FROM validator_duties d JOIN unnest($2::text[], $3::text[]) AS k(validator_address, message_hash) ' +
  'ON d.validator_address = k.validator_address AND d.message_hash = k.message_hash ' +
  `WHERE d.rollup_address = $1 AND d.status IN ('${DutyStatus.SIGNING}', '${DutyStatus.SIGNED}')`;

interface Pending {
  validatorAddress: string;
  messageHash: string;
  resolve: (claims: ClaimForHash[]) => void;
  reject: (error: unknown) => void;
}

/** Largest batch per statement; more waiting lookups go in the next one. */
const MAX_BATCH = 256;

/**
 * Lookups of one rollup, coalesced: at most `maxInFlight` statements run at once, and the lookups that arrive
 * meanwhile share the next statement (one round trip for many concurrent JSON-RPC calls instead of one each).
 */
export class ClaimsLookup {
  private queue: Pending[] = [];
  private inFlight = 0;

  constructor(
    private readonly db: Queryable,
    private readonly rollupAddress: string,
    private readonly maxInFlight = 2,
  ) {}

  find(validatorAddress: string, messageHash: string): Promise<ClaimForHash[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ validatorAddress, messageHash, resolve, reject });
      this.drain();
    });
  }

  private drain(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  private async run(batch: Pending[]): Promise<void> {
    try {
      if (batch.length === 1) {
        const [only] = batch as [Pending];
        only.resolve(await findClaimsForHash(this.db, this.rollupAddress, only.validatorAddress, only.messageHash));
        return;
      }
      const result = await this.db.query(BATCH_SQL, [
        this.rollupAddress,
        batch.map((p) => p.validatorAddress),
        batch.map((p) => p.messageHash),
      ]);
      const byKey = new Map<string, ClaimForHash[]>();
      for (const row of result.rows as (Row & { validator_address: string; message_hash: string })[]) {
        const key = `${row.validator_address}/${row.message_hash}`;
        const claims = byKey.get(key) ?? [];
        if (claims.length < MAX_CLAIMS)
          claims.push({
            slot: BigInt(row.slot),
            dutyType: row.duty_type,
            blockIndexWithinCheckpoint: row.block_index_within_checkpoint,
            status: row.status,
            nodeId: row.node_id,
          });
        byKey.set(key, claims);
      }
      for (const pending of batch) pending.resolve(byKey.get(`${pending.validatorAddress}/${pending.messageHash}`) ?? []);
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  }
}

/**
 * Read-only lookup of duty claims by message hash, for the signer's protected Web3Signer JSON-RPC: a stock Aztec
 * node's own HA signer (@aztec/validator-ha-signer, same database) claims a duty, then asks the signer for the
 * signature with no duty context but the hash. The signer signs only when such a claim exists. Nothing is written.
 *
 * The lookup searches the validator's newest CLAIM_LOOKBACK_SLOTS slots through the primary key (rollup, validator,
 * slot, ...), with no index on the hash: a claim is made for the duty being signed now, at the head. An index on
 * (validator, message_hash) (migration 0004, dropped by 0005) put every new duty on a random leaf page of an index as
 * large as the history: at 1 million stored duties, 1.2 full-page images and 9 KiB of WAL per duty instead of 0.1 and
 * 2.3 KiB, which a synchronous standby must also receive before each signing commit returns.
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
/**
 * How far below the validator's newest slot a claim is looked for. Claims are made for the duty being signed now;
 * one further back is refused (fail closed: the node signs nothing, it is never a second signature). 64 slots are
 * tens of minutes at Aztec's slot times, and a few hundred rows of the validator at most.
 */
export const CLAIM_LOOKBACK_SLOTS = 64;

/** Claims of one (validator, hash), `validator` and `hash` being SQL expressions; $1 is the rollup. */
const claimsOf = (validator: string, hash: string): string => `
  SELECT d.slot::text, d.duty_type, d.block_index_within_checkpoint, d.status, d.node_id
  FROM validator_duties d
  WHERE d.rollup_address = $1 AND d.validator_address = ${validator}
    AND d.slot >= (SELECT max(m.slot) FROM validator_duties m WHERE m.rollup_address = $1 AND m.validator_address = ${validator})
                  - ${CLAIM_LOOKBACK_SLOTS}
    AND d.message_hash = ${hash} AND d.status IN ('${DutyStatus.SIGNING}', '${DutyStatus.SIGNED}')
  ORDER BY d.slot DESC LIMIT ${MAX_CLAIMS}`;

export const CLAIMS_FOR_HASH_SQL = claimsOf('$2', '$3');

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
  const result = await db.query(CLAIMS_FOR_HASH_SQL, [rollupAddress, validatorAddress, messageHash]);
  return (result.rows as Row[]).map((row) => ({
    slot: BigInt(row.slot),
    dutyType: row.duty_type,
    blockIndexWithinCheckpoint: row.block_index_within_checkpoint,
    status: row.status,
    nodeId: row.node_id,
  }));
}

const BATCH_SQL = `
SELECT k.validator_address, k.message_hash, c.*
FROM unnest($2::text[], $3::text[]) AS k(validator_address, message_hash)
CROSS JOIN LATERAL (${claimsOf('k.validator_address', 'k.message_hash')}) AS c`;

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

/** Low watermarks raised by hand (`ha-signer watermark raise`) or by a history import: never lowered. */
import { uint64 } from './history-document.js';
import { type Db, HistoryRefusedError, LOCK_WATERMARKS, boundRollup, inTransaction } from './history-db.js';

export interface WatermarkResult {
  rollupAddress: string;
  validator: string;
  previous: string | null;
  lowWatermarkSlot: string;
  /** False when the watermark was already at or above the slot (it is never lowered). */
  raised: boolean;
}

/** Within a transaction holding LOCK_WATERMARKS. */
export async function raiseLocked(db: Db, rollup: string, validator: string, slot: string): Promise<WatermarkResult> {
  const previous =
    (
      await db.query<{ low_slot: string }>(
        'SELECT low_slot::text FROM ha_signer_watermarks WHERE rollup_address = $1 AND validator_address = $2',
        [rollup, validator],
      )
    ).rows[0]?.low_slot ?? null;
  if (previous !== null && BigInt(previous) >= BigInt(slot))
    return { rollupAddress: rollup, validator, previous, lowWatermarkSlot: previous, raised: false };
  await db.query(
    `INSERT INTO ha_signer_watermarks AS w (rollup_address, validator_address, low_slot) VALUES ($1, $2, $3)
     ON CONFLICT (rollup_address, validator_address) DO UPDATE SET low_slot = EXCLUDED.low_slot, updated_at = now() WHERE w.low_slot < EXCLUDED.low_slot`,
    [rollup, validator, slot],
  );
  return { rollupAddress: rollup, validator, previous, lowWatermarkSlot: slot, raised: true };
}

/**
 * Raises a validator's low watermark to `slot` (manual recovery: no duty at or below it is signed again). Never
 * lowers it: a lower slot leaves it unchanged and says so.
 */
export async function raiseWatermark(db: Db, validator: string, slot: string | bigint | number): Promise<WatermarkResult> {
  const address = validator.toLowerCase();
  if (!/^0x[0-9a-f]{40}$/.test(address))
    throw new HistoryRefusedError(`validator: expected 0x followed by 40 hex digits, got ${JSON.stringify(validator)}`);
  const low = uint64('slot', String(slot));
  return inTransaction(db, 'BEGIN', async () => {
    await db.query(LOCK_WATERMARKS);
    return raiseLocked(db, await boundRollup(db), address, low);
  });
}

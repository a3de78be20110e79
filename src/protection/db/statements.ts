/**
 * SQL of the signing hot path. Claim and take-over come in two variants: with `checkpoint_number` (Aztec schema 2,
 * where Aztec's migration `2_add-checkpoint-number` added the column) and without it (Aztec schema 1). The
 * variant is chosen once per store; each has its own prepared-statement name.
 */

const KEY_MATCH = (d: string, i: string): string =>
  `${d}.rollup_address = ${i}.rollup_address AND ${d}.validator_address = ${i}.validator_address AND ${d}.slot = ${i}.slot ` +
  `AND ${d}.duty_type = ${i}.duty_type AND ${d}.block_index_within_checkpoint = ${i}.block_index`;

const KEY_PARAMS = `d.rollup_address = $1 AND d.validator_address = $2 AND d.slot = $3 AND d.duty_type = $4
  AND d.block_index_within_checkpoint = $5`;

export interface Statement {
  name: string;
  text: string;
}

/**
 * Claims a batch of duties in one statement. Rows are inserted in key order, so concurrent batches take their
 * locks in one order and cannot deadlock. Each input row comes back with is_new, the existing row as of the
 * statement's snapshot (absent when a concurrent claimer's row is not yet visible: the caller retries), and the
 * low watermark when the slot is at or below it. The claim commits asynchronously (synchronous_commit off for this
 * transaction only): losing a claim in a crash is safe because the signature is only released after the duty's
 * signed record, which commits synchronously and so flushes the claim with it.
 * The existing rows are read per input row (LATERAL ... LIMIT 1), so even the generic plan of this prepared
 * statement, which PostgreSQL caches per connection and may build while the table is still empty, is a primary-key
 * probe per duty: a plain join was planned then as a sequential scan and kept scanning the whole growing table
 * (43 ms per claim at 100,000 rows) until an ANALYZE replaced the plan.
 * Parameters: $1..$9 arrays (rollup, validator, slot, block number, block index, duty type, hash, node, token),
 * then [$10 checkpoint numbers,] the lease in ms.
 */
export function claimDuties(withCheckpoint: boolean): Statement {
  const lease = withCheckpoint ? '$11' : '$10';
  return {
    name: withCheckpoint ? 'ha_signer_claim_cp' : 'ha_signer_claim',
    text: `
WITH input AS (
  SELECT t.*
  FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit,
       unnest($1::varchar[], $2::varchar[], $3::int8[], $4::int8[], $5::int4[], $6::varchar[], $7::varchar[],
              $8::varchar[], $9::varchar[]${withCheckpoint ? ', $10::int8[]' : ''})
         WITH ORDINALITY AS t(rollup_address, validator_address, slot, block_number, block_index, duty_type,
                              message_hash, node_id, lock_token${withCheckpoint ? ', checkpoint_number' : ''}, ord)
),
watermark AS (
  SELECT i.ord, w.low_slot
  FROM input i JOIN ha_signer_watermarks w
    ON w.rollup_address = i.rollup_address AND w.validator_address = i.validator_address AND i.slot <= w.low_slot
),
inserted AS (
  INSERT INTO validator_duties (rollup_address, validator_address, slot, block_number, block_index_within_checkpoint,
                                duty_type, status, message_hash, node_id, lock_token, started_at,
                                ${withCheckpoint ? 'checkpoint_number, ' : ''}lease_expires_at)
  SELECT i.rollup_address, i.validator_address, i.slot, i.block_number, i.block_index, i.duty_type, 'signing',
         i.message_hash, i.node_id, i.lock_token, CURRENT_TIMESTAMP, ${withCheckpoint ? 'i.checkpoint_number, ' : ''}
         now() + make_interval(secs => ${lease}::float8 / 1000)
  FROM input i
  WHERE NOT EXISTS (SELECT 1 FROM watermark w WHERE w.ord = i.ord)
  ORDER BY i.rollup_address, i.validator_address, i.slot, i.duty_type, i.block_index
  ON CONFLICT (rollup_address, validator_address, slot, duty_type, block_index_within_checkpoint) DO NOTHING
  RETURNING lock_token
)
SELECT i.ord,
       (ins.lock_token IS NOT NULL) AS is_new,
       w.low_slot AS watermark_low_slot,
       d.status, d.message_hash, d.signature, d.node_id, d.block_number, ${withCheckpoint ? 'd.checkpoint_number, ' : ''}d.started_at,
       d.completed_at, d.error_message, d.lease_expires_at, d.takeovers,
       (d.lease_expires_at IS NOT NULL AND d.lease_expires_at <= now()) AS lease_expired,
       (d.started_at < LOCALTIMESTAMP - make_interval(secs => ${lease}::float8 / 1000)) AS stuck
FROM input i
LEFT JOIN inserted ins ON ins.lock_token = i.lock_token
LEFT JOIN watermark w ON w.ord = i.ord
LEFT JOIN LATERAL (SELECT * FROM validator_duties d WHERE ${KEY_MATCH('d', 'i')} LIMIT 1) d ON true
ORDER BY i.ord`,
  };
}

/**
 * Takes over an in-progress duty whose holder's lease has expired (any hash: the old holder's record then fails
 * on its token and it withholds its signature), or one held without a lease by a client that is stuck, only with
 * the same message hash (such a client releases its signature even when its record fails). The condition is
 * re-checked under the row lock, so of several nodes racing for the takeover exactly one wins.
 * Parameters: $1..$5 key, $6 token, $7 node, $8 hash, $9 block number, [$10 checkpoint number,] the lease in ms.
 */
export function takeOverDuty(withCheckpoint: boolean): Statement {
  const lease = withCheckpoint ? '$11' : '$10';
  return {
    name: withCheckpoint ? 'ha_signer_take_over_cp' : 'ha_signer_take_over',
    text: `
WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE validator_duties d
SET lock_token = $6, node_id = $7, message_hash = $8, block_number = $9, ${withCheckpoint ? 'checkpoint_number = $10, ' : ''}
    started_at = CURRENT_TIMESTAMP, lease_expires_at = now() + make_interval(secs => ${lease}::float8 / 1000),
    takeovers = d.takeovers + 1
FROM async_commit
WHERE ${KEY_PARAMS} AND d.status = 'signing'
  AND ((d.lease_expires_at IS NOT NULL AND d.lease_expires_at <= now())
       OR (d.lease_expires_at IS NULL AND d.message_hash = $8
           AND d.started_at < LOCALTIMESTAMP - make_interval(secs => ${lease}::float8 / 1000)))
RETURNING d.lock_token`,
  };
}

/** Records a batch of signatures, each only under its own lock token. Commits synchronously: durable before release. */
export const RECORD_SIGNED: Statement = {
  name: 'ha_signer_record',
  text: `
UPDATE validator_duties d
SET status = 'signed', signature = i.signature, completed_at = CURRENT_TIMESTAMP, lease_expires_at = NULL
FROM unnest($1::varchar[], $2::varchar[], $3::int8[], $4::varchar[], $5::int4[], $6::varchar[], $7::varchar[])
       AS i(rollup_address, validator_address, slot, duty_type, block_index, lock_token, signature)
WHERE ${KEY_MATCH('d', 'i')} AND d.status = 'signing' AND d.lock_token = i.lock_token
RETURNING d.lock_token`,
};

/**
 * Releases a duty held under `lockToken` (after a failed signFn, or a claim whose outcome is unknown); commits
 * asynchronously (a lost release only delays a retry until the lease ends).
 */
export const RELEASE_DUTY: Statement = {
  name: 'ha_signer_release',
  text: `
WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
DELETE FROM validator_duties d
USING async_commit
WHERE ${KEY_PARAMS} AND d.status = 'signing' AND d.lock_token = $6`,
};

/** The current row of one duty, read with a fresh snapshot (works with and without checkpoint_number). */
export const SELECT_DUTY: Statement = {
  name: 'ha_signer_select_duty',
  text: `
SELECT d.*, (d.lease_expires_at IS NOT NULL AND d.lease_expires_at <= now()) AS lease_expired
FROM validator_duties d
WHERE ${KEY_PARAMS}`,
};

/**
 * For the history guard, per asked (validator, duty kind, slot): whether that duty is held as signed, the kind's
 * highest signed slot, and the validator's low watermark.
 */
export const SELECT_HISTORY_TOPS = `
SELECT m.validator_address, m.duty_type, m.slot,
       EXISTS (SELECT 1 FROM validator_duties d
                WHERE d.rollup_address = $1 AND d.validator_address = m.validator_address AND d.slot = m.slot
                  AND d.duty_type = m.duty_type AND d.status = 'signed') AS holds_slot,
       (SELECT max(d.slot) FROM validator_duties d
         WHERE d.rollup_address = $1 AND d.validator_address = m.validator_address
           AND d.duty_type = m.duty_type AND d.status = 'signed') AS top_slot,
       (SELECT w.low_slot FROM ha_signer_watermarks w
         WHERE w.rollup_address = $1 AND w.validator_address = m.validator_address) AS low_slot
FROM unnest($2::text[], $3::text[], $4::bigint[]) AS m(validator_address, duty_type, slot)`;

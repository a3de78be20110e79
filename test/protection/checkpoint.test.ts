/**
 * checkpoint_number is Aztec schema 2's column: the store reads and writes it only on databases at schema 2, and
 * signs on schema-1 databases (no such column) too. Claims and takeovers of both statement variants.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DutyAlreadySignedError, SlashingProtectionError } from '../../src/protection/index.js';
import {
  VALIDATOR,
  attestation,
  blockProposal,
  fakeSignature,
  hash,
  migratedDatabase,
  sql,
  startSigner,
  stopAllSigners,
} from '../support/protection.js';

afterEach(stopAllSigners);

const hasColumn = async (url: string): Promise<boolean> =>
  (await sql(url, `SELECT 1 FROM information_schema.columns WHERE table_name = 'validator_duties' AND column_name = 'checkpoint_number'`))
    .length === 1;

describe('checkpoint_number follows the Aztec schema version', () => {
  it('Aztec schema 1 (no column): signs, refuses conflicts, takes over an expired lease, and writes no checkpoint', async () => {
    const url = await migratedDatabase('cpone', 1);
    expect(await hasColumn(url)).toBe(false);
    const a = await startSigner(url, { nodeId: 'a' });
    const b = await startSigner(url, { nodeId: 'b', maxStuckDutiesAgeMs: 500 });
    await expect(
      a.signer.signWithProtection(VALIDATOR, hash(1), { ...attestation(1), checkpointNumber: 42n }, async () => fakeSignature(1)),
    ).resolves.toBe(fakeSignature(1));
    await expect(b.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(2))).rejects.toBeInstanceOf(
      DutyAlreadySignedError,
    );
    await expect(b.signer.signWithProtection(VALIDATOR, hash(2), attestation(1), async () => fakeSignature(2))).rejects.toBeInstanceOf(
      SlashingProtectionError,
    );

    // A claim whose lease lapsed (its holder died): taken over through the schema-1 take-over statement.
    await sql(
      url,
      `INSERT INTO validator_duties (rollup_address, validator_address, slot, block_number, block_index_within_checkpoint, duty_type,
      status, message_hash, node_id, lock_token, started_at, lease_expires_at)
      VALUES ($1, $2, 7, 14, 0, 'BLOCK_PROPOSAL', 'signing', $3, 'dead', 'tok', now(), now() - interval '1 second')`,
      [b.signer.rollupAddress, VALIDATOR, hash(7)],
    );
    await expect(
      b.signer.signWithProtection(VALIDATOR, hash(8), { ...blockProposal(7), checkpointNumber: 3n }, async () => fakeSignature(8)),
    ).resolves.toBe(fakeSignature(8));
    const rows = await sql(url, 'SELECT slot, node_id, message_hash, takeovers FROM validator_duties ORDER BY slot');
    expect(rows).toEqual([
      { slot: '1', node_id: 'a', message_hash: hash(1), takeovers: 0 },
      { slot: '7', node_id: 'b', message_hash: hash(8), takeovers: 1 },
    ]);
  });

  it('Aztec schema 2: claims and takeovers store the checkpoint number; records read it back', async () => {
    const url = await migratedDatabase('cptwo', 2);
    expect(await hasColumn(url)).toBe(true);
    const a = await startSigner(url, { nodeId: 'a', maxStuckDutiesAgeMs: 500 });
    await a.signer.signWithProtection(VALIDATOR, hash(1), { ...attestation(1), checkpointNumber: 42n }, async () => fakeSignature(1));
    await a.signer.signWithProtection(VALIDATOR, hash(2), attestation(2), async () => fakeSignature(2));
    await sql(
      url,
      `INSERT INTO validator_duties (rollup_address, validator_address, slot, block_number, block_index_within_checkpoint, duty_type,
      status, message_hash, node_id, lock_token, started_at, lease_expires_at, checkpoint_number)
      VALUES ($1, $2, 7, 14, 0, 'BLOCK_PROPOSAL', 'signing', $3, 'dead', 'tok', now(), now() - interval '1 second', 5)`,
      [a.signer.rollupAddress, VALIDATOR, hash(7)],
    );
    await a.signer.signWithProtection(VALIDATOR, hash(8), { ...blockProposal(7), checkpointNumber: 6n }, async () => fakeSignature(8));
    expect(await sql(url, 'SELECT slot, checkpoint_number, takeovers FROM validator_duties ORDER BY slot')).toEqual([
      { slot: '1', checkpoint_number: '42', takeovers: 0 },
      { slot: '2', checkpoint_number: '0', takeovers: 0 },
      { slot: '7', checkpoint_number: '6', takeovers: 1 },
    ]);
    const [record] = await a.db.listDuties(a.signer.rollupAddress, VALIDATOR, 1n, 1n);
    expect(record?.checkpointNumber).toBe(42n);
  });
});

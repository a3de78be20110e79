/**
 * The guards of the migrations themselves, held inside PostgreSQL: they also bind whoever runs node-pg-migrate on
 * migrations/ by hand, and clients issuing statements no row trigger sees.
 */
import { runner } from 'node-pg-migrate';
import { afterEach, describe, expect, it } from 'vitest';
import { migrationsDir, runMigrations } from '../../src/protection/index.js';
import { createTestDatabase } from '../support/postgres.js';
import { ROLLUP, VALIDATOR, attestation, fakeSignature, hash, sql, startSigner, stopAllSigners } from '../support/protection.js';
import { aztecMigrate, startAztecNode } from './aztec-support.js';

afterEach(stopAllSigners);

/** node-pg-migrate on migrations/ directly, without ha-signer's checks in front of it. */
async function rawMigrate(databaseUrl: string, direction: 'up' | 'down', count?: number): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: migrationsDir(),
    direction,
    migrationsTable: 'ha_signer_migrations',
    singleTransaction: true,
    log: () => {},
    ...(count !== undefined ? { count } : {}),
  });
  return applied.map((m) => m.name);
}

describe('guards inside the migrations', () => {
  it('adoption without a rollup is refused inside the protection migration itself (HA007), atomically', async () => {
    const url = await createTestDatabase('rawadopt');
    await aztecMigrate('4.1.2', url, 'up');
    const node = await startAztecNode('4.1.2', url, 'aztec');
    await node.sign(12, hash(12), fakeSignature(12));
    await node.stop();
    await expect(rawMigrate(url, 'up')).rejects.toMatchObject({ code: 'HA007' });
    await expect(rawMigrate(url, 'up')).rejects.toThrow(new RegExp(`bound to no rollup; found: ${ROLLUP} \\(newest slot 12, 1 duties\\)`));
    // One transaction: nothing of ha-signer's is left behind, and the Aztec row is untouched.
    expect(
      await sql(url, `SELECT to_regclass('ha_signer_rollup_binding') AS b, (SELECT count(*)::int FROM validator_duties) AS n`),
    ).toEqual([{ b: null, n: 1 }]);
  });

  it('removing the protection triggers by hand is refused while pruned history exists (HA006)', async () => {
    const url = await createTestDatabase('rawdown');
    await runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
    await sql(url, 'INSERT INTO ha_signer_watermarks (rollup_address, validator_address, low_slot) VALUES ($1, $2, 9)', [
      ROLLUP,
      VALIDATOR,
    ]);
    const all = (await sql<{ n: number }>(url, 'SELECT count(*)::int AS n FROM ha_signer_migrations'))[0]!.n;
    await expect(rawMigrate(url, 'down', all)).rejects.toMatchObject({ code: 'HA006' });
    expect(await sql(url, 'SELECT count(*)::int AS n FROM ha_signer_migrations')).toEqual([{ n: all }]);
  });

  it('TRUNCATE of the history or the watermarks, and lowering or deleting a watermark, are refused', async () => {
    const url = await createTestDatabase('truncate');
    await runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
    const { signer, db } = await startSigner(url);
    await signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(1));
    await signer.signWithProtection(VALIDATOR, hash(2), attestation(2), async () => fakeSignature(2));
    await sql(
      url,
      `SET session_replication_role = replica; UPDATE validator_duties SET started_at = started_at - interval '2 hours' WHERE slot = 1`,
    );
    expect(await db.cleanupOldDuties(3_600_000)).toBe(1);
    await expect(sql(url, 'TRUNCATE validator_duties')).rejects.toMatchObject({ code: 'HA005' });
    await expect(sql(url, 'TRUNCATE ha_signer_watermarks')).rejects.toMatchObject({ code: 'HA005' });
    await expect(sql(url, 'UPDATE ha_signer_watermarks SET low_slot = 0')).rejects.toMatchObject({ code: 'HA002' });
    await expect(sql(url, 'DELETE FROM ha_signer_watermarks')).rejects.toMatchObject({ code: 'HA002' });
    await expect(sql(url, 'DROP TABLE validator_duties')).rejects.toThrow(
      /cannot drop table validator_duties because other objects depend on it/,
    );
    // Raising still works (pruning and `watermark raise` only ever raise).
    await sql(url, 'UPDATE ha_signer_watermarks SET low_slot = 1');
    expect(await sql(url, 'SELECT slot FROM validator_duties')).toEqual([{ slot: '2' }]);
  });
});

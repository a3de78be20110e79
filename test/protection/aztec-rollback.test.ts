/**
 * Rollbacks, adoption and databases of older ha-signer releases, with Aztec's published nodes and runners: no
 * sequence of `migrate up`/`down` (ha-signer's or Aztec's) loses a row or lets a signed or pruned duty be signed
 * again with another hash.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runner } from 'node-pg-migrate';
import * as protection from '../../src/protection/index.js';
import { HA_SIGNER_MIGRATIONS } from '../../src/protection/schema.js';
import { createTestDatabase } from '../support/postgres.js';
import {
  OTHER_ROLLUP,
  ROLLUP,
  VALIDATOR,
  attestation,
  fakeSignature,
  hash,
  sql,
  startSigner,
  stopAllSigners,
} from '../support/protection.js';
import { type AztecNode, type AztecRelease, PUBLISHED, aztecMigrate, aztecV2Migrate, startAztecNode } from './aztec-support.js';

const PROTECTION = '1700000000002_ha-signer-protection';
const OLD_MIGRATIONS = new URL('./fixtures/ha-signer-0.1-migrations', import.meta.url).pathname;

const nodes: AztecNode[] = [];
afterEach(async () => {
  await Promise.allSettled(nodes.splice(0).map((node) => node.stop()));
  await stopAllSigners();
});

type Kind = 'created by ha-signer' | 'ha-signer at Aztec schema 2' | 'created by Aztec, adopted' | 'created by Aztec at schema 2, adopted';

async function database(kind: Kind): Promise<string> {
  const url = await createTestDatabase('rollback');
  if (kind === 'created by ha-signer' || kind === 'ha-signer at Aztec schema 2') {
    await protection.runMigrations({
      databaseUrl: url,
      direction: 'up',
      rollupAddress: ROLLUP,
      ...(kind === 'created by ha-signer' ? {} : { aztecSchema: 2 as const }),
    });
    return url;
  }
  if (kind === 'created by Aztec, adopted') await aztecMigrate('4.1.2', url, 'up');
  else await aztecV2Migrate(url, 'up');
  const node = await startAztecNode(kind === 'created by Aztec, adopted' ? '4.1.2' : 'v2', url, 'aztec-first');
  for (const slot of [901, 902]) await node.sign(slot, hash(slot), fakeSignature(slot));
  await node.stop();
  await protection.runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
  return url;
}

const snapshot = (url: string) =>
  sql(
    url,
    'SELECT slot, duty_type, status, message_hash, signature FROM validator_duties ORDER BY slot, duty_type, block_index_within_checkpoint',
  );
const aztecVersion = async (url: string): Promise<number[]> =>
  (await sql<{ version: number }>(url, 'SELECT version FROM schema_version ORDER BY 1')).map((r) => r.version);
const releasesFor = async (url: string): Promise<AztecRelease[]> => ((await aztecVersion(url)).includes(2) ? ['v2'] : [...PUBLISHED]);

/** Signs 1-3 (ha-signer) and 10 (Aztec), then prunes 1-3: watermark 3. */
async function withPrunedHistory(url: string): Promise<void> {
  const ours = await startSigner(url, { nodeId: 'ours' });
  for (const slot of [1, 2, 3])
    await ours.signer.signWithProtection(VALIDATOR, hash(slot), attestation(slot), async () => fakeSignature(slot));
  const aztec = await startAztecNode((await releasesFor(url))[0]!, url, 'aztec-10');
  await aztec.sign(10, hash(10), fakeSignature(10));
  await aztec.stop();
  // Backdating is a fixture: bypass the immutability trigger for this session only.
  await sql(
    url,
    `SET session_replication_role = replica; UPDATE validator_duties SET started_at = started_at - interval '2 hours', completed_at = completed_at - interval '2 hours' WHERE slot <= 3`,
  );
  expect(await ours.db.cleanupOldDuties(3_600_000)).toBe(3);
  expect(await sql(url, 'SELECT low_slot FROM ha_signer_watermarks')).toEqual([{ low_slot: '3' }]);
  await stopAllSigners();
}

/** Every Aztec release the database accepts tries the signed slot 10 and the pruned slot 2 with another hash. */
async function expectAztecRefusesResigning(url: string, prunedGuarded: boolean): Promise<void> {
  for (const release of await releasesFor(url)) {
    const node = await startAztecNode(release, url, `resign-${release}`);
    nodes.push(node);
    await expect(node.sign(10, hash(0x1010), fakeSignature(0x1010))).rejects.toMatchObject({ name: 'SlashingProtectionError' });
    if (prunedGuarded) {
      await expect(node.sign(2, hash(0x1002), fakeSignature(0x1002))).rejects.toThrow(/low watermark 3/);
    }
    await node.stop();
  }
  expect(await sql(url, 'SELECT slot, message_hash FROM validator_duties WHERE slot IN (2, 10)')).toEqual([
    { slot: '10', message_hash: hash(10) },
  ]);
}

describe.each<Kind>([
  'created by ha-signer',
  'ha-signer at Aztec schema 2',
  'created by Aztec, adopted',
  'created by Aztec at schema 2, adopted',
])('rolling back a database %s', (kind) => {
  it("every step keeps every row; signed and pruned duties stay refused; Aztec's runner cannot drop the history", async () => {
    const url = await database(kind);
    await withPrunedHistory(url);
    const rows = await snapshot(url);
    const versionBefore = await aztecVersion(url);
    await expectAztecRefusesResigning(url, true);

    let guarded = true;
    for (const name of [...HA_SIGNER_MIGRATIONS].reverse()) {
      if (name === PROTECTION) {
        await expect(protection.migrate({ databaseUrl: url, direction: 'down' })).rejects.toThrow(
          /refusing to revert 1700000000002_ha-signer-protection: 1 validator\(s\) have pruned history .*up to slot 3/,
        );
        await expectAztecRefusesResigning(url, true);
        const forced = await protection.migrate({ databaseUrl: url, direction: 'down', force: true });
        expect(forced.applied).toEqual([name]);
        expect(forced.protectionLost).toMatch(
          /1 validator\(s\) have pruned history.*until `ha-signer migrate up` the database no longer refuses those pruned slots/,
        );
        guarded = false;
      } else {
        const report = await protection.migrate({ databaseUrl: url, direction: 'down' });
        expect(report.applied).toEqual([name]);
        expect(report.untouched?.join('\n')).toMatch(/validator_duties: every row \(\d+, of which \d+ signed\) and every column/);
      }
      expect(await snapshot(url), `after reverting ${name}`).toEqual(rows);
      expect(await aztecVersion(url)).toEqual(versionBefore);
      expect(await sql(url, 'SELECT low_slot FROM ha_signer_watermarks')).toEqual([{ low_slot: '3' }]);
      await expectAztecRefusesResigning(url, guarded);
    }
    expect(await protection.runMigrations({ databaseUrl: url, direction: 'down' })).toEqual([]);

    // Aztec's own runner on what is left: up is a no-op; down cannot drop the tables (the history guard view).
    if (versionBefore.includes(2)) {
      expect(await aztecV2Migrate(url, 'up')).toEqual([]);
      // Aztec's down of its migration 2 drops its checkpoint_number and returns to schema 1: no row lost.
      expect(await aztecV2Migrate(url, 'down')).toEqual(['2_add-checkpoint-number']);
      await expect(aztecV2Migrate(url, 'down')).rejects.toThrow(/depend/);
    } else {
      for (const release of PUBLISHED) expect(await aztecMigrate(release as '4.1.2' | 'nightly', url, 'up')).toEqual([]);
      await expect(aztecMigrate('4.1.2', url, 'down')).rejects.toThrow(/depend/);
    }
    expect(await snapshot(url)).toEqual(rows);
    await expectAztecRefusesResigning(url, false);

    // And up again: the same protection, from the same rows and watermarks.
    await protection.runMigrations({ databaseUrl: url, direction: 'up' });
    expect(await snapshot(url)).toEqual(rows);
    await expectAztecRefusesResigning(url, true);
    const ours = await startSigner(url, { nodeId: 'after' });
    await expect(
      ours.signer.signWithProtection(VALIDATOR, hash(0x2002), attestation(2), async () => fakeSignature(2)),
    ).rejects.toMatchObject({ name: 'SlashingProtectionError' });
  });
});

describe('rollbacks through the library call (runMigrations), as before 0.2', () => {
  it("a full rollback keeps every row, and after Aztec's migrate-ha-db up a signed duty stays refused with another hash", async () => {
    const url = await database('created by ha-signer');
    const ours = await startSigner(url, { nodeId: 'ours' });
    for (const slot of [1, 2, 3])
      await ours.signer.signWithProtection(VALIDATOR, hash(slot), attestation(slot), async () => fakeSignature(slot));
    await stopAllSigners();
    const rows = await snapshot(url);
    await protection.runMigrations({ databaseUrl: url, direction: 'down', count: 10 });
    expect(await snapshot(url)).toEqual(rows);
    await aztecMigrate('4.1.2', url, 'up');
    const aztec = await startAztecNode('4.1.2', url, 'aztec');
    nodes.push(aztec);
    await expect(aztec.sign(2, hash(0x2002), fakeSignature(0x2002))).rejects.toMatchObject({ name: 'SlashingProtectionError' });
    expect(await snapshot(url)).toEqual(rows);
  });

  it('one down keeps the watermarks: an Aztec node cannot sign a pruned slot with another hash', async () => {
    const url = await database('created by Aztec, adopted');
    await withPrunedHistory(url);
    await protection.runMigrations({ databaseUrl: url, direction: 'down' });
    const aztec = await startAztecNode('nightly', url, 'aztec');
    nodes.push(aztec);
    await expect(aztec.sign(2, hash(0x1002), fakeSignature(0x1002))).rejects.toThrow(/low watermark 3/);
    expect(await sql(url, 'SELECT count(*)::int AS n FROM validator_duties WHERE slot = 2')).toEqual([{ n: 0 }]);
  });
});

describe('ha-signer down on a database at Aztec schema 2', () => {
  it("never drops Aztec's checkpoint_number or lowers schema_version", async () => {
    const url = await createTestDatabase('v2down');
    await protection.runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP, aztecSchema: 2 });
    const ours = await startSigner(url);
    await ours.signer.signWithProtection(VALIDATOR, hash(1), { ...attestation(1), checkpointNumber: 12n }, async () => fakeSignature(1));
    await stopAllSigners();
    await protection.runMigrations({ databaseUrl: url, direction: 'down', count: HA_SIGNER_MIGRATIONS.length });
    expect(await sql(url, 'SELECT slot, checkpoint_number FROM validator_duties')).toEqual([{ slot: '1', checkpoint_number: '12' }]);
    expect(await aztecVersion(url)).toEqual([2]);
  });
});

describe('adoption of an existing Aztec HA database', () => {
  async function aztecDatabaseWithTwoRollups(): Promise<string> {
    const url = await createTestDatabase('adopt');
    await aztecMigrate('4.1.2', url, 'up');
    const old = await startAztecNode('4.1.2', url, 'old-rollup-node', OTHER_ROLLUP);
    await old.sign(50, hash(50), fakeSignature(50));
    await old.stop();
    // The current rollup's node starts second (its startup deletes the other rollup's duties: restore one as history).
    const current = await startAztecNode('4.1.2', url, 'current-node');
    for (const slot of [901, 903]) await current.sign(slot, hash(slot), fakeSignature(slot));
    await current.stop();
    await sql(
      url,
      `INSERT INTO validator_duties (rollup_address, validator_address, slot, block_number, block_index_within_checkpoint, duty_type, status, message_hash, node_id, lock_token, signature, completed_at)
                    VALUES ($1, $2, 50, 7, -1, 'ATTESTATION', 'signed', $3, 'old-rollup-node', 't', $4, now())`,
      [OTHER_ROLLUP, VALIDATOR, hash(50), fakeSignature(50)],
    );
    return url;
  }

  it('is refused without --rollup-address, naming the rollups found with their newest slots, and changes nothing', async () => {
    const url = await aztecDatabaseWithTwoRollups();
    const refusal = protection.runMigrations({ databaseUrl: url, direction: 'up' });
    await expect(refusal).rejects.toBeInstanceOf(protection.MigrationRefusedError);
    await expect(refusal).rejects.toThrow(
      new RegExp(`found: ${ROLLUP} \\(newest slot 903, 2 duties\\), ${OTHER_ROLLUP} \\(newest slot 50, 1 duties\\).*--rollup-address`),
    );
    expect(await sql(url, `SELECT to_regclass('ha_signer_migrations') AS m, to_regclass('ha_signer_rollup_binding') AS b`)).toEqual([
      { m: null, b: null },
    ]);

    // With it: bound to the named rollup; the old rollup's node can neither write nor wipe; current nodes sign.
    await protection.runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
    expect(await sql(url, 'SELECT rollup_address FROM ha_signer_rollup_binding')).toEqual([{ rollup_address: ROLLUP }]);
    await expect(startAztecNode('4.1.2', url, 'old-again', OTHER_ROLLUP)).rejects.toThrow(/refusing to delete signed duty/);
    const current = await startAztecNode('nightly', url, 'current-nightly');
    nodes.push(current);
    await expect(current.sign(904, hash(904), fakeSignature(904))).resolves.toBe(fakeSignature(904));
    await expect(current.sign(903, hash(0x903), fakeSignature(1))).rejects.toMatchObject({ name: 'SlashingProtectionError' });
    expect(await sql(url, 'SELECT count(*)::int AS n FROM validator_duties')).toEqual([{ n: 4 }]);
  });

  it('keeps every row while an Aztec node signs during the migration; a crashed Aztec claim is never signed with another hash', async () => {
    const url = await createTestDatabase('adoptlive');
    await aztecMigrate('nightly', url, 'up');
    // A crashed Aztec node's claim: status signing, no lease.
    await sql(
      url,
      `INSERT INTO validator_duties (rollup_address, validator_address, slot, block_number, block_index_within_checkpoint, duty_type, status, message_hash, node_id, lock_token)
                    VALUES ($1, $2, 5, 7, -1, 'ATTESTATION', 'signing', $3, 'crashed', 'tok')`,
      [ROLLUP, VALIDATOR, hash(5)],
    );
    const live = await startAztecNode('4.1.2', url, 'live');
    nodes.push(live);
    const released: number[] = [];
    let stop = false;
    const signing = (async () => {
      for (let slot = 100; !stop; slot++) {
        await live.sign(slot, hash(slot), fakeSignature(slot)).then(() => released.push(slot));
      }
    })();
    while (released.length < 5) await new Promise((resolve) => setTimeout(resolve, 10));
    await protection.runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
    const during = released.length;
    while (released.length < during + 5) await new Promise((resolve) => setTimeout(resolve, 10));
    stop = true;
    await signing;
    const rows = await sql<{ slot: string; message_hash: string; status: string }>(
      url,
      'SELECT slot, message_hash, status FROM validator_duties WHERE slot >= 100 ORDER BY slot',
    );
    expect(rows.map((r) => Number(r.slot))).toEqual(released);
    for (const row of rows) expect(row).toMatchObject({ status: 'signed', message_hash: hash(Number(row.slot)) });

    const ours = await startSigner(url, { nodeId: 'ours', maxStuckDutiesAgeMs: 1_000, signingTimeoutMs: 500 });
    await sql(
      url,
      `SET session_replication_role = replica; UPDATE validator_duties SET started_at = started_at - interval '1 hour' WHERE slot = 5`,
    );
    await expect(ours.signer.signWithProtection(VALIDATOR, hash(6), attestation(5), async () => fakeSignature(6))).rejects.toMatchObject({
      name: expect.stringMatching(/DutyAlreadySignedError|DutyInProgressError/),
    });
    expect(await sql(url, 'SELECT status, message_hash, node_id FROM validator_duties WHERE slot = 5')).toEqual([
      { status: 'signing', message_hash: hash(5), node_id: 'crashed' },
    ]);
  });
});

describe('databases migrated by ha-signer before 0.2 (checkpoint_number at Aztec schema 1)', () => {
  async function oldDatabase(): Promise<string> {
    const url = await createTestDatabase('old');
    await runner({
      databaseUrl: url,
      dir: OLD_MIGRATIONS,
      direction: 'up',
      migrationsTable: 'ha_signer_migrations',
      log: () => {},
      singleTransaction: true,
    });
    await sql(
      url,
      `INSERT INTO validator_duties (rollup_address, validator_address, slot, block_number, block_index_within_checkpoint, duty_type, status, message_hash, node_id, lock_token, signature, completed_at, checkpoint_number)
                    VALUES ($1, $2, 1, 7, -1, 'ATTESTATION', 'signed', $3, 'old', 't', $4, now(), 5)`,
      [ROLLUP, VALIDATOR, hash(1), fakeSignature(1)],
    );
    return url;
  }

  it("migrate up keeps schema 1 consistent (values kept aside) so Aztec's migration 2 applies; --aztec-schema 2 brings them back", async () => {
    const url = await oldDatabase();
    const report = await protection.migrate({ databaseUrl: url, direction: 'up' });
    expect(report.aztecSchemaVersion).toBe(1);
    expect(report.notes.join('\n')).toMatch(/renamed to ha_signer_checkpoint_number, values kept/);
    expect(await sql(url, 'SELECT ha_signer_checkpoint_number FROM validator_duties')).toEqual([{ ha_signer_checkpoint_number: '5' }]);
    const aztec = await startAztecNode('4.1.2', url, 'aztec');
    nodes.push(aztec);
    await expect(aztec.sign(1, hash(2), fakeSignature(2))).rejects.toMatchObject({ name: 'SlashingProtectionError' });
    await aztec.stop();

    await protection.migrate({ databaseUrl: url, direction: 'up', aztecSchema: 2 });
    expect(await sql(url, 'SELECT slot, checkpoint_number FROM validator_duties')).toEqual([{ slot: '1', checkpoint_number: '5' }]);
    expect(await aztecV2Migrate(url, 'up')).toEqual([]);
  });

  it("Aztec's own migration 2 applies after migrate up, and no value or row is lost", async () => {
    const url = await oldDatabase();
    await protection.runMigrations({ databaseUrl: url, direction: 'up' });
    expect(await aztecV2Migrate(url, 'up')).toEqual(['2_add-checkpoint-number']);
    expect(await sql(url, 'SELECT slot, checkpoint_number, ha_signer_checkpoint_number FROM validator_duties')).toEqual([
      { slot: '1', checkpoint_number: '0', ha_signer_checkpoint_number: '5' },
    ]);
    const v2 = await startAztecNode('v2', url, 'v2');
    nodes.push(v2);
    await expect(v2.sign(1, hash(2), fakeSignature(2))).rejects.toMatchObject({ name: 'SlashingProtectionError' });
    const ours = await startSigner(url);
    await expect(ours.signer.signWithProtection(VALIDATOR, hash(3), attestation(3), async () => fakeSignature(3))).resolves.toBe(
      fakeSignature(3),
    );
  });
});

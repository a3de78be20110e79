/**
 * Version matrix: Aztec's published @aztec/validator-ha-signer (4.1.2, 4.3.0-nightly.20260417) and an Aztec node at
 * schema 2, on databases created by ha-signer, created by Aztec and adopted, and at Aztec schema 2: initialize,
 * start, sign, and races with ha-signer nodes with one winner per duty.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as protection from '../../src/protection/index.js';
import { createTestDatabase } from '../support/postgres.js';
import { ROLLUP, VALIDATOR, attestation, fakeSignature, hash, sql, startSigner, stopAllSigners } from '../support/protection.js';
import { type AztecNode, type AztecRelease, PUBLISHED, aztecMigrate, aztecV2Migrate, startAztecNode } from './aztec-support.js';

const nodes: AztecNode[] = [];
afterEach(async () => {
  await Promise.allSettled(nodes.splice(0).map((node) => node.stop()));
  await stopAllSigners();
});

async function aztecNode(release: AztecRelease, url: string, nodeId: string): Promise<AztecNode> {
  const node = await startAztecNode(release, url, nodeId);
  nodes.push(node);
  return node;
}

type DatabaseKind =
  'created by ha-signer' | 'created by Aztec, adopted' | 'ha-signer at Aztec schema 2' | 'created by Aztec at schema 2, adopted';
const KINDS: DatabaseKind[] = [
  'created by ha-signer',
  'created by Aztec, adopted',
  'ha-signer at Aztec schema 2',
  'created by Aztec at schema 2, adopted',
];
const atSchema2 = (kind: DatabaseKind): boolean => kind.includes('schema 2');

/** A database of `kind`, bound to ROLLUP; Aztec-created ones hold `preexisting` signed duties (slots 901-903) first. */
async function database(kind: DatabaseKind): Promise<string> {
  const url = await createTestDatabase('matrix');
  if (kind === 'created by ha-signer' || kind === 'ha-signer at Aztec schema 2') {
    await protection.runMigrations({
      databaseUrl: url,
      direction: 'up',
      rollupAddress: ROLLUP,
      ...(atSchema2(kind) ? { aztecSchema: 2 as const } : {}),
    });
    return url;
  }
  if (atSchema2(kind)) await aztecV2Migrate(url, 'up');
  else await aztecMigrate('4.1.2', url, 'up');
  const node = await startAztecNode(atSchema2(kind) ? 'v2' : '4.1.2', url, 'aztec-before-adoption');
  for (const slot of [901, 902, 903]) await node.sign(slot, hash(slot), fakeSignature(slot));
  await node.stop();
  await protection.runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
  return url;
}

const versions = async (url: string): Promise<number[]> =>
  (await sql<{ version: number }>(url, 'SELECT version FROM schema_version ORDER BY 1')).map((r) => r.version);

describe.each(KINDS)('database %s', (kind) => {
  const releases: AztecRelease[] = atSchema2(kind) ? ['v2'] : [...PUBLISHED];

  it("has the Aztec schema version its nodes accept, recorded where Aztec's runner looks", async () => {
    const url = await database(kind);
    expect(await versions(url)).toEqual(atSchema2(kind) ? [2] : [1]);
    const recorded = (await sql<{ name: string }>(url, 'SELECT name FROM pgmigrations ORDER BY run_on, id')).map((r) => r.name);
    expect(recorded).toEqual(atSchema2(kind) ? ['1_initial-schema', '2_add-checkpoint-number'] : ['1_initial-schema']);
    // Aztec's own `migrate-ha-db up` finds nothing to do.
    if (atSchema2(kind)) expect(await aztecV2Migrate(url, 'up')).toEqual([]);
    else for (const release of PUBLISHED) expect(await aztecMigrate(release as '4.1.2' | 'nightly', url, 'up')).toEqual([]);
    expect(await versions(url)).toEqual(atSchema2(kind) ? [2] : [1]);
  });

  it.each(releases)("Aztec %s initializes, starts and signs; both sides refuse the other's duty with another hash", async (release) => {
    const url = await database(kind);
    const aztec = await aztecNode(release, url, `aztec-${release}`);
    const ours = await startSigner(url, { nodeId: 'ours' });
    await expect(aztec.sign(1, hash(1), fakeSignature(1))).resolves.toBe(fakeSignature(1));
    await expect(ours.signer.signWithProtection(VALIDATOR, hash(2), attestation(1), async () => fakeSignature(2))).rejects.toMatchObject({
      name: 'SlashingProtectionError',
    });
    await ours.signer.signWithProtection(VALIDATOR, hash(3), { ...attestation(2), checkpointNumber: 77n }, async () => fakeSignature(3));
    await expect(aztec.sign(2, hash(4), fakeSignature(4))).rejects.toMatchObject({ name: 'SlashingProtectionError' });
    await expect(aztec.sign(2, hash(3), fakeSignature(4))).rejects.toMatchObject({ name: 'DutyAlreadySignedError' });
    if (atSchema2(kind)) {
      // At schema 2 checkpoint_number is Aztec's column and ha-signer writes it.
      expect(await sql(url, 'SELECT checkpoint_number FROM validator_duties WHERE slot = 2')).toEqual([{ checkpoint_number: '77' }]);
    }
  });

  if (atSchema2(kind)) {
    it.each(PUBLISHED)('published %s refuses it as Aztec says (schema 2 is newer than it knows)', async (release) => {
      const url = await database(kind);
      await expect(startAztecNode(release, url, 'old')).rejects.toThrow(/newer than expected/);
    });
  }

  it.each([false, true])('4 nodes (2 Aztec, 2 ha-signer) racing 24 duties, same hash %s: one winner per duty', async (sameHash) => {
    const url = await database(kind);
    const aztecs = [await aztecNode(releases[0]!, url, 'aztec-a'), await aztecNode(releases.at(-1)!, url, 'aztec-b')];
    const ours = [await startSigner(url, { nodeId: 'ours-a' }), await startSigner(url, { nodeId: 'ours-b' })];
    const signers = [
      ...aztecs.map((node) => (slot: number, h: string, s: string) => node.sign(slot, h, s)),
      ...ours.map(
        ({ signer }) =>
          (slot: number, h: string, s: string) =>
            signer.signWithProtection(VALIDATOR, h, attestation(slot), async () => s),
      ),
    ];
    const slots = Array.from({ length: 24 }, (_, i) => 100 + i);
    const outcomes = await Promise.all(
      slots.map(async (slot) => {
        const attempts = signers.map((sign, i) => {
          const h = hash(slot * 10 + (sameHash ? 0 : i));
          return sign(slot, h, fakeSignature(slot * 10 + i)).then((signature) => ({ h, signature }));
        });
        return { slot, results: await Promise.allSettled(attempts) };
      }),
    );
    const rows = await sql<{ slot: string; message_hash: string; status: string; signature: string }>(
      url,
      'SELECT slot, message_hash, status, signature FROM validator_duties WHERE slot BETWEEN 100 AND 199',
    );
    expect(rows).toHaveLength(slots.length);
    for (const { slot, results } of outcomes) {
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won, `slot ${slot}`).toHaveLength(1);
      for (const lost of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
        expect(['DutyAlreadySignedError', 'SlashingProtectionError', 'DutyInProgressError'], String(lost.reason)).toContain(
          (lost.reason as Error).name,
        );
      }
      const row = rows.find((r) => Number(r.slot) === slot)!;
      const winner = (won[0] as PromiseFulfilledResult<{ h: string; signature: string }>).value;
      expect(row).toMatchObject({ status: 'signed', message_hash: winner.h, signature: winner.signature });
    }
  });
});

describe("Aztec's schema 2 on ha-signer's databases", () => {
  it("Aztec's migration 2 applies on a database ha-signer created; ha-signer, and Aztec nodes with migration 2, then accept it", async () => {
    const url = await createTestDatabase('v2replay');
    await protection.runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
    const before = await startSigner(url, { nodeId: 'before' });
    await before.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(1));
    await stopAllSigners();
    expect(await aztecV2Migrate(url, 'up')).toEqual(['2_add-checkpoint-number']);
    expect(await versions(url)).toEqual([2]);
    const v2 = await aztecNode('v2', url, 'aztec-v2');
    await expect(v2.sign(1, hash(2), fakeSignature(2))).rejects.toMatchObject({ name: 'SlashingProtectionError' });
    const ours = await startSigner(url, { nodeId: 'ours' });
    await ours.signer.signWithProtection(VALIDATOR, hash(5), { ...attestation(5), checkpointNumber: 9n }, async () => fakeSignature(5));
    expect(await sql(url, 'SELECT slot, checkpoint_number FROM validator_duties ORDER BY slot')).toEqual([
      { slot: '1', checkpoint_number: '0' },
      { slot: '5', checkpoint_number: '9' },
    ]);
    // ha-signer's migrate up afterwards keeps schema 2 (no version 1 beside it).
    await protection.runMigrations({ databaseUrl: url, direction: 'up' });
    expect(await versions(url)).toEqual([2]);
  });

  it('migrate up --aztec-schema 2 moves a schema-1 database the way Aztec does, and says which releases accept it', async () => {
    const url = await createTestDatabase('v2up');
    await protection.runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
    const aztec = await aztecNode('4.1.2', url, 'aztec');
    await aztec.sign(1, hash(1), fakeSignature(1));
    await aztec.stop();
    const report = await protection.migrate({ databaseUrl: url, direction: 'up', aztecSchema: 2 });
    expect(report).toMatchObject({ applied: ['aztec:2_add-checkpoint-number'], aztecSchemaVersion: 2 });
    expect(report.acceptedBy).toMatch(
      /Aztec schema 2: accepted by Aztec releases that include migration 2_add-checkpoint-number.*4\.1\.x and 4\.3\.0-nightly\.20260417 refuse it/,
    );
    expect(await sql(url, 'SELECT slot, status, checkpoint_number FROM validator_duties')).toEqual([
      { slot: '1', status: 'signed', checkpoint_number: '0' },
    ]);
    await expect(protection.migrate({ databaseUrl: url, direction: 'up', aztecSchema: 1 })).rejects.toThrow(/never lowers it/);
    const fresh = await protection.migrate({ databaseUrl: await createTestDatabase('v1up'), direction: 'up' });
    expect(fresh).toMatchObject({ aztecSchemaVersion: 1 });
    expect(fresh.acceptedBy).toMatch(/Aztec schema 1: accepted by @aztec\/validator-ha-signer 4\.1\.x.*4\.3\.0-nightly\.20260417/);
  });

  it('ha-signer refuses a schema it does not know, and schema 2 without its column', async () => {
    const url = await createTestDatabase('v3');
    await protection.runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
    await sql(url, 'UPDATE schema_version SET version = 2');
    await expect(startSigner(url)).rejects.toThrow(/schema_version 2 but validator_duties has no checkpoint_number/);
    await sql(url, 'UPDATE schema_version SET version = 3');
    await expect(startSigner(url)).rejects.toThrow(/schema_version 3 is not one this signer knows/);
    await expect(protection.runMigrations({ databaseUrl: url, direction: 'up' })).rejects.toThrow(
      /Aztec schema 3, which this ha-signer does not know/,
    );
  });
});

/**
 * History export/import and watermark raise on the real PostgreSQL: a round trip keeps every signed duty and
 * watermark and the imported history protects (another hash is refused); conflicts are reported and not applied;
 * a watermark is never lowered; a database bound to another rollup is refused; the database's guards still hold.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { HistoryDocumentError, parseHistoryDocument, type HistoryDocument } from '../../src/protection/history-document.js';
import { HistoryRefusedError, exportHistory, importHistory, raiseWatermark } from '../../src/protection/history.js';
import { SlashingProtectionError, runMigrations } from '../../src/protection/index.js';
import { createTestDatabase } from '../support/postgres.js';
import {
  OTHER_ROLLUP,
  ROLLUP,
  VALIDATOR,
  attestation,
  blockProposal,
  fakeSignature,
  gatedSignFn,
  hash,
  sql,
  startSigner,
  stopAllSigners,
} from '../support/protection.js';

const SECOND_VALIDATOR = `0x${'d4'.repeat(20)}`;
const clients: pg.Client[] = [];

afterEach(async () => {
  await stopAllSigners();
  await Promise.all(clients.splice(0).map((client) => client.end().catch(() => {})));
});

async function boundDatabase(prefix: string, rollup = ROLLUP): Promise<string> {
  const url = await createTestDatabase(prefix);
  await runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: rollup });
  return url;
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  clients.push(client);
  return client;
}

/** A database with history signed through the protection core, and one validator's history pruned below slot 50. */
async function databaseWithHistory(prefix: string): Promise<string> {
  const url = await boundDatabase(prefix);
  const { signer } = await startSigner(url, { nodeId: 'origin' });
  await signer.signWithProtection(VALIDATOR, hash(1), blockProposal(100), async () => fakeSignature(1));
  await signer.signWithProtection(VALIDATOR, hash(2), blockProposal(100, 1), async () => fakeSignature(2));
  await signer.signWithProtection(VALIDATOR, hash(3), attestation(101), async () => fakeSignature(3));
  await signer.signWithProtection(SECOND_VALIDATOR, hash(4), attestation(100), async () => fakeSignature(4));
  await raiseWatermark(await connect(url), SECOND_VALIDATOR, 50);
  return url;
}

const withoutTimes = (document: HistoryDocument) =>
  document.data.map((v) => ({ ...v, signedDuties: v.signedDuties.map(({ signedAt: _t, ...d }) => d) }));

describe('history export and import', () => {
  it('round trip: every signed duty and watermark arrives, and the imported history protects', async () => {
    const source = await databaseWithHistory('hist_src');
    const exported = await exportHistory(await connect(source), 'test');
    expect(exported.inProgress).toBe(0);
    // What a file goes through: JSON text, parsed and validated again.
    const document = parseHistoryDocument(JSON.parse(JSON.stringify(exported.document)));
    expect(document.metadata.rollupAddress).toBe(ROLLUP);
    expect(document.data.map((v) => [v.validator, v.lowWatermarkSlot, v.signedDuties.length])).toEqual([
      [VALIDATOR, null, 3],
      [SECOND_VALIDATOR, '50', 1],
    ]);
    const signedAt = Date.parse(document.data[0]!.signedDuties[0]!.signedAt!);
    expect(Math.abs(Date.now() - signedAt)).toBeLessThan(5 * 60_000); // the record time, in UTC
    expect(document.data[0]!.signedDuties[0]).toMatchObject({
      slot: '100',
      dutyType: 'BLOCK_PROPOSAL',
      blockIndexWithinCheckpoint: 0,
      blockNumber: '200',
      messageHash: hash(1),
      signature: fakeSignature(1),
      nodeId: 'origin',
    });

    const target = await boundDatabase('hist_dst');
    const report = await importHistory(await connect(target), document);
    expect(report).toMatchObject({
      inserted: 4,
      alreadyPresent: 0,
      belowWatermark: 0,
      conflicts: [],
      watermarksRaised: [{ validator: SECOND_VALIDATOR, from: null, to: '50' }],
    });
    expect(withoutTimes((await exportHistory(await connect(target), 'test')).document)).toEqual(withoutTimes(document));

    // Importing again changes nothing.
    expect(await importHistory(await connect(target), document)).toMatchObject({
      inserted: 0,
      alreadyPresent: 4,
      conflicts: [],
      watermarksRaised: [],
    });

    // A node on the target cannot sign the imported duty over another hash, nor anything at or below the watermark.
    const { signer } = await startSigner(target, { nodeId: 'restored' });
    await expect(signer.signWithProtection(VALIDATOR, hash(9), blockProposal(100), async () => fakeSignature(9))).rejects.toBeInstanceOf(
      SlashingProtectionError,
    );
    await expect(signer.signWithProtection(SECOND_VALIDATOR, hash(8), attestation(50), async () => fakeSignature(8))).rejects.toThrow(
      /watermark/,
    );

    // The database's immutability guard (HA003) holds for imported rows like any other.
    await expect(
      sql(
        target,
        `UPDATE validator_duties SET message_hash = $1 WHERE slot = 100 AND block_index_within_checkpoint = 0 AND validator_address = $2`,
        [hash(7), VALIDATOR],
      ),
    ).rejects.toMatchObject({ code: 'HA003' });
  });

  it('a duty signed here over another hash is a conflict: reported, not applied; the rest is merged', async () => {
    const source = await databaseWithHistory('hist_src2');
    const document = (await exportHistory(await connect(source), 'test')).document;
    const target = await boundDatabase('hist_conflict');
    const { signer } = await startSigner(target, { nodeId: 'here' });
    await signer.signWithProtection(VALIDATOR, hash(5), blockProposal(100), async () => fakeSignature(5)); // another block at slot 100
    await signer.signWithProtection(VALIDATOR, hash(3), attestation(101), async () => fakeSignature(3)); // the same attestation

    const dryRun = await importHistory(await connect(target), document, { dryRun: true });
    expect(dryRun).toMatchObject({ dryRun: true, inserted: 2, alreadyPresent: 1 });
    expect(await sql(target, 'SELECT count(*)::int AS n FROM validator_duties')).toEqual([{ n: 2 }]); // dry run changed nothing
    expect(await sql(target, 'SELECT count(*)::int AS n FROM ha_signer_watermarks')).toEqual([{ n: 0 }]);

    const report = await importHistory(await connect(target), document);
    expect(report.inserted).toBe(2);
    expect(report.alreadyPresent).toBe(1);
    expect(report.conflicts).toEqual([
      expect.objectContaining({
        validator: VALIDATOR,
        slot: '100',
        dutyType: 'BLOCK_PROPOSAL',
        blockIndexWithinCheckpoint: 0,
        importedMessageHash: hash(1),
        existingMessageHash: hash(5),
        existingStatus: 'signed',
      }),
    ]);
    const [kept] = await sql(
      target,
      `SELECT message_hash, signature, node_id FROM validator_duties WHERE slot = 100 AND block_index_within_checkpoint = 0 AND validator_address = $1`,
      [VALIDATOR],
    );
    expect(kept).toEqual({ message_hash: hash(5), signature: fakeSignature(5), node_id: 'here' });
  });

  it('a duty being signed here during the import is a conflict, left to its holder', async () => {
    const source = await databaseWithHistory('hist_src4');
    const document = (await exportHistory(await connect(source), 'test')).document;
    const target = await boundDatabase('hist_inflight');
    const { signer } = await startSigner(target, { nodeId: 'busy' });
    const gate = gatedSignFn(() => fakeSignature(3));
    const signing = signer.signWithProtection(VALIDATOR, hash(3), attestation(101), gate.signFn);
    await gate.entered;
    const report = await importHistory(await connect(target), document);
    expect(report.inserted).toBe(3);
    expect(report.conflicts).toEqual([
      expect.objectContaining({ slot: '101', dutyType: 'ATTESTATION', existingStatus: 'signing', existingMessageHash: hash(3) }),
    ]);
    gate.release();
    await expect(signing).resolves.toBe(fakeSignature(3)); // the holder records its own signature as usual
  });

  it('is atomic: a failure part-way leaves no duty and no watermark behind', async () => {
    const source = await databaseWithHistory('hist_src5');
    const document = (await exportHistory(await connect(source), 'test')).document;
    const target = await boundDatabase('hist_atomic');
    // A failure the import cannot foresee, on its last duty (slot 101), after its watermark and other duties went in.
    await sql(
      target,
      `CREATE FUNCTION test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.slot = 101 THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$;
       CREATE TRIGGER test_fail BEFORE INSERT ON validator_duties FOR EACH ROW EXECUTE FUNCTION test_fail();`,
    );
    await expect(importHistory(await connect(target), document)).rejects.toThrow('injected failure');
    expect(
      await sql(
        target,
        'SELECT (SELECT count(*) FROM validator_duties)::int AS duties, (SELECT count(*) FROM ha_signer_watermarks)::int AS marks',
      ),
    ).toEqual([{ duties: 0, marks: 0 }]);
  });

  it('a watermark is never lowered: not by raise, not by import, not by SQL', async () => {
    const url = await boundDatabase('hist_wm');
    const client = await connect(url);
    expect(await raiseWatermark(client, VALIDATOR, 100)).toMatchObject({ previous: null, lowWatermarkSlot: '100', raised: true });
    expect(await raiseWatermark(client, VALIDATOR, 40)).toMatchObject({ previous: '100', lowWatermarkSlot: '100', raised: false });
    expect(await raiseWatermark(client, VALIDATOR.toUpperCase().replace('0X', '0x'), 150)).toMatchObject({
      previous: '100',
      lowWatermarkSlot: '150',
      raised: true,
    });

    // An imported document with a lower watermark, and a duty below this database's watermark: neither lowers nor reopens.
    const document = parseHistoryDocument({
      metadata: {
        format: 'ha-signer-slashing-protection-interchange',
        interchangeFormatVersion: 1,
        rollupAddress: ROLLUP,
        exportedAt: new Date().toISOString(),
      },
      data: [
        {
          validator: VALIDATOR,
          lowWatermarkSlot: '10',
          signedDuties: [
            {
              slot: '120',
              dutyType: 'ATTESTATION',
              blockIndexWithinCheckpoint: -1,
              blockNumber: '7',
              messageHash: hash(1),
              signature: fakeSignature(1),
            },
          ],
        },
      ],
    });
    expect(await importHistory(client, document)).toMatchObject({ inserted: 0, belowWatermark: 1, watermarksRaised: [], conflicts: [] });
    expect(await sql(url, 'SELECT low_slot::text AS low FROM ha_signer_watermarks')).toEqual([{ low: '150' }]);
    await expect(sql(url, 'UPDATE ha_signer_watermarks SET low_slot = 1')).rejects.toMatchObject({ code: 'HA002' });
    await expect(sql(url, 'DELETE FROM ha_signer_watermarks')).rejects.toMatchObject({ code: 'HA002' });

    // The raised watermark refuses signing at or below it.
    const { signer } = await startSigner(url);
    await expect(signer.signWithProtection(VALIDATOR, hash(2), attestation(150), async () => fakeSignature(2))).rejects.toThrow(
      /watermark/,
    );
    await expect(signer.signWithProtection(VALIDATOR, hash(2), attestation(151), async () => fakeSignature(2))).resolves.toBe(
      fakeSignature(2),
    );
  });

  it('refuses a database bound to another rollup, or to none, and writes nothing', async () => {
    const source = await databaseWithHistory('hist_src3');
    const document = (await exportHistory(await connect(source), 'test')).document;
    const other = await boundDatabase('hist_other', OTHER_ROLLUP);
    await expect(importHistory(await connect(other), document)).rejects.toThrow(HistoryRefusedError);
    await expect(importHistory(await connect(other), document)).rejects.toThrow(`bound to rollup ${OTHER_ROLLUP}`);
    expect(
      await sql(
        other,
        'SELECT (SELECT count(*) FROM validator_duties)::int AS duties, (SELECT count(*) FROM ha_signer_watermarks)::int AS marks',
      ),
    ).toEqual([{ duties: 0, marks: 0 }]);

    const unbound = await createTestDatabase('hist_unbound');
    await runMigrations({ databaseUrl: unbound, direction: 'up' });
    await expect(importHistory(await connect(unbound), document)).rejects.toThrow(/bound to no rollup/);
    await expect(raiseWatermark(await connect(unbound), VALIDATOR, 5)).rejects.toThrow(/bound to no rollup/);
  });

  it('refuses malformed documents naming the field', () => {
    const good = {
      metadata: { format: 'ha-signer-slashing-protection-interchange', interchangeFormatVersion: 1, rollupAddress: ROLLUP, exportedAt: '' },
      data: [
        {
          validator: VALIDATOR,
          lowWatermarkSlot: null,
          signedDuties: [
            {
              slot: '1',
              dutyType: 'ATTESTATION',
              blockIndexWithinCheckpoint: -1,
              blockNumber: '1',
              messageHash: hash(1),
              signature: fakeSignature(1),
            },
          ],
        },
      ],
    };
    expect(() => parseHistoryDocument(good)).not.toThrow();
    const broken = (path: (d: typeof good) => void) => {
      const copy = structuredClone(good);
      path(copy);
      return () => parseHistoryDocument(copy);
    };
    expect(broken((d) => (d.metadata.interchangeFormatVersion = 2))).toThrow(/metadata.interchangeFormatVersion/);
    expect(broken((d) => (d.data[0]!.signedDuties[0]!.slot = '-1'))).toThrow(/data\[0\].signedDuties\[0\].slot/);
    expect(broken((d) => (d.data[0]!.signedDuties[0]!.signature = '0x12'))).toThrow(/signedDuties\[0\].signature/);
    expect(broken((d) => (d.data[0]!.signedDuties[0]!.dutyType = 'NAP'))).toThrow(/dutyType/);
    expect(broken((d) => d.data[0]!.signedDuties.push({ ...d.data[0]!.signedDuties[0]!, messageHash: hash(2) }))).toThrow(
      /appears twice with different message hashes/,
    );
    expect(broken((d) => (d.metadata.rollupAddress = 'rollup'))).toThrow(HistoryDocumentError);
  });
});

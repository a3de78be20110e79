/**
 * Pruning a backlog in paced batches: the watermark raise commits first (the protective half), then each batch of
 * deletes is a transaction of its own, so signing commits interleave with short ones instead of waiting behind one
 * long delete (and a synchronous standby never has to flush one huge transaction).
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { SlashingProtectionError } from '../../src/protection/index.js';
import { VALIDATOR, attestation, fakeSignature, hash, migratedDatabase, sql, startSigner, stopAllSigners } from '../support/protection.js';

afterEach(stopAllSigners);

/** Signs the slots, then backdates the given ones by two hours (a test fixture: bypasses the immutability trigger). */
async function historyWithOldSlots(slots: number[], oldUpTo: number): Promise<string> {
  const url = await migratedDatabase();
  const { signer } = await startSigner(url, { nodeId: 'writer' });
  for (const slot of slots) await signer.signWithProtection(VALIDATOR, hash(slot), attestation(slot), async () => fakeSignature(slot));
  await sql(
    url,
    `SET session_replication_role = replica;
     UPDATE validator_duties SET started_at = started_at - interval '2 hours', completed_at = completed_at - interval '2 hours'
     WHERE slot <= ${oldUpTo}`,
  );
  // Which transaction deleted how many rows: a statement-level trigger with the deleted rows as a transition table.
  await sql(
    url,
    `CREATE TABLE prune_log (txid BIGINT, deleted INT);
     CREATE FUNCTION log_prune() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN INSERT INTO prune_log SELECT txid_current(), count(*) FROM gone; RETURN NULL; END $$;
     CREATE TRIGGER log_prune AFTER DELETE ON validator_duties REFERENCING OLD TABLE AS gone
       FOR EACH STATEMENT EXECUTE FUNCTION log_prune();`,
  );
  return url;
}

describe('pruning in batches', () => {
  it('raises the watermark in its own, earlier transaction, then deletes a batch per transaction', async () => {
    const url = await historyWithOldSlots([1, 2, 3, 4, 5, 9], 5);
    const { db } = await startSigner(url, { nodeId: 'pruner' });

    expect(await db.cleanupOldDuties(3_600_000, { batchRows: 2 })).toBe(5);

    const batches = await sql<{ txid: string; deleted: number }>(
      url,
      'SELECT txid, deleted FROM prune_log WHERE deleted > 0 ORDER BY txid',
    );
    expect(batches.map((b) => b.deleted)).toEqual([2, 2, 1]);
    expect(new Set(batches.map((b) => b.txid)).size).toBe(3);
    const [mark] = await sql<{ low_slot: string; raised_by: string }>(
      url,
      'SELECT low_slot, xmin::text::bigint AS raised_by FROM ha_signer_watermarks',
    );
    expect(mark?.low_slot).toBe('5');
    expect(BigInt(mark!.raised_by)).toBeLessThan(BigInt(batches[0]!.txid));
    expect((await sql(url, 'SELECT slot FROM validator_duties')).map((r) => r.slot)).toEqual(['9']);
  });

  it('an aborted round keeps what it deleted; the raised watermark already refuses every old slot; the next round finishes', async () => {
    const url = await historyWithOldSlots([1, 2, 3, 4, 9], 4);
    const { db, signer } = await startSigner(url, { nodeId: 'pruner' });
    const stopped = new AbortController();
    stopped.abort();

    expect(await db.cleanupOldDuties(3_600_000, { batchRows: 2, signal: stopped.signal })).toBe(0);
    expect(await sql(url, 'SELECT low_slot FROM ha_signer_watermarks')).toEqual([{ low_slot: '4' }]);
    const attempt = signer.signWithProtection(VALIDATOR, hash(103), attestation(3), async () => fakeSignature(3));
    await expect(attempt).rejects.toBeInstanceOf(SlashingProtectionError);

    expect(await db.cleanupOldDuties(3_600_000, { batchRows: 2 })).toBe(4);
    expect((await sql(url, 'SELECT slot FROM validator_duties')).map((r) => r.slot)).toEqual(['9']);
  });

  it('pruning sends no notifications; completing and releasing an in-progress duty still do', async () => {
    const url = await historyWithOldSlots([1, 2, 3, 9], 3);
    const listener = new pg.Client({ connectionString: url });
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (n) => heard.push(n.payload ?? ''));
    await listener.query('LISTEN ha_signer_duty');
    try {
      const { db, signer } = await startSigner(url, { nodeId: 'pruner' });
      expect(await db.cleanupOldDuties(3_600_000)).toBe(3);
      // A completed claim (signing -> signed) and a released one (signing, deleted after the sign function failed).
      await signer.signWithProtection(VALIDATOR, hash(10), attestation(10), async () => fakeSignature(10));
      await expect(
        signer.signWithProtection(VALIDATOR, hash(11), attestation(11), async () => Promise.reject(new Error('key backend down'))),
      ).rejects.toThrow('key backend down');
      await listener.query('SELECT 1'); // notifications of committed transactions arrive before this answer
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(heard.filter((p) => /\/(1|2|3)\/ATTESTATION\//.test(p))).toEqual([]);
      expect(heard.filter((p) => /\/10\/ATTESTATION\//.test(p))).toHaveLength(1);
      expect(heard.filter((p) => /\/11\/ATTESTATION\//.test(p))).toHaveLength(1);
    } finally {
      await listener.end();
    }
  });
});

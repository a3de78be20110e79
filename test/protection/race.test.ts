/**
 * Races between signers in separate OS processes (each with its own pool), with Aztec's published package among
 * them, and a holder killed between lock and record.
 */
import { createHASigner as createAztecHASigner } from '@aztec/validator-ha-signer/factory';
import { afterEach, describe, expect, it } from 'vitest';
import { killAllProcesses, spawnJsonLines } from '../support/processes.js';
import {
  OTHER_ROLLUP,
  ROLLUP,
  VALIDATOR,
  attestation,
  fakeSignature,
  hash,
  migratedDatabase,
  sql,
  startSigner,
  stopAllSigners,
} from '../support/protection.js';

const WORKER = new URL('./fixtures/race-worker.ts', import.meta.url).pathname;

afterEach(async () => {
  killAllProcesses();
  await stopAllSigners();
});

type Released = { released: number; messageHash: string; nodeId: string };

function expectOneReleasePerSignedDuty(released: Released[], rows: { slot: string; message_hash: string; status: string }[]): void {
  const bySlot = new Map<number, Released[]>();
  for (const r of released) bySlot.set(r.released, [...(bySlot.get(r.released) ?? []), r]);
  for (const [slot, releases] of bySlot) expect(releases, `slot ${slot} released ${releases.length} times`).toHaveLength(1);
  const signed = rows.filter((row) => row.status === 'signed');
  expect(signed.length).toBe(released.length);
  for (const row of signed) expect(bySlot.get(Number(row.slot))?.[0]?.messageHash).toBe(row.message_hash);
}

describe('races across processes', () => {
  it('3 processes hammering the same 200 duties release exactly one signature per duty, never two hashes', async () => {
    const url = await migratedDatabase('race');
    const env = { RACE_DATABASE_URL: url, RACE_VALIDATOR: VALIDATOR, RACE_ROLLUP: ROLLUP, RACE_DUTIES: '200', RACE_CONCURRENCY: '16' };
    const workers = ['p1', 'p2', 'p3'].map((nodeId) => spawnJsonLines(WORKER, { ...env, RACE_NODE_ID: nodeId }));
    const codes = await Promise.all(workers.map((w) => w.exited));
    expect(codes, workers.map((w) => w.stderr()).join('\n')).toEqual([0, 0, 0]);
    const released = workers.flatMap((w) => w.lines.filter((l): l is Released => 'released' in l));
    const rows = await sql<{ slot: string; message_hash: string; status: string }>(
      url,
      'SELECT slot, message_hash, status FROM validator_duties',
    );
    expectOneReleasePerSignedDuty(released, rows);
    // Injected failures release duties for retry; almost every duty ends signed.
    expect(rows.filter((row) => row.status === 'signed').length).toBeGreaterThan(190);
    expect(rows.filter((row) => row.status === 'signing')).toEqual([]);
  });

  it('a process killed between lock and record is taken over by another node after its lease', async () => {
    const url = await migratedDatabase('kill');
    const holder = spawnJsonLines(WORKER, {
      RACE_DATABASE_URL: url,
      RACE_VALIDATOR: VALIDATOR,
      RACE_ROLLUP: ROLLUP,
      RACE_NODE_ID: 'doomed',
      RACE_MODE: 'hang',
      RACE_FIRST_SLOT: '7',
      RACE_LEASE_MS: '1500',
    });
    await holder.waitFor((line) => line.claimed === 7);
    holder.child.kill('SIGKILL');
    await holder.exited;
    const [before] = await sql(url, 'SELECT status, node_id FROM validator_duties');
    expect(before).toEqual({ status: 'signing', node_id: 'doomed' });

    const survivor = await startSigner(url, { nodeId: 'survivor', maxStuckDutiesAgeMs: 1_500, signingTimeoutMs: 5_000 });
    const startedAt = Date.now();
    await expect(survivor.signer.signWithProtection(VALIDATOR, hash(7), attestation(7), async () => fakeSignature(7))).resolves.toBe(
      fakeSignature(7),
    );
    const [after] = await sql(url, 'SELECT status, node_id, takeovers, message_hash FROM validator_duties');
    expect(after).toEqual({ status: 'signed', node_id: 'survivor', takeovers: 1, message_hash: hash(7) });
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });
});

const aztecConfig = (databaseUrl: string, nodeId: string, rollup = ROLLUP) => ({
  databaseUrl,
  haSigningEnabled: true,
  nodeId,
  pollingIntervalMs: 20,
  signingTimeoutMs: 5_000,
  maxStuckDutiesAgeMs: 144_000,
  l1Contracts: { rollupAddress: { toString: () => rollup } },
});

describe("interoperability with Aztec's published @aztec/validator-ha-signer", () => {
  it('serves a database migrated by ha-signer: initialize, start, sign, and mutual exclusion both ways', async () => {
    const url = await migratedDatabase('aztec');
    const { signer: aztec } = await createAztecHASigner(aztecConfig(url, 'aztec-node') as never);
    await aztec.start();
    const ours = await startSigner(url, { nodeId: 'ours' });
    try {
      const v = { toString: () => VALIDATOR };
      await expect(
        aztec.signWithProtection(
          v as never,
          { toString: () => hash(1) } as never,
          attestation(1) as never,
          async () => fakeSignature(1) as never,
        ),
      ).resolves.toBe(fakeSignature(1));
      await expect(ours.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(9))).rejects.toMatchObject({
        name: 'DutyAlreadySignedError',
        signedByNode: 'aztec-node',
      });
      await expect(ours.signer.signWithProtection(VALIDATOR, hash(2), attestation(1), async () => fakeSignature(9))).rejects.toMatchObject({
        name: 'SlashingProtectionError',
      });

      await ours.signer.signWithProtection(VALIDATOR, hash(3), attestation(2), async () => fakeSignature(3));
      await expect(
        aztec.signWithProtection(
          v as never,
          { toString: () => hash(3) } as never,
          attestation(2) as never,
          async () => fakeSignature(9) as never,
        ),
      ).rejects.toMatchObject({ name: 'DutyAlreadySignedError' });
      await expect(
        aztec.signWithProtection(
          v as never,
          { toString: () => hash(4) } as never,
          attestation(2) as never,
          async () => fakeSignature(9) as never,
        ),
      ).rejects.toMatchObject({ name: 'SlashingProtectionError' });
      // Their failure path releases; our waiter, woken by the database's notification, then signs.
      await expect(
        aztec.signWithProtection(v as never, { toString: () => hash(5) } as never, attestation(3) as never, async () =>
          Promise.reject(new Error('boom')),
        ),
      ).rejects.toThrow('boom');
      await expect(ours.signer.signWithProtection(VALIDATOR, hash(6), attestation(3), async () => fakeSignature(6))).resolves.toBe(
        fakeSignature(6),
      );
    } finally {
      await aztec.stop();
    }
  });

  it('races Aztec nodes and ours on the same duties: one release per duty, never two hashes', async () => {
    const url = await migratedDatabase('aztecrace');
    const env = { RACE_DATABASE_URL: url, RACE_VALIDATOR: VALIDATOR, RACE_ROLLUP: ROLLUP, RACE_DUTIES: '120', RACE_CONCURRENCY: '8' };
    const workers = ['ours-1', 'ours-2'].map((nodeId) => spawnJsonLines(WORKER, { ...env, RACE_NODE_ID: nodeId }));
    const { signer: aztec } = await createAztecHASigner(aztecConfig(url, 'aztec-node') as never);
    await aztec.start();
    const aztecReleased: Released[] = [];
    let next = 0;
    const aztecWorker = async (): Promise<void> => {
      while (next < 120) {
        const slot = 1 + next++;
        const messageHash = `0x${slot.toString(16).padStart(32, '0')}${'aa'.repeat(16)}`;
        try {
          await aztec.signWithProtection(
            { toString: () => VALIDATOR } as never,
            { toString: () => messageHash } as never,
            { dutyType: 'BLOCK_PROPOSAL', slot: BigInt(slot), blockNumber: 1n, blockIndexWithinCheckpoint: 0 } as never,
            async () => `0x${messageHash.slice(2)}${'00'.repeat(32)}1c` as never,
          );
          aztecReleased.push({ released: slot, messageHash, nodeId: 'aztec-node' });
        } catch {
          // DutyAlreadySigned / SlashingProtection: expected.
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: 8 }, aztecWorker));
      const codes = await Promise.all(workers.map((w) => w.exited));
      expect(codes, workers.map((w) => w.stderr()).join('\n')).toEqual([0, 0]);
    } finally {
      await aztec.stop();
    }
    const released = [...aztecReleased, ...workers.flatMap((w) => w.lines.filter((l): l is Released => 'released' in l))];
    const rows = await sql<{ slot: string; message_hash: string; status: string }>(
      url,
      'SELECT slot, message_hash, status FROM validator_duties',
    );
    expectOneReleasePerSignedDuty(released, rows);
    expect(aztecReleased.length).toBeGreaterThan(0);
  });

  it('never takes over a stuck Aztec-held duty with a different hash; with the same hash it may', async () => {
    const url = await migratedDatabase('aztecstuck');
    const { signer: aztec } = await createAztecHASigner(aztecConfig(url, 'aztec-node') as never);
    await aztec.start();
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const v = { toString: () => VALIDATOR };
    const hung = aztec.signWithProtection(v as never, { toString: () => hash(1) } as never, attestation(1) as never, () => {
      entered();
      return new Promise<never>(() => {});
    });
    void hung.catch(() => {});
    await inside;
    // Age the Aztec claim far past any lease (fixture: bypass our immutability trigger).
    await sql(url, `SET session_replication_role = replica; UPDATE validator_duties SET started_at = started_at - interval '1 hour'`);
    const ours = await startSigner(url, { nodeId: 'ours', maxStuckDutiesAgeMs: 1_000, signingTimeoutMs: 400 });
    await expect(ours.signer.signWithProtection(VALIDATOR, hash(2), attestation(1), async () => fakeSignature(2))).rejects.toMatchObject({
      name: 'DutyInProgressError',
      holderNodeId: 'aztec-node',
    });
    // The database refuses such a takeover even from a client that tries it directly.
    await expect(sql(url, `UPDATE validator_duties SET message_hash = $1, lock_token = 'x'`, [hash(2)])).rejects.toMatchObject({
      code: 'HA004',
    });
    await expect(ours.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(1))).resolves.toBe(
      fakeSignature(1),
    );
    const [row] = await sql(url, 'SELECT status, node_id, message_hash FROM validator_duties');
    expect(row).toEqual({ status: 'signed', node_id: 'ours', message_hash: hash(1) });
    await aztec.stop().catch(() => {});
  });

  it('a misconfigured Aztec node (another rollup) cannot wipe the bound rollup at its startup', async () => {
    const url = await migratedDatabase('aztecwipe');
    const ours = await startSigner(url);
    await ours.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(1));
    const { signer: misconfigured } = await createAztecHASigner(aztecConfig(url, 'wrong', OTHER_ROLLUP) as never);
    await expect(misconfigured.start()).rejects.toThrow(/refusing to delete signed duty/);
    await misconfigured.stop().catch(() => {});
    expect(await sql(url, 'SELECT count(*)::int AS n FROM validator_duties')).toEqual([{ n: 1 }]);
  });
});

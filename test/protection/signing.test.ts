/** The package's documented behaviour and rules 1, 2, 5 and 6, on a real PostgreSQL. */
import { afterEach, describe, expect, it } from 'vitest';
import {
  DatabaseUnavailableError,
  DutyAlreadySignedError,
  InvalidDutyInputError,
  SchemaVersionError,
  SigningLockLostError,
  SigningTimeoutError,
  SlashingProtectionError,
  HA_SIGNER_SCHEMA_VERSION,
  SignerStoppedError,
  createHASigner,
  parseDuty,
  runMigrations,
} from '../../src/protection/index.js';
import { createTestDatabase } from '../support/postgres.js';
import {
  ROLLUP,
  VALIDATOR,
  attestation,
  gatedSignFn,
  blockProposal,
  fakeSignature,
  hash,
  migratedDatabase,
  sql,
  startSigner,
  stopAllSigners,
} from '../support/protection.js';

afterEach(stopAllSigners);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('signWithProtection', () => {
  it('signs once; the same hash gets DutyAlreadySignedError with the signature, another hash SlashingProtectionError', async () => {
    const url = await migratedDatabase('p', 2);
    const a = await startSigner(url, { nodeId: 'a' });
    const b = await startSigner(url, { nodeId: 'b' });
    const signed = await a.signer.signWithProtection(VALIDATOR, hash(1), blockProposal(100), async () => fakeSignature(1));
    expect(signed).toBe(fakeSignature(1));

    const again = b.signer.signWithProtection(VALIDATOR, hash(1), blockProposal(100), async () => fakeSignature(2));
    await expect(again).rejects.toBeInstanceOf(DutyAlreadySignedError);
    await expect(again).rejects.toMatchObject({
      slot: 100n,
      dutyType: 'BLOCK_PROPOSAL',
      blockIndexWithinCheckpoint: 0,
      signedByNode: 'a',
      signature: fakeSignature(1),
    });

    const conflicting = b.signer.signWithProtection(VALIDATOR, hash(2), blockProposal(100), async () => fakeSignature(3));
    await expect(conflicting).rejects.toBeInstanceOf(SlashingProtectionError);
    await expect(conflicting).rejects.toMatchObject({
      existingMessageHash: hash(1),
      attemptedMessageHash: hash(2),
      signedByNode: 'a',
      blockIndexWithinCheckpoint: 0,
    });

    // Another block index of the same slot is another duty.
    await expect(b.signer.signWithProtection(VALIDATOR, hash(2), blockProposal(100, 1), async () => fakeSignature(4))).resolves.toBe(
      fakeSignature(4),
    );
    const rows = await sql(
      url,
      'SELECT block_index_within_checkpoint, status, signature, node_id, checkpoint_number FROM validator_duties ORDER BY 1',
    );
    expect(rows).toEqual([
      { block_index_within_checkpoint: 0, status: 'signed', signature: fakeSignature(1), node_id: 'a', checkpoint_number: '0' },
      { block_index_within_checkpoint: 1, status: 'signed', signature: fakeSignature(4), node_id: 'b', checkpoint_number: '0' },
    ]);
  });

  it('returns exactly what signFn returned, accepts toString() objects, and stores checkpointNumber and -1 block index', async () => {
    const url = await migratedDatabase('p', 2);
    const { signer } = await startSigner(url);
    class Signature {
      constructor(private readonly hex: string) {}
      toString(): string {
        return this.hex;
      }
    }
    const returned = new Signature(fakeSignature(9));
    const result = await signer.signWithProtection(
      { toString: () => VALIDATOR },
      { toString: () => hash(9) },
      { ...attestation(5), checkpointNumber: 42n },
      async () => returned,
    );
    expect(result).toBe(returned);
    const [row] = await sql(url, 'SELECT block_index_within_checkpoint, checkpoint_number, block_number FROM validator_duties');
    expect(row).toEqual({ block_index_within_checkpoint: -1, checkpoint_number: '42', block_number: '7' });
  });

  it('lets AUTH_REQUEST and TXS bypass protection', async () => {
    const url = await migratedDatabase();
    const { signer } = await startSigner(url);
    for (const dutyType of ['AUTH_REQUEST', 'TXS'] as const) {
      await signer.signWithProtection(VALIDATOR, hash(1), { dutyType, slot: 1n }, async () => fakeSignature(1));
      await signer.signWithProtection(VALIDATOR, hash(2), { dutyType, slot: 1n }, async () => fakeSignature(2));
    }
    expect(await sql(url, 'SELECT * FROM validator_duties')).toHaveLength(0);
  });

  it('releases the duty when signFn fails or times out, so another node can sign it', async () => {
    const url = await migratedDatabase();
    const a = await startSigner(url, { nodeId: 'a', signingOperationTimeoutMs: 200 });
    const b = await startSigner(url, { nodeId: 'b' });
    await expect(
      a.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => Promise.reject(new Error('hsm offline'))),
    ).rejects.toThrow('hsm offline');
    await expect(b.signer.signWithProtection(VALIDATOR, hash(2), attestation(1), async () => fakeSignature(2))).resolves.toBe(
      fakeSignature(2),
    );

    const hanging = a.signer.signWithProtection(VALIDATOR, hash(1), attestation(2), () => new Promise<string>(() => {}));
    await expect(hanging).rejects.toBeInstanceOf(SigningTimeoutError);
    await expect(b.signer.signWithProtection(VALIDATOR, hash(1), attestation(2), async () => fakeSignature(3))).resolves.toBe(
      fakeSignature(3),
    );
  });

  it('refuses a malformed signature from signFn and releases the duty', async () => {
    const url = await migratedDatabase();
    const { signer } = await startSigner(url);
    await expect(signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => '0xdeadbeef')).rejects.toThrow(/^signature: /);
    expect(await sql(url, 'SELECT * FROM validator_duties')).toHaveLength(0);
  });

  it('rejects malformed input before touching the database', async () => {
    const url = await migratedDatabase();
    const { signer } = await startSigner(url);
    let called = false;
    const signFn = async () => {
      called = true;
      return fakeSignature(1);
    };
    await expect(signer.signWithProtection('0x1234', hash(1), attestation(1), signFn)).rejects.toBeInstanceOf(InvalidDutyInputError);
    await expect(signer.signWithProtection(VALIDATOR, '0x12', attestation(1), signFn)).rejects.toThrow(/^messageHash: /);
    await expect(signer.signWithProtection(VALIDATOR, hash(1), { dutyType: 'BLOCK_PROPOSAL', slot: 1n }, signFn)).rejects.toThrow(
      /blockIndexWithinCheckpoint/,
    );
    await expect(signer.signWithProtection(VALIDATOR, hash(1), { dutyType: 'NOPE' as never, slot: 1n }, signFn)).rejects.toThrow(
      /^context.dutyType: /,
    );
    expect(called).toBe(false);
    expect(await sql(url, 'SELECT * FROM validator_duties')).toHaveLength(0);
  });
});

describe('signDuty: the typed entry point (validated once at the edge)', () => {
  it('signs a parsed duty; signFn gets the normalized hash; the signature is normalized once for the record', async () => {
    const url = await migratedDatabase();
    const a = await startSigner(url, { nodeId: 'a' });
    const duty = parseDuty(VALIDATOR.toUpperCase().replace('0X', '0x'), hash(10).toUpperCase().replace('0X', '0x'), blockProposal(10, 1));
    const returned = fakeSignature(10).toUpperCase().replace('0X', '0x');
    let seen: string | undefined;
    await expect(
      a.signer.signDuty(duty, async (messageHash) => {
        seen = messageHash;
        return returned;
      }),
    ).resolves.toBe(returned);
    expect(seen).toBe(hash(10));
    expect(
      await sql(url, 'SELECT validator_address, message_hash, signature, block_index_within_checkpoint FROM validator_duties'),
    ).toEqual([{ validator_address: VALIDATOR, message_hash: hash(10), signature: fakeSignature(10), block_index_within_checkpoint: 1 }]);
    // The positional adapter takes the same path: the same duty is already signed.
    await expect(
      a.signer.signWithProtection(VALIDATOR, hash(10), blockProposal(10, 1), async () => fakeSignature(11)),
    ).rejects.toMatchObject({
      name: 'DutyAlreadySignedError',
      signature: fakeSignature(10),
    });
    await a.signer.stop();
    await expect(a.signer.signDuty(parseDuty(VALIDATOR, hash(12), attestation(12)), async () => fakeSignature(12))).rejects.toBeInstanceOf(
      SignerStoppedError,
    );
  });
});

describe('rule 1: a signature is released only after its signed record is durable under our token', () => {
  it('withholds the signature with SigningLockLostError when the record no longer holds our token', async () => {
    const url = await migratedDatabase();
    const { signer } = await startSigner(url);
    const attempt = signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => {
      // Another actor (cleanup, a takeover) replaced our claim while we were signing.
      await sql(url, `UPDATE validator_duties SET lock_token = 'someone-else'`);
      return fakeSignature(1);
    });
    await expect(attempt).rejects.toBeInstanceOf(SigningLockLostError);
    const [row] = await sql(url, 'SELECT status, signature FROM validator_duties');
    expect(row).toEqual({ status: 'signing', signature: null });
  });

  it('withholds the signature when the duty row was deleted during signing', async () => {
    const url = await migratedDatabase();
    const { signer } = await startSigner(url);
    const attempt = signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => {
      await sql(url, 'DELETE FROM validator_duties');
      return fakeSignature(1);
    });
    await expect(attempt).rejects.toBeInstanceOf(SigningLockLostError);
  });

  it('withholds the signature when the record cannot be written (database gone)', async () => {
    const url = await migratedDatabase();
    const { signer } = await startSigner(url);
    const attempt = signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => {
      // Kill every connection of this database, including the pool's.
      await sql(
        url,
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
      );
      await sql(url, `ALTER TABLE validator_duties RENAME TO validator_duties_gone`);
      return fakeSignature(1);
    });
    await expect(attempt).rejects.toThrow();
    await sql(url, `ALTER TABLE validator_duties_gone RENAME TO validator_duties`);
    const [row] = await sql(url, 'SELECT status FROM validator_duties');
    expect(row?.status).toBe('signing');
  });
});

describe('rule 2: leases in database time let any node take over a dead holder', () => {
  it('takes over an expired lease; the old holder then loses its lock and withholds its signature', async () => {
    const url = await migratedDatabase();
    const a = await startSigner(url, { nodeId: 'a', maxStuckDutiesAgeMs: 1_000, signingOperationTimeoutMs: 10_000 });
    const b = await startSigner(url, { nodeId: 'b', maxStuckDutiesAgeMs: 1_000, signingTimeoutMs: 200 });
    const holder = gatedSignFn(() => fakeSignature(1));
    const releaseA = holder.release;
    // The lease is 1 s, so a's signing timeout is clamped to 500 ms: a gives up and releases first.
    const aAttempt = a.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), holder.signFn);
    await holder.entered;
    await expect(aAttempt).rejects.toBeInstanceOf(SigningTimeoutError);
    releaseA();
    await expect(b.signer.signWithProtection(VALIDATOR, hash(2), attestation(1), async () => fakeSignature(2))).resolves.toBe(
      fakeSignature(2),
    );
  });

  it('a stalled holder whose lease lapsed (timers beyond our control) cannot record after a takeover', async () => {
    const url = await migratedDatabase();
    const a = await startSigner(url, { nodeId: 'a', maxStuckDutiesAgeMs: 60_000 });
    const b = await startSigner(url, { nodeId: 'b', maxStuckDutiesAgeMs: 60_000, signingTimeoutMs: 5_000 });
    let bResult: Promise<string> | undefined;
    const aAttempt = a.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => {
      // Simulate a holder frozen past its lease: expire it in database time, let b take over and sign different data.
      await sql(url, `UPDATE validator_duties SET lease_expires_at = now() - interval '1 second'`);
      bResult = b.signer.signWithProtection(VALIDATOR, hash(2), attestation(1), async () => fakeSignature(2));
      await bResult;
      return fakeSignature(1);
    });
    await expect(aAttempt).rejects.toBeInstanceOf(SigningLockLostError);
    await expect(bResult).resolves.toBe(fakeSignature(2));
    const [row] = await sql(url, 'SELECT status, message_hash, node_id, takeovers FROM validator_duties');
    expect(row).toEqual({ status: 'signed', message_hash: hash(2), node_id: 'b', takeovers: 1 });
  });

  it('never takes over a live lease: waiters time out with DutyInProgressError (a DutyAlreadySignedError) instead', async () => {
    const url = await migratedDatabase();
    const a = await startSigner(url, { nodeId: 'a' });
    const b = await startSigner(url, { nodeId: 'b', signingTimeoutMs: 300 });
    const holder = gatedSignFn(() => fakeSignature(1));
    const release = holder.release;
    const aAttempt = a.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), holder.signFn);
    await holder.entered;
    const waiter = b.signer.signWithProtection(VALIDATOR, hash(2), attestation(1), async () => fakeSignature(2));
    await expect(waiter).rejects.toBeInstanceOf(DutyAlreadySignedError);
    await expect(waiter).rejects.toMatchObject({ name: 'DutyInProgressError', holderNodeId: 'a', signedByNode: 'unknown (timeout)' });
    release();
    await expect(aAttempt).resolves.toBe(fakeSignature(1));
  });
});

describe('rule 5: waiters are woken by LISTEN/NOTIFY, not by polling', () => {
  it('a waiter with a 10 s polling interval learns the outcome within milliseconds of the record', async () => {
    const url = await migratedDatabase();
    const a = await startSigner(url, { nodeId: 'a' });
    const b = await startSigner(url, { nodeId: 'b', pollingIntervalMs: 10_000, signingTimeoutMs: 20_000 });
    const holder = gatedSignFn(() => fakeSignature(1));
    const release = holder.release;
    const aAttempt = a.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), holder.signFn);
    await holder.entered;
    let learnedAt = 0;
    const bAttempt = b.signer
      .signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(2))
      .catch((error: unknown) => {
        learnedAt = performance.now();
        return error;
      });
    await sleep(300);
    release();
    await aAttempt;
    const recordedAt = performance.now();
    const outcome = await bAttempt;
    expect(outcome).toBeInstanceOf(DutyAlreadySignedError);
    // Polling would take up to 1 s (the safety-net recheck); a notification arrives in a few ms.
    expect(learnedAt - recordedAt).toBeLessThan(500);
  });

  it('a waiter takes the duty over at once when the holder releases it after a failure', async () => {
    const url = await migratedDatabase();
    const a = await startSigner(url, { nodeId: 'a' });
    const b = await startSigner(url, { nodeId: 'b', pollingIntervalMs: 10_000, signingTimeoutMs: 20_000 });
    const holder = gatedSignFn(() => {
      throw new Error('remote signer failed');
    });
    const fail = holder.release;
    const aAttempt = a.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), holder.signFn);
    await holder.entered;
    const bAttempt = b.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(2));
    await sleep(200);
    const failedAt = performance.now();
    fail();
    await expect(aAttempt).rejects.toThrow('remote signer failed');
    await expect(bAttempt).resolves.toBe(fakeSignature(2));
    expect(performance.now() - failedAt).toBeLessThan(500);
  });
});

describe('rule 6: fail closed', () => {
  it('refuses to sign when the database is unreachable, without calling signFn', async () => {
    const url = await migratedDatabase();
    const { signer } = await startSigner(url, { poolConnectionTimeoutMs: 1_000 });
    await sql(url.replace(/\/[^/]+$/, '/postgres'), `ALTER DATABASE ${new URL(url).pathname.slice(1)} WITH ALLOW_CONNECTIONS false`);
    await sql(url.replace(/\/[^/]+$/, '/postgres'), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, [
      new URL(url).pathname.slice(1),
    ]);
    let called = false;
    const attempt = signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => {
      called = true;
      return fakeSignature(1);
    });
    await expect(attempt).rejects.toBeInstanceOf(DatabaseUnavailableError);
    expect(called).toBe(false);
    await sql(url.replace(/\/[^/]+$/, '/postgres'), `ALTER DATABASE ${new URL(url).pathname.slice(1)} WITH ALLOW_CONNECTIONS true`);
  });

  it('refuses to start on a missing, old or unknown schema, saying which command to run', async () => {
    const empty = await createTestDatabase('empty');
    const config = { databaseUrl: empty, nodeId: 'n', rollupAddress: ROLLUP, pollingIntervalMs: 100, signingTimeoutMs: 3000 };
    await expect(createHASigner(config)).rejects.toThrow(/not initialized.*ha-signer migrate up --database-url/);

    await runMigrations({ databaseUrl: empty, direction: 'up' });
    await runMigrations({ databaseUrl: empty, direction: 'down' });
    await expect(createHASigner(config)).rejects.toThrow(new RegExp(`older than ${HA_SIGNER_SCHEMA_VERSION}.*ha-signer migrate up`));

    await runMigrations({ databaseUrl: empty, direction: 'up' });
    await sql(empty, 'INSERT INTO schema_version (version) VALUES (3)');
    await expect(createHASigner(config)).rejects.toBeInstanceOf(SchemaVersionError);
    await sql(empty, 'DELETE FROM schema_version WHERE version = 3');
    await sql(empty, `INSERT INTO ha_signer_migrations (name, run_on) VALUES ('1800000000000_from-the-future', now())`);
    await expect(createHASigner(config)).rejects.toThrow(/newer release; upgrade ha-signer/);
  });
});

describe('notification connection loss', () => {
  it('waiters fall back to polling while LISTEN is down and notifications resume after reconnecting', async () => {
    const url = await migratedDatabase();
    const a = await startSigner(url, { nodeId: 'a' });
    const b = await startSigner(url, { nodeId: 'b', pollingIntervalMs: 50, signingTimeoutMs: 10_000 });
    await sql(
      url,
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ha-signer-listen' AND datname = current_database()`,
    );
    const holder = gatedSignFn(() => fakeSignature(1));
    const release = holder.release;
    const aAttempt = a.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), holder.signFn);
    await holder.entered;
    const bAttempt = b.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(2));
    await sleep(100);
    release();
    await aAttempt;
    await expect(bAttempt).rejects.toBeInstanceOf(DutyAlreadySignedError);
    // Reconnected: the LISTEN session is back.
    for (let i = 0; i < 50 && b.db.notifications?.connected !== true; i++) await sleep(100);
    expect(b.db.notifications?.connected).toBe(true);
    const listeners = await sql(
      url,
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'ha-signer-listen' AND datname = current_database()`,
    );
    expect(listeners[0]?.n).toBe(2);
  });
});

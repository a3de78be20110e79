/**
 * A database that stops answering (issue 12): bounded statements, new duties not stuck behind a stuck batch,
 * waiters that answer from a fresh read, prompt LISTEN reconnects. Real PostgreSQL; hung connections come from a
 * lock held by another session (the server cancels) or a proxy that stops forwarding (only the client can tell).
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type CreateHASignerConfig,
  type CreateHASignerDeps,
  DatabaseUnavailableError,
  DutyAlreadySignedError,
  DutyInProgressError,
  SlashingProtectionError,
  createHASigner,
} from '../../src/protection/index.js';
import { withTimeout } from '../../src/protection/timeout.js';
import { ROLLUP, VALIDATOR, attestation, fakeSignature, gatedSignFn, hash, migratedDatabase, sql } from '../support/protection.js';
import { FreezableProxy } from './support/tcp-proxy.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  // Proxies first: closing them ends frozen connections, so pools can close.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function signerOn(databaseUrl: string, nodeId: string, overrides: Partial<CreateHASignerConfig> = {}, deps: CreateHASignerDeps = {}) {
  const created = await createHASigner(
    { databaseUrl, nodeId, rollupAddress: ROLLUP, pollingIntervalMs: 100, signingTimeoutMs: 3_000, ...overrides },
    deps,
  );
  await created.signer.start();
  cleanups.unshift(() => created.signer.stop());
  return created;
}

async function proxyFor(url: string): Promise<FreezableProxy> {
  const proxy = await FreezableProxy.start(url);
  cleanups.push(() => proxy.close());
  return proxy;
}

/** A session of its own, inside a transaction, for holding locks. */
async function session(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  cleanups.unshift(() => client.end());
  await client.query('BEGIN');
  return client;
}

/** Fails the test (instead of hanging it) when `run` has not settled in `ms`. */
const within = <T>(ms: number, run: Promise<T>): Promise<T> =>
  withTimeout(
    () => run,
    ms,
    () => new Error(`no answer within ${ms} ms`),
  );

const keyWhere = (slot: number) =>
  `rollup_address = '${ROLLUP}' AND validator_address = '${VALIDATOR}' AND slot = ${slot} AND duty_type = 'ATTESTATION'`;

describe('bounded statements: a hung database becomes DatabaseUnavailableError', () => {
  it('a claim blocked on a lock is cancelled by PostgreSQL (lock_timeout) within the bound', async () => {
    const url = await migratedDatabase('avlock');
    const { signer, db } = await signerOn(url, 'a', {}, { statementTimeoutMs: 500 });
    const locker = await session(url);
    await locker.query('LOCK TABLE validator_duties IN ACCESS EXCLUSIVE MODE');
    const startedAt = Date.now();
    let called = false;
    const attempt = signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => {
      called = true;
      return fakeSignature(1);
    });
    await expect(within(10_000, attempt)).rejects.toBeInstanceOf(DatabaseUnavailableError);
    expect(Date.now() - startedAt).toBeLessThan(2_000);
    expect(called).toBe(false);
    expect(db.health().answering).toBe(false);
    await locker.query('ROLLBACK');
    await expect(signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(1))).resolves.toBe(
      fakeSignature(1),
    );
    expect(db.health().answering).toBe(true);
  });

  it('a frozen connection (no answer at all) is given up client-side within the bound; the next duty uses a fresh one', async () => {
    const url = await migratedDatabase('avfreeze');
    const proxy = await proxyFor(url);
    const { signer, db } = await signerOn(proxy.url(url), 'a', {}, { statementTimeoutMs: 500 });
    await signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(1));
    proxy.freeze(); // every open connection (the pool's idle one included) stops answering
    const startedAt = Date.now();
    await expect(
      within(
        10_000,
        signer.signWithProtection(VALIDATOR, hash(2), attestation(2), async () => fakeSignature(2)),
      ),
    ).rejects.toBeInstanceOf(DatabaseUnavailableError);
    expect(Date.now() - startedAt).toBeLessThan(3_000);
    expect(db.health()).toMatchObject({ answering: false });
    await expect(
      within(
        10_000,
        signer.signWithProtection(VALIDATOR, hash(3), attestation(3), async () => fakeSignature(3)),
      ),
    ).resolves.toBe(fakeSignature(3));
    expect(db.health().answering).toBe(true);
  });

  it('a claim that committed but whose answer was lost is released by its token, so another node need not wait for the lease', async () => {
    const url = await migratedDatabase('avlost');
    const proxy = await proxyFor(url);
    const a = await signerOn(proxy.url(url), 'a', {}, { statementTimeoutMs: 500 });
    const b = await signerOn(url, 'b', { signingTimeoutMs: 300 });
    await a.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(1));
    proxy.loseReplies();
    await expect(
      within(
        10_000,
        a.signer.signWithProtection(VALIDATOR, hash(2), attestation(2), async () => fakeSignature(2)),
      ),
    ).rejects.toBeInstanceOf(DatabaseUnavailableError);
    // Released in the background as soon as the database answers (here at once, on a new connection).
    let rows = await sql(url, `SELECT node_id FROM validator_duties WHERE slot = 2`);
    for (let i = 0; i < 100 && rows.length > 0; i++)
      rows = (await sleep(20), await sql(url, `SELECT node_id FROM validator_duties WHERE slot = 2`));
    expect(rows).toEqual([]);
    await expect(b.signer.signWithProtection(VALIDATOR, hash(2), attestation(2), async () => fakeSignature(3))).resolves.toBe(
      fakeSignature(3),
    );
  });

  it('ping tells readiness within its timeout that the database does not answer', async () => {
    const url = await migratedDatabase('avping');
    const proxy = await proxyFor(url);
    const { db } = await signerOn(proxy.url(url), 'a', {}, { statementTimeoutMs: 5_000 });
    await db.ping(500);
    proxy.freeze(true);
    const startedAt = Date.now();
    await expect(within(10_000, db.ping(500))).rejects.toBeInstanceOf(DatabaseUnavailableError);
    expect(Date.now() - startedAt).toBeLessThan(2_500);
    proxy.thawNew();
    await db.ping(2_000);
  });
});

describe('a stuck batch statement does not hold back new duties', () => {
  it('a claim waiting on a row lock does not delay claims of other duties', async () => {
    const url = await migratedDatabase('avstall');
    const a = await signerOn(url, 'a');
    const b = await signerOn(url, 'b', { signingTimeoutMs: 20_000 }, { statementTimeoutMs: 10_000 });
    const holder = gatedSignFn(() => fakeSignature(1));
    const held = a.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), holder.signFn);
    await holder.entered;
    // An open transaction updating duty 1's row: b's claim of duty 1 waits for it inside the claim statement.
    const locker = await session(url);
    await locker.query(`UPDATE validator_duties SET takeovers = takeovers WHERE ${keyWhere(1)}`);
    const stuck = b.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(9));
    void stuck.catch(() => {});
    await sleep(100);
    const startedAt = Date.now();
    await expect(
      within(
        15_000,
        b.signer.signWithProtection(VALIDATOR, hash(2), attestation(2), async () => fakeSignature(2)),
      ),
    ).resolves.toBe(fakeSignature(2));
    expect(Date.now() - startedAt).toBeLessThan(1_500);
    await locker.query('ROLLBACK');
    holder.release();
    await held;
    await expect(stuck).rejects.toBeInstanceOf(DutyAlreadySignedError);
  });
});

describe('a waiter that times out answers from a fresh read', () => {
  /** b's claim waits inside its statement for a transaction recording duty 1; the statement's view predates the record. */
  async function recordWhileClaimWaits(url: string, recordedHash: string, attemptedHash: string): Promise<unknown> {
    const a = await signerOn(url, 'a');
    const b = await signerOn(url, 'b', { signingTimeoutMs: 300 });
    const holder = gatedSignFn(() => fakeSignature(1));
    const held = a.signer.signWithProtection(VALIDATOR, recordedHash, attestation(1), holder.signFn);
    void held.catch(() => {});
    await holder.entered;
    const recorder = await session(url);
    await recorder.query(
      `UPDATE validator_duties SET status = 'signed', signature = $1, completed_at = now(), lease_expires_at = NULL WHERE ${keyWhere(1)}`,
      [fakeSignature(1)],
    );
    const waiter = b.signer
      .signWithProtection(VALIDATOR, attemptedHash, attestation(1), async () => fakeSignature(2))
      .catch((error: unknown) => error);
    await sleep(700); // past b's signingTimeoutMs
    await recorder.query('COMMIT');
    const outcome = await within(10_000, waiter);
    holder.release();
    return outcome;
  }

  it('signed meanwhile with another hash: SlashingProtectionError, not "already signed (timeout)"', async () => {
    const outcome = await recordWhileClaimWaits(await migratedDatabase('avstale'), hash(1), hash(2));
    expect(outcome).toBeInstanceOf(SlashingProtectionError);
    expect(outcome).toMatchObject({ existingMessageHash: hash(1), attemptedMessageHash: hash(2), signedByNode: 'a' });
  });

  it('signed meanwhile with the same hash: DutyAlreadySignedError carrying the stored signature', async () => {
    const outcome = await recordWhileClaimWaits(await migratedDatabase('avsame'), hash(1), hash(1));
    expect(outcome).toBeInstanceOf(DutyAlreadySignedError);
    expect(outcome).not.toBeInstanceOf(DutyInProgressError);
    expect(outcome).toMatchObject({ signedByNode: 'a', signature: fakeSignature(1) });
  });
});

describe('LISTEN reconnects promptly', () => {
  it('reconnects within about a second once the database accepts connections again, however long it refused them', async () => {
    const url = await migratedDatabase('avlisten');
    const { db } = await signerOn(url, 'a');
    expect(db.notifications?.connected).toBe(true);
    const admin = url.replace(/\/[^/]+$/, '/postgres');
    const name = new URL(url).pathname.slice(1);
    await sql(admin, `ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS false`);
    cleanups.unshift(() => sql(admin, `ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS true`));
    await sql(
      admin,
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'ha-signer-listen'`,
      [name],
    );
    for (let i = 0; i < 50 && db.notifications?.connected; i++) await sleep(20);
    expect(db.notifications?.connected).toBe(false);
    await sleep(4_000); // a doubling backoff would now wait seconds between attempts
    await sql(admin, `ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS true`);
    const allowedAt = Date.now();
    while (!db.notifications?.connected && Date.now() - allowedAt < 10_000) await sleep(20);
    expect(db.notifications?.connected).toBe(true);
    expect(Date.now() - allowedAt).toBeLessThan(1_500);
  });
});

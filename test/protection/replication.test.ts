/**
 * Synchronous replication, checked against a real primary and a real streaming standby (started here from the
 * distribution's PostgreSQL binaries): detected when it holds, lost when the standby stops (the detection time is
 * printed), refused when required, and a signer pointed at the promoted standby after a failover still refuses
 * to sign the duties recorded on the primary with other data.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DutyAlreadySignedError,
  SlashingProtectionError,
  SynchronousReplicationRequiredError,
  createHASigner,
  readReplicationStatus,
  runMigrations,
  type ValidatorHASigner,
} from '../../src/protection/index.js';
import { type ReplicatedPostgres, replicationBinariesFor, startReplicatedPostgres } from '../support/replicated-postgres.js';
import { ROLLUP, VALIDATOR, attestation, fakeSignature, hash } from '../support/protection.js';

const bin = replicationBinariesFor('replication tests');

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return Date.now() - started;
}

describe.skipIf(!bin)('synchronous replication (real primary + streaming standby)', () => {
  let cluster: ReplicatedPostgres;
  let primaryDb: string;
  const signers: ValidatorHASigner[] = [];

  beforeAll(async () => {
    cluster = await startReplicatedPostgres(bin!, { primarySettings: { wal_sender_timeout: "'60s'" } });
    await withClient(cluster.primary.url, (c) => c.query('CREATE DATABASE signer'));
    primaryDb = cluster.primary.urlFor('signer');
    await runMigrations({ databaseUrl: primaryDb, direction: 'up', rollupAddress: ROLLUP });
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(signers.map((s) => s.stop()));
    await cluster?.close();
  });

  const start = async (url: string, nodeId: string, required: boolean, intervalMs = 5_000): Promise<ValidatorHASigner> => {
    const { signer } = await createHASigner(
      { databaseUrl: url, nodeId, rollupAddress: ROLLUP, pollingIntervalMs: 100, signingTimeoutMs: 3_000 },
      { requireSynchronousReplication: required, replicationCheckIntervalMs: intervalMs, statementTimeoutMs: 3_000 },
    );
    await signer.start();
    signers.push(signer);
    return signer;
  };

  it('reads the standby as synchronous, and names the missing privilege for a role without pg_read_all_stats', async () => {
    const status = await withClient(primaryDb, (c) => readReplicationStatus((text) => c.query(text)));
    expect(status).toMatchObject({ synchronous: true, required: 1, confirming: 1, inRecovery: false, privileged: true });
    expect(status.standbys).toEqual([expect.objectContaining({ name: 'standby1', state: 'streaming', syncState: 'sync' })]);

    await withClient(primaryDb, async (c) => {
      await c.query('DROP ROLE IF EXISTS signer_app');
      await c.query('CREATE ROLE signer_app LOGIN');
    });
    const appUrl = cluster.primary.urlFor('signer').replace('postgres@', 'signer_app@');
    const unprivileged = await withClient(appUrl, (c) => readReplicationStatus((text) => c.query(text)));
    expect(unprivileged.synchronous).toBe(false);
    expect(unprivileged.privileged).toBe(false);
    expect(unprivileged.reasons.join(' ')).toMatch(/GRANT pg_read_all_stats/);

    await withClient(primaryDb, (c) => c.query('GRANT pg_read_all_stats TO signer_app'));
    expect((await withClient(appUrl, (c) => readReplicationStatus((text) => c.query(text)))).synchronous).toBe(true);

    // A role whose sessions commit without waiting for the standby is not synchronous either.
    await withClient(primaryDb, (c) => c.query('ALTER ROLE signer_app SET synchronous_commit = local'));
    const local = await withClient(appUrl, (c) => readReplicationStatus((text) => c.query(text)));
    expect(local.synchronous).toBe(false);
    expect(local.reasons.join(' ')).toMatch(/synchronous_commit is local/);
  });

  it('a replica requiring synchronous replication detects a lost standby, refuses duties, and resumes when it is back', async () => {
    const signer = await start(primaryDb, 'required', true);
    expect(signer.gates.replication?.current?.synchronous).toBe(true);
    await signer.signWithProtection(VALIDATOR, hash(1), attestation(10), async () => fakeSignature(1));

    const stoppedAt = Date.now();
    await cluster.standby.stop();
    const detectionMs = await waitFor('lost standby detected', () => signer.gates.replication?.current?.synchronous === false);
    console.log(
      `lost synchronous standby (fast shutdown) detected after ${detectionMs} ms (check interval 5000 ms); stop took ${Date.now() - stoppedAt - detectionMs} ms`,
    );
    expect(detectionMs).toBeLessThan(5_000 + 2_000);
    const refused = signer.signWithProtection(VALIDATOR, hash(2), attestation(11), async () => fakeSignature(2));
    await expect(refused).rejects.toBeInstanceOf(SynchronousReplicationRequiredError);
    await expect(refused).rejects.toThrow(/0 of 1 required synchronous standbys/);

    await cluster.standby.start();
    await waitFor('standby back', () => signer.gates.replication?.current?.synchronous === true);
    await signer.signWithProtection(VALIDATOR, hash(2), attestation(11), async () => fakeSignature(2));

    // SIGKILL: the walsender's socket closes with the process, so this is seen as fast.
    await cluster.standby.kill();
    const killedMs = await waitFor('killed standby detected', () => signer.gates.replication?.current?.synchronous === false);
    console.log(`lost synchronous standby (SIGKILL) detected after ${killedMs} ms`);
    await cluster.standby.start();
    await waitFor('standby back', () => signer.gates.replication?.current?.synchronous === true);
  });

  it('a frozen standby (no reset, no replies) is detected from its reply age', async () => {
    const signer = await start(primaryDb, 'frozen', true);
    expect(signer.gates.replication?.current?.synchronous).toBe(true);
    await cluster.standby.freeze();
    try {
      const frozenMs = await waitFor('frozen standby detected', () => signer.gates.replication?.current?.synchronous === false, 40_000);
      console.log(`frozen synchronous standby (SIGSTOP) detected after ${frozenMs} ms (reply age limit 15000 ms, check interval 5000 ms)`);
      expect(signer.gates.replication?.current?.reasons.join(' ')).toMatch(/0 of 1 required/);
    } finally {
      await cluster.standby.thaw();
    }
    await waitFor('standby back', () => signer.gates.replication?.current?.synchronous === true, 30_000);
  }, 90_000);

  it('a record whose wait for the lost standby is cancelled is withheld when replication is required', async () => {
    // A long check interval: the monitor still believes in the standby, as in the seconds before it notices.
    const required = await start(primaryDb, 'record-withheld', true, 60_000);
    const reported = await start(primaryDb, 'record-reported', false, 60_000);
    // statement_timeout does not end a commit's wait for the standby (PostgreSQL disables it before the commit): the
    // record waits until the client-side bound and fails, withheld. A cancel (pg_cancel_backend, by an operator or a
    // tool) ends the wait instead, and PostgreSQL reports the commit as done, locally only, with a warning.
    const cancelWaitingRecord = async (nodeId: string): Promise<void> => {
      const waiting = async (): Promise<number[]> =>
        (
          await withClient(cluster.primary.url, (c) =>
            c.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'SyncRep'`, [
              `ha-signer:${nodeId}`,
            ]),
          )
        ).rows.map((r) => r.pid);
      await waitFor('a record waiting for the standby', async () => (await waiting()).length > 0, 3_000);
      for (const pid of await waiting()) await withClient(cluster.primary.url, (c) => c.query('SELECT pg_cancel_backend($1)', [pid]));
    };
    await cluster.standby.stop();
    try {
      const withheld = required
        .signWithProtection(VALIDATOR, hash(50), attestation(50), async () => fakeSignature(50))
        .catch((e: unknown) => e);
      await cancelWaitingRecord('record-withheld');
      const error = await withheld;
      expect(error).toBeInstanceOf(SynchronousReplicationRequiredError);
      expect((error as Error).message).toMatch(/committed only locally/);
      // Without the requirement the signature is released (the hazard the setting closes).
      const released = reported.signWithProtection(VALIDATOR, hash(51), attestation(51), async () => fakeSignature(51));
      await cancelWaitingRecord('record-reported');
      await expect(released).resolves.toBe(fakeSignature(51));
    } finally {
      await cluster.standby.start();
    }
  });

  it('after failover to the promoted standby, duties recorded on the primary are still refused with other data', async () => {
    const signer = await start(primaryDb, 'before-failover', true, 500);
    // The test before restarts the standby: it may still be catching up (startup/async) when this one begins.
    await waitFor('standby streaming synchronously', () => signer.gates.replication?.current?.synchronous === true);
    for (let slot = 100; slot < 110; slot++)
      await signer.signWithProtection(VALIDATOR, hash(slot), attestation(slot), async () => fakeSignature(slot));

    await cluster.primary.kill(); // no shutdown checkpoint, no goodbye: a crash
    await cluster.promote();
    const promotedDb = cluster.standby.urlFor('signer');
    const after = await start(promotedDb, 'after-failover', false, 500);
    // The promoted server has no standby of its own: not synchronous, and says why.
    expect(after.gates.replication?.current).toMatchObject({ synchronous: false, inRecovery: false, confirming: 0 });
    for (let slot = 100; slot < 110; slot++) {
      await expect(
        after.signWithProtection(VALIDATOR, hash(1000 + slot), attestation(slot), async () => fakeSignature(9)),
      ).rejects.toBeInstanceOf(SlashingProtectionError);
      await expect(after.signWithProtection(VALIDATOR, hash(slot), attestation(slot), async () => fakeSignature(9))).rejects.toBeInstanceOf(
        DutyAlreadySignedError,
      );
    }
  });
});

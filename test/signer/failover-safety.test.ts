/**
 * `ha-signer serve` with HA_SIGNER_REQUIRE_SYNCHRONOUS_REPLICATION against a real primary and streaming standby:
 * /readyz shows the replication status and the metric follows it; without the standby the replica is not ready and
 * refuses duties (503), and it comes back with the standby. HA_SIGNER_HIGH_WATER_MARKS_FILE: marks are written.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ReplicatedPostgres, replicationBinariesFor, startReplicatedPostgres } from '../support/replicated-postgres.js';
import { KEYS, TOKENS, type SignerFixture, call, migratedDatabase, signBody, signerFixture } from './support.js';

const bin = replicationBinariesFor('serve failover-safety tests');

const hash = (n: number): string => `0x${n.toString(16).padStart(64, '0')}`;

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Date.now() - started;
}

describe.skipIf(!bin)('serve: synchronous replication required, high-water marks', () => {
  let cluster: ReplicatedPostgres;
  let fixture: SignerFixture;

  beforeAll(async () => {
    cluster = await startReplicatedPostgres(bin!);
    const admin = new pg.Client({ connectionString: cluster.primary.url });
    await admin.connect();
    await admin.query('CREATE DATABASE signer');
    await admin.end();
    fixture = await signerFixture(await migratedDatabase(cluster.primary.urlFor('signer')));
  }, 120_000);

  afterAll(async () => {
    await fixture?.stopAll();
    await cluster?.close();
  });

  it('is ready and signs with the standby, not ready and refusing without it, and writes marks', async () => {
    const marksFile = join(fixture.dir, 'marks.json');
    const replica = await fixture.start('sync-required', {
      HA_SIGNER_REQUIRE_SYNCHRONOUS_REPLICATION: 'true',
      HA_SIGNER_HIGH_WATER_MARKS_FILE: marksFile,
    });
    const ready = await call(replica.url, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      checks: { synchronousReplication: true },
      replication: { synchronous: true, enforced: true, required: 1, confirming: 1 },
      historyRegressions: [],
    });
    const metrics = async (): Promise<string> => (await fetch(`${replica.url}/metrics`)).text();
    expect(await metrics()).toMatch(/^ha_signer_database_synchronous_replication 1$/m);
    const address = KEYS[0]!.address;
    const signed = await call(replica.url, `/v1/validators/${address}/sign`, { token: TOKENS.all, body: signBody(5, hash(5)) });
    expect(signed.status).toBe(200);
    await waitFor('mark written', async () => (await readFile(marksFile, 'utf8').catch(() => '')).includes(`"ATTESTATION": "5"`));

    await cluster.standby.stop();
    const notReadyMs = await waitFor('not ready', async () => (await call(replica.url, '/readyz')).status === 503);
    console.log(`serve: /readyz 503 ${notReadyMs} ms after the synchronous standby stopped`);
    const notReady = await call(replica.url, '/readyz');
    expect(notReady.body.reasons).toEqual([expect.stringMatching(/synchronous replication required but not in place: 0 of 1/)]);
    expect(await metrics()).toMatch(/^ha_signer_database_synchronous_replication 0$/m);
    const refused = await call(replica.url, `/v1/validators/${address}/sign`, { token: TOKENS.all, body: signBody(6, hash(6)) });
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ reason: 'SynchronousReplicationRequiredError' });

    await cluster.standby.start();
    await waitFor('ready again', async () => (await call(replica.url, '/readyz')).status === 200);
    expect((await call(replica.url, `/v1/validators/${address}/sign`, { token: TOKENS.all, body: signBody(6, hash(6)) })).status).toBe(200);
  });

  it('without the setting, a missing standby is reported but the replica stays ready', async () => {
    const replica = await fixture.start('sync-watched');
    await cluster.standby.stop();
    const synchronous = async (): Promise<boolean | undefined> =>
      ((await call(replica.url, '/readyz')).body as { replication?: { synchronous: boolean } }).replication?.synchronous;
    await waitFor('reported', async () => (await synchronous()) === false);
    const report = await call(replica.url, '/readyz');
    expect(report.status).toBe(200);
    expect(report.body).toMatchObject({ replication: { synchronous: false, enforced: false } });
    await cluster.standby.start();
  });
});

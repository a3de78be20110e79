/**
 * PostgreSQL goes away under running replicas: signing answers 503 (never a signature without a recorded lock),
 * readiness turns false, no replica crashes, and everything recovers once the same server is back.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { externalPostgres } from '../../src/dev/embedded-postgres.js';
import type { SignerReplica } from '../../src/demo/replicas.js';
import { startRestartablePostgres, type RestartablePostgres } from './restartable-postgres.js';
import {
  KEYS,
  TOKENS,
  call,
  dutyRows,
  hash,
  metricValue,
  migratedDatabase,
  signBody,
  signerFixture,
  type SignerFixture,
} from './support.js';

let postgres: RestartablePostgres;
let fixture: SignerFixture;
let databaseUrl: string;
let replicas: SignerReplica[];

beforeAll(async () => {
  postgres = await startRestartablePostgres();
  databaseUrl = await migratedDatabase(await externalPostgres(postgres.adminUrl).createDatabase('outage'));
  fixture = await signerFixture(databaseUrl, { VALIDATOR_HA_POOL_CONNECTION_TIMEOUT_MS: '1000' });
  replicas = await Promise.all(['outage-0', 'outage-1', 'outage-2'].map((id) => fixture.start(id)));
});

afterAll(async () => {
  await fixture?.stopAll();
  await postgres?.close();
});

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

it('answers 503 while PostgreSQL is stopped and recovers once it is back', async () => {
  const validator = KEYS[0]!.address;
  const path = `/v1/validators/${validator}/sign`;
  const before = await call(replicas[0]!.url, path, { token: TOKENS.all, body: signBody(100, hash('before')) });
  expect(before.status).toBe(200);

  await postgres.stopServer();
  for (const [i, replica] of replicas.entries()) {
    const during = await call(replica.url, path, { token: TOKENS.all, body: signBody(200 + i, hash(`during-${i}`)) });
    expect(during.status, JSON.stringify(during.body)).toBe(503);
    expect(during.body.error).toBe('Unavailable');
    expect(during.body.signature).toBeUndefined();
    // A repeat of a signed duty cannot be answered from memory either: fail closed.
    expect((await call(replica.url, path, { token: TOKENS.all, body: signBody(100, hash('before')) })).status).toBe(503);
    await waitFor(`${replica.nodeId} not ready`, async () => (await call(replica.url, '/readyz')).status === 503);
    const ready = await call(replica.url, '/readyz');
    expect(ready.body).toMatchObject({ ready: false, checks: { database: false } });
    expect((await call(replica.url, '/livez')).status).toBe(200);
    expect(await metricValue(replica.url, 'ha_signer_ready')).toBe(0);
  }

  await postgres.startServer();
  for (const replica of replicas) {
    await waitFor(`${replica.nodeId} ready again`, async () => (await call(replica.url, '/readyz')).status === 200);
    expect(replica.running).toBe(true);
  }
  const after = await Promise.all(
    replicas.map((replica, i) => call(replica.url, path, { token: TOKENS.all, body: signBody(300 + i, hash(`after-${i}`)) })),
  );
  expect(after.map((a) => a.status)).toEqual([200, 200, 200]);
  const repeat = await call(replicas[2]!.url, path, { token: TOKENS.all, body: signBody(100, hash('before')) });
  expect(repeat.status).toBe(409);
  expect(repeat.body.signature).toBe(before.body.signature);
  // The duties refused during the outage left no row behind.
  const slots = (await dutyRows(databaseUrl, validator)).map((row) => row.slot);
  expect(slots).toEqual(['100', '300', '301', '302']);
});

/**
 * Edge answers of the HTTP layer on real `serve` processes: a malformed URL gets the documented InvalidRequest body,
 * a digest request without typed data to a Web3Signer-backed replica is refused before the duty is claimed, and the
 * start-up and probe log lines (no deprecation warning, probes at debug only).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeWeb3Signer, type FakeWeb3Signer } from '../../src/demo/fake-web3signer.js';
import { createTestDatabase } from '../support/postgres.js';
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

let fixture: SignerFixture;
let databaseUrl: string;
let remote: FakeWeb3Signer;

beforeAll(async () => {
  databaseUrl = await migratedDatabase(await createTestDatabase('signer_edges'));
  remote = await startFakeWeb3Signer(KEYS.map((k) => k.privateKey));
  fixture = await signerFixture(databaseUrl);
});

afterAll(async () => {
  await fixture?.stopAll();
  await remote?.close();
});

it('answers a URL with malformed percent-encoding with InvalidRequest naming the address', async () => {
  const replica = await fixture.start('edges-url');
  const answer = await call(replica.url, '/v1/validators/%zz/sign', { token: TOKENS.all, body: signBody(1, hash('url')) });
  expect(answer.status).toBe(400);
  expect(answer.body).toEqual({ error: 'InvalidRequest', field: 'address', message: expect.stringMatching(/^address: /) });
  expect(JSON.stringify(answer.body)).not.toContain('FST_ERR');
  expect(await dutyRows(databaseUrl)).toHaveLength(0);
});

it('refuses a digest request without typedData on a Web3Signer-backed replica before claiming the duty', async () => {
  const replica = await fixture.start('edges-remote', { HA_SIGNER_WEB3SIGNER_URL: remote.url });
  const validator = KEYS[0]!.address;
  const callsBefore = remote.calls.length;
  const answer = await call(replica.url, `/v1/validators/${validator}/sign`, {
    token: TOKENS.all,
    body: { ...signBody(77, hash('digest-without-typed-data'), 'GOVERNANCE_VOTE'), signingMethod: 'digest' },
  });
  expect(answer.status).toBe(400);
  expect(answer.body).toMatchObject({ error: 'InvalidRequest', field: 'typedData' });
  expect(String(answer.body.message)).toMatch(/^typedData: is required/);
  // Nothing claimed, nothing sent to the remote signer, no signing failure counted (it would trip alerts).
  expect(await dutyRows(databaseUrl, validator)).toHaveLength(0);
  expect(remote.calls.length).toBe(callsBefore);
  expect(await metricValue(replica.url, 'ha_signer_signing_failures_total')).toBe(0);
  expect(await metricValue(replica.url, 'ha_signer_sign_requests_total', { duty_type: 'GOVERNANCE_VOTE', outcome: 'invalid' })).toBe(1);
});

it('starts without deprecation lines and logs probes only at debug', async () => {
  const replica = await fixture.start('edges-logs', { HA_SIGNER_LOG_LEVEL: 'info' });
  for (let i = 0; i < 5; i++) {
    expect((await call(replica.url, '/livez')).status).toBe(200);
    expect((await call(replica.url, '/readyz')).status).toBe(200);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  const log = await readFile(join(fixture.dir, 'edges-logs.log'), 'utf8');
  expect(log).toContain('starting signer');
  expect(log).not.toContain('FSTDEP');
  expect(log).not.toContain('Deprecation');
  expect(log).not.toMatch(/"url":"\/(livez|readyz)"/);
  expect(log).not.toContain('incoming request');
  // Every line is JSON.
  for (const line of log.split('\n').filter(Boolean)) expect(() => JSON.parse(line), line).not.toThrow();
});

it('applies a changed tokens file on a running replica: new tokens accepted, removed ones refused, no restart', async () => {
  const replica = await fixture.start('edges-live-tokens');
  const added = 'token-added-while-running-0123456789';
  const listWith = (token: string) => call(replica.url, '/v1/validators', { token });
  expect((await listWith(TOKENS.first)).status).toBe(200);
  expect((await listWith(added)).status).toBe(401);
  // Replace the file atomically, as a Secret volume update does: node-first removed, a new client added.
  await writeFile(
    `${fixture.tokensFile}.next`,
    JSON.stringify([
      { name: 'node-all', token: TOKENS.all, validators: ['*'] },
      { name: 'node-added', token: added, validators: [KEYS[1]!.address] },
    ]),
  );
  await rename(`${fixture.tokensFile}.next`, fixture.tokensFile);
  const deadline = Date.now() + 10_000;
  while ((await listWith(added)).status !== 200) {
    if (Date.now() > deadline) throw new Error('the added token was not accepted within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect((await listWith(added)).body).toMatchObject({ validators: [KEYS[1]!.address] });
  expect((await listWith(TOKENS.first)).status).toBe(401);
  // An invalid file fails closed: every token of it is refused until it is fixed.
  await writeFile(fixture.tokensFile, '[{"name": broken');
  const closedBy = Date.now() + 10_000;
  while ((await listWith(TOKENS.all)).status !== 401) {
    if (Date.now() > closedBy) throw new Error('an invalid tokens file did not fail closed within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(replica.running).toBe(true);
});

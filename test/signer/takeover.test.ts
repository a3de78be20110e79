/**
 * A replica SIGKILLed while it holds a duty (its remote signer is slow) leaves an in-progress row; another replica
 * asking for the same duty waits for the lease to end, takes the duty over and signs it once. A SIGTERMed replica
 * finishes its in-flight duty before it exits.
 */
import { recoverMessageAddress, type Hex } from 'viem';
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

const LEASE_MS = 2_000;
let fixture: SignerFixture;
let databaseUrl: string;
let remote: FakeWeb3Signer;

beforeAll(async () => {
  databaseUrl = await migratedDatabase(await createTestDatabase('signer_takeover'));
  remote = await startFakeWeb3Signer(KEYS.map((k) => k.privateKey));
  fixture = await signerFixture(databaseUrl, {
    VALIDATOR_HA_MAX_STUCK_DUTIES_AGE_MS: String(LEASE_MS),
    VALIDATOR_HA_SIGNING_TIMEOUT_MS: '8000',
  });
});

afterAll(async () => {
  await fixture?.stopAll();
  await remote?.close();
});

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

it('takes over the in-flight duty of a SIGKILLed replica after its lease, and signs it once', async () => {
  const validator = KEYS[0]!.address;
  const path = `/v1/validators/${validator}/sign`;
  const slow = await fixture.start('slow-replica', { HA_SIGNER_WEB3SIGNER_URL: remote.url });
  const [other, third] = await Promise.all([fixture.start('other-replica'), fixture.start('third-replica')]);
  remote.setDelay(() => 60_000);
  const messageHash = hash('takeover');
  const callsBefore = remote.calls.length;
  const stranded = call(slow.url, path, { token: TOKENS.all, body: signBody(500, messageHash, 'BLOCK_PROPOSAL') }).catch(
    (error: unknown) => error,
  );
  // The slow replica holds the lock once its remote signer has the request.
  await until(() => remote.calls.length > callsBefore);
  slow.kill('SIGKILL');
  await slow.exited;
  const killedAt = Date.now();
  expect(await stranded).toBeInstanceOf(Error);
  const [row] = await dutyRows(databaseUrl, validator);
  expect(row).toMatchObject({ slot: '500', status: 'signing', node_id: 'slow-replica' });

  const [taken, waiter] = await Promise.all([
    call(other.url, path, { token: TOKENS.all, body: signBody(500, messageHash, 'BLOCK_PROPOSAL') }),
    call(third.url, path, { token: TOKENS.all, body: signBody(500, messageHash, 'BLOCK_PROPOSAL') }),
  ]);
  const waited = Date.now() - killedAt;
  const answers = [taken, waiter];
  const signed = answers.filter((a) => a.status === 200);
  expect(signed, JSON.stringify(answers)).toHaveLength(1);
  const loser = answers.find((a) => a.status !== 200)!;
  expect(loser.status).toBe(409);
  expect(loser.body).toMatchObject({ error: 'DutyAlreadySigned', signature: signed[0]!.body.signature });
  // Not before the lease ran out (the row was claimed shortly before the kill).
  expect(waited).toBeGreaterThanOrEqual(LEASE_MS - 500);
  const signature = signed[0]!.body.signature as Hex;
  expect((await recoverMessageAddress({ message: { raw: messageHash }, signature })).toLowerCase()).toBe(validator);
  const rows = await dutyRows(databaseUrl, validator);
  expect(rows).toHaveLength(1);
  expect(rows[0]).toMatchObject({ status: 'signed', signature, takeovers: 1, node_id: signed[0]!.body.nodeId });
  const winner = signed[0]!.body.nodeId === 'other-replica' ? other : third;
  expect(await metricValue(winner.url, 'ha_signer_duty_takeovers_total', { duty_type: 'BLOCK_PROPOSAL' })).toBe(1);
});

it('finishes an in-flight duty on SIGTERM before exiting', async () => {
  const validator = KEYS[1]!.address;
  const replica = await fixture.start('graceful-replica', { HA_SIGNER_WEB3SIGNER_URL: remote.url });
  remote.setDelay(() => 700);
  const callsBefore = remote.calls.length;
  const pending = call(replica.url, `/v1/validators/${validator}/sign`, { token: TOKENS.all, body: signBody(600, hash('graceful')) });
  await until(() => remote.calls.length > callsBefore);
  replica.kill('SIGTERM');
  const answer = await Promise.race([
    pending,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(replica.output().join('\n'))), 10_000)),
  ]);
  expect(answer.status).toBe(200);
  expect(await replica.exited).toEqual({ code: 0, signal: null });
  const [row] = await dutyRows(databaseUrl, validator);
  expect(row).toMatchObject({ slot: '600', status: 'signed', signature: answer.body.signature, node_id: 'graceful-replica' });
});

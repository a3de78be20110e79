/**
 * RemoteHASigner against replicas that hang: a request without an answer within timeoutMs is repeated at another
 * replica, and a repeat of a duty the hung replica did sign gets the stored signature. A duty another replica still
 * holds after the signing timeout is a 503 DutyInProgress (not a 409 that would hide what happened).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { recoverMessageAddress } from 'viem';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RemoteHASigner, RemoteSignerError } from '../../src/client/index.js';
import { startFakeWeb3Signer, type FakeWeb3Signer } from '../../src/demo/fake-web3signer.js';
import type { SignerReplica } from '../../src/demo/replicas.js';
import { createTestDatabase } from '../support/postgres.js';
import { KEYS, TOKENS, call, dutyRows, hash, migratedDatabase, signBody, signerFixture, type SignerFixture } from './support.js';

let fixture: SignerFixture;
let databaseUrl: string;
let replicas: SignerReplica[];
let remote: FakeWeb3Signer;
const servers: Server[] = [];

beforeAll(async () => {
  databaseUrl = await migratedDatabase(await createTestDatabase('signer_client_retry'));
  remote = await startFakeWeb3Signer(KEYS.map((k) => k.privateKey));
  fixture = await signerFixture(databaseUrl);
  replicas = await Promise.all([fixture.start('retry-a'), fixture.start('retry-b')]);
});

afterAll(async () => {
  for (const replica of replicas ?? []) if (replica.running) replica.child.kill('SIGCONT');
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  await fixture?.stopAll();
  await remote?.close();
});

const context = (slot: bigint) => ({ dutyType: 'ATTESTATION' as const, slot, blockNumber: 1n });

it('repeats a request that timed out at a frozen replica at the next one', async () => {
  const [frozen, healthy] = replicas as [SignerReplica, SignerReplica];
  const failovers: { endpoint: string; reason: string }[] = [];
  const client = new RemoteHASigner({
    endpoints: [frozen.url, healthy.url],
    token: TOKENS.all,
    timeoutMs: 1_000,
    onFailover: (info) => failovers.push(info),
  });
  frozen.child.kill('SIGSTOP');
  try {
    const signature = await client.signWithProtection(KEYS[0]!.address, hash('frozen'), context(100n));
    expect((await recoverMessageAddress({ message: { raw: hash('frozen') }, signature })).toLowerCase()).toBe(KEYS[0]!.address);
    expect(failovers).toEqual([{ endpoint: frozen.url, reason: 'timeout' }]);
  } finally {
    frozen.child.kill('SIGCONT');
  }
  const rows = (await dutyRows(databaseUrl, KEYS[0]!.address)).filter((row) => row.slot === '100');
  expect(rows).toHaveLength(1);
  expect(rows[0]).toMatchObject({ status: 'signed', node_id: 'retry-b' });
});

it('returns the stored signature when the replica that timed out had signed the duty', async () => {
  const [a, b] = replicas as [SignerReplica, SignerReplica];
  // A replica whose answer is lost: it passes the request to replica a (which signs and records the duty), then never answers.
  const forwarded: Promise<unknown>[] = [];
  const blackHole = createServer((request, _response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      forwarded.push(
        fetch(`${a.url}${request.url}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: request.headers.authorization! },
          body: Buffer.concat(chunks),
        }).then((r) => r.json()),
      );
    });
  });
  servers.push(blackHole);
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  const lost = `http://127.0.0.1:${(blackHole.address() as AddressInfo).port}`;
  const client = new RemoteHASigner({ endpoints: [lost, b.url], token: TOKENS.all, timeoutMs: 1_000 });
  const signature = await client.signWithProtection(KEYS[1]!.address, hash('lost-answer'), context(200n));
  const first = (await Promise.all(forwarded))[0] as { signature: string; nodeId: string };
  // The answer the client never got, and the one it returned after the retry, are the same recorded signature.
  expect(first).toMatchObject({ nodeId: 'retry-a' });
  expect(signature).toBe(first.signature);
  const rows = (await dutyRows(databaseUrl, KEYS[1]!.address)).filter((row) => row.slot === '200');
  expect(rows).toEqual([expect.objectContaining({ status: 'signed', signature, node_id: 'retry-a' })]);
});

it('answers 503 DutyInProgress when another replica still holds the duty after the signing timeout', async () => {
  const holder = await fixture.start('retry-slow-holder', {
    HA_SIGNER_WEB3SIGNER_URL: remote.url,
    VALIDATOR_SIGNING_OPERATION_TIMEOUT_MS: '20000',
  });
  const waiter = await fixture.start('retry-waiter', { VALIDATOR_HA_SIGNING_TIMEOUT_MS: '500' });
  replicas.push(holder, waiter);
  remote.setDelay(() => 4_000);
  const validator = KEYS[2]!.address;
  const body = signBody(300, hash('in-progress'), 'BLOCK_PROPOSAL');
  const held = call(holder.url, `/v1/validators/${validator}/sign`, { token: TOKENS.all, body });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const answer = await call(waiter.url, `/v1/validators/${validator}/sign`, { token: TOKENS.all, body });
  expect(answer.status).toBe(503);
  expect(answer.body).toMatchObject({
    error: 'Unavailable',
    reason: 'DutyInProgress',
    slot: '300',
    dutyType: 'BLOCK_PROPOSAL',
    heldByNode: 'retry-slow-holder',
  });
  expect(String(answer.body.message)).toMatch(/still being signed/);
  // The client moves on after a 503 and, when every replica says so, reports it.
  const client = new RemoteHASigner({ endpoints: [waiter.url], token: TOKENS.all, maxRounds: 1 });
  const error = await client
    .signWithProtection(validator, hash('in-progress'), {
      dutyType: 'BLOCK_PROPOSAL',
      slot: 300n,
      blockNumber: 1n,
      blockIndexWithinCheckpoint: 0,
    })
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(RemoteSignerError);
  expect((error as RemoteSignerError).status).toBe(503);
  expect((error as Error).message).toContain('DutyInProgress');
  expect((await held).status).toBe(200);
  remote.setDelay(() => 0);
});

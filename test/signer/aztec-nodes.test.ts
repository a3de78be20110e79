/**
 * Stock Aztec validator nodes on the protected JSON-RPC, driven by Aztec's published code (RemoteSigner from
 * @aztec/node-keystore 4.1.2, ValidatorHASigner from @aztec/validator-ha-signer 4.1.2, composed as HAKeyStore does)
 * against three real `serve` replicas on one PostgreSQL, each node with its URL secret.
 */
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Hex, hashTypedData, keccak256, recoverAddress, recoverMessageAddress, recoverTransactionAddress, stringToHex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignerReplica } from '../../src/demo/replicas.js';
import { createTestDatabase } from '../support/postgres.js';
import { StockNode } from './stock-node.js';
import { KEYS, ROLLUP, call, dutyRows, metricValue, migratedDatabase, signerFixture, type SignerFixture } from './support.js';

const CHAIN_ID = 31337;
const SECRETS = Object.fromEntries(
  ['a', 'b', 'c', 'noha', 'auth', 'publisher', 'late', 'any'].map((n) => [n, `secret-${n}-${'x'.repeat(40)}`.slice(0, 48)]),
);
const clientEntry = (name: string, extra: Record<string, unknown> = {}) => ({
  name: `aztec-${name}`,
  secret: SECRETS[name],
  validators: ['*'],
  nodeIds: [`aztec-${name}`],
  ...extra,
});
const CLIENTS = [
  clientEntry('a', { validators: [KEYS[0]!.address, KEYS[1]!.address] }),
  clientEntry('b'),
  clientEntry('c'),
  clientEntry('noha'),
  clientEntry('auth', { allowUnclaimedDigests: true }),
  clientEntry('publisher', { allowTransactions: true }),
  clientEntry('any', { nodeIds: undefined }),
];

let fixture: SignerFixture;
let databaseUrl: string;
let replicas: SignerReplica[];
let clientsDir: string;
const nodes: StockNode[] = [];

/** Writes the clients file as Kubernetes updates a mounted ConfigMap: new data directory, then a `..data` symlink swap. */
let generation = 0;
async function writeClients(clients: unknown[]): Promise<void> {
  const dir = join(clientsDir, `..gen_${++generation}`);
  await mkdir(dir);
  await writeFile(join(dir, 'jsonrpc-clients.json'), JSON.stringify(clients));
  await symlink(`..gen_${generation}`, join(clientsDir, '..data_tmp'));
  await rename(join(clientsDir, '..data_tmp'), join(clientsDir, '..data'));
}

const rpcUrl = (replica: SignerReplica, name: string): string => `${replica.url}/jsonrpc/${SECRETS[name]}`;
const rpc = (url: string, method: string, params: unknown[]) =>
  call(url.replace(/^(http:\/\/[^/]+)(.*)$/, '$1'), url.replace(/^http:\/\/[^/]+/, ''), {
    body: { jsonrpc: '2.0', id: 1, method, params },
  });

async function node(name: string, replica: SignerReplica, ha: boolean): Promise<StockNode> {
  const started = await StockNode.start({
    nodeId: `aztec-${name}`,
    url: rpcUrl(replica, name),
    rollup: ROLLUP,
    ...(ha ? { databaseUrl } : {}),
  });
  nodes.push(started);
  return started;
}

beforeAll(async () => {
  databaseUrl = await migratedDatabase(await createTestDatabase('signer_aztec_nodes'));
  fixture = await signerFixture(databaseUrl, { HA_SIGNER_L1_CHAIN_ID: String(CHAIN_ID), HA_SIGNER_LOG_LEVEL: 'info' });
  clientsDir = join(fixture.dir, 'clients');
  await mkdir(clientsDir);
  await writeClients(CLIENTS);
  await symlink('..data/jsonrpc-clients.json', join(clientsDir, 'jsonrpc-clients.json'));
  const env = { HA_SIGNER_JSONRPC_CLIENTS_FILE: join(clientsDir, 'jsonrpc-clients.json') };
  replicas = await Promise.all([fixture.start('replica-0', env), fixture.start('replica-1', env), fixture.start('replica-2', env)]);
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await fixture?.stopAll();
});

const [V0, V1, V2] = [KEYS[0]!.address, KEYS[1]!.address, KEYS[2]!.address];
const digest = (label: string): Hex => keccak256(stringToHex(label));

describe('stock Aztec nodes through the protected JSON-RPC', () => {
  it("passes the node's start-up eth_accounts check through its URL secret, and refuses a wrong secret", async () => {
    const a = await node('a', replicas[0]!, false);
    await a.validateAccess([V0, V1]);
    await expect(a.validateAccess([V0, V2])).rejects.toThrow(/not available/);
    const wrong = await StockNode.start({ nodeId: 'x', url: `${replicas[0]!.url}/jsonrpc/${'y'.repeat(40)}`, rollup: ROLLUP });
    await expect(wrong.validateAccess([V0])).rejects.toThrow(/401/);
  });

  it('three HA nodes at three replicas racing the same duties: one signature per duty, each released signature recorded', async () => {
    const racers = await Promise.all(['a', 'b', 'c'].map((name, i) => node(name, replicas[i]!, true)));
    const duties = Array.from({ length: 12 }, (_, i) => ({
      slot: BigInt(100 + i),
      dutyType: i % 2 ? ('ATTESTATION' as const) : ('BLOCK_PROPOSAL' as const),
      digest: digest(`race-${i}`),
    }));
    const results = await Promise.all(
      duties.map(async (duty) => ({
        duty,
        outcomes: await Promise.allSettled(
          racers.map((racer) =>
            racer.signMessage(V0, duty.digest, {
              dutyType: duty.dutyType,
              slot: duty.slot,
              blockNumber: duty.slot,
              ...(duty.dutyType === 'BLOCK_PROPOSAL' ? { blockIndexWithinCheckpoint: 0 } : {}),
            }),
          ),
        ),
      })),
    );
    const rows = await dutyRows(databaseUrl, V0);
    for (const { duty, outcomes } of results) {
      const signed = outcomes.filter((o): o is PromiseFulfilledResult<string> => o.status === 'fulfilled');
      expect(
        signed,
        `slot ${duty.slot}: ${JSON.stringify(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok')))}`,
      ).toHaveLength(1);
      for (const other of outcomes.filter((o) => o.status === 'rejected'))
        expect((other as PromiseRejectedResult).reason.name).toBe('DutyAlreadySignedError');
      expect((await recoverMessageAddress({ message: { raw: duty.digest }, signature: signed[0]!.value as Hex })).toLowerCase()).toBe(V0);
      const row = rows.filter((r) => r.slot === String(duty.slot) && r.duty_type === duty.dutyType);
      expect(row).toEqual([expect.objectContaining({ status: 'signed', message_hash: duty.digest, signature: signed[0]!.value })]);
      expect(row[0]!.node_id).toMatch(/^aztec-[abc]$/);
    }
  });

  it('answers many concurrent claim lookups (coalesced into shared statements) each with its own claim', async () => {
    const url = rpcUrl(replicas[1]!, 'any');
    const claimed = Array.from({ length: 12 }, (_, i) => digest(`race-${i}`));
    const unclaimed = Array.from({ length: 12 }, (_, i) => digest(`never-claimed-${i}`));
    const calls = [...claimed, ...claimed, ...unclaimed, ...claimed].map(async (data) => ({
      data,
      answer: await rpc(url, 'eth_sign', [V0, data]),
    }));
    for (const { data, answer } of await Promise.all(calls)) {
      if (claimed.includes(data))
        expect((await recoverMessageAddress({ message: { raw: data }, signature: answer.body.result as Hex })).toLowerCase()).toBe(V0);
      else expect(answer.body.error).toMatchObject({ code: -32010 });
    }
  });

  it('refuses a consensus digest from a node with HA off (no claim), naming what to configure; writes nothing', async () => {
    const noha = await node('noha', replicas[1]!, false);
    const before = (await dutyRows(databaseUrl)).length;
    const error = await noha
      .signMessage(V2, digest('unclaimed-proposal'), {
        dutyType: 'BLOCK_PROPOSAL',
        slot: 300n,
        blockNumber: 1n,
        blockIndexWithinCheckpoint: 0,
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'SignerError', errorCode: -32010 });
    expect(String((error as Error).message)).toMatch(/no duty claim .*VALIDATOR_HA_SIGNING_ENABLED=true.*allowUnclaimedDigests/);
    expect((await dutyRows(databaseUrl)).length).toBe(before);
    expect(
      await metricValue(replicas[1]!.url, 'ha_signer_jsonrpc_requests_total', { method: 'eth_sign', outcome: 'not_claimed' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it("does not sign node A's claim for node B, nor for another validator", async () => {
    const a = nodes.find((n) => n.nodeId === 'aztec-a')!;
    const b = nodes.find((n) => n.nodeId === 'aztec-b')!;
    const claimed = digest('claimed-by-a');
    // Node A's HA signer claims the duty, but the signature is asked through B's credential.
    const stolen = await StockNode.start({ nodeId: 'aztec-a', url: b.url, rollup: ROLLUP, databaseUrl });
    nodes.push(stolen);
    const error = await stolen.signMessage(V0, claimed, { dutyType: 'ATTESTATION', slot: 400n, blockNumber: 1n }).catch((e: unknown) => e);
    expect(error).toMatchObject({ errorCode: -32011 });
    expect(String((error as Error).message)).toMatch(/held by node aztec-a, not one of this client's node ids/);
    // A claims a hash for V0 and, holding that claim, asks for V1's signature over it: no claim covers V1.
    const other = await a
      .signMessage(V0, digest('claimed-for-v0'), { dutyType: 'ATTESTATION', slot: 401n, blockNumber: 1n }, V1)
      .catch((e: unknown) => e);
    expect(other).toMatchObject({ errorCode: -32010 });
  });

  it("protects votes itself when the node has HA off, and honours an HA node's own vote claim", async () => {
    const noha = nodes.find((n) => n.nodeId === 'aztec-noha')!;
    const signal = (payload: string, slot: bigint) => ({
      domain: { name: 'EmpireBase', version: '1', chainId: CHAIN_ID, verifyingContract: `0x${'9'.repeat(40)}` as Hex },
      types: {
        Signal: [
          { name: 'payload', type: 'address' },
          { name: 'slot', type: 'uint256' },
          { name: 'instance', type: 'address' },
        ],
      },
      primaryType: 'Signal' as const,
      message: { payload, slot, instance: ROLLUP },
    });
    const first = signal(`0x${'1'.repeat(40)}`, 500n);
    const signature = await noha.signTypedData(V2, first, { dutyType: 'GOVERNANCE_VOTE', slot: 500n });
    expect((await recoverAddress({ hash: hashTypedData(first), signature: signature as Hex })).toLowerCase()).toBe(V2);
    const repeat = await noha.signTypedData(V2, first, { dutyType: 'GOVERNANCE_VOTE', slot: 500n });
    expect(repeat).toBe(signature);
    const conflict = await noha
      .signTypedData(V2, signal(`0x${'2'.repeat(40)}`, 500n), { dutyType: 'GOVERNANCE_VOTE', slot: 500n })
      .catch((e: unknown) => e);
    expect(conflict).toMatchObject({ errorCode: -32012 });
    const rows = (await dutyRows(databaseUrl, V2)).filter((r) => r.slot === '500');
    expect(rows).toEqual([
      expect.objectContaining({ duty_type: 'GOVERNANCE_VOTE', status: 'signed', message_hash: hashTypedData(first), signature }),
    ]);
    expect(rows[0]!.node_id).toMatch(/^replica-/);

    // Slashing votes (TallySlashingProposer Vote) the same way.
    const vote = (votes: Hex) => ({
      domain: { name: 'TallySlashingProposer', version: '1', chainId: CHAIN_ID, verifyingContract: `0x${'8'.repeat(40)}` as Hex },
      types: {
        Vote: [
          { name: 'votes', type: 'bytes' },
          { name: 'slot', type: 'uint256' },
        ],
      },
      primaryType: 'Vote' as const,
      message: { votes, slot: 501n },
    });
    await noha.signTypedData(V2, vote('0x0102'), { dutyType: 'SLASHING_VOTE', slot: 501n });
    expect(await noha.signTypedData(V2, vote('0x0103'), { dutyType: 'SLASHING_VOTE', slot: 501n }).catch((e: unknown) => e)).toMatchObject({
      errorCode: -32012,
    });

    // An HA node claims its vote first (its own row, its node id): the signer honours that claim.
    const b = nodes.find((n) => n.nodeId === 'aztec-b')!;
    const own = signal(`0x${'3'.repeat(40)}`, 502n);
    await b.signTypedData(V2, own, { dutyType: 'GOVERNANCE_VOTE', slot: 502n });
    expect((await dutyRows(databaseUrl, V2)).filter((r) => r.slot === '502')).toEqual([
      expect.objectContaining({ node_id: 'aztec-b', status: 'signed' }),
    ]);
  });

  it('signs "Aztec Rollup" typed consensus data only under a claim of the matching duty type, rollup and chain', async () => {
    const c = nodes.find((n) => n.nodeId === 'aztec-c')!;
    const proposal = (payloadHash: Hex, primaryType = 'BlockProposal', verifyingContract: string = ROLLUP) => ({
      domain: { name: 'Aztec Rollup', version: '1', chainId: CHAIN_ID, verifyingContract: verifyingContract as Hex },
      types: { [primaryType]: [{ name: 'payloadHash', type: 'bytes32' }] },
      primaryType,
      message: { payloadHash },
    });
    const typed = proposal(digest('typed-proposal'));
    const signature = await c.signTypedData(V0, typed as never, {
      dutyType: 'BLOCK_PROPOSAL',
      slot: 600n,
      blockNumber: 1n,
      blockIndexWithinCheckpoint: 0,
    });
    expect((await recoverAddress({ hash: hashTypedData(typed as never), signature: signature as Hex })).toLowerCase()).toBe(V0);
    // Claimed as an attestation, asked as a block proposal: refused.
    const mismatch = await c
      .signTypedData(V0, proposal(digest('typed-mismatch')) as never, { dutyType: 'ATTESTATION', slot: 601n, blockNumber: 1n })
      .catch((e: unknown) => e);
    expect(mismatch).toMatchObject({ errorCode: -32011 });
    const otherRollup = await c
      .signTypedData(V0, proposal(digest('typed-rollup'), 'BlockProposal', `0x${'7'.repeat(40)}`) as never, {
        dutyType: 'BLOCK_PROPOSAL',
        slot: 602n,
        blockNumber: 1n,
        blockIndexWithinCheckpoint: 0,
      })
      .catch((e: unknown) => e);
    expect(String(otherRollup)).toMatch(/verifyingContract .* is not the bound rollup/);
  });

  it('signs an unclaimed digest only for a client that opted in, and counts it', async () => {
    const auth = await node('auth', replicas[2]!, false);
    const handshake = digest('p2p-auth-request');
    const signature = await auth.signMessage(V3(), handshake, { dutyType: 'AUTH_REQUEST', slot: 0n });
    expect((await recoverMessageAddress({ message: { raw: handshake }, signature: signature as Hex })).toLowerCase()).toBe(V3());
    expect(
      await metricValue(replicas[2]!.url, 'ha_signer_jsonrpc_requests_total', { method: 'eth_sign', outcome: 'signed_unclaimed' }),
    ).toBe(1);
    expect((await dutyRows(databaseUrl, V3())).length).toBe(0);
  });

  it('signs EIP-1559 transactions only for a client with allowTransactions', async () => {
    const tx = {
      type: 'eip1559' as const,
      chainId: CHAIN_ID,
      to: `0x${'5'.repeat(40)}` as Hex,
      nonce: 3,
      gas: 21_000n,
      maxFeePerGas: 10n ** 9n,
      maxPriorityFeePerGas: 10n ** 8n,
      value: 1n,
    };
    const noha = nodes.find((n) => n.nodeId === 'aztec-noha')!;
    expect(await noha.signTransaction(V3(), tx).catch((e: unknown) => e)).toMatchObject({ errorCode: -32013 });
    const publisher = await node('publisher', replicas[0]!, false);
    const answer = await rpc(rpcUrl(replicas[0]!, 'publisher'), 'eth_signTransaction', [
      { from: V3(), to: tx.to, nonce: '0x3', gas: '0x5208', maxFeePerGas: '0x3b9aca00', maxPriorityFeePerGas: '0x5f5e100', value: '0x1' },
    ]);
    expect((await recoverTransactionAddress({ serializedTransaction: answer.body.result as never })).toLowerCase()).toBe(V3());
    await expect(publisher.signTransaction(V3(), tx)).resolves.toMatch(/^0x/);
  });

  it('applies client-list changes and revocations on running replicas without a restart', async () => {
    const late = (replica: SignerReplica) => rpc(rpcUrl(replica, 'late'), 'eth_accounts', []);
    for (const replica of replicas) expect((await late(replica)).status).toBe(401);
    await writeClients([...CLIENTS.filter((c) => c.name !== 'aztec-c'), clientEntry('late')]);
    await until(async () => (await Promise.all(replicas.map(late))).every((a) => a.status === 200));
    // aztec-c is revoked everywhere.
    await until(async () =>
      (await Promise.all(replicas.map((r) => rpc(rpcUrl(r, 'c'), 'eth_accounts', [])))).every((a) => a.status === 401),
    );
  });

  it('never logs a client secret, and never echoes it in an answer', async () => {
    const wrong = await call(replicas[0]!.url, `/jsonrpc/${'z'.repeat(40)}`, {
      body: { jsonrpc: '2.0', id: 1, method: 'eth_accounts', params: [] },
    });
    expect(JSON.stringify(wrong.body)).not.toContain('z'.repeat(40));
    const long = `${SECRETS.a}${'q'.repeat(120)}`;
    const tooLong = await call(replicas[0]!.url, `/jsonrpc/${long}`, {
      body: { jsonrpc: '2.0', id: 1, method: 'eth_accounts', params: [] },
    });
    expect(tooLong.status).toBe(400);
    expect(JSON.stringify(tooLong.body)).not.toContain(SECRETS.a);
    const bad = await call(replicas[0]!.url, `/jsonrpc/${SECRETS.a}%zz`, {
      body: { jsonrpc: '2.0', id: 1, method: 'eth_accounts', params: [] },
    });
    expect(JSON.stringify(bad.body)).not.toContain(SECRETS.a);
    for (const replica of replicas) {
      const log = await readFile(join(fixture.dir, `${replica.nodeId}.log`), 'utf8');
      for (const secret of Object.values(SECRETS)) expect(log).not.toContain(secret);
      expect(log).not.toContain('z'.repeat(40));
    }
  });
});

function V3(): string {
  return KEYS[3]!.address;
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

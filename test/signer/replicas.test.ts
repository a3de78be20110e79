/**
 * Three real `ha-signer serve` processes on one real PostgreSQL, exercised over HTTP: one signature per duty across
 * replicas under concurrent requests, the 409 answers, authentication, malformed input, audit reads, health,
 * metrics, the JSON-RPC switch and the client's failover.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { recoverMessageAddress, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteHASigner, RemoteSignerError } from '../../src/client/index.js';
import { freePort } from '../../src/dev/embedded-postgres.js';
import type { SignerReplica } from '../../src/demo/replicas.js';
import { DutyAlreadySignedError, SlashingProtectionError } from '../../src/protection/index.js';
import { createTestDatabase } from '../support/postgres.js';
import {
  KEYS,
  ROLLUP,
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
let replicas: SignerReplica[];

beforeAll(async () => {
  databaseUrl = await migratedDatabase(await createTestDatabase('signer_replicas'));
  fixture = await signerFixture(databaseUrl);
  replicas = await Promise.all([
    fixture.start('replica-0', { HA_SIGNER_JSONRPC_ENABLED: 'true' }),
    fixture.start('replica-1'),
    fixture.start('replica-2'),
  ]);
});

afterAll(async () => {
  await fixture?.stopAll();
});

const signPath = (address: string): string => `/v1/validators/${address}/sign`;

describe('three serve replicas on one database', () => {
  it('signs each duty exactly once across replicas under concurrent requests', async () => {
    const validator = KEYS[0]!.address;
    const dutyTypes = [
      'ATTESTATION',
      'BLOCK_PROPOSAL',
      'CHECKPOINT_PROPOSAL',
      'ATTESTATIONS_AND_SIGNERS',
      'GOVERNANCE_VOTE',
      'SLASHING_VOTE',
    ];
    const duties = Array.from({ length: 30 }, (_, i) => ({
      slot: 1_000 + i,
      dutyType: dutyTypes[i % dutyTypes.length]!,
      messageHash: hash(`concurrent-${i}`),
    }));
    // Every duty: two requests on each replica at once, as three HA validator nodes retrying would send them.
    const answers = await Promise.all(
      duties.map(async (duty) => ({
        duty,
        answers: await Promise.all(
          [...replicas, ...replicas].map((replica) =>
            call(replica.url, signPath(validator), { token: TOKENS.all, body: signBody(duty.slot, duty.messageHash, duty.dutyType) }),
          ),
        ),
      })),
    );
    const rows = await dutyRows(databaseUrl, validator);
    for (const { duty, answers: results } of answers) {
      const signed = results.filter((a) => a.status === 200);
      expect(signed, `duty ${duty.slot}`).toHaveLength(1);
      const signature = signed[0]!.body.signature as Hex;
      expect(signature).toMatch(/^0x[0-9a-f]{130}$/);
      expect((await recoverMessageAddress({ message: { raw: duty.messageHash }, signature })).toLowerCase()).toBe(validator);
      for (const other of results.filter((a) => a.status !== 200)) {
        expect(other.status).toBe(409);
        expect(other.body.error).toBe('DutyAlreadySigned');
        expect(other.body.signature).toBe(signature);
      }
      const recorded = rows.filter((row) => row.slot === String(duty.slot) && row.duty_type === duty.dutyType);
      expect(recorded).toHaveLength(1);
      expect(recorded[0]).toMatchObject({ status: 'signed', signature, message_hash: duty.messageHash });
    }
  });

  it('lets exactly one of three different payloads for a duty win; the others get 409 SlashingProtection', async () => {
    const validator = KEYS[0]!.address;
    for (let i = 0; i < 15; i++) {
      const slot = 2_000 + i;
      const hashes = replicas.map((_, r) => hash(`conflict-${i}-${r}`));
      const results = await Promise.all(
        replicas.map((replica, r) =>
          call(replica.url, signPath(validator), { token: TOKENS.all, body: signBody(slot, hashes[r]!, 'BLOCK_PROPOSAL') }),
        ),
      );
      const winners = results.flatMap((a, r) => (a.status === 200 ? [r] : []));
      expect(winners, `slot ${slot}: ${JSON.stringify(results)}`).toHaveLength(1);
      const winnerHash = hashes[winners[0]!]!;
      for (const [r, answer] of results.entries()) {
        if (r === winners[0]) continue;
        expect(answer.status).toBe(409);
        expect(answer.body).toMatchObject({
          error: 'SlashingProtection',
          existingMessageHash: winnerHash,
          attemptedMessageHash: hashes[r],
          slot: String(slot),
          dutyType: 'BLOCK_PROPOSAL',
        });
      }
      const rows = (await dutyRows(databaseUrl, validator)).filter((row) => row.slot === String(slot));
      expect(rows).toHaveLength(1);
      expect(rows[0]!.message_hash).toBe(winnerHash);
    }
  });

  it('answers repeats and conflicts with the 409 bodies of the API', async () => {
    const validator = KEYS[0]!.address;
    const [a, b, c] = replicas as [SignerReplica, SignerReplica, SignerReplica];
    const body = {
      messageHash: hash('shape'),
      signingMethod: 'personal',
      context: { dutyType: 'BLOCK_PROPOSAL', slot: '3000', blockNumber: '50', checkpointNumber: '7', blockIndexWithinCheckpoint: 2 },
    };
    const first = await call(a.url, signPath(validator), { token: TOKENS.all, body });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      signature: expect.stringMatching(/^0x[0-9a-f]{130}$/),
      validatorAddress: validator,
      dutyType: 'BLOCK_PROPOSAL',
      slot: '3000',
      nodeId: 'replica-0',
    });
    const repeat = await call(b.url, signPath(validator), { token: TOKENS.all, body });
    expect(repeat.status).toBe(409);
    expect(repeat.body).toEqual({
      error: 'DutyAlreadySigned',
      message: expect.stringContaining('already signed'),
      slot: '3000',
      dutyType: 'BLOCK_PROPOSAL',
      blockIndexWithinCheckpoint: 2,
      signedByNode: 'replica-0',
      signature: first.body.signature,
    });
    const conflict = await call(c.url, signPath(validator), { token: TOKENS.all, body: { ...body, messageHash: hash('shape-other') } });
    expect(conflict.status).toBe(409);
    expect(conflict.body).toEqual({
      error: 'SlashingProtection',
      message: expect.stringContaining('Slashing protection'),
      slot: '3000',
      dutyType: 'BLOCK_PROPOSAL',
      blockIndexWithinCheckpoint: 2,
      existingMessageHash: hash('shape'),
      attemptedMessageHash: hash('shape-other'),
      signedByNode: 'replica-0',
    });
    // Another block index of the same slot is another duty.
    const nextBlock = await call(c.url, signPath(validator), {
      token: TOKENS.all,
      body: { ...body, messageHash: hash('shape-other'), context: { ...body.context, blockIndexWithinCheckpoint: 3 } },
    });
    expect(nextBlock.status).toBe(200);
    // digest signing: a plain secp256k1 signature over the hash.
    const digest = await call(a.url, signPath(validator), {
      token: TOKENS.all,
      body: { messageHash: hash('digest'), signingMethod: 'digest', context: { dutyType: 'GOVERNANCE_VOTE', slot: 3001 } },
    });
    expect(digest.status).toBe(200);
    const { recoverAddress } = await import('viem');
    expect((await recoverAddress({ hash: hash('digest'), signature: digest.body.signature as Hex })).toLowerCase()).toBe(validator);
    expect(
      await metricValue(c.url, 'ha_signer_slashing_protection_triggered_total', { duty_type: 'BLOCK_PROPOSAL' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('authenticates callers: valid, missing, wrong and another validator’s token', async () => {
    const [a] = replicas as [SignerReplica];
    const own = KEYS[0]!.address;
    const other = KEYS[1]!.address;
    const deniedBefore = await metricValue(a.url, 'ha_signer_auth_denied_total');
    const body = signBody(4_000, hash('auth'));
    expect((await call(a.url, signPath(own), { body })).status).toBe(401);
    expect((await call(a.url, signPath(own), { body, token: 'wrong-token-but-long-enough-123' })).status).toBe(401);
    const basic = await fetch(`${a.url}${signPath(own)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${TOKENS.all}` },
      body: JSON.stringify(body),
    });
    expect(basic.status).toBe(401);
    const forbidden = await call(a.url, signPath(other), { body, token: TOKENS.first });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error).toBe('Forbidden');
    expect((await call(a.url, `/v1/validators/${other}/duties`, { token: TOKENS.first })).status).toBe(403);
    expect((await call(a.url, '/v1/validators', {})).status).toBe(401);
    expect((await call(a.url, '/v1/validators', { token: TOKENS.first })).body.validators).toEqual([own]);
    // Nothing was recorded for the denied calls.
    expect((await dutyRows(databaseUrl)).filter((row) => row.slot === '4000')).toHaveLength(0);
    const allowed = await call(a.url, signPath(own), { body, token: TOKENS.first });
    expect(allowed.status).toBe(200);
    expect(await metricValue(a.url, 'ha_signer_auth_denied_total')).toBe(deniedBefore + 6);
    expect(await metricValue(a.url, 'ha_signer_auth_denied_total', { reason: 'forbidden' })).toBeGreaterThanOrEqual(2);
    // Denials are logged, tokens never.
    const log = await readFile(join(fixture.dir, 'replica-0.log'), 'utf8');
    expect(log).toContain('call denied');
    expect(log).not.toContain('wrong-token-but-long-enough-123');
    expect(log).not.toContain(TOKENS.first);
    expect(log).not.toContain(TOKENS.all);
  });

  it('answers every malformed input with 400 or 413, writes no row and keeps serving', async () => {
    const validator = KEYS[1]!.address;
    const good = { messageHash: hash('malformed'), context: { dutyType: 'ATTESTATION', slot: '5000' } };
    const ctx = (context: Record<string, unknown>): Record<string, unknown> => ({ ...good, context: { ...good.context, ...context } });
    const cases: { name: string; field: string; body?: unknown; rawBody?: string; contentType?: string; path?: string; status?: number }[] =
      [
        { name: 'short hash', field: 'messageHash', body: { ...good, messageHash: '0x1234' } },
        { name: 'long hash', field: 'messageHash', body: { ...good, messageHash: `${hash('x')}00` } },
        { name: 'hash without 0x', field: 'messageHash', body: { ...good, messageHash: hash('x').slice(2) } },
        { name: 'bad hex', field: 'messageHash', body: { ...good, messageHash: `0x${'zz'.repeat(32)}` } },
        { name: 'hash as number', field: 'messageHash', body: { ...good, messageHash: 5 } },
        { name: 'missing hash', field: 'messageHash', body: { context: good.context } },
        { name: 'unknown signing method', field: 'signingMethod', body: { ...good, signingMethod: 'eip712' } },
        { name: 'missing context', field: 'context', body: { messageHash: good.messageHash } },
        { name: 'unknown duty type', field: 'context.dutyType', body: ctx({ dutyType: 'PROPOSAL' }) },
        { name: 'lower-case duty type', field: 'context.dutyType', body: ctx({ dutyType: 'attestation' }) },
        { name: 'unprotected duty type', field: 'context.dutyType', body: ctx({ dutyType: 'AUTH_REQUEST' }) },
        { name: 'negative slot', field: 'context.slot', body: ctx({ slot: -1 }) },
        { name: 'negative slot string', field: 'context.slot', body: ctx({ slot: '-1' }) },
        { name: 'fractional slot', field: 'context.slot', body: ctx({ slot: 1.5 }) },
        { name: 'fractional slot string', field: 'context.slot', body: ctx({ slot: '1.5' }) },
        { name: 'exponent slot', field: 'context.slot', body: ctx({ slot: '1e3' }) },
        { name: 'unsafe integer slot', field: 'context.slot', body: ctx({ slot: 2 ** 53 + 2 }) },
        { name: 'slot beyond int64', field: 'context.slot', body: ctx({ slot: '9223372036854775808' }) },
        { name: 'missing slot', field: 'context.slot', body: { ...good, context: { dutyType: 'ATTESTATION' } } },
        { name: 'null slot', field: 'context.slot', body: ctx({ slot: null }) },
        {
          name: 'block proposal without block index',
          field: 'context.blockIndexWithinCheckpoint',
          body: ctx({ dutyType: 'BLOCK_PROPOSAL' }),
        },
        {
          name: 'negative block index',
          field: 'context.blockIndexWithinCheckpoint',
          body: ctx({ dutyType: 'BLOCK_PROPOSAL', blockIndexWithinCheckpoint: -1 }),
        },
        {
          name: 'fractional block index',
          field: 'context.blockIndexWithinCheckpoint',
          body: ctx({ dutyType: 'BLOCK_PROPOSAL', blockIndexWithinCheckpoint: 0.5 }),
        },
        { name: 'bad block number', field: 'context.blockNumber', body: ctx({ blockNumber: 'abc' }) },
        { name: 'negative checkpoint number', field: 'context.checkpointNumber', body: ctx({ checkpointNumber: -3 }) },
        { name: 'unknown field', field: 'foo', body: { ...good, foo: 1 } },
        { name: 'unknown context field', field: 'context.blockIndex', body: ctx({ blockIndex: 1 }) },
        {
          name: 'typed data with personal signing',
          field: 'typedData',
          body: { ...good, typedData: { types: {}, primaryType: 'X', domain: {}, message: {} } },
        },
        { name: 'array body', field: 'body', body: [] },
        { name: 'null body', field: 'body', rawBody: 'null' },
        { name: 'invalid JSON', field: 'body', rawBody: '{"messageHash": ' },
        { name: 'empty body', field: 'body', rawBody: '' },
        { name: 'text/plain', field: 'content-type', rawBody: JSON.stringify(good), contentType: 'text/plain' },
        { name: 'form encoded', field: 'content-type', rawBody: 'messageHash=0x00', contentType: 'application/x-www-form-urlencoded' },
        { name: 'short address', field: 'address', body: good, path: signPath('0x1234') },
        { name: 'non-hex address', field: 'address', body: good, path: signPath(`0x${'g'.repeat(40)}`) },
        { name: 'oversized body', field: 'body', body: { ...good, padding: 'x'.repeat(20_000) }, status: 413 },
      ];
    for (const [i, testCase] of cases.entries()) {
      const replica = replicas[i % replicas.length]!;
      const answer = await call(replica.url, testCase.path ?? signPath(validator), {
        token: TOKENS.all,
        ...(testCase.body !== undefined ? { body: testCase.body } : {}),
        ...(testCase.rawBody !== undefined ? { rawBody: testCase.rawBody } : {}),
        ...(testCase.contentType !== undefined ? { contentType: testCase.contentType } : {}),
      });
      expect(answer.status, `${testCase.name}: ${JSON.stringify(answer.body)}`).toBe(testCase.status ?? 400);
      expect(answer.body.error, testCase.name).toBe(testCase.status === 413 ? 'PayloadTooLarge' : 'InvalidRequest');
      expect(String(answer.body.message), testCase.name).toContain(testCase.field);
    }
    expect(await dutyRows(databaseUrl, validator)).toHaveLength(0);
    for (const replica of replicas) {
      expect(replica.running).toBe(true);
      expect((await call(replica.url, '/livez')).status).toBe(200);
    }
    // The same validator and slot still sign normally afterwards.
    expect((await call(replicas[0]!.url, signPath(validator), { token: TOKENS.all, body: good })).status).toBe(200);
  });

  it('lists validators and recorded duties, and answers 404 for a validator without a key here', async () => {
    const [a] = replicas as [SignerReplica];
    const listed = await call(a.url, '/v1/validators', { token: TOKENS.all });
    expect(listed.status).toBe(200);
    expect(listed.body).toMatchObject({ validators: KEYS.map((k) => k.address).sort(), nodeId: 'replica-0', rollupAddress: ROLLUP });
    const validator = KEYS[2]!.address;
    for (const slot of [6_000, 6_001, 6_002])
      expect((await call(a.url, signPath(validator), { token: TOKENS.all, body: signBody(slot, hash(`audit-${slot}`)) })).status).toBe(200);
    const duties = await call(a.url, `/v1/validators/${validator}/duties?fromSlot=6001&toSlot=6002`, { token: TOKENS.all });
    expect(duties.status).toBe(200);
    const list = duties.body.duties as Record<string, unknown>[];
    expect(list.map((d) => d.slot)).toEqual(['6001', '6002']);
    expect(list[0]).toMatchObject({
      dutyType: 'ATTESTATION',
      status: 'signed',
      messageHash: hash('audit-6001'),
      nodeId: 'replica-0',
      blockIndexWithinCheckpoint: -1,
      signature: expect.stringMatching(/^0x[0-9a-f]{130}$/),
    });
    expect((await call(a.url, `/v1/validators/${validator}/duties?fromSlot=7&toSlot=6`, { token: TOKENS.all })).status).toBe(400);
    expect((await call(a.url, `/v1/validators/${validator}/duties?fromSlot=-1`, { token: TOKENS.all })).status).toBe(400);
    const unknown = `0x${'ab'.repeat(20)}`;
    const answer = await call(a.url, signPath(unknown), { token: TOKENS.all, body: signBody(1, hash('unknown')) });
    expect(answer.status).toBe(404);
    expect(answer.body.error).toBe('UnknownValidator');
    expect((await call(a.url, '/v1/nothing')).status).toBe(404);
  });

  it('serves /livez, /readyz and Prometheus metrics with bounded labels', async () => {
    const [a] = replicas as [SignerReplica];
    expect((await call(a.url, '/livez')).status).toBe(200);
    const ready = await call(a.url, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ ready: true, checks: { database: true, schema: true, rollupBinding: true, keys: true } });
    const text = await (await fetch(`${a.url}/metrics`)).text();
    for (const name of [
      'ha_signer_sign_requests_total',
      'ha_signer_signing_duration_seconds',
      'ha_signer_lock_wait_duration_seconds',
      'ha_signer_db_pool_connections',
      'ha_signer_cleaned_up_duties_total',
      'ha_signer_duty_takeovers_total',
      'ha_signer_slashing_protection_triggered_total',
      'ha_signer_auth_denied_total',
      'ha_signer_ready',
    ]) {
      expect(text, name).toContain(`# TYPE ${name}`);
    }
    expect(text).toMatch(/ha_signer_sign_requests_total\{duty_type="ATTESTATION",outcome="signed"\} [1-9]/);
    expect(text).toMatch(/ha_signer_db_pool_connections\{state="total"\} [0-9]/);
    // No slot or address ever becomes a label value.
    expect(text).not.toMatch(/0x[0-9a-f]{40}/);
    expect(text).not.toMatch(/slot="/);
  });

  it('serves the protected Web3Signer-compatible JSON-RPC only where enabled, authenticated', async () => {
    const [withRpc, withoutRpc] = replicas as [SignerReplica, SignerReplica];
    const rpc = (method: string, params: unknown[]) => ({ jsonrpc: '2.0', id: 7, method, params });
    expect((await call(withoutRpc.url, '/', { token: TOKENS.all, body: rpc('eth_accounts', []) })).status).toBe(404);
    expect((await call(withRpc.url, '/', { body: rpc('eth_accounts', []) })).status).toBe(401);
    const accounts = await call(withRpc.url, '/', { token: TOKENS.first, body: rpc('eth_accounts', []) });
    expect(accounts.body).toEqual({ jsonrpc: '2.0', id: 7, result: [KEYS[0]!.address] });
    // A digest that a duty claim covers is signed; one no claim covers is refused (bearer callers cannot opt in).
    const claimed = hash('jsonrpc-claimed');
    expect((await call(withRpc.url, signPath(KEYS[0]!.address), { token: TOKENS.all, body: signBody(8_000, claimed) })).status).toBe(200);
    const signed = await call(withRpc.url, '/', { token: TOKENS.first, body: rpc('eth_sign', [KEYS[0]!.address, claimed]) });
    expect(signed.status).toBe(200);
    expect((await recoverMessageAddress({ message: { raw: claimed }, signature: signed.body.result as Hex })).toLowerCase()).toBe(
      KEYS[0]!.address,
    );
    const unclaimed = await call(withRpc.url, '/', {
      token: TOKENS.first,
      body: rpc('eth_sign', [KEYS[0]!.address, hash('jsonrpc-unclaimed')]),
    });
    expect(unclaimed.body.error).toMatchObject({ code: -32010, message: expect.stringContaining('no duty claim') });
    const forbidden = await call(withRpc.url, '/', { token: TOKENS.first, body: rpc('eth_sign', [KEYS[1]!.address, claimed]) });
    expect(forbidden.status).toBe(403);
    const typedData = {
      domain: { name: 'Test', version: '1', chainId: 1 },
      types: { Vote: [{ name: 'round', type: 'uint256' }] },
      primaryType: 'Vote',
      message: { round: '5' },
    };
    const typed = await call(withRpc.url, '/', {
      token: TOKENS.all,
      body: rpc('eth_signTypedData', [KEYS[0]!.address, JSON.stringify(typedData)]),
    });
    expect(typed.body.error).toMatchObject({ code: -32010, message: expect.stringContaining('is not an Aztec duty') });
    expect((await call(withRpc.url, '/', { token: TOKENS.all, body: rpc('eth_signTransaction', [{}]) })).body.error).toMatchObject({
      code: -32013,
    });
    expect((await call(withRpc.url, '/', { token: TOKENS.all, body: rpc('eth_newFilter', []) })).body.error).toMatchObject({
      code: -32601,
    });
  });

  it('RemoteHASigner fails over past a dead endpoint and maps 409 answers to the core errors', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const failovers: string[] = [];
    const client = new RemoteHASigner({
      endpoints: [dead, replicas[1]!.url, replicas[2]!.url],
      token: TOKENS.all,
      onFailover: ({ endpoint }) => failovers.push(endpoint),
    });
    const validator = KEYS[3]!.address;
    const context = { dutyType: 'BLOCK_PROPOSAL' as const, slot: 7_000n, blockNumber: 9n, blockIndexWithinCheckpoint: 0 };
    const signature = await client.signWithProtection(validator, hash('client'), context);
    expect((await recoverMessageAddress({ message: { raw: hash('client') }, signature })).toLowerCase()).toBe(validator);
    expect(failovers).toEqual([dead]);
    const again = await client.signWithProtection(validator, hash('client'), context).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(DutyAlreadySignedError);
    expect((again as DutyAlreadySignedError).signature).toBe(signature);
    expect((again as DutyAlreadySignedError).slot).toBe(7_000n);
    const conflict = await client.signWithProtection(validator, hash('client-2'), context).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(SlashingProtectionError);
    expect((conflict as SlashingProtectionError).existingMessageHash).toBe(hash('client'));
    const denied = await new RemoteHASigner({ endpoints: [replicas[0]!.url], token: 'not-a-valid-token-at-all' })
      .signWithProtection(validator, hash('x'), context)
      .catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(RemoteSignerError);
    expect((denied as RemoteSignerError).status).toBe(401);
    const unreachable = await new RemoteHASigner({ endpoints: [dead], maxRounds: 2, retryDelayMs: 10 })
      .signWithProtection(validator, hash('y'), context)
      .catch((e: unknown) => e);
    expect(unreachable).toBeInstanceOf(RemoteSignerError);
    expect((unreachable as RemoteSignerError).code).toBe('Unreachable');
  });
});

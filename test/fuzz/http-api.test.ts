/**
 * Property-based fuzzing of a running `serve` replica on the real PostgreSQL: thousands of generated requests to the
 * /v1 routes and the protected JSON-RPC (`POST /`), mixing valid inputs with every kind of wrong one. Properties:
 * only documented answers (200, 409 and the documented 4xx, each with its documented error name; JSON-RPC bodies
 * with a result or an error code), never a 5xx, the replica never exits, and rows are written only by a signature
 * (a 200, or a JSON-RPC vote that returned one): invalid input writes nothing. HA_SIGNER_FUZZ_RUNS scales the runs
 * (default 2,000 per route); HA_SIGNER_FUZZ_SEED replays a failure (fast-check prints seed and path).
 */
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SignerReplica } from '../../src/demo/replicas.js';
import { KEYS, TOKENS, migratedDatabase, signerFixture, type SignerFixture } from '../signer/support.js';
import { createTestDatabase } from '../support/postgres.js';
import {
  blockIndexArb,
  dutyTypeArb,
  hexDigits,
  junk,
  messageHashArb,
  numberLikeArb,
  partialWithExtra,
  randomAddress,
  validHash,
} from './arbitraries.js';

const RUNS = Number(process.env.HA_SIGNER_FUZZ_RUNS ?? '2000');
const SEED = process.env.HA_SIGNER_FUZZ_SEED === undefined ? undefined : Number(process.env.HA_SIGNER_FUZZ_SEED);
const params = { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}), endOnFailure: true };
const ERROR_NAMES: Record<number, string[]> = {
  400: ['InvalidRequest'],
  401: ['Unauthorized'],
  403: ['Forbidden'],
  404: ['UnknownValidator'],
  409: ['DutyAlreadySigned', 'SlashingProtection'],
  413: ['PayloadTooLarge'],
};

let fixture: SignerFixture;
let replica: SignerReplica;
let db: pg.Client;
const statuses: Record<string, Record<number, number>> = {};

beforeAll(async () => {
  const databaseUrl = await migratedDatabase(await createTestDatabase('fuzz_http'));
  fixture = await signerFixture(databaseUrl, { HA_SIGNER_JSONRPC_ENABLED: 'true', HA_SIGNER_L1_CHAIN_ID: '1' });
  replica = await fixture.start('fuzz-replica');
  db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
});

afterAll(async () => {
  console.log(`fuzz answers by route and status: ${JSON.stringify(statuses)}`);
  await db?.end();
  await fixture?.stopAll();
});

async function rowCount(): Promise<number> {
  return Number((await db.query<{ n: string }>('SELECT count(*)::text AS n FROM validator_duties')).rows[0]!.n);
}

function count(route: string, status: number): void {
  const byStatus = (statuses[route] ??= {});
  byStatus[status] = (byStatus[status] ?? 0) + 1;
}

interface Sent {
  status: number;
  text: string;
  json: unknown;
}

async function send(path: string, init: { method: string; token?: string; contentType?: string; body?: string }): Promise<Sent> {
  const headers: Record<string, string> = {};
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  if (init.contentType !== undefined) headers['content-type'] = init.contentType;
  const response = await fetch(`${replica.url}${path}`, {
    method: init.method,
    headers,
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}

const served = KEYS.map((k) => k.address);
const addressArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...served) },
  { weight: 1, arbitrary: fc.constantFrom(...served).map((a) => `0x${a.slice(2).toUpperCase()}`) },
  { weight: 1, arbitrary: randomAddress },
  { weight: 1, arbitrary: fc.string({ maxLength: 50 }).map((s) => (/^\.*$/.test(s) ? `${s}x` : encodeURIComponent(s))) },
  { weight: 1, arbitrary: fc.constantFrom('%zz', '%', '0x%00', '%252E%252E', '%2F', '0x') },
);
const tokenArb = fc.oneof(
  { weight: 8, arbitrary: fc.constant<string | undefined>(TOKENS.all) },
  { weight: 1, arbitrary: fc.constant<string | undefined>(TOKENS.first) },
  { weight: 1, arbitrary: fc.constantFrom<string | undefined>(undefined, '', 'wrong-token-0123456789', `${TOKENS.all}x`) },
);
const contentTypeArb = fc.oneof(
  { weight: 10, arbitrary: fc.constant<string | undefined>('application/json') },
  {
    weight: 1,
    arbitrary: fc.constantFrom<string | undefined>(
      undefined,
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=utf-16',
      'multipart/form-data',
      'application/jsonx',
    ),
  },
);

const contextArb = partialWithExtra(
  {
    dutyType: dutyTypeArb,
    slot: numberLikeArb,
    blockNumber: numberLikeArb,
    checkpointNumber: numberLikeArb,
    blockIndexWithinCheckpoint: blockIndexArb,
  },
  ['dutyType', 'slot'],
);
/** A valid request, or one with exactly one field of it replaced by junk or removed. */
const nearlyValidArb = fc
  .tuple(
    validHash,
    fc.constantFrom('BLOCK_PROPOSAL', 'CHECKPOINT_PROPOSAL', 'ATTESTATION', 'ATTESTATIONS_AND_SIGNERS', 'GOVERNANCE_VOTE', 'SLASHING_VOTE'),
    fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }), fc.bigInt({ min: 0n, max: 40n })),
    fc.integer({ min: 0, max: 5 }),
    fc.option(
      fc.tuple(
        fc.constantFrom('messageHash', 'signingMethod', 'dutyType', 'slot', 'blockNumber', 'blockIndexWithinCheckpoint'),
        fc.option(junk, { freq: 6 }),
      ),
      { freq: 1 },
    ),
  )
  .map(([messageHash, dutyType, slot, blockIndex, mutation]) => {
    const context: Record<string, unknown> = { dutyType, slot: String(slot), blockNumber: '7' };
    if (dutyType === 'BLOCK_PROPOSAL') context.blockIndexWithinCheckpoint = blockIndex;
    const body: Record<string, unknown> = { messageHash, signingMethod: 'personal', context };
    if (mutation) {
      const [field, value] = mutation;
      const target = field === 'messageHash' || field === 'signingMethod' ? body : context;
      if (value === null) delete target[field];
      else target[field] = value;
    }
    return JSON.stringify(body);
  });
const signBodyArb = fc.oneof(
  { weight: 10, arbitrary: nearlyValidArb },
  {
    weight: 12,
    arbitrary: partialWithExtra(
      {
        messageHash: messageHashArb,
        signingMethod: fc.oneof(fc.constantFrom('personal', 'digest', undefined), junk),
        context: fc.oneof({ weight: 8, arbitrary: contextArb }, { weight: 1, arbitrary: junk }),
        typedData: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: junk }),
      },
      ['messageHash', 'context'],
    ).map((body) => JSON.stringify(body)),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '{', '{"messageHash":', 'null', '[]', '{"__proto__":{"x":1}}', '{"constructor":{}}') },
  { weight: 1, arbitrary: fc.integer({ min: 16 * 1024 - 100, max: 20 * 1024 }).map((n) => JSON.stringify({ messageHash: 'x'.repeat(n) })) },
);

function expectDocumented(route: string, answer: Sent): void {
  count(route, answer.status);
  expect(answer.status, answer.text).toBeLessThan(500);
  if (answer.status === 200) return;
  const names = ERROR_NAMES[answer.status];
  expect(names, `undocumented status ${answer.status}: ${answer.text}`).toBeDefined();
  expect(names, answer.text).toContain((answer.json as { error?: unknown } | undefined)?.error);
}

it(`POST /v1/validators/:address/sign: ${RUNS} generated requests, only documented answers, rows only for signatures`, async () => {
  await fc.assert(
    fc.asyncProperty(addressArb, tokenArb, contentTypeArb, signBodyArb, async (address, token, contentType, body) => {
      const before = await rowCount();
      const answer = await send(`/v1/validators/${address}/sign`, {
        method: 'POST',
        ...(token !== undefined ? { token } : {}),
        ...(contentType !== undefined ? { contentType } : {}),
        body,
      });
      expectDocumented('sign', answer);
      expect((await rowCount()) - before, `rows written by ${answer.status}: ${answer.text}`).toBe(answer.status === 200 ? 1 : 0);
    }),
    params,
  );
  expect(replica.running).toBe(true);
  expect(statuses.sign?.[200] ?? 0, 'some generated requests are valid').toBeGreaterThan(0);
  expect(statuses.sign?.[400] ?? 0).toBeGreaterThan(0);
});

const queryValueArb = fc.oneof(numberLikeArb.map(String), fc.string({ maxLength: 20 }));
const queryArb = fc
  .dictionary(
    fc.oneof(fc.constantFrom('fromSlot', 'toSlot', 'limit'), fc.string({ minLength: 1, maxLength: 8 })),
    fc.oneof(queryValueArb, fc.array(queryValueArb, { maxLength: 3 })),
    { maxKeys: 4 },
  )
  .map((query) => {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) for (const v of [value].flat()) search.append(key, String(v));
    return search.toString();
  });

it(`GET /v1/validators/:address/duties and /v1/validators: ${Math.ceil(RUNS / 2)} generated requests, only documented answers, no row`, async () => {
  const before = await rowCount();
  await fc.assert(
    fc.asyncProperty(addressArb, tokenArb, queryArb, fc.boolean(), async (address, token, query, list) => {
      const answer = await send(list ? '/v1/validators' : `/v1/validators/${address}/duties?${query}`, {
        method: 'GET',
        ...(token !== undefined ? { token } : {}),
      });
      expectDocumented(list ? 'validators' : 'duties', answer);
    }),
    { ...params, numRuns: Math.ceil(RUNS / 2) },
  );
  expect(await rowCount()).toBe(before);
  expect(replica.running).toBe(true);
});

const typedDataArb = fc.record({
  types: fc.oneof(
    fc.constant({
      EIP712Domain: [
        { name: 'name', type: 'string' },
        { name: 'version', type: 'string' },
        { name: 'chainId', type: 'uint256' },
        { name: 'verifyingContract', type: 'address' },
      ],
      Signal: [
        { name: 'payload', type: 'address' },
        { name: 'slot', type: 'uint256' },
        { name: 'instance', type: 'address' },
      ],
      Vote: [
        { name: 'votes', type: 'bytes' },
        { name: 'slot', type: 'uint256' },
      ],
    }),
    junk,
  ),
  primaryType: fc.oneof(fc.constantFrom('Signal', 'Vote', 'BlockProposal', 'CheckpointAttestation', 'SignedTxs'), junk),
  domain: fc.oneof(
    fc.record({
      name: fc.oneof(fc.constantFrom('EmpireBase', 'TallySlashingProposer', 'Aztec Rollup'), junk),
      version: fc.constantFrom('1', '2'),
      chainId: fc.oneof(fc.constant(1), junk),
      verifyingContract: fc.oneof(randomAddress, junk),
    }),
    junk,
  ),
  message: fc.oneof(
    fc.record({ payload: fc.oneof(randomAddress, junk), slot: numberLikeArb, instance: fc.oneof(randomAddress, junk) }),
    fc.record({
      votes: fc.oneof(
        hexDigits(0, 40).map((h) => `0x${h}`),
        junk,
      ),
      slot: numberLikeArb,
    }),
    junk,
  ),
});
const paramsArb = fc.oneof(
  fc.tuple(addressArb, fc.oneof(validHash, messageHashArb)),
  fc.tuple(
    addressArb,
    fc.oneof(
      typedDataArb,
      typedDataArb.map((t) => JSON.stringify(t)),
    ),
  ),
  fc.tuple(fc.record({ from: addressArb, to: randomAddress, value: numberLikeArb, data: junk })),
  fc.jsonValue({ maxDepth: 3 }),
);
const rpcArb = fc.oneof(
  {
    weight: 10,
    arbitrary: partialWithExtra(
      {
        jsonrpc: fc.oneof({ weight: 8, arbitrary: fc.constant('2.0') }, { weight: 1, arbitrary: junk }),
        id: fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), fc.constant(null), junk),
        method: fc.oneof(
          {
            weight: 6,
            arbitrary: fc.constantFrom('eth_accounts', 'eth_sign', 'eth_signTypedData', 'eth_signTypedData_v4', 'eth_signTransaction'),
          },
          { weight: 1, arbitrary: fc.constantFrom('eth_sendTransaction', 'personal_sign', '__proto__', 'constructor', 'toString') },
          { weight: 1, arbitrary: junk },
        ),
        params: paramsArb,
      },
      ['jsonrpc', 'method'],
    ).map((b) => JSON.stringify(b)),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 100 }) },
);

it(`POST / (protected JSON-RPC): ${RUNS} generated calls, JSON-RPC answers only, no 5xx, no row without a signature`, async () => {
  await fc.assert(
    fc.asyncProperty(tokenArb, contentTypeArb, rpcArb, async (token, contentType, body) => {
      const before = await rowCount();
      const answer = await send('/', {
        method: 'POST',
        ...(token !== undefined ? { token } : {}),
        ...(contentType !== undefined ? { contentType } : {}),
        body,
      });
      count('jsonrpc', answer.status);
      expect(answer.status, answer.text).toBeLessThan(500);
      const rpc = answer.json as { jsonrpc?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } } | undefined;
      if (answer.status === 413) return expect(answer.text).toMatch(/PayloadTooLarge|too large/i);
      expect(rpc?.jsonrpc, answer.text).toBe('2.0');
      if (rpc?.error !== undefined) {
        expect(Number.isInteger(rpc.error.code), answer.text).toBe(true);
        expect(typeof rpc.error.message, answer.text).toBe('string');
      } else expect(rpc, answer.text).toHaveProperty('result');
      const written = (await rowCount()) - before;
      const signedVote = rpc?.result !== undefined && /"eth_signTypedData/.test(body);
      expect(written, `rows written: ${answer.text} for ${body}`).toBe(signedVote ? written : 0);
      expect(written).toBeLessThanOrEqual(1);
    }),
    params,
  );
  expect(replica.running).toBe(true);
});

/** The chaos checks themselves can fail: fabricated logs and rows with each kind of violation are reported. */
import { type Hex, keccak256, stringToHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { expect, it } from 'vitest';
import { type SignedRow, checkRefusals, checkReleased, compareSnapshot, recoveryTimes } from './checks.js';
import { KEYS } from './environment.js';
import { type Attempt, type Duty, dutyKey } from './workload.js';

const account = privateKeyToAccount(KEYS[0]!.privateKey);
const duty: Duty = { validator: KEYS[0]!.address, slot: 5, dutyType: 'ATTESTATION', blockIndex: -1 };
const key = dutyKey(duty);
const hashA = keccak256(stringToHex('a'));
const hashB = keccak256(stringToHex('b'));

async function released(messageHash: Hex, client = 'ha-1'): Promise<Attempt> {
  const signature = (await account.signMessage({ message: { raw: messageHash } })).toLowerCase();
  return { client, key, duty, messageHash, replica: 'r', start: 0, end: 1, outcome: 'signed', signature, status: 200 };
}

const row = (attempt: Attempt): SignedRow => ({ key, messageHash: attempt.messageHash, signature: attempt.signature!, status: 'signed' });

it('accepts released signatures that match the recorded row', async () => {
  const a = await released(hashA);
  expect(await checkReleased([a, { ...a, client: 'ha-2', outcome: 'already-signed' }], new Map([[key, row(a)]]))).toEqual([]);
});

it('reports two released signatures over different hashes, and a release the database does not hold', async () => {
  const a = await released(hashA);
  const b = await released(hashB, 'ha-2');
  const checks = (await checkReleased([a, b], new Map([[key, row(a)]]))).map((v) => v.check);
  expect(checks).toContain('two released signatures over different hashes');
  expect(checks).toContain('released signature not recorded as signed with that signature');
});

it('reports a released signature that does not recover to the validator', async () => {
  const a = await released(hashA);
  const forged = { ...a, duty: { ...duty, validator: KEYS[1]!.address } };
  const checks = (await checkReleased([forged], new Map([[key, row(a)]]))).map((v) => v.check);
  expect(checks).toContain('released signature does not recover to the validator');
});

it('reports a recorded duty that was lost or changed', async () => {
  const a = await released(hashA);
  const before = new Map([[key, row(a)]]);
  expect(compareSnapshot(before, new Map(), 'x')[0]!.check).toBe('recorded duty lost');
  expect(compareSnapshot(before, new Map([[key, { ...row(a), messageHash: hashB }]]), 'x')[0]!.check).toBe('recorded duty changed');
  expect(compareSnapshot(before, new Map(before), 'x')).toEqual([]);
});

it('measures recovery from the fault end to the next signature, and flags a fault without one', async () => {
  const a = await released(hashA);
  const faults = [
    { kind: 'replica-kill' as const, start: 0, end: 100, detail: '' },
    { kind: 'replica-kill' as const, start: 0, end: 500, detail: '' },
  ];
  const { perFault, stats } = recoveryTimes(faults, [{ ...a, end: 130 }], 10_000);
  expect(perFault).toEqual([30, undefined]);
  expect(stats).toEqual([{ kind: 'replica-kill', count: 2, p50: 30, max: 30, unrecovered: 1, replicaP50: null, replicaMax: null }]);
});

it("measures the recovery of the replica a fault hit from that replica's own signatures", async () => {
  const a = await released(hashA);
  const fault = { kind: 'replica-kill' as const, start: 0, end: 100, detail: '', replica: 'r2' };
  const attempts = [
    { ...a, replica: 'http://r1', end: 130 },
    { ...a, replica: 'http://r2', end: 400 },
  ];
  const { perFault, replicaPerFault, stats } = recoveryTimes([fault], attempts, 10_000, (url) => url.replace('http://', ''));
  expect(perFault).toEqual([30]);
  expect(replicaPerFault).toEqual([300]);
  expect(stats[0]).toMatchObject({ p50: 30, replicaP50: 300, replicaMax: 300 });
});

it('reports a DutyAlreadySigned that hides a signature over another hash, and a SlashingProtection for the signed hash', async () => {
  const a = await released(hashA);
  const rows = new Map([[key, row(a)]]);
  const refused = (outcome: Attempt['outcome'], messageHash: Hex): Attempt => ({ ...a, outcome, messageHash, signature: undefined });
  expect(checkRefusals([refused('already-signed', hashA), refused('slashing-protection', hashB)], rows)).toEqual([]);
  expect(checkRefusals([refused('already-signed', hashB)], rows).map((v) => v.check)).toEqual([
    'DutyAlreadySigned hides a slashing-protection event (signed over another hash)',
  ]);
  expect(checkRefusals([refused('slashing-protection', hashA)], rows).map((v) => v.check)).toEqual([
    'SlashingProtection answered for the hash that was signed',
  ]);
  expect(checkRefusals([refused('already-signed', hashA)], new Map()).map((v) => v.check)).toEqual([
    'already-signed answered for a duty that is not signed',
  ]);
});

/** Which Aztec duty a typed-data request is, from its domain and primary type (pure; no database). */
import { describe, expect, it } from 'vitest';
import { DutyType } from '../../src/protection/index.js';
import { TypedDataRefusal, classifyTypedData } from '../../src/signer/aztec-typed-data.js';

const ROLLUP = `0x${'a1'.repeat(20)}`;
const GOVERNANCE_PROPOSER = `0x${'b2'.repeat(20)}`;
const SLASHING_PROPOSER = `0x${'c3'.repeat(20)}`;
const rules = { rollupAddress: ROLLUP, chainId: 11155111n, slashingProposerAddress: SLASHING_PROPOSER };

const signal = (verifyingContract: string, chainId: number | string = 11155111) => ({
  domain: { name: 'EmpireBase', version: '1', chainId, verifyingContract },
  types: {
    Signal: [
      { name: 'payload', type: 'address' },
      { name: 'slot', type: 'uint256' },
      { name: 'instance', type: 'address' },
    ],
  },
  primaryType: 'Signal',
  message: { payload: `0x${'11'.repeat(20)}`, slot: '77', instance: ROLLUP },
});
const consensus = (primaryType: string, verifyingContract = ROLLUP, chainId: number = 11155111) => ({
  domain: { name: 'Aztec Rollup', version: '1', chainId, verifyingContract },
  types: { [primaryType]: [{ name: 'payloadHash', type: 'bytes32' }] },
  primaryType,
  message: { payloadHash: `0x${'22'.repeat(32)}` },
});

describe('classifyTypedData', () => {
  it('tells a governance Signal from an empire slashing Signal by verifyingContract, and reads the slot', () => {
    expect(classifyTypedData(signal(GOVERNANCE_PROPOSER) as never, rules)).toEqual({
      kind: 'vote',
      dutyType: DutyType.GOVERNANCE_VOTE,
      slot: 77n,
    });
    expect(classifyTypedData(signal(SLASHING_PROPOSER.toUpperCase().replace('0X', '0x')) as never, rules)).toEqual({
      kind: 'vote',
      dutyType: DutyType.SLASHING_VOTE,
      slot: 77n,
    });
    expect(classifyTypedData(signal(SLASHING_PROPOSER) as never, { ...rules, slashingProposerAddress: undefined })).toMatchObject({
      dutyType: DutyType.GOVERNANCE_VOTE,
    });
    const vote = {
      domain: { name: 'TallySlashingProposer', version: '1', chainId: 11155111, verifyingContract: SLASHING_PROPOSER },
      types: {
        Vote: [
          { name: 'votes', type: 'bytes' },
          { name: 'slot', type: 'uint256' },
        ],
      },
      primaryType: 'Vote',
      message: { votes: '0x01', slot: 9n },
    };
    expect(classifyTypedData(vote as never, rules)).toEqual({ kind: 'vote', dutyType: DutyType.SLASHING_VOTE, slot: 9n });
  });

  it('refuses a vote for another chain and one without a usable slot', () => {
    expect(() => classifyTypedData(signal(GOVERNANCE_PROPOSER, 1) as never, rules)).toThrow(/chainId 1 is not the rollup's chain 11155111/);
    expect(() => classifyTypedData({ ...signal(GOVERNANCE_PROPOSER), message: { slot: 'x' } } as never, rules)).toThrow(TypedDataRefusal);
  });

  it('maps Aztec Rollup primary types to duties, only for the bound rollup and chain, and only with a chain id configured', () => {
    expect(classifyTypedData(consensus('BlockProposal') as never, rules)).toEqual({ kind: 'consensus', dutyType: DutyType.BLOCK_PROPOSAL });
    expect(classifyTypedData(consensus('CheckpointProposal') as never, rules)).toEqual({
      kind: 'consensus',
      dutyType: DutyType.CHECKPOINT_PROPOSAL,
    });
    expect(classifyTypedData(consensus('CheckpointAttestation') as never, rules)).toEqual({
      kind: 'consensus',
      dutyType: DutyType.ATTESTATION,
    });
    expect(classifyTypedData(consensus('AttestationsAndSigners') as never, rules)).toEqual({
      kind: 'consensus',
      dutyType: DutyType.ATTESTATIONS_AND_SIGNERS,
    });
    expect(classifyTypedData(consensus('SignedTxs') as never, rules)).toEqual({ kind: 'unprotected', primaryType: 'SignedTxs' });
    expect(() => classifyTypedData(consensus('Something') as never, rules)).toThrow(/not a known duty/);
    expect(() => classifyTypedData(consensus('BlockProposal', GOVERNANCE_PROPOSER) as never, rules)).toThrow(/not the bound rollup/);
    expect(() => classifyTypedData(consensus('BlockProposal', ROLLUP, 1) as never, rules)).toThrow(/not the rollup's chain/);
    expect(() => classifyTypedData(consensus('BlockProposal') as never, { ...rules, chainId: undefined })).toThrow(/HA_SIGNER_L1_CHAIN_ID/);
  });

  it('refuses typed data of any other domain', () => {
    expect(() =>
      classifyTypedData({ domain: { name: 'Permit' }, types: { Permit: [] }, primaryType: 'Permit', message: {} } as never, rules),
    ).toThrow(/is not an Aztec duty/);
  });
});

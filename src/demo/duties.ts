/** The demo's workload: which duties each slot has, and what each simulated validator node signs for them. */
import { type Hex, hashTypedData, keccak256, stringToHex } from 'viem';
import { DutyType } from '../protection/index.js';

export const ROLLUP = '0x000000000000000000000000000000000000de30';
/** Every EQUIVOCATION_EVERY-th slot, node-2 builds a different block 0 than its peers (a real HA hazard). */
export const EQUIVOCATION_EVERY = 3;

export interface Duty {
  key: string;
  validator: string;
  slot: number;
  dutyType: DutyType;
  blockIndexWithinCheckpoint?: number;
  vote: boolean;
}

export const dutyKey = (validator: string, slot: number | string, dutyType: string, blockIndex: number): string =>
  `${validator}/${slot}/${dutyType}/${blockIndex}`;

export function dutiesOfSlot(slot: number, validators: string[]): Duty[] {
  const duties: Duty[] = [];
  const add = (validator: string, dutyType: DutyType, blockIndexWithinCheckpoint?: number): void => {
    duties.push({
      // The database stores -1 as the block index of duties that have none.
      key: dutyKey(validator, slot, dutyType, blockIndexWithinCheckpoint ?? -1),
      validator,
      slot,
      dutyType,
      ...(blockIndexWithinCheckpoint !== undefined ? { blockIndexWithinCheckpoint } : {}),
      vote: dutyType === DutyType.GOVERNANCE_VOTE || dutyType === DutyType.SLASHING_VOTE,
    });
  };
  const proposer = validators[slot % validators.length]!;
  for (let index = 0; index < 3; index++) add(proposer, DutyType.BLOCK_PROPOSAL, index);
  add(proposer, DutyType.CHECKPOINT_PROPOSAL);
  add(proposer, DutyType.ATTESTATIONS_AND_SIGNERS);
  for (const validator of validators) add(validator, DutyType.ATTESTATION);
  if (slot % 4 === 0) {
    add(proposer, DutyType.GOVERNANCE_VOTE);
    add(proposer, DutyType.SLASHING_VOTE);
  }
  return duties;
}

/** What a node signs for a duty: a hash (EIP-191 personal) or EIP-712 typed data (digest) for votes. */
export function payloadOf(duty: Duty, nodeIndex: number): { messageHash: Hex; typedData?: ReturnType<typeof voteTypedData> } {
  if (duty.vote) {
    const typedData = voteTypedData(duty);
    return { messageHash: hashTypedData(typedData), typedData };
  }
  const divergent =
    duty.dutyType === DutyType.BLOCK_PROPOSAL &&
    duty.blockIndexWithinCheckpoint === 0 &&
    duty.slot % EQUIVOCATION_EVERY === 0 &&
    nodeIndex === 2;
  return { messageHash: keccak256(stringToHex(`${ROLLUP}/${duty.key}${divergent ? '/another-block' : ''}`)) };
}

function voteTypedData(duty: Duty) {
  return {
    domain: { name: 'Demo Governance', version: '1', chainId: 31337, verifyingContract: ROLLUP as Hex },
    types: {
      Vote: [
        { name: 'slot', type: 'uint256' },
        { name: 'kind', type: 'string' },
        { name: 'validator', type: 'address' },
      ],
    },
    primaryType: 'Vote' as const,
    message: { slot: String(duty.slot), kind: duty.dutyType, validator: duty.validator as Hex },
  };
}

/** The signing context RemoteHASigner sends for a duty. */
export function contextOf(duty: Duty) {
  return {
    dutyType: duty.dutyType,
    slot: BigInt(duty.slot),
    blockNumber: BigInt(duty.slot * 3 + (duty.blockIndexWithinCheckpoint ?? 0)),
    checkpointNumber: BigInt(duty.slot),
    ...(duty.blockIndexWithinCheckpoint !== undefined ? { blockIndexWithinCheckpoint: duty.blockIndexWithinCheckpoint } : {}),
  };
}

/**
 * What an Aztec node asks to sign as EIP-712 typed data, recognised from its domain and primary type (verified in
 * Aztec's source and the published @aztec/ethereum 4.1.2):
 * - consensus duties (newer Aztec, "make proposals EIP-712"): domain name "Aztec Rollup", verifyingContract = the
 *   rollup; primary types BlockProposal, CheckpointProposal, CheckpointAttestation, AttestationsAndSigners (and
 *   SignedTxs, which Aztec does not protect);
 * - governance votes: `Signal(address payload,uint256 slot,address instance)`, domain "EmpireBase", verifyingContract
 *   = the governance proposer (an empire-model slashing proposer signs the same type, told apart by its address);
 * - slashing votes: `Vote(bytes votes,uint256 slot)`, domain "TallySlashingProposer".
 */
import type { TypedDataDefinition } from 'viem';
import { DutyType, InvalidDutyInputError, toUint64 } from '../protection/index.js';

export type TypedDataKind =
  | { kind: 'consensus'; dutyType: DutyType }
  | { kind: 'vote'; dutyType: DutyType.GOVERNANCE_VOTE | DutyType.SLASHING_VOTE; slot: bigint }
  | { kind: 'unprotected'; primaryType: string };

export interface TypedDataRules {
  rollupAddress: string;
  /** L1 chain id of the rollup; required for consensus typed data, checked for votes when set. */
  chainId: bigint | undefined;
  /** Address of an empire-model slashing proposer: its `Signal`s are slashing votes, not governance votes. */
  slashingProposerAddress: string | undefined;
}

/** Typed data this signer will not sign, with the reason. */
export class TypedDataRefusal extends Error {}

const CONSENSUS_TYPES: Readonly<Record<string, DutyType>> = {
  BlockProposal: DutyType.BLOCK_PROPOSAL,
  CheckpointProposal: DutyType.CHECKPOINT_PROPOSAL,
  CheckpointAttestation: DutyType.ATTESTATION,
  AttestationsAndSigners: DutyType.ATTESTATIONS_AND_SIGNERS,
};

function lowerAddress(value: unknown): string | undefined {
  return typeof value === 'string' && /^0x[0-9a-fA-F]{40}$/.test(value) ? value.toLowerCase() : undefined;
}

function chainIdOf(value: unknown): bigint | undefined {
  try {
    return value === undefined ? undefined : toUint64('domain.chainId', value);
  } catch {
    return undefined;
  }
}

export function classifyTypedData(typedData: TypedDataDefinition, rules: TypedDataRules): TypedDataKind {
  const domain = (typedData.domain ?? {}) as Record<string, unknown>;
  const primaryType = String(typedData.primaryType);
  const name = domain.name;
  const verifyingContract = lowerAddress(domain.verifyingContract);
  const chainId = chainIdOf(domain.chainId);
  const checkChain = (required: boolean): void => {
    if (rules.chainId === undefined) {
      if (required)
        throw new TypedDataRefusal("typed consensus data needs the rollup's L1 chain id: set HA_SIGNER_L1_CHAIN_ID on the signer");
      return;
    }
    if (chainId !== rules.chainId)
      throw new TypedDataRefusal(`domain.chainId ${String(domain.chainId)} is not the rollup's chain ${rules.chainId}`);
  };

  if (name === 'Aztec Rollup') {
    if (verifyingContract !== rules.rollupAddress)
      throw new TypedDataRefusal(
        `domain.verifyingContract ${String(domain.verifyingContract)} is not the bound rollup ${rules.rollupAddress}`,
      );
    checkChain(true);
    if (primaryType === 'SignedTxs') return { kind: 'unprotected', primaryType };
    const dutyType = CONSENSUS_TYPES[primaryType];
    if (!dutyType)
      throw new TypedDataRefusal(
        `primaryType ${JSON.stringify(primaryType)} of the Aztec Rollup domain is not a known duty (${Object.keys(CONSENSUS_TYPES).join(', ')}, SignedTxs)`,
      );
    return { kind: 'consensus', dutyType };
  }
  if ((name === 'EmpireBase' && primaryType === 'Signal') || (name === 'TallySlashingProposer' && primaryType === 'Vote')) {
    checkChain(false);
    let slot: bigint;
    try {
      slot = toUint64('message.slot', (typedData.message as Record<string, unknown> | undefined)?.slot);
    } catch (error) {
      throw new TypedDataRefusal(error instanceof InvalidDutyInputError ? error.message : 'message.slot: expected an integer');
    }
    const slashing =
      primaryType === 'Vote' || (rules.slashingProposerAddress !== undefined && verifyingContract === rules.slashingProposerAddress);
    return { kind: 'vote', dutyType: slashing ? DutyType.SLASHING_VOTE : DutyType.GOVERNANCE_VOTE, slot };
  }
  throw new TypedDataRefusal(
    `typed data ${JSON.stringify(primaryType)} of domain ${JSON.stringify(name)} is not an Aztec duty; only Aztec consensus (domain "Aztec Rollup") and vote (EmpireBase Signal, TallySlashingProposer Vote) typed data are signed`,
  );
}

/**
 * The checks of the protected JSON-RPC (see jsonrpc.ts): the caller's validators, the claim that covers a consensus
 * signature, the opt-in for unclaimed data, and votes claimed and recorded here. Each refusal is an RpcError with a
 * JSON-RPC code and a message naming the reason.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Hex, TypedDataDefinition } from 'viem';
import { DutyAlreadySignedError, DutyType, SlashingProtectionError, type ValidatorHASigner, parseDuty } from '../protection/index.js';
import type { ClaimForHash } from '../protection/claims-lookup.js';
import type { TypedDataRules } from './aztec-typed-data.js';
import type { SigningBackend } from './backends.js';
import type { JsonRpcCaller } from './jsonrpc-clients.js';
import type { AuthDenialReason, JsonRpcOutcome, SignerMetrics } from './metrics.js';

export interface JsonRpcContext {
  backend: SigningBackend;
  caller: JsonRpcCaller;
  metrics: SignerMetrics;
  log: FastifyBaseLogger;
  deny: (reason: AuthDenialReason, message: string) => Error;
  rules: TypedDataRules;
  /** Claims of (bound rollup, validator, hash); throws when the database cannot answer. */
  claims: (validatorAddress: string, messageHash: string) => Promise<ClaimForHash[]>;
  /** The protection core (for votes); undefined while the database is not usable. */
  signer: () => ValidatorHASigner | undefined;
}

/** JSON-RPC 2.0 codes, and the server range for refusals (each names its reason). */
export const RPC_CODES = {
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  signingFailed: -32000,
  forbidden: -32001,
  notClaimed: -32010,
  claimMismatch: -32011,
  slashingProtection: -32012,
  notEnabled: -32013,
  unavailable: -32014,
  inProgress: -32015,
} as const;

const CONSENSUS_DUTIES: ReadonlySet<DutyType> = new Set([
  DutyType.BLOCK_PROPOSAL,
  DutyType.CHECKPOINT_PROPOSAL,
  DutyType.ATTESTATION,
  DutyType.ATTESTATIONS_AND_SIGNERS,
]);

export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly outcome: JsonRpcOutcome,
    readonly httpStatus = 200,
  ) {
    super(message);
  }
}

const UNCLAIMED_HELP =
  "run the Aztec node with VALIDATOR_HA_SIGNING_ENABLED=true and VALIDATOR_HA_DATABASE_URL set to this signer's protection database, so it claims each duty before asking; " +
  'for digests no duty covers (Aztec 4.x p2p AUTH_REQUEST handshakes) set allowUnclaimedDigests for this client (docs/aztec-nodes.md)';

export function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0] ?? 'error';
}

export function addressParam(ctx: JsonRpcContext, value: unknown): string {
  if (typeof value !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(value))
    throw new RpcError(RPC_CODES.invalidParams, 'params[0]: expected a 0x-prefixed 20-byte address', 'invalid');
  const address = value.toLowerCase();
  if (!ctx.caller.allows(address)) {
    ctx.deny('forbidden', `caller ${ctx.caller.id} may not use validator ${address}`);
    throw new RpcError(RPC_CODES.forbidden, `caller may not use validator ${address}`, 'denied', 403);
  }
  if (!ctx.backend.serves(address)) throw new RpcError(RPC_CODES.signingFailed, `no key for ${address} on this signer`, 'invalid');
  return address;
}

async function lookup(ctx: JsonRpcContext, address: string, hash: string): Promise<ClaimForHash[]> {
  try {
    return await ctx.claims(address, hash);
  } catch (error) {
    throw new RpcError(RPC_CODES.unavailable, `protection database unavailable, nothing signed: ${firstLine(error)}`, 'unavailable');
  }
}

/** The claim that covers a consensus signature: a consensus duty of this hash, held by one of the caller's nodes. */
export async function requireClaim(
  ctx: JsonRpcContext,
  method: string,
  address: string,
  hash: string,
  dutyType?: DutyType,
): Promise<ClaimForHash> {
  const claims = (await lookup(ctx, address, hash)).filter((c) => CONSENSUS_DUTIES.has(c.dutyType));
  const typed = dutyType ? claims.filter((c) => c.dutyType === dutyType) : claims;
  const own = ctx.caller.nodeIds ? typed.filter((c) => ctx.caller.nodeIds!.has(c.nodeId)) : typed;
  if (own[0]) return own[0];
  if (typed[0])
    throw new RpcError(
      RPC_CODES.claimMismatch,
      `${method} refused: the claim for this hash is held by node ${typed[0].nodeId}, not one of this client's node ids`,
      'claim_mismatch',
    );
  if (claims[0])
    throw new RpcError(
      RPC_CODES.claimMismatch,
      `${method} refused: this hash is claimed as ${claims[0].dutyType}, but the typed data is a ${dutyType}`,
      'claim_mismatch',
    );
  throw new RpcError(
    RPC_CODES.notClaimed,
    `${method} refused: no duty claim for this hash of validator ${address} in the protection database; ${UNCLAIMED_HELP}`,
    'not_claimed',
  );
}

export function unclaimedAllowed(ctx: JsonRpcContext, method: string, address: string): void {
  if (!ctx.caller.allowUnclaimedDigests) {
    throw new RpcError(
      RPC_CODES.notClaimed,
      `${method} refused: no duty claim covers this data of validator ${address}; ${UNCLAIMED_HELP}`,
      'not_claimed',
    );
  }
  ctx.log.info(
    { method, caller: ctx.caller.id, validator: address },
    'signing data no duty claim covers (client opted in: allowUnclaimedDigests)',
  );
}

export async function signVote(
  ctx: JsonRpcContext,
  address: string,
  typedData: TypedDataDefinition,
  hash: Hex,
  vote: { dutyType: DutyType; slot: bigint },
): Promise<{ signature: Hex; outcome: JsonRpcOutcome }> {
  // The node's own HA signer may hold the claim already (same hash): honour it, as for consensus duties.
  const claims = (await lookup(ctx, address, hash)).filter((c) => c.dutyType === vote.dutyType && c.slot === vote.slot);
  if (claims.some((c) => !ctx.caller.nodeIds || ctx.caller.nodeIds.has(c.nodeId)))
    return { signature: await ctx.backend.signTypedData(address, typedData), outcome: 'signed_claimed' };
  const signer = ctx.signer();
  if (!signer) throw new RpcError(RPC_CODES.unavailable, 'protection database not ready, nothing signed', 'unavailable');
  try {
    const signature = await signer.signDuty(parseDuty(address, hash, { dutyType: vote.dutyType, slot: vote.slot }), () =>
      ctx.backend.signTypedData(address, typedData),
    );
    return { signature, outcome: 'signed_vote' };
  } catch (error) {
    if (error instanceof SlashingProtectionError) {
      ctx.log.warn(
        { caller: ctx.caller.id, dutyType: vote.dutyType, slot: vote.slot.toString(), validator: address },
        'slashing protection refused a vote',
      );
      throw new RpcError(
        RPC_CODES.slashingProtection,
        `slashing protection: ${vote.dutyType} of slot ${vote.slot} was already signed with a different payload (${error.existingMessageHash})`,
        'slashing_protection',
      );
    }
    if (error instanceof DutyAlreadySignedError && error.signature && error.name !== 'DutyInProgressError')
      return { signature: error.signature as Hex, outcome: 'already_signed' };
    if (error instanceof DutyAlreadySignedError)
      throw new RpcError(
        RPC_CODES.inProgress,
        `${vote.dutyType} of slot ${vote.slot} is still being signed elsewhere; retry`,
        'unavailable',
      );
    throw new RpcError(RPC_CODES.unavailable, `vote not signed: ${firstLine(error)}`, 'unavailable');
  }
}

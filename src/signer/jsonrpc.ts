/**
 * Protected Web3Signer-compatible eth1 JSON-RPC, as Aztec's RemoteSigner calls it (eth_accounts, eth_sign,
 * eth_signTypedData, eth_signTransaction), so that stock Aztec validator pods can use this service as their remote
 * signer without bypassing slashing protection:
 * - consensus signatures (eth_sign of a 32-byte digest, or "Aztec Rollup" typed data) only when the protection
 *   database holds a claim for (bound rollup, validator, hash): the node's own HA signer (@aztec/validator-ha-signer,
 *   VALIDATOR_HA_SIGNING_ENABLED=true, same database) claims each duty before asking. Nothing is written here.
 * - votes (EmpireBase Signal, TallySlashingProposer Vote) are protected here from the typed data itself: claim, sign,
 *   record, unless the node's own claim with the same hash exists (then honoured).
 * - anything no claim covers is refused unless the client opted in (allowUnclaimedDigests); transactions only with
 *   allowTransactions.
 */
import type { FastifyBaseLogger } from 'fastify';
import { type Hex, type TypedDataDefinition, hashTypedData } from 'viem';
import { DutyAlreadySignedError, DutyType, SlashingProtectionError, type ValidatorHASigner, parseDuty } from '../protection/index.js';
import type { ClaimForHash } from '../protection/claims-lookup.js';
import { TypedDataRefusal, type TypedDataRules, classifyTypedData } from './aztec-typed-data.js';
import type { SigningBackend } from './backends.js';
import type { JsonRpcCaller } from './jsonrpc-clients.js';
import type { AuthDenialReason, JsonRpcOutcome, SignerMetrics } from './metrics.js';
import { parseTransactionRequest } from './transactions.js';
import { parseTypedData } from './validation.js';

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

type JsonRpcId = string | number | null;

export interface JsonRpcAnswer {
  httpStatus: number;
  body: { jsonrpc: '2.0'; id: JsonRpcId; result?: unknown; error?: { code: number; message: string } };
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

const CONSENSUS_DUTIES: ReadonlySet<DutyType> = new Set([DutyType.BLOCK_PROPOSAL, DutyType.CHECKPOINT_PROPOSAL, DutyType.ATTESTATION, DutyType.ATTESTATIONS_AND_SIGNERS]);
const KNOWN_METHODS = new Set(['eth_accounts', 'eth_sign', 'eth_signTypedData', 'eth_signTypedData_v4', 'eth_signTransaction']);

class RpcError extends Error {
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
  'run the Aztec node with VALIDATOR_HA_SIGNING_ENABLED=true and VALIDATOR_HA_DATABASE_URL set to this signer\'s protection database, so it claims each duty before asking; ' +
  'for digests no duty covers (Aztec 4.x p2p AUTH_REQUEST handshakes) set allowUnclaimedDigests for this client (docs/aztec-nodes.md)';

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0] ?? 'error';
}

function addressParam(ctx: JsonRpcContext, value: unknown): string {
  if (typeof value !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(value)) throw new RpcError(RPC_CODES.invalidParams, 'params[0]: expected a 0x-prefixed 20-byte address', 'invalid');
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
async function requireClaim(ctx: JsonRpcContext, method: string, address: string, hash: string, dutyType?: DutyType): Promise<ClaimForHash> {
  const claims = (await lookup(ctx, address, hash)).filter((c) => CONSENSUS_DUTIES.has(c.dutyType));
  const typed = dutyType ? claims.filter((c) => c.dutyType === dutyType) : claims;
  const own = ctx.caller.nodeIds ? typed.filter((c) => ctx.caller.nodeIds!.has(c.nodeId)) : typed;
  if (own[0]) return own[0];
  if (typed[0]) throw new RpcError(RPC_CODES.claimMismatch, `${method} refused: the claim for this hash is held by node ${typed[0].nodeId}, not one of this client's node ids`, 'claim_mismatch');
  if (claims[0]) throw new RpcError(RPC_CODES.claimMismatch, `${method} refused: this hash is claimed as ${claims[0].dutyType}, but the typed data is a ${dutyType}`, 'claim_mismatch');
  throw new RpcError(RPC_CODES.notClaimed, `${method} refused: no duty claim for this hash of validator ${address} in the protection database; ${UNCLAIMED_HELP}`, 'not_claimed');
}

function unclaimedAllowed(ctx: JsonRpcContext, method: string, address: string): void {
  if (!ctx.caller.allowUnclaimedDigests) {
    throw new RpcError(RPC_CODES.notClaimed, `${method} refused: no duty claim covers this data of validator ${address}; ${UNCLAIMED_HELP}`, 'not_claimed');
  }
  ctx.log.info({ method, caller: ctx.caller.id, validator: address }, 'signing data no duty claim covers (client opted in: allowUnclaimedDigests)');
}

async function signVote(ctx: JsonRpcContext, address: string, typedData: TypedDataDefinition, hash: Hex, vote: { dutyType: DutyType; slot: bigint }): Promise<{ signature: Hex; outcome: JsonRpcOutcome }> {
  // The node's own HA signer may hold the claim already (same hash): honour it, as for consensus duties.
  const claims = (await lookup(ctx, address, hash)).filter((c) => c.dutyType === vote.dutyType && c.slot === vote.slot);
  if (claims.some((c) => !ctx.caller.nodeIds || ctx.caller.nodeIds.has(c.nodeId))) return { signature: await ctx.backend.signTypedData(address, typedData), outcome: 'signed_claimed' };
  const signer = ctx.signer();
  if (!signer) throw new RpcError(RPC_CODES.unavailable, 'protection database not ready, nothing signed', 'unavailable');
  try {
    const signature = await signer.signDuty(parseDuty(address, hash, { dutyType: vote.dutyType, slot: vote.slot }), () => ctx.backend.signTypedData(address, typedData));
    return { signature, outcome: 'signed_vote' };
  } catch (error) {
    if (error instanceof SlashingProtectionError) {
      ctx.log.warn({ caller: ctx.caller.id, dutyType: vote.dutyType, slot: vote.slot.toString(), validator: address }, 'slashing protection refused a vote');
      throw new RpcError(RPC_CODES.slashingProtection, `slashing protection: ${vote.dutyType} of slot ${vote.slot} was already signed with a different payload (${error.existingMessageHash})`, 'slashing_protection');
    }
    if (error instanceof DutyAlreadySignedError && error.signature && error.name !== 'DutyInProgressError') return { signature: error.signature as Hex, outcome: 'already_signed' };
    if (error instanceof DutyAlreadySignedError) throw new RpcError(RPC_CODES.inProgress, `${vote.dutyType} of slot ${vote.slot} is still being signed elsewhere; retry`, 'unavailable');
    throw new RpcError(RPC_CODES.unavailable, `vote not signed: ${firstLine(error)}`, 'unavailable');
  }
}

async function dispatch(ctx: JsonRpcContext, method: string, params: unknown[]): Promise<{ result: unknown; outcome: JsonRpcOutcome }> {
  switch (method) {
    case 'eth_accounts':
      return { result: ctx.backend.addresses().filter((address) => ctx.caller.allows(address)), outcome: 'ok' };
    case 'eth_sign': {
      const address = addressParam(ctx, params[0]);
      const data = params[1];
      if (typeof data !== 'string' || !/^0x([0-9a-fA-F]{2})*$/.test(data)) throw new RpcError(RPC_CODES.invalidParams, 'params[1]: expected 0x-prefixed hex bytes', 'invalid');
      const bytes = data.toLowerCase() as Hex;
      let outcome: JsonRpcOutcome = 'signed_claimed';
      if (bytes.length === 66) {
        try {
          await requireClaim(ctx, method, address, bytes);
        } catch (error) {
          if (!(error instanceof RpcError) || error.outcome !== 'not_claimed') throw error;
          unclaimedAllowed(ctx, method, address);
          outcome = 'signed_unclaimed';
        }
      } else {
        unclaimedAllowed(ctx, method, address);
        outcome = 'signed_unclaimed';
      }
      return { result: await ctx.backend.signMessageBytes(address, bytes), outcome };
    }
    case 'eth_signTypedData':
    case 'eth_signTypedData_v4': {
      const address = addressParam(ctx, params[0]);
      let typedData: TypedDataDefinition;
      let hash: Hex;
      try {
        typedData = parseTypedData('params[1]', params[1]);
        hash = hashTypedData(typedData);
      } catch (error) {
        throw new RpcError(RPC_CODES.invalidParams, `params[1]: not valid EIP-712 typed data: ${firstLine(error)}`, 'invalid');
      }
      let kind;
      try {
        kind = classifyTypedData(typedData, ctx.rules);
      } catch (error) {
        if (error instanceof TypedDataRefusal) throw new RpcError(RPC_CODES.notClaimed, `${method} refused: ${error.message}`, 'refused');
        throw error;
      }
      if (kind.kind === 'vote') {
        const { signature, outcome } = await signVote(ctx, address, typedData, hash, kind);
        return { result: signature, outcome };
      }
      if (kind.kind === 'consensus') {
        await requireClaim(ctx, method, address, hash, kind.dutyType);
        return { result: await ctx.backend.signTypedData(address, typedData), outcome: 'signed_claimed' };
      }
      unclaimedAllowed(ctx, method, address);
      return { result: await ctx.backend.signTypedData(address, typedData), outcome: 'signed_unclaimed' };
    }
    case 'eth_signTransaction': {
      if (!ctx.caller.allowTransactions) {
        throw new RpcError(RPC_CODES.notEnabled, `eth_signTransaction is off for ${ctx.caller.id}; set allowTransactions for this client to let it sign its L1 publisher transactions`, 'refused');
      }
      let tx;
      try {
        tx = parseTransactionRequest(params[0], ctx.rules.chainId);
      } catch (error) {
        const missingChain = firstLine(error).includes('HA_SIGNER_L1_CHAIN_ID');
        throw new RpcError(missingChain ? RPC_CODES.notEnabled : RPC_CODES.invalidParams, `eth_signTransaction: ${firstLine(error)}`, missingChain ? 'refused' : 'invalid');
      }
      const address = addressParam(ctx, tx.from);
      return { result: await ctx.backend.signTransaction(address, tx.transaction), outcome: 'signed_transaction' };
    }
    default:
      throw new RpcError(RPC_CODES.methodNotFound, `method ${JSON.stringify(method.slice(0, 64))} is not supported (${[...KNOWN_METHODS].join(', ')})`, 'invalid');
  }
}

export async function handleJsonRpc(body: unknown, ctx: JsonRpcContext): Promise<JsonRpcAnswer> {
  if (Array.isArray(body)) return { httpStatus: 400, body: { jsonrpc: '2.0', id: null, error: { code: RPC_CODES.invalidRequest, message: 'batch requests are not supported' } } };
  if (!isObject(body) || body.jsonrpc !== '2.0' || typeof body.method !== 'string') {
    return { httpStatus: 400, body: { jsonrpc: '2.0', id: null, error: { code: RPC_CODES.invalidRequest, message: 'expected a JSON-RPC 2.0 request object' } } };
  }
  const id: JsonRpcId = typeof body.id === 'string' || typeof body.id === 'number' ? body.id : null;
  const method = body.method;
  const methodLabel = KNOWN_METHODS.has(method) ? method : 'unknown';
  const startedAt = performance.now();
  const params = body.params === undefined ? [] : body.params;
  let outcome: JsonRpcOutcome = 'error';
  try {
    if (!Array.isArray(params)) throw new RpcError(RPC_CODES.invalidParams, 'params: expected an array', 'invalid');
    const answer = await dispatch(ctx, method, params);
    outcome = answer.outcome;
    if (method !== 'eth_accounts') ctx.log.debug({ method, caller: ctx.caller.id, outcome }, 'JSON-RPC signature');
    return { httpStatus: 200, body: { jsonrpc: '2.0', id, result: answer.result } };
  } catch (error) {
    const rpc = error instanceof RpcError ? error : new RpcError(RPC_CODES.signingFailed, `${method}: ${firstLine(error)}`, 'error');
    outcome = rpc.outcome;
    if (rpc.outcome === 'not_claimed' || rpc.outcome === 'claim_mismatch' || rpc.outcome === 'refused' || rpc.outcome === 'error') {
      ctx.log.warn({ method, caller: ctx.caller.id, outcome, reason: rpc.message }, 'JSON-RPC call refused');
    }
    return { httpStatus: rpc.httpStatus, body: { jsonrpc: '2.0', id, error: { code: rpc.code, message: rpc.message } } };
  } finally {
    ctx.metrics.jsonRpcRequests.inc({ method: methodLabel, outcome });
    ctx.metrics.jsonRpcDuration.observe({ method: methodLabel, outcome }, (performance.now() - startedAt) / 1000);
  }
}

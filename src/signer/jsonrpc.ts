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
import { type Hex, type TypedDataDefinition, hashTypedData } from 'viem';
import { TypedDataRefusal, classifyTypedData } from './aztec-typed-data.js';
import {
  type JsonRpcContext,
  RPC_CODES,
  RpcError,
  addressParam,
  firstLine,
  requireClaim,
  signVote,
  unclaimedAllowed,
} from './jsonrpc-checks.js';
import type { JsonRpcOutcome } from './metrics.js';
import { parseTransactionRequest } from './transactions.js';
import { parseTypedData } from './validation.js';

export { type JsonRpcContext, RPC_CODES } from './jsonrpc-checks.js';

type JsonRpcId = string | number | null;

export interface JsonRpcAnswer {
  httpStatus: number;
  body: { jsonrpc: '2.0'; id: JsonRpcId; result?: unknown; error?: { code: number; message: string } };
}

const KNOWN_METHODS = new Set(['eth_accounts', 'eth_sign', 'eth_signTypedData', 'eth_signTypedData_v4', 'eth_signTransaction']);

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

async function dispatch(ctx: JsonRpcContext, method: string, params: unknown[]): Promise<{ result: unknown; outcome: JsonRpcOutcome }> {
  switch (method) {
    case 'eth_accounts':
      return { result: ctx.backend.addresses().filter((address) => ctx.caller.allows(address)), outcome: 'ok' };
    case 'eth_sign': {
      const address = addressParam(ctx, params[0]);
      const data = params[1];
      if (typeof data !== 'string' || !/^0x([0-9a-fA-F]{2})*$/.test(data))
        throw new RpcError(RPC_CODES.invalidParams, 'params[1]: expected 0x-prefixed hex bytes', 'invalid');
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
        throw new RpcError(
          RPC_CODES.notEnabled,
          `eth_signTransaction is off for ${ctx.caller.id}; set allowTransactions for this client to let it sign its L1 publisher transactions`,
          'refused',
        );
      }
      let tx;
      try {
        tx = parseTransactionRequest(params[0], ctx.rules.chainId);
      } catch (error) {
        const missingChain = firstLine(error).includes('HA_SIGNER_L1_CHAIN_ID');
        throw new RpcError(
          missingChain ? RPC_CODES.notEnabled : RPC_CODES.invalidParams,
          `eth_signTransaction: ${firstLine(error)}`,
          missingChain ? 'refused' : 'invalid',
        );
      }
      const address = addressParam(ctx, tx.from);
      return { result: await ctx.backend.signTransaction(address, tx.transaction), outcome: 'signed_transaction' };
    }
    default:
      throw new RpcError(
        RPC_CODES.methodNotFound,
        `method ${JSON.stringify(method.slice(0, 64))} is not supported (${[...KNOWN_METHODS].join(', ')})`,
        'invalid',
      );
  }
}

export async function handleJsonRpc(body: unknown, ctx: JsonRpcContext): Promise<JsonRpcAnswer> {
  if (Array.isArray(body))
    return {
      httpStatus: 400,
      body: { jsonrpc: '2.0', id: null, error: { code: RPC_CODES.invalidRequest, message: 'batch requests are not supported' } },
    };
  if (!isObject(body) || body.jsonrpc !== '2.0' || typeof body.method !== 'string') {
    return {
      httpStatus: 400,
      body: { jsonrpc: '2.0', id: null, error: { code: RPC_CODES.invalidRequest, message: 'expected a JSON-RPC 2.0 request object' } },
    };
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

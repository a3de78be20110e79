/**
 * Web3Signer-compatible eth1 JSON-RPC (`POST /`: eth_accounts, eth_sign, eth_signTypedData), as Aztec's
 * RemoteSigner calls it, so an unmodified Aztec node can use this service as its remote signer.
 *
 * This path carries NO duty context, so it performs NO slashing protection: it signs whatever an authorized caller
 * sends. It is off unless HA_SIGNER_JSONRPC_ENABLED=true, authenticated like the rest of the API, and meant only for
 * Aztec nodes whose own HA signer (@aztec/validator-ha-signer, VALIDATOR_HA_SIGNING_ENABLED=true) protects duties on
 * the same operator-managed database before they call it.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Hex } from 'viem';
import type { Principal } from './auth.js';
import type { SigningBackend } from './backends.js';
import type { AuthDenialReason, SignerMetrics } from './metrics.js';
import { InvalidRequestError, parseTypedData } from './validation.js';

export interface JsonRpcContext {
  backend: SigningBackend;
  principal: Principal;
  metrics: SignerMetrics;
  log: FastifyBaseLogger;
  deny: (reason: AuthDenialReason, message: string) => Error;
}

type JsonRpcId = string | number | null;

export interface JsonRpcAnswer {
  httpStatus: number;
  body: { jsonrpc: '2.0'; id: JsonRpcId; result?: unknown; error?: { code: number; message: string } };
}

/** JSON-RPC 2.0 error codes, plus the server range for signing refusals. */
const INVALID_REQUEST = -32600;
const METHOD_NOT_FOUND = -32601;
const INVALID_PARAMS = -32602;
const SIGNING_FAILED = -32000;
const FORBIDDEN = -32001;

const KNOWN_METHODS = new Set(['eth_accounts', 'eth_sign', 'eth_signTypedData', 'eth_signTypedData_v4']);

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly httpStatus = 200,
  ) {
    super(message);
  }
}

function addressParam(ctx: JsonRpcContext, value: unknown): string {
  if (typeof value !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(value)) throw new RpcError(INVALID_PARAMS, 'params[0]: expected a 0x-prefixed 20-byte address');
  const address = value.toLowerCase();
  if (!ctx.principal.allows(address)) {
    ctx.deny('forbidden', `caller ${ctx.principal.id} may not use validator ${address}`);
    throw new RpcError(FORBIDDEN, `caller may not use validator ${address}`, 403);
  }
  if (!ctx.backend.serves(address)) throw new RpcError(SIGNING_FAILED, `no key for ${address}`);
  return address;
}

export async function handleJsonRpc(body: unknown, ctx: JsonRpcContext): Promise<JsonRpcAnswer> {
  if (Array.isArray(body)) return { httpStatus: 400, body: { jsonrpc: '2.0', id: null, error: { code: INVALID_REQUEST, message: 'batch requests are not supported' } } };
  if (!isObject(body) || body.jsonrpc !== '2.0' || typeof body.method !== 'string') {
    return { httpStatus: 400, body: { jsonrpc: '2.0', id: null, error: { code: INVALID_REQUEST, message: 'expected a JSON-RPC 2.0 request object' } } };
  }
  const id: JsonRpcId = typeof body.id === 'string' || typeof body.id === 'number' ? body.id : null;
  const method = body.method;
  const methodLabel = KNOWN_METHODS.has(method) ? method : 'unknown';
  const params = body.params === undefined ? [] : body.params;
  try {
    if (!Array.isArray(params)) throw new RpcError(INVALID_PARAMS, 'params: expected an array');
    let result: unknown;
    switch (method) {
      case 'eth_accounts':
        result = ctx.backend.addresses().filter((address) => ctx.principal.allows(address));
        break;
      case 'eth_sign': {
        const address = addressParam(ctx, params[0]);
        const data = params[1];
        if (typeof data !== 'string' || !/^0x([0-9a-fA-F]{2})*$/.test(data)) throw new RpcError(INVALID_PARAMS, 'params[1]: expected 0x-prefixed hex bytes');
        result = await ctx.backend.signMessageBytes(address, data.toLowerCase() as Hex);
        break;
      }
      case 'eth_signTypedData':
      case 'eth_signTypedData_v4': {
        const address = addressParam(ctx, params[0]);
        let typedData;
        try {
          typedData = parseTypedData('params[1]', params[1]);
        } catch (error) {
          throw new RpcError(INVALID_PARAMS, (error as InvalidRequestError).message);
        }
        try {
          result = await ctx.backend.signTypedData(address, typedData);
        } catch (error) {
          throw new RpcError(SIGNING_FAILED, `eth_signTypedData: ${String((error as Error).message).split('\n')[0]}`);
        }
        break;
      }
      default:
        throw new RpcError(METHOD_NOT_FOUND, `method ${JSON.stringify(method.slice(0, 64))} is not supported (eth_accounts, eth_sign, eth_signTypedData)`);
    }
    ctx.metrics.jsonRpcRequests.inc({ method: methodLabel, outcome: 'ok' });
    if (method !== 'eth_accounts') ctx.log.info({ method, principal: ctx.principal.id }, 'JSON-RPC signature (no duty protection on this path)');
    return { httpStatus: 200, body: { jsonrpc: '2.0', id, result } };
  } catch (error) {
    const rpc = error instanceof RpcError ? error : new RpcError(SIGNING_FAILED, String((error as Error)?.message ?? error).split('\n')[0] ?? 'error');
    ctx.metrics.jsonRpcRequests.inc({ method: methodLabel, outcome: rpc.httpStatus === 403 ? 'denied' : 'error' });
    return { httpStatus: rpc.httpStatus, body: { jsonrpc: '2.0', id, error: { code: rpc.code, message: rpc.message } } };
  }
}

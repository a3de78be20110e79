/** RemoteHASigner's options, results and errors (the client's public types besides the core's 409 errors). */
import type { SigningMethod } from '../wire.js';
import type { ClientTlsOptions } from './tls.js';

/** `ca` / `caFile`: CAs an https:// signer's certificate must chain to (default: system CAs and NODE_EXTRA_CA_CERTS). */
export interface RemoteHASignerOptions extends ClientTlsOptions {
  /** Base URLs of signer replicas (e.g. http://ha-signer-0.ha-signer:8080), tried in this order. */
  endpoints: string[];
  /** Bearer token (a configured token, or a ServiceAccount token). A function is re-read on every call. */
  token?: string | (() => string | Promise<string>);
  /**
   * Per-request timeout, after which the request is repeated at the next endpoint; must exceed the service's signing
   * timeout (VALIDATOR_HA_SIGNING_TIMEOUT_MS, 3 s) plus the key backend's time.
   */
  timeoutMs?: number;
  /** Passes over the whole endpoint list before giving up on connection errors. */
  maxRounds?: number;
  /** Pause between passes over the endpoint list. */
  retryDelayMs?: number;
  signingMethod?: SigningMethod;
  /**
   * After a retry, a DutyAlreadySigned answer that carries the signature for our hash is most likely our own earlier
   * attempt whose answer was lost: return that signature (signing the same hash twice yields the same bytes, which is
   * not slashable). Default true.
   */
  recoverSignatureAfterRetry?: boolean;
  /** Called on each failover (for logs and demos). */
  onFailover?: (info: { endpoint: string; reason: string }) => void;
}

export interface SignOptions {
  signingMethod?: SigningMethod;
  /** EIP-712 typed data whose hash is the message hash (needed with signingMethod digest by Web3Signer-backed replicas). */
  typedData?: unknown;
  signal?: AbortSignal;
}

export interface SignResult {
  signature: `0x${string}`;
  nodeId: string;
  endpoint: string;
}

/** A signer answered with an error other than a 409 (400, 401, 403, 404, 413, 502, ...), or no replica answered. */
export class RemoteSignerError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: string | undefined,
    readonly endpoint: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RemoteSignerError';
  }
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'ECONNABORTED',
]);

/** True for failures before any HTTP answer arrived: refused, reset, DNS. Timeouts are told apart by name (TimeoutError). */
export function isConnectionError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true;
  }
  return false;
}

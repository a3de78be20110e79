/**
 * RemoteHASigner: what a validator node uses to sign through ha-signer replicas over HTTP. Same shape as the core's
 * `signWithProtection`, with the core's errors: a 409 becomes DutyAlreadySignedError or SlashingProtectionError.
 *
 * Failover and retries: a request that fails to connect (or whose connection drops before an answer) is retried on
 * the next endpoint. That is safe because the service is idempotent per duty: a repeat with the same hash either
 * signs once or answers DutyAlreadySigned with the stored signature. A 503 (replica without its database, or shutting
 * down, or a duty still held by another node) also moves on to the next endpoint, and so does a request that got no
 * answer within timeoutMs (a hung replica or a hung database behind it): a repeat of the same duty and hash at
 * another replica signs once or gets the stored signature. Every other answer is final.
 */
import { DutyAlreadySignedError, SlashingProtectionError } from '../protection/errors.js';
import type { DutyType, HexLike, SigningContext } from '../protection/types.js';
import {
  API_PATHS,
  type DutyAlreadySignedBody,
  type ErrorBody,
  type SignAnswer,
  type SignRequestBody,
  type SigningMethod,
  type SlashingProtectionBody,
  type ValidatorsAnswer,
} from '../wire.js';
import { RemoteSignerError, isConnectionError, type RemoteHASignerOptions, type SignOptions, type SignResult } from './types.js';
import { certificateProblem, fetchForTls, type FetchLike } from './tls.js';

export type { SigningMethod };
export { RemoteSignerError, isConnectionError } from './types.js';
export type { RemoteHASignerOptions, SignOptions, SignResult } from './types.js';

/** Any error body, with the fields of each kind optional (the server's answer is read defensively). */
type AnyErrorBody = Partial<Omit<DutyAlreadySignedBody, 'error'> & Omit<SlashingProtectionBody, 'error'>> & {
  error?: ErrorBody['error'];
  message?: string;
};

/** Slot and block numbers as the wire carries them: bigints as decimal strings. */
function jsonSafe(value: number | bigint): string | number {
  return typeof value === 'bigint' ? value.toString() : value;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class RemoteHASigner {
  private readonly endpoints: string[];
  private readonly timeoutMs: number;
  private readonly maxRounds: number;
  private readonly retryDelayMs: number;
  /** The endpoint that answered last: tried first next time, so a dead replica costs one refused connect once. */
  private preferred = 0;
  private readonly fetch: FetchLike;

  constructor(private readonly options: RemoteHASignerOptions) {
    if (!Array.isArray(options.endpoints) || options.endpoints.length === 0)
      throw new TypeError('RemoteHASigner: endpoints must list at least one URL');
    this.endpoints = options.endpoints.map((endpoint) => {
      const url = new URL(endpoint);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`RemoteHASigner: endpoint ${endpoint} is not http(s)`);
      return url.toString().replace(/\/+$/, '');
    });
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxRounds = options.maxRounds ?? 3;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.fetch = fetchForTls(options);
  }

  /**
   * Signs `messageHash` for a duty through the service. `signFn` is accepted for drop-in compatibility with the core's
   * ValidatorHASigner and is never called: the keys live in the service.
   *
   * @throws DutyAlreadySignedError the duty was signed already (by any node) or is still being signed elsewhere
   * @throws SlashingProtectionError the duty was signed with a different hash
   * @throws RemoteSignerError any other refusal, or no replica reachable
   */
  async signWithProtection(
    validatorAddress: HexLike,
    messageHash: HexLike,
    context: SigningContext,
    _signFn?: (messageHash: HexLike) => Promise<HexLike>,
    options: SignOptions = {},
  ): Promise<`0x${string}`> {
    return (await this.sign(validatorAddress, messageHash, context, options)).signature;
  }

  /** Like signWithProtection, and tells which replica (nodeId, endpoint) answered. */
  async sign(validatorAddress: HexLike, messageHash: HexLike, context: SigningContext, options: SignOptions = {}): Promise<SignResult> {
    const request: SignRequestBody = {
      messageHash: String(messageHash),
      signingMethod: options.signingMethod ?? this.options.signingMethod ?? 'personal',
      context: {
        dutyType: context.dutyType,
        slot: jsonSafe(context.slot),
        ...(context.blockNumber !== undefined ? { blockNumber: jsonSafe(context.blockNumber) } : {}),
        ...(context.checkpointNumber !== undefined ? { checkpointNumber: jsonSafe(context.checkpointNumber) } : {}),
        ...(context.blockIndexWithinCheckpoint !== undefined ? { blockIndexWithinCheckpoint: context.blockIndexWithinCheckpoint } : {}),
      },
      ...(options.typedData !== undefined ? { typedData: options.typedData } : {}),
    };
    const body = JSON.stringify(request);
    const path = API_PATHS.sign(String(validatorAddress));
    let retried = false;
    const { status, json, endpoint } = await this.request('POST', path, body, options.signal, () => (retried = true));
    if (status === 200) {
      const ok = json as SignAnswer;
      return { signature: ok.signature, nodeId: ok.nodeId, endpoint };
    }
    const error = json as AnyErrorBody;
    if (status === 409 && error.error === 'DutyAlreadySigned') {
      const signature = typeof error.signature === 'string' ? error.signature : undefined;
      if (retried && signature && (this.options.recoverSignatureAfterRetry ?? true)) {
        return { signature: signature as `0x${string}`, nodeId: error.signedByNode ?? 'unknown', endpoint };
      }
      throw new DutyAlreadySignedError(
        BigInt(error.slot ?? 0),
        error.dutyType as DutyType,
        error.blockIndexWithinCheckpoint ?? -1,
        error.signedByNode ?? 'unknown',
        signature,
      );
    }
    if (status === 409 && error.error === 'SlashingProtection') {
      throw new SlashingProtectionError(
        BigInt(error.slot ?? 0),
        error.dutyType as DutyType,
        error.blockIndexWithinCheckpoint ?? -1,
        error.existingMessageHash ?? 'unknown',
        error.attemptedMessageHash ?? String(messageHash),
        error.signedByNode ?? 'unknown',
        error.message,
      );
    }
    throw new RemoteSignerError(
      `${endpoint}: HTTP ${status} ${error.error ?? ''}: ${error.message ?? ''}`.trim(),
      status,
      error.error,
      endpoint,
    );
  }

  /** Addresses the service lets this caller use. */
  async validators(): Promise<string[]> {
    const { status, json, endpoint } = await this.request('GET', API_PATHS.validators);
    if (status !== 200) throw new RemoteSignerError(`${endpoint}: HTTP ${status}`, status, (json as AnyErrorBody).error, endpoint);
    return (json as ValidatorsAnswer).validators;
  }

  private async headers(hasBody: boolean): Promise<Record<string, string>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (hasBody) headers['content-type'] = 'application/json';
    const token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    return headers;
  }

  /** Our per-request timeout fired (the caller's own abort signal is not a reason to try elsewhere). */
  private isOwnTimeout(error: unknown, signal: AbortSignal | undefined): boolean {
    return (error as Error)?.name === 'TimeoutError' && signal?.aborted !== true;
  }

  private async request(
    method: string,
    path: string,
    body?: string,
    signal?: AbortSignal,
    onRetry?: () => void,
  ): Promise<{ status: number; json: unknown; endpoint: string }> {
    const headers = await this.headers(body !== undefined);
    let lastError: unknown;
    let attempts = 0;
    for (let round = 0; round < this.maxRounds; round++) {
      if (round > 0) await sleep(this.retryDelayMs);
      for (let i = 0; i < this.endpoints.length; i++) {
        const index = (this.preferred + i) % this.endpoints.length;
        const endpoint = this.endpoints[index]!;
        if (attempts++ > 0) onRetry?.();
        let response: Response;
        try {
          const timeout = AbortSignal.timeout(this.timeoutMs);
          response = await this.fetch(`${endpoint}${path}`, {
            method,
            headers,
            ...(body !== undefined ? { body } : {}),
            signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
          });
        } catch (error) {
          if (this.isOwnTimeout(error, signal)) {
            lastError = new RemoteSignerError(`${endpoint}: no answer within ${this.timeoutMs} ms`, undefined, 'TimeoutError', endpoint, {
              cause: error,
            });
            this.options.onFailover?.({ endpoint, reason: 'timeout' });
            continue;
          }
          const certificate = certificateProblem(error);
          if (!isConnectionError(error))
            throw new RemoteSignerError(
              `${endpoint}: ${certificate?.message ?? (error as Error).message}`,
              undefined,
              certificate?.code ?? (error as Error).name,
              endpoint,
              {
                cause: error,
              },
            );
          lastError = error;
          this.options.onFailover?.({ endpoint, reason: (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message });
          continue;
        }
        let json: unknown;
        try {
          json = await response.json();
        } catch (error) {
          if (this.isOwnTimeout(error, signal)) {
            lastError = new RemoteSignerError(
              `${endpoint}: answer not complete within ${this.timeoutMs} ms`,
              response.status,
              'TimeoutError',
              endpoint,
              { cause: error },
            );
            this.options.onFailover?.({ endpoint, reason: 'timeout' });
            continue;
          }
          if (isConnectionError(error)) {
            lastError = error;
            this.options.onFailover?.({ endpoint, reason: 'connection lost while reading the answer' });
            continue;
          }
          throw new RemoteSignerError(`${endpoint}: HTTP ${response.status} without a JSON body`, response.status, undefined, endpoint, {
            cause: error,
          });
        }
        if (response.status === 503) {
          const answer = json as AnyErrorBody & { reason?: string };
          lastError = new RemoteSignerError(
            `${endpoint}: HTTP 503 ${answer.reason ?? ''}: ${answer.message ?? ''}`,
            503,
            answer.error,
            endpoint,
          );
          this.options.onFailover?.({ endpoint, reason: `HTTP 503${answer.reason ? ` ${answer.reason}` : ''}` });
          continue;
        }
        this.preferred = index;
        return { status: response.status, json, endpoint };
      }
    }
    if (lastError instanceof RemoteSignerError) throw lastError;
    throw new RemoteSignerError(
      `no signer replica reachable (${this.endpoints.join(', ')}): ${(lastError as Error)?.message ?? 'unknown'}`,
      undefined,
      'Unreachable',
      undefined,
      { cause: lastError },
    );
  }
}

export { DutyAlreadySignedError, SlashingProtectionError };

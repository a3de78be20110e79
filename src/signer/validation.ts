/**
 * Validation of API input, before anything touches the database. Pure functions; each error names the field.
 * Numbers that can exceed 2^53 arrive as decimal strings; safe JSON integers are accepted too.
 */
import { type Hex, type TypedDataDefinition, hashTypedData } from 'viem';
import {
  DutyType,
  InvalidDutyInputError,
  PROTECTED_DUTY_TYPES,
  type SigningContext,
  parseDuty,
  type ValidatedDuty,
  normalizeAddress,
  toDutyType,
  toUint64,
} from '../protection/index.js';
import type { SigningMethod } from './backends.js';

export class InvalidRequestError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'InvalidRequestError';
  }
}

export interface SignRequest {
  validatorAddress: string;
  messageHash: Hex;
  signingMethod: SigningMethod;
  context: SigningContext;
  /** The duty, validated once here; the route hands it to the core's signDuty as is. */
  duty: ValidatedDuty;
  typedData?: TypedDataDefinition;
}

const SIGN_FIELDS = new Set(['messageHash', 'signingMethod', 'context', 'typedData']);
const CONTEXT_FIELDS = new Set(['dutyType', 'slot', 'blockNumber', 'checkpointNumber', 'blockIndexWithinCheckpoint']);

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function rejectUnknownFields(path: string, value: Record<string, unknown>, allowed: ReadonlySet<string>): void {
  for (const key of Object.keys(value)) {
    if (!allowed.has(key))
      throw new InvalidRequestError(path ? `${path}.${key}` : key, `unknown field (allowed: ${[...allowed].join(', ')})`);
  }
}

/** Re-throws the core's input errors as request errors, keeping the field name. */
function field<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof InvalidDutyInputError) throw new InvalidRequestError(error.field, error.message.slice(error.field.length + 2));
    throw error;
  }
}

/** A validator address from the URL path: 0x + 40 hex digits, returned lower-case. */
export function parseValidatorAddress(raw: string): string {
  return field(() => normalizeAddress('address', raw));
}

function integer(path: string, value: unknown): bigint {
  return field(() => toUint64(path, value));
}

function blockIndex(value: unknown): number {
  if (typeof value === 'string' && /^[0-9]{1,10}$/.test(value)) return Number(value);
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  throw new InvalidRequestError(
    'context.blockIndexWithinCheckpoint',
    `expected a non-negative integer, got ${JSON.stringify(value) ?? 'undefined'}`,
  );
}

/**
 * Validates a POST /v1/validators/:address/sign body. Only protected duty types are signed here: AUTH_REQUEST and
 * TXS bypass protection in Aztec's client, and accepting them would let any caller sign an arbitrary hash under a
 * label that skips the database.
 */
export interface SignRequestRules {
  /**
   * A Web3Signer-backed replica can sign a digest only as EIP-712 typed data (Web3Signer's eth1 API signs no bare
   * digest), so there a digest request without typedData is refused as input, before the duty is claimed.
   */
  typedDataRequiredForDigest?: boolean;
}

export function parseSignRequest(validatorAddress: string, body: unknown, rules: SignRequestRules = {}): SignRequest {
  if (!isObject(body)) throw new InvalidRequestError('body', 'expected a JSON object');
  rejectUnknownFields('', body, SIGN_FIELDS);
  if (body.messageHash === undefined) throw new InvalidRequestError('messageHash', 'is required: 0x followed by 64 hex digits');
  if (typeof body.messageHash !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(body.messageHash)) {
    throw new InvalidRequestError('messageHash', `expected 0x followed by 64 hex digits (32 bytes), got ${describe(body.messageHash)}`);
  }
  const messageHash = body.messageHash.toLowerCase() as Hex;
  const signingMethod = body.signingMethod ?? 'personal';
  if (signingMethod !== 'personal' && signingMethod !== 'digest') {
    throw new InvalidRequestError('signingMethod', `expected "personal" or "digest", got ${describe(signingMethod)}`);
  }

  const raw = body.context;
  if (!isObject(raw)) throw new InvalidRequestError('context', 'is required: an object with dutyType and slot');
  rejectUnknownFields('context', raw, CONTEXT_FIELDS);
  const dutyType = field(() => toDutyType('context.dutyType', raw.dutyType));
  if (!PROTECTED_DUTY_TYPES.has(dutyType)) {
    throw new InvalidRequestError(
      'context.dutyType',
      `${dutyType} bypasses slashing protection and is not signed by this API; expected one of ${[...PROTECTED_DUTY_TYPES].join(', ')}`,
    );
  }
  if (raw.slot === undefined) throw new InvalidRequestError('context.slot', 'is required');
  const context: SigningContext = { dutyType, slot: integer('context.slot', raw.slot) };
  if (raw.blockNumber !== undefined) context.blockNumber = integer('context.blockNumber', raw.blockNumber);
  if (raw.checkpointNumber !== undefined) context.checkpointNumber = integer('context.checkpointNumber', raw.checkpointNumber);
  if (dutyType === DutyType.BLOCK_PROPOSAL) {
    if (raw.blockIndexWithinCheckpoint === undefined)
      throw new InvalidRequestError('context.blockIndexWithinCheckpoint', 'is required for BLOCK_PROPOSAL');
    context.blockIndexWithinCheckpoint = blockIndex(raw.blockIndexWithinCheckpoint);
  } else if (raw.blockIndexWithinCheckpoint !== undefined) {
    // Ignored by the core for other duties (stored as -1); still reject garbage rather than silently accept it.
    context.blockIndexWithinCheckpoint = blockIndex(raw.blockIndexWithinCheckpoint);
  }
  const duty = field(() => parseDuty(validatorAddress, messageHash, context));

  const request: SignRequest = { validatorAddress: duty.validatorAddress, messageHash, signingMethod, context, duty };
  if (body.typedData === undefined && signingMethod === 'digest' && rules.typedDataRequiredForDigest) {
    throw new InvalidRequestError(
      'typedData',
      'is required with signingMethod "digest" on this replica: its keys sit behind a Web3Signer, which signs EIP-712 typed data, not a bare digest; send the typed data whose hash is messageHash',
    );
  }
  if (body.typedData !== undefined) {
    if (signingMethod !== 'digest') throw new InvalidRequestError('typedData', 'is only accepted with signingMethod "digest"');
    request.typedData = parseTypedData('typedData', body.typedData);
    let hash: string;
    try {
      hash = hashTypedData(request.typedData);
    } catch (error) {
      throw new InvalidRequestError('typedData', `is not valid EIP-712 typed data: ${firstLine(error)}`);
    }
    if (hash !== messageHash) throw new InvalidRequestError('typedData', `its EIP-712 hash ${hash} is not messageHash`);
  }
  return request;
}

/** EIP-712 typed data as JSON (object, or a JSON string as some JSON-RPC clients send it). */
export function parseTypedData(path: string, value: unknown): TypedDataDefinition {
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new InvalidRequestError(path, 'is a string but not JSON typed data');
    }
  }
  if (!isObject(parsed) || !isObject(parsed.types) || typeof parsed.primaryType !== 'string' || !isObject(parsed.message)) {
    throw new InvalidRequestError(path, 'expected EIP-712 typed data {types, primaryType, domain, message}');
  }
  return parsed as unknown as TypedDataDefinition;
}

export interface SlotRange {
  fromSlot: bigint;
  toSlot: bigint;
  limit: number;
}

const MAX_SLOT = (1n << 63n) - 1n;
export const MAX_DUTIES_LIMIT = 1000;

/** fromSlot / toSlot / limit of GET /v1/validators/:address/duties. */
export function parseSlotRange(query: Record<string, unknown>): SlotRange {
  for (const key of Object.keys(query)) {
    if (!['fromSlot', 'toSlot', 'limit'].includes(key))
      throw new InvalidRequestError(key, 'unknown query parameter (allowed: fromSlot, toSlot, limit)');
  }
  const single = (name: string): string | undefined => {
    const value = query[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new InvalidRequestError(name, 'given more than once');
    return value;
  };
  const from = single('fromSlot');
  const to = single('toSlot');
  const limitRaw = single('limit');
  const fromSlot = from === undefined ? 0n : integer('fromSlot', from);
  const toSlot = to === undefined ? MAX_SLOT : integer('toSlot', to);
  if (toSlot < fromSlot) throw new InvalidRequestError('toSlot', `must not be below fromSlot (${fromSlot})`);
  let limit = MAX_DUTIES_LIMIT;
  if (limitRaw !== undefined) {
    if (!/^[0-9]{1,4}$/.test(limitRaw) || Number(limitRaw) < 1 || Number(limitRaw) > MAX_DUTIES_LIMIT) {
      throw new InvalidRequestError('limit', `expected an integer from 1 to ${MAX_DUTIES_LIMIT}`);
    }
    limit = Number(limitRaw);
  }
  return { fromSlot, toSlot, limit };
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  return value === null ? 'null' : typeof value;
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0] ?? '';
}

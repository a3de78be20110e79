/** Validation and normalization of duty inputs. Pure functions; every error names the field. */
import { InvalidDutyInputError } from './errors.js';
import {
  type CheckAndRecordParams,
  DutyType,
  type DutyKey,
  type HexLike,
  type IntegerLike,
  PROTECTED_DUTY_TYPES,
  type SigningContext,
  type ValidatedDuty,
  VOTE_DUTY_TYPES,
} from './types.js';

const MAX_INT64 = (1n << 63n) - 1n;
const DUTY_TYPES: ReadonlySet<string> = new Set(Object.values(DutyType));

function hexOf(field: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as { toString?: unknown }).toString === 'function') {
    const text = String(value);
    if (text !== '[object Object]') return text;
  }
  throw new InvalidDutyInputError(
    field,
    `expected a 0x-prefixed hex string or an object whose toString() gives one, got ${describe(value)}`,
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  return typeof value;
}

/** 0x + exactly `bytes` bytes of hex, returned lower-case (Aztec's EthAddress/Buffer32 toString() form). */
export function normalizeHex(field: string, value: HexLike | unknown, bytes: number): string {
  const text = hexOf(field, value);
  const re = new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`);
  if (!re.test(text)) {
    throw new InvalidDutyInputError(field, `expected 0x followed by ${bytes * 2} hex digits (${bytes} bytes), got ${describe(text)}`);
  }
  return text.toLowerCase();
}

export const normalizeAddress = (field: string, value: HexLike | unknown): string => normalizeHex(field, value, 20);
export const normalizeHash32 = (field: string, value: HexLike | unknown): string => normalizeHex(field, value, 32);

/** A signature as stored (VARCHAR(132)): 0x + 65 bytes of hex. */
export const normalizeSignature = (field: string, value: HexLike | unknown): string => normalizeHex(field, value, 65);

/** A non-negative integer that fits PostgreSQL's BIGINT. Accepts number (safe integer), bigint, or decimal string. */
export function toUint64(field: string, value: IntegerLike | string | unknown): bigint {
  let result: bigint;
  if (typeof value === 'bigint') result = value;
  else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new InvalidDutyInputError(field, `expected a non-negative integer, got ${value}`);
    result = BigInt(value);
  } else if (typeof value === 'string' && /^[0-9]{1,19}$/.test(value)) result = BigInt(value);
  else throw new InvalidDutyInputError(field, `expected a non-negative integer (number, bigint or decimal string), got ${describe(value)}`);
  if (result < 0n) throw new InvalidDutyInputError(field, `must not be negative, got ${result}`);
  if (result > MAX_INT64) throw new InvalidDutyInputError(field, `must be at most ${MAX_INT64}, got ${result}`);
  return result;
}

export function toDutyType(field: string, value: unknown): DutyType {
  if (typeof value !== 'string' || !DUTY_TYPES.has(value)) {
    throw new InvalidDutyInputError(field, `expected one of ${[...DUTY_TYPES].join(', ')}, got ${describe(value)}`);
  }
  return value as DutyType;
}

/**
 * Validates a protected duty once, at the edge (Aztec's positional arguments or an HTTP request): BLOCK_PROPOSAL
 * needs a block index >= 0, every other protected duty is stored with -1; votes store block number 0. Throws
 * InvalidDutyInputError naming the field (validatorAddress, messageHash, context.*).
 */
export function parseDuty(validatorAddress: HexLike, messageHash: HexLike, context: SigningContext): ValidatedDuty {
  if (context === null || typeof context !== 'object') throw new InvalidDutyInputError('context', 'expected a signing context object');
  const dutyType = toDutyType('context.dutyType', context.dutyType);
  if (!PROTECTED_DUTY_TYPES.has(dutyType)) {
    throw new InvalidDutyInputError('context.dutyType', `${dutyType} is not a protected duty type (it bypasses protection)`);
  }
  let blockIndexWithinCheckpoint = -1;
  if (dutyType === DutyType.BLOCK_PROPOSAL) {
    const index = context.blockIndexWithinCheckpoint;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 2_147_483_647) {
      throw new InvalidDutyInputError(
        'context.blockIndexWithinCheckpoint',
        `BLOCK_PROPOSAL needs an integer block index >= 0, got ${describe(index)}`,
      );
    }
    blockIndexWithinCheckpoint = index;
  }
  let blockNumber = 0n;
  if (!VOTE_DUTY_TYPES.has(dutyType) && context.blockNumber !== undefined) {
    blockNumber = toUint64('context.blockNumber', context.blockNumber);
  }
  const duty = {
    validatorAddress: normalizeAddress('validatorAddress', validatorAddress),
    messageHash: normalizeHash32('messageHash', messageHash),
    dutyType,
    slot: toUint64('context.slot', context.slot),
    blockNumber,
    blockIndexWithinCheckpoint,
    ...(context.checkpointNumber === undefined ? {} : { checkpointNumber: toUint64('context.checkpointNumber', context.checkpointNumber) }),
  };
  return duty as ValidatedDuty;
}

/** The claim of a validated duty by this signer (its rollup and node id). */
export function claimParams(duty: ValidatedDuty, rollupAddress: string, nodeId: string): CheckAndRecordParams {
  return {
    rollupAddress,
    validatorAddress: duty.validatorAddress,
    slot: duty.slot,
    dutyType: duty.dutyType,
    blockIndexWithinCheckpoint: duty.blockIndexWithinCheckpoint,
    blockNumber: duty.blockNumber,
    checkpointNumber: duty.checkpointNumber ?? 0n,
    messageHash: duty.messageHash,
    nodeId,
  };
}

/** The key and data of a protected duty from Aztec's positional arguments (parseDuty, then claimParams). */
export function dutyFromContext(
  rollupAddress: string,
  validatorAddress: HexLike,
  messageHash: HexLike,
  context: SigningContext,
  nodeId: string,
): CheckAndRecordParams {
  return claimParams(parseDuty(validatorAddress, messageHash, context), rollupAddress, nodeId);
}

/** A stable text form of a duty key; also the payload of the database's duty notifications. */
export function dutyKeyString(key: DutyKey): string {
  return [key.rollupAddress, key.validatorAddress, key.slot.toString(), key.dutyType, String(key.blockIndexWithinCheckpoint)].join('/');
}

export function normalizeDutyKey(key: {
  rollupAddress: HexLike;
  validatorAddress: HexLike;
  slot: IntegerLike;
  dutyType: DutyType | string;
  blockIndexWithinCheckpoint?: number;
}): DutyKey {
  const dutyType = toDutyType('dutyType', key.dutyType);
  const blockIndexWithinCheckpoint = dutyType === DutyType.BLOCK_PROPOSAL ? (key.blockIndexWithinCheckpoint ?? 0) : -1;
  if (!Number.isInteger(blockIndexWithinCheckpoint) || blockIndexWithinCheckpoint < -1) {
    throw new InvalidDutyInputError('blockIndexWithinCheckpoint', `expected an integer >= 0, got ${describe(blockIndexWithinCheckpoint)}`);
  }
  return {
    rollupAddress: normalizeAddress('rollupAddress', key.rollupAddress),
    validatorAddress: normalizeAddress('validatorAddress', key.validatorAddress),
    slot: toUint64('slot', key.slot),
    dutyType,
    blockIndexWithinCheckpoint,
  };
}

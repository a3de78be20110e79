/**
 * The slashing-protection interchange document of `ha-signer history export|import`, in the spirit of EIP-3076: a
 * versioned JSON object with the rollup it belongs to and, per validator, every signed duty (slot, duty type, block
 * index, message hash, signature) and the low watermark (slots at or below it were pruned and must never be signed).
 * Integers are decimal strings, as in EIP-3076: slots are 64-bit and JSON numbers are not. Parsing is strict: every
 * error names the JSON path of the field and what was expected.
 */
import { DutyType } from './types.js';

export const HISTORY_FORMAT = 'ha-signer-slashing-protection-interchange';
export const HISTORY_FORMAT_VERSION = 1;

export interface HistoryDuty {
  slot: string;
  dutyType: DutyType;
  blockIndexWithinCheckpoint: number;
  blockNumber: string;
  messageHash: string;
  signature: string;
  /** When the duty was recorded as signed (ISO 8601), when known. Informational. */
  signedAt?: string;
  /** The node that signed it. Informational. */
  nodeId?: string;
}

export interface HistoryValidator {
  validator: string;
  /** Slots at or below this were pruned: never to be signed again. Null when nothing was pruned. */
  lowWatermarkSlot: string | null;
  signedDuties: HistoryDuty[];
}

export interface HistoryDocument {
  metadata: {
    format: typeof HISTORY_FORMAT;
    interchangeFormatVersion: typeof HISTORY_FORMAT_VERSION;
    rollupAddress: string;
    exportedAt: string;
    /** What wrote the document, e.g. "ha-signer 0.1.0". */
    source?: string;
  };
  data: HistoryValidator[];
}

/** The document is malformed: `path` is where (e.g. data[2].signedDuties[5].slot). */
export class HistoryDocumentError extends Error {
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`history document ${path}: ${problem}`);
    this.name = 'HistoryDocumentError';
  }
}

const MAX_INT64 = (1n << 63n) - 1n;
const DUTY_TYPES: ReadonlySet<string> = new Set(Object.values(DutyType));

function object(path: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new HistoryDocumentError(path, `expected an object, got ${kind(value)}`);
  return value as Record<string, unknown>;
}

function array(path: string, value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new HistoryDocumentError(path, `expected an array, got ${kind(value)}`);
  return value;
}

const kind = (value: unknown): string =>
  value === null
    ? 'null'
    : Array.isArray(value)
      ? 'an array'
      : typeof value === 'string'
        ? JSON.stringify(value.slice(0, 80))
        : typeof value;

function hex(path: string, value: unknown, bytes: number): string {
  if (typeof value !== 'string' || !new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`).test(value)) {
    throw new HistoryDocumentError(path, `expected 0x followed by ${bytes * 2} hex digits, got ${kind(value)}`);
  }
  return value.toLowerCase();
}

/** A non-negative 64-bit integer as a decimal string (a JSON number is accepted when it is a safe integer). */
export function uint64(path: string, value: unknown): string {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || !/^(0|[1-9][0-9]*)$/.test(text) || BigInt(text) > MAX_INT64) {
    throw new HistoryDocumentError(path, `expected a non-negative integer as a decimal string (at most 2^63-1), got ${kind(value)}`);
  }
  return text;
}

function duty(path: string, value: unknown): HistoryDuty {
  const d = object(path, value);
  if (typeof d.dutyType !== 'string' || !DUTY_TYPES.has(d.dutyType))
    throw new HistoryDocumentError(`${path}.dutyType`, `expected one of ${[...DUTY_TYPES].join(', ')}, got ${kind(d.dutyType)}`);
  const blockIndex = d.blockIndexWithinCheckpoint;
  if (typeof blockIndex !== 'number' || !Number.isInteger(blockIndex) || blockIndex < -1 || blockIndex > 2 ** 31 - 1) {
    throw new HistoryDocumentError(`${path}.blockIndexWithinCheckpoint`, `expected an integer from -1 to 2^31-1, got ${kind(blockIndex)}`);
  }
  if (d.signedAt !== undefined && (typeof d.signedAt !== 'string' || Number.isNaN(Date.parse(d.signedAt))))
    throw new HistoryDocumentError(`${path}.signedAt`, `expected an ISO 8601 time, got ${kind(d.signedAt)}`);
  if (d.nodeId !== undefined && (typeof d.nodeId !== 'string' || d.nodeId.length > 255))
    throw new HistoryDocumentError(`${path}.nodeId`, `expected a string of at most 255 characters, got ${kind(d.nodeId)}`);
  return {
    slot: uint64(`${path}.slot`, d.slot),
    dutyType: d.dutyType as DutyType,
    blockIndexWithinCheckpoint: blockIndex,
    blockNumber: uint64(`${path}.blockNumber`, d.blockNumber),
    messageHash: hex(`${path}.messageHash`, d.messageHash, 32),
    signature: hex(`${path}.signature`, d.signature, 65),
    ...(d.signedAt !== undefined ? { signedAt: d.signedAt as string } : {}),
    ...(d.nodeId !== undefined ? { nodeId: d.nodeId as string } : {}),
  };
}

/** Validates a parsed JSON value as an interchange document; throws HistoryDocumentError naming the field. */
export function parseHistoryDocument(value: unknown): HistoryDocument {
  const root = object('(root)', value);
  const metadata = object('metadata', root.metadata);
  if (metadata.format !== HISTORY_FORMAT)
    throw new HistoryDocumentError('metadata.format', `expected ${JSON.stringify(HISTORY_FORMAT)}, got ${kind(metadata.format)}`);
  if (metadata.interchangeFormatVersion !== HISTORY_FORMAT_VERSION) {
    throw new HistoryDocumentError(
      'metadata.interchangeFormatVersion',
      `this ha-signer reads version ${HISTORY_FORMAT_VERSION}, got ${kind(metadata.interchangeFormatVersion)}`,
    );
  }
  const rollupAddress = hex('metadata.rollupAddress', metadata.rollupAddress, 20);
  const seenValidators = new Set<string>();
  const data = array('data', root.data).map((entry, i): HistoryValidator => {
    const path = `data[${i}]`;
    const v = object(path, entry);
    const validator = hex(`${path}.validator`, v.validator, 20);
    if (seenValidators.has(validator)) throw new HistoryDocumentError(`${path}.validator`, `${validator} appears more than once`);
    seenValidators.add(validator);
    const lowWatermarkSlot =
      v.lowWatermarkSlot === null || v.lowWatermarkSlot === undefined ? null : uint64(`${path}.lowWatermarkSlot`, v.lowWatermarkSlot);
    const seenDuties = new Map<string, string>();
    const signedDuties = array(`${path}.signedDuties`, v.signedDuties).map((d, j) => {
      const parsed = duty(`${path}.signedDuties[${j}]`, d);
      const key = `${parsed.slot}/${parsed.dutyType}/${parsed.blockIndexWithinCheckpoint}`;
      const other = seenDuties.get(key);
      // One document never holds two signings of one duty: with different hashes it records a slashable event.
      if (other !== undefined)
        throw new HistoryDocumentError(
          `${path}.signedDuties[${j}]`,
          `duty ${key} appears twice${other === parsed.messageHash ? '' : ' with different message hashes'}`,
        );
      seenDuties.set(key, parsed.messageHash);
      return parsed;
    });
    return { validator, lowWatermarkSlot, signedDuties };
  });
  return {
    metadata: {
      format: HISTORY_FORMAT,
      interchangeFormatVersion: HISTORY_FORMAT_VERSION,
      rollupAddress,
      exportedAt: typeof metadata.exportedAt === 'string' ? metadata.exportedAt : '',
      ...(typeof metadata.source === 'string' ? { source: metadata.source } : {}),
    },
    data,
  };
}

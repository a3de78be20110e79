/**
 * The signer's HTTP wire format: request bodies, answers and error bodies of the /v1 API, shared by the server
 * (src/signer/) and RemoteHASigner (src/client/) so the two cannot drift apart. Types only, plus the paths.
 * Numbers that can exceed 2^53 travel as decimal strings.
 */

export type SigningMethod = 'personal' | 'digest';

export interface SignContextBody {
  dutyType: string;
  slot: string | number;
  blockNumber?: string | number;
  checkpointNumber?: string | number;
  blockIndexWithinCheckpoint?: number | string;
}

/** POST /v1/validators/:address/sign */
export interface SignRequestBody {
  messageHash: string;
  signingMethod?: SigningMethod;
  context: SignContextBody;
  /** EIP-712 typed data whose hash is messageHash (digest signing only); object or JSON string. */
  typedData?: unknown;
}

export interface SignAnswer {
  signature: `0x${string}`;
  validatorAddress: string;
  dutyType: string;
  slot: string;
  nodeId: string;
}

export interface DutyJson {
  slot: string;
  dutyType: string;
  blockIndexWithinCheckpoint: number;
  blockNumber: string;
  checkpointNumber: string;
  status: string;
  messageHash: string;
  signature: string | null;
  nodeId: string;
  startedAt: string;
  completedAt: string | null;
  takeovers: number;
}

/** GET /v1/validators/:address/duties */
export interface DutiesAnswer {
  validatorAddress: string;
  rollupAddress: string;
  duties: DutyJson[];
}

/** GET /v1/validators */
export interface ValidatorsAnswer {
  validators: string[];
  nodeId: string;
  rollupAddress: string;
}

/** Reasons carried by 503 answers (`Unavailable`). `DutyInProgress`: another node still holds the duty. */
export type UnavailableReason =
  'DutyInProgress' | 'SigningLockLost' | 'ShuttingDown' | 'DatabaseUnavailableError' | 'SchemaVersionError' | 'Internal';

export interface DutyAlreadySignedBody {
  error: 'DutyAlreadySigned';
  message: string;
  slot: string;
  dutyType: string;
  blockIndexWithinCheckpoint: number;
  signedByNode: string;
  /** The stored signature when the request's hash is the recorded one; null when unknown. */
  signature: string | null;
}

export interface SlashingProtectionBody {
  error: 'SlashingProtection';
  message: string;
  slot: string;
  dutyType: string;
  blockIndexWithinCheckpoint: number;
  existingMessageHash: string;
  attemptedMessageHash: string;
  signedByNode: string;
}

export interface InvalidRequestBody {
  error: 'InvalidRequest';
  message: string;
  /** The offending field (`messageHash`, `context.slot`, `address`, `body`, `content-type`, ...); the message starts with it. */
  field: string;
}

export interface UnavailableBody {
  error: 'Unavailable';
  message: string;
  reason: UnavailableReason | string;
  /** DutyInProgress only: the duty, and the node that still holds it. Retry later (or at another replica). */
  slot?: string;
  dutyType?: string;
  blockIndexWithinCheckpoint?: number;
  heldByNode?: string;
}

export interface PlainErrorBody {
  error: 'Unauthorized' | 'Forbidden' | 'UnknownValidator' | 'NotFound' | 'PayloadTooLarge' | 'SigningFailed' | 'Internal';
  message: string;
}

export type ErrorBody = DutyAlreadySignedBody | SlashingProtectionBody | InvalidRequestBody | UnavailableBody | PlainErrorBody;

export const API_PATHS = {
  validators: '/v1/validators',
  sign: (address: string): string => `/v1/validators/${encodeURIComponent(address)}/sign`,
  duties: (address: string): string => `/v1/validators/${encodeURIComponent(address)}/duties`,
} as const;

/** Route patterns (fastify syntax) of the same paths. */
export const ROUTES = {
  validators: '/v1/validators',
  sign: '/v1/validators/:address/sign',
  duties: '/v1/validators/:address/duties',
} as const;

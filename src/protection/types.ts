/** Duty types, statuses, signing contexts and records: the shapes of @aztec/validator-ha-signer's API. */

export enum DutyType {
  BLOCK_PROPOSAL = 'BLOCK_PROPOSAL',
  CHECKPOINT_PROPOSAL = 'CHECKPOINT_PROPOSAL',
  ATTESTATION = 'ATTESTATION',
  ATTESTATIONS_AND_SIGNERS = 'ATTESTATIONS_AND_SIGNERS',
  GOVERNANCE_VOTE = 'GOVERNANCE_VOTE',
  SLASHING_VOTE = 'SLASHING_VOTE',
  AUTH_REQUEST = 'AUTH_REQUEST',
  TXS = 'TXS',
}

export enum DutyStatus {
  SIGNING = 'signing',
  SIGNED = 'signed',
}

/** Duty types recorded in the database; the others bypass protection (signing them repeatedly is safe). */
export const PROTECTED_DUTY_TYPES: ReadonlySet<DutyType> = new Set([
  DutyType.BLOCK_PROPOSAL,
  DutyType.CHECKPOINT_PROPOSAL,
  DutyType.ATTESTATION,
  DutyType.ATTESTATIONS_AND_SIGNERS,
  DutyType.GOVERNANCE_VOTE,
  DutyType.SLASHING_VOTE,
]);

export const VOTE_DUTY_TYPES: ReadonlySet<DutyType> = new Set([DutyType.GOVERNANCE_VOTE, DutyType.SLASHING_VOTE]);

export function isProtectedDutyType(dutyType: DutyType): boolean {
  return PROTECTED_DUTY_TYPES.has(dutyType);
}

/** A 0x-prefixed hex string, or any object whose toString() gives one (Aztec's EthAddress, Buffer32, Signature). */
export type HexLike = string | { toString(): string };

/** Slot, block and checkpoint numbers: number or bigint (Aztec's branded numbers are plain numbers/bigints). */
export type IntegerLike = number | bigint;

/** The signing context of @aztec/validator-ha-signer (`HAProtectedSigningContext` and the bypassing kinds). */
export interface SigningContext {
  dutyType: DutyType | `${DutyType}`;
  slot: IntegerLike;
  /** Block number; required for block and checkpoint duties, stored as 0 for votes. */
  blockNumber?: IntegerLike;
  /** Index of the block within its checkpoint: >= 0 for BLOCK_PROPOSAL, ignored (stored as -1) otherwise. */
  blockIndexWithinCheckpoint?: number;
  /** Stored as data, not part of the duty key; 0 when absent. */
  checkpointNumber?: IntegerLike;
}

/** A validated, normalized duty key (lower-case hex, bigint numbers). */
export interface DutyKey {
  rollupAddress: string;
  validatorAddress: string;
  slot: bigint;
  dutyType: DutyType;
  blockIndexWithinCheckpoint: number;
}

export type DutyIdentifier = DutyKey;

/** Only parseDuty() makes a ValidatedDuty (type-level brand; nothing at run time). */
declare const validatedDutyBrand: unique symbol;

/**
 * A protected duty validated once, at the edge (parseDuty): lower-case 0x hex, bigint numbers, a protected duty
 * type, the block index as the package stores it (>= 0 for BLOCK_PROPOSAL, -1 otherwise), block number 0 for
 * votes. The rollup and node id come from the signer's configuration, not from the caller.
 */
export interface ValidatedDuty {
  readonly validatorAddress: string;
  readonly messageHash: string;
  readonly dutyType: DutyType;
  readonly slot: bigint;
  readonly blockNumber: bigint;
  readonly blockIndexWithinCheckpoint: number;
  /** Absent when the caller gave none; stored as 0 where the database has the column (Aztec schema 2). */
  readonly checkpointNumber?: bigint;
  readonly [validatedDutyBrand]: true;
}

export interface CheckAndRecordParams extends DutyKey {
  blockNumber: bigint;
  checkpointNumber: bigint;
  messageHash: string;
  nodeId: string;
}

export interface RecordSuccessParams extends DutyKey {
  signature: HexLike;
  nodeId: string;
  lockToken: string;
}

export interface DeleteDutyParams extends DutyKey {
  lockToken: string;
}

export interface ValidatorDutyRecord {
  rollupAddress: string;
  validatorAddress: string;
  slot: bigint;
  blockNumber: bigint;
  checkpointNumber: bigint;
  blockIndexWithinCheckpoint: number;
  dutyType: DutyType;
  status: DutyStatus;
  messageHash: string;
  signature?: string;
  nodeId: string;
  /** Empty unless this caller holds the lock. */
  lockToken: string;
  startedAt: Date;
  completedAt?: Date;
  errorMessage?: string;
  /** Database time at which an in-progress duty's lease ends; absent for holders without leases (Aztec's package). */
  leaseExpiresAt?: Date;
  takeovers: number;
}

export interface TryInsertOrGetResult {
  isNew: boolean;
  record: ValidatorDutyRecord;
}

/** The package's database API (Aztec's `SlashingProtectionDatabase`); PostgresSlashingProtectionDatabase implements it. */
export interface SlashingProtectionDatabase {
  initialize(): Promise<void>;
  tryInsertOrGetExisting(params: CheckAndRecordParams): Promise<TryInsertOrGetResult>;
  updateDutySigned(
    rollupAddress: HexLike,
    validatorAddress: HexLike,
    slot: IntegerLike,
    dutyType: DutyType,
    signature: string,
    lockToken: string,
    blockIndexWithinCheckpoint: number,
  ): Promise<boolean>;
  deleteDuty(
    rollupAddress: HexLike,
    validatorAddress: HexLike,
    slot: IntegerLike,
    dutyType: DutyType,
    lockToken: string,
    blockIndexWithinCheckpoint: number,
  ): Promise<boolean>;
  cleanupOwnStuckDuties(nodeId: string, maxAgeMs: number): Promise<number>;
  cleanupOldDuties(maxAgeMs: number, options?: { signal?: AbortSignal }): Promise<number>;
  close(): Promise<void>;
}

/** Hooks for metrics and audit; the core itself knows nothing of Prometheus. All optional. */
export interface ProtectionObserver {
  lockAcquired?(dutyType: DutyType, how: 'inserted' | 'takeover'): void;
  dutyAlreadySigned?(dutyType: DutyType): void;
  /** A waiter gave up after signingTimeoutMs and a fresh read found the duty still unsigned (DutyInProgressError). */
  dutyInProgress?(dutyType: DutyType): void;
  slashingProtectionTriggered?(dutyType: DutyType, reason: 'different_hash' | 'below_watermark'): void;
  lockWaited?(dutyType: DutyType, waitedMs: number): void;
  signingSucceeded?(dutyType: DutyType, durationMs: number): void;
  signingFailed?(dutyType: DutyType, reason: 'sign_error' | 'timeout' | 'lock_lost' | 'record_error'): void;
  cleanedUp?(kind: 'stuck' | 'old', count: number): void;
  /** After each replication check (replication.ts): whether record commits are synchronously replicated. */
  replicationChecked?(synchronous: boolean): void;
  /** After each history check (history-guard.ts): validators whose database holds less history than their mark. */
  historyChecked?(regressedValidators: number): void;
}

/** pino-compatible logger (fastify's logger fits). */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

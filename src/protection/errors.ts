/** Errors of the protection core; names and fields match @aztec/validator-ha-signer's. */
import type { DutyType } from './types.js';

/** The duty was already signed (by any node): expected in HA, all nodes try and the first one wins. */
export class DutyAlreadySignedError extends Error {
  constructor(
    public readonly slot: bigint,
    public readonly dutyType: DutyType,
    public readonly blockIndexWithinCheckpoint: number,
    public readonly signedByNode: string,
    /** The recorded signature when the caller asked for the same message hash (ha-signer addition). */
    public readonly signature?: string,
  ) {
    super(`Duty ${dutyType} for slot ${slot} already signed by node ${signedByNode}`);
    this.name = 'DutyAlreadySignedError';
  }
}

/**
 * Another node still holds the duty (status `signing`, lease not expired) after this caller waited
 * signingTimeoutMs, and a fresh read confirmed it is not signed. A subclass of DutyAlreadySignedError so Aztec's
 * validator client, which treats that error as "another node handles this duty", keeps working unchanged; the
 * signer's HTTP layer checks this class first and answers 503 "still in progress" (retry later), not 409.
 */
export class DutyInProgressError extends DutyAlreadySignedError {
  constructor(
    slot: bigint,
    dutyType: DutyType,
    blockIndexWithinCheckpoint: number,
    /** The node holding the duty's lock. */
    public readonly holderNodeId: string,
    public readonly waitedMs: number,
  ) {
    super(slot, dutyType, blockIndexWithinCheckpoint, 'unknown (timeout)');
    this.message = `Duty ${dutyType} for slot ${slot} is still being signed by node ${holderNodeId} after waiting ${waitedMs} ms; retry later`;
    this.name = 'DutyInProgressError';
  }
}

/** The same validator tried to sign different data for the same duty: refused. */
export class SlashingProtectionError extends Error {
  constructor(
    public readonly slot: bigint,
    public readonly dutyType: DutyType,
    public readonly blockIndexWithinCheckpoint: number,
    public readonly existingMessageHash: string,
    public readonly attemptedMessageHash: string,
    public readonly signedByNode: string,
    detail?: string,
  ) {
    super(
      detail ??
        `Slashing protection: ${dutyType} for slot ${slot} was already signed with different data. ` +
          `Existing: ${existingMessageHash.slice(0, 10)}..., Attempted: ${attemptedMessageHash.slice(0, 10)}...`,
    );
    this.name = 'SlashingProtectionError';
  }
}

/** The duty record no longer holds this node's lock token: the signature is withheld. */
export class SigningLockLostError extends Error {
  constructor(
    public readonly slot: bigint,
    public readonly dutyType: DutyType,
    public readonly nodeId: string,
  ) {
    super(
      `Lost the signing lock for ${dutyType} at slot ${slot} (node ${nodeId}): the duty record no longer holds this ` +
        `node's token, so the signature is withheld`,
    );
    this.name = 'SigningLockLostError';
  }
}

/** A duty at or below its validator's low watermark: its history was pruned, so it is refused outright. */
export function belowWatermarkError(
  duty: { slot: bigint; dutyType: DutyType; blockIndexWithinCheckpoint: number; messageHash: string; validatorAddress: string },
  lowSlot: bigint,
): SlashingProtectionError {
  return new SlashingProtectionError(
    duty.slot,
    duty.dutyType,
    duty.blockIndexWithinCheckpoint,
    'unknown (pruned)',
    duty.messageHash,
    'unknown (pruned)',
    `Slashing protection: ${duty.dutyType} for slot ${duty.slot} is at or below validator ` +
      `${duty.validatorAddress}'s low watermark ${lowSlot} (its history was pruned), so it can never be signed again`,
  );
}

/** signFn did not settle within signingOperationTimeoutMs: the duty was released, nothing was signed. */
export class SigningTimeoutError extends Error {
  constructor(dutyType: string, slot: bigint, timeoutMs: number) {
    super(`Signing operation for ${dutyType} at slot ${slot} timed out after ${timeoutMs}ms`);
    this.name = 'SigningTimeoutError';
  }
}

/** Thrown by calls made after stop(): a stopping signer takes no new duties. */
export class SignerStoppedError extends Error {
  constructor() {
    super('the HA signer is stopping and takes no new duties');
    this.name = 'SignerStoppedError';
  }
}

/** Malformed input to the protection API (names the field). Nothing was written. */
export class InvalidDutyInputError extends Error {
  constructor(
    public readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'InvalidDutyInputError';
  }
}

/** A configuration value is invalid (names the setting and the fix). */
export class ConfigError extends Error {
  constructor(
    public readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** The database schema is missing, old or unknown: refuse to sign. */
export class SchemaVersionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaVersionError';
  }
}

/** The database is bound to another rollup: refuse to start (one database per rollup version). */
export class RollupBindingError extends Error {
  constructor(
    public readonly boundRollupAddress: string,
    public readonly configuredRollupAddress: string,
  ) {
    super(
      `This database is bound to rollup ${boundRollupAddress}, but this signer is configured for rollup ` +
        `${configuredRollupAddress}. Use one database per rollup version; after a rollup upgrade, rebind it with ` +
        `\`ha-signer rebind-rollup --database-url <url> --from ${boundRollupAddress} --to ${configuredRollupAddress}\``,
    );
    this.name = 'RollupBindingError';
  }
}

/** The database could not be reached or answered with an error: fail closed. */
export class DatabaseUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseUnavailableError';
  }
}

/**
 * The protection database holds less history for a validator than its external high-water mark (restored from a
 * backup, or failed over to a standby that lagged): a duty at or below the mark could be signed a second time.
 */
export class DatabaseRegressedError extends DatabaseUnavailableError {
  readonly validatorAddress: string;
  readonly refusedUpToSlot: bigint;

  constructor(
    regression: {
      validatorAddress: string;
      refusedUpToSlot: bigint;
      kinds: { dutyType: string; mark: bigint; databaseTop: bigint | undefined }[];
    },
    slot: bigint,
    dutyType: string,
  ) {
    const lost = regression.kinds
      .map(
        (k) =>
          `${k.dutyType} signed up to slot ${k.mark}, the database holds ${k.databaseTop === undefined ? 'none' : `up to ${k.databaseTop}`}`,
      )
      .join('; ');
    super(
      `refused ${dutyType} at slot ${slot} for validator ${regression.validatorAddress}: the protection database holds less ` +
        `history than the external high-water mark (${lost}); it was restored from a backup or failed over to a ` +
        `replica that lagged, so a duty at or below slot ${regression.refusedUpToSlot} could be signed twice. Recover: ` +
        `\`ha-signer history import <newest export> --database-url URL\`, or close the gap with \`ha-signer watermark raise ` +
        `--database-url URL --validator ${regression.validatorAddress} --slot ${regression.refusedUpToSlot}\` (or higher: ` +
        'the current slot); see docs/protection.md#backup-and-restore',
    );
    this.name = 'DatabaseRegressedError';
    this.validatorAddress = regression.validatorAddress;
    this.refusedUpToSlot = regression.refusedUpToSlot;
  }
}

/** requireSynchronousReplication is set and the database's record commits are not synchronously replicated. */
export class SynchronousReplicationRequiredError extends DatabaseUnavailableError {
  constructor(reasons: string[]) {
    super(`signing refused: synchronous replication is required (requireSynchronousReplication) but ${reasons.join('; ')}`);
    this.name = 'SynchronousReplicationRequiredError';
  }
}

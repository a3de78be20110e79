/**
 * ValidatorHASigner: signs a validator duty at most once across all nodes sharing the database, and never with
 * two different payloads. A signature is released only after its duty is durably recorded as signed under this
 * node's lock token.
 */
import { type ResolvedSignerConfig, type ValidatorHASignerConfig, resolveSignerConfig } from './config.js';
import type { PostgresSlashingProtectionDatabase } from './db.js';
import { SigningLockLostError } from './errors.js';
import { withTimeout } from './timeout.js';
import { silentLogger } from './logger.js';
import { SlashingProtectionService } from './slashing-protection-service.js';
import { type CheckAndRecordParams, type HexLike, type Logger, type ProtectionObserver, type SigningContext, isProtectedDutyType } from './types.js';
import { dutyFromContext, normalizeSignature, toDutyType } from './values.js';

export interface ValidatorHASignerDeps {
  logger?: Logger;
  observer?: ProtectionObserver;
}

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

export class ValidatorHASigner {
  readonly config: ResolvedSignerConfig;
  private readonly service: SlashingProtectionService;
  private readonly logger: Logger;
  private readonly observer: ProtectionObserver;
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopping = false;

  constructor(
    private readonly db: PostgresSlashingProtectionDatabase,
    config: ValidatorHASignerConfig,
    deps: ValidatorHASignerDeps = {},
  ) {
    this.config = resolveSignerConfig(config);
    this.logger = deps.logger ?? silentLogger;
    this.observer = deps.observer ?? {};
    this.service = new SlashingProtectionService(db, this.config, deps);
  }

  get nodeId(): string {
    return this.config.nodeId;
  }

  get rollupAddress(): string {
    return this.config.rollupAddress;
  }

  get database(): PostgresSlashingProtectionDatabase {
    return this.db;
  }

  /**
   * Signs `messageHash` for a duty unless it was signed already. Returns exactly what signFn returned.
   * AUTH_REQUEST and TXS bypass protection (signing them repeatedly is safe).
   *
   * @throws DutyAlreadySignedError the duty was signed (same hash) or is still being signed elsewhere
   * @throws SlashingProtectionError the duty was signed with a different hash, or its slot was pruned
   * @throws SigningLockLostError the record no longer held this node's token: the signature is withheld
   */
  async signWithProtection<S extends HexLike>(
    validatorAddress: HexLike,
    messageHash: HexLike,
    context: SigningContext,
    signFn: (messageHash: HexLike) => Promise<S>,
  ): Promise<S> {
    if (this.stopping) throw new SignerStoppedError();
    const dutyType = toDutyType('context.dutyType', context?.dutyType);
    if (!isProtectedDutyType(dutyType)) return await signFn(messageHash);
    const duty = dutyFromContext(this.config.rollupAddress, validatorAddress, messageHash, context, this.config.nodeId);
    const run = this.signDuty(duty, messageHash, signFn);
    this.inFlight.add(run);
    try {
      return await run;
    } finally {
      this.inFlight.delete(run);
    }
  }

  private async signDuty<S extends HexLike>(duty: CheckAndRecordParams, messageHash: HexLike, signFn: (messageHash: HexLike) => Promise<S>): Promise<S> {
    const startedAt = Date.now();
    const lockToken = await this.service.checkAndRecord(duty);
    const release = async (): Promise<void> => {
      try {
        await this.service.deleteDuty({ ...duty, lockToken });
      } catch (error) {
        // The lease ends the claim anyway; another node takes it over then.
        this.logger.warn({ err: String(error), dutyType: duty.dutyType, slot: duty.slot.toString() }, 'could not release a failed duty');
      }
    };

    let signature: S;
    let signatureHex: string;
    try {
      const timeoutMs = this.config.signingOperationTimeoutMs;
      signature = await withTimeout(() => signFn(messageHash), timeoutMs, () => new SigningTimeoutError(duty.dutyType, duty.slot, timeoutMs));
      signatureHex = normalizeSignature('signature', signature);
    } catch (error) {
      await release();
      this.observer.signingFailed?.(duty.dutyType, error instanceof SigningTimeoutError ? 'timeout' : 'sign_error');
      throw error;
    }

    let recorded: boolean;
    try {
      recorded = await this.service.recordSuccess({ ...duty, signature: signatureHex, nodeId: this.nodeId, lockToken });
    } catch (error) {
      // Whether the record committed is unknown: withhold the signature. If the duty is still ours and unsigned,
      // release it; if it did commit, a retry with the same hash gets DutyAlreadySignedError with the signature.
      await release();
      this.observer.signingFailed?.(duty.dutyType, 'record_error');
      throw error;
    }
    if (!recorded) {
      this.observer.signingFailed?.(duty.dutyType, 'lock_lost');
      this.logger.error({ dutyType: duty.dutyType, slot: duty.slot.toString(), validator: duty.validatorAddress }, 'signing lock lost before the record; signature withheld');
      throw new SigningLockLostError(duty.slot, duty.dutyType, this.nodeId);
    }
    this.observer.signingSucceeded?.(duty.dutyType, Date.now() - startedAt);
    return signature;
  }

  /** Checks the rollup binding and starts background cleanup. */
  async start(): Promise<void> {
    await this.service.start();
  }

  /** Takes no new duties, lets in-flight ones finish, stops cleanup and closes the database. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.inFlight]);
    await this.service.stop();
    await this.service.close();
  }

  /** Number of duties in flight (for graceful shutdown and metrics). */
  get inFlightCount(): number {
    return this.inFlight.size;
  }
}

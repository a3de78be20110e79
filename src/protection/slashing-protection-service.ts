/**
 * Slashing protection: claims a duty (first writer holds the lock), tells later callers what happened to it,
 * lets waiters learn the outcome through database notifications, takes over duties whose holder's lease expired,
 * signs and records (signDuty), and keeps the table tidy in the background (src/protection/cleanup.ts).
 */
import { BackgroundCleanup } from './cleanup.js';
import { type ResolvedSignerConfig, type ValidatorHASignerConfig, resolveSignerConfig } from './config.js';
import type { ClaimResult, ProtectionStore } from './db/store.js';
import type { DutySubscription } from './notifications.js';
import {
  DutyAlreadySignedError,
  DutyInProgressError,
  SigningLockLostError,
  SigningTimeoutError,
  SlashingProtectionError,
  belowWatermarkError,
} from './errors.js';
import { silentLogger } from './logger.js';
import { type SafetyGateOptions, SafetyGates } from './safety-gates.js';
import { withTimeout } from './timeout.js';
import {
  type CheckAndRecordParams,
  type DeleteDutyParams,
  DutyStatus,
  type HexLike,
  type Logger,
  type ProtectionObserver,
  type RecordSuccessParams,
  type ValidatedDuty,
  type ValidatorDutyRecord,
} from './types.js';
import { claimParams, normalizeDutyKey, normalizeSignature } from './values.js';

export interface SlashingProtectionServiceDeps extends SafetyGateOptions {
  logger?: Logger;
  observer?: ProtectionObserver;
}

const NOTIFIED_RECHECK_MS = 1_000; // with notifications connected, waiters still re-check this often (a safety net)

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class SlashingProtectionService {
  readonly config: ResolvedSignerConfig;
  private readonly logger: Logger;
  private readonly observer: ProtectionObserver;
  private readonly housekeeping: BackgroundCleanup;
  readonly gates: SafetyGates;

  constructor(
    private readonly store: ProtectionStore,
    config: ValidatorHASignerConfig | ResolvedSignerConfig,
    deps: SlashingProtectionServiceDeps = {},
  ) {
    this.config = 'leaseMs' in config ? config : resolveSignerConfig(config);
    this.logger = deps.logger ?? silentLogger;
    this.observer = deps.observer ?? {};
    this.housekeeping = new BackgroundCleanup(store, this.config, this.logger, this.observer);
    this.gates = new SafetyGates(deps);
  }

  get nodeId(): string {
    return this.config.nodeId;
  }

  /**
   * Signs a validated duty at most once: claims it, runs signFn (with the normalized message hash) under the
   * signing-operation timeout, records the signature under this node's lock token, and only then returns what
   * signFn returned. The signature is normalized once, here.
   *
   * @throws DutyAlreadySignedError the duty was signed with the same hash (carries the stored signature)
   * @throws DutyInProgressError another node still holds the duty after signingTimeoutMs (not signed)
   * @throws SlashingProtectionError the duty was signed with a different hash, or its slot was pruned
   * @throws SigningLockLostError the record no longer held this node's token: the signature is withheld
   * @throws DatabaseUnavailableError the database did not answer in time: nothing was released
   */
  async signDuty<S extends HexLike>(duty: ValidatedDuty, signFn: (messageHash: string) => Promise<S>): Promise<S> {
    const params = claimParams(duty, this.config.rollupAddress, this.nodeId);
    const startedAt = Date.now();
    const lockToken = await this.acquire(params);
    const release = async (): Promise<void> => {
      try {
        await this.store.release(params, lockToken);
      } catch (error) {
        // The lease ends the claim anyway; another node takes it over then.
        this.logger.warn(
          { err: String(error), dutyType: params.dutyType, slot: params.slot.toString() },
          'could not release a failed duty',
        );
      }
    };

    let signature: S;
    let signatureHex: string;
    try {
      const timeoutMs = this.config.signingOperationTimeoutMs;
      signature = await withTimeout(
        () => signFn(params.messageHash),
        timeoutMs,
        () => new SigningTimeoutError(params.dutyType, params.slot, timeoutMs),
      );
      signatureHex = normalizeSignature('signature', signature);
    } catch (error) {
      await release();
      this.observer.signingFailed?.(params.dutyType, error instanceof SigningTimeoutError ? 'timeout' : 'sign_error');
      throw error;
    }

    let recorded: boolean;
    try {
      recorded = await this.store.recordSigned(params, lockToken, signatureHex);
    } catch (error) {
      // Whether the record committed is unknown: withhold the signature. If the duty is still ours and unsigned,
      // release it; if it did commit, a retry with the same hash gets DutyAlreadySignedError with the signature.
      await release();
      this.observer.signingFailed?.(params.dutyType, 'record_error');
      throw error;
    }
    if (!recorded) {
      this.observer.signingFailed?.(params.dutyType, 'lock_lost');
      this.logger.error(
        { dutyType: params.dutyType, slot: params.slot.toString(), validator: params.validatorAddress },
        'signing lock lost before the record; signature withheld',
      );
      throw new SigningLockLostError(params.slot, params.dutyType, this.nodeId);
    }
    this.gates.noteSigned(params);
    this.observer.signingSucceeded?.(params.dutyType, Date.now() - startedAt);
    return signature;
  }

  /** The package's API: the duty's lock token, or the errors of signDuty's claim step. */
  async checkAndRecord(params: CheckAndRecordParams): Promise<string> {
    return await this.acquire(params);
  }

  private async acquire(params: CheckAndRecordParams): Promise<string> {
    this.gates.assertAllowed(params);
    const startedAt = Date.now();
    const deadline = startedAt + this.config.signingTimeoutMs;
    let waited = false;
    let retriedAfterDeadline = false;
    for (;;) {
      // Subscribe before reading, so a completion between the read and the wait still wakes us.
      const subscription = this.store.subscribe(params);
      try {
        const claim = await this.store.claim(params, this.config.leaseMs);
        const outcome = await this.lockFromClaim(params, claim, waited ? startedAt : undefined);
        if ('lockToken' in outcome) return outcome.lockToken;
        if ('retry' in outcome) continue;
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          await this.answerAfterDeadline(params, startedAt);
          // The duty was released meanwhile: one more claim, once.
          if (retriedAfterDeadline) this.inProgress(params, outcome.holder, startedAt);
          retriedAfterDeadline = true;
          continue;
        }
        waited = true;
        await this.waitForChange(subscription, remaining);
      } finally {
        subscription?.close();
      }
    }
  }

  /**
   * What a claim means for this caller: the lock (inserted, or taken over from a holder whose lease lapsed), a
   * retry (another node won the takeover), or the holder to wait for. Throws when the duty is signed or pruned.
   */
  private async lockFromClaim(
    params: CheckAndRecordParams,
    claim: ClaimResult,
    waitedSince: number | undefined,
  ): Promise<{ lockToken: string } | { retry: true } | { holder: ValidatorDutyRecord }> {
    if (claim.isNew && claim.record) {
      this.observer.lockAcquired?.(params.dutyType, 'inserted');
      if (waitedSince !== undefined) this.observer.lockWaited?.(params.dutyType, Date.now() - waitedSince);
      return { lockToken: claim.record.lockToken };
    }
    const record = claim.record;
    if (!record) {
      this.observer.slashingProtectionTriggered?.(params.dutyType, 'below_watermark');
      throw belowWatermarkError(params, claim.watermarkLowSlot ?? 0n);
    }
    if (record.status === DutyStatus.SIGNED) {
      if (waitedSince !== undefined) this.observer.lockWaited?.(params.dutyType, Date.now() - waitedSince);
      this.refuseSigned(params, record);
    }
    // In progress elsewhere. A lapsed lease means its holder died or stalled: take the duty over. A holder
    // without a lease (Aztec's package) is taken over only when stuck and only with the same hash.
    const foreignHolder = record.leaseExpiresAt === undefined;
    if (!claim.leaseExpired && !(foreignHolder && claim.stuck && record.messageHash === params.messageHash)) return { holder: record };
    const lockToken = await this.store.takeOver(params, this.config.leaseMs);
    if (!lockToken) return { retry: true };
    this.observer.lockAcquired?.(params.dutyType, 'takeover');
    this.logger.warn(
      {
        dutyType: params.dutyType,
        slot: params.slot.toString(),
        validator: params.validatorAddress,
        previousNode: record.nodeId,
        nodeId: this.nodeId,
      },
      'took over an in-progress duty whose holder lease expired',
    );
    return { lockToken };
  }

  /**
   * signingTimeoutMs has passed. The claim's view may be older than the deadline (its snapshot predates a holder's
   * record it waited on, or this process was paused), so the answer comes from a fresh read: signed → refused as
   * signed; still in progress → DutyInProgressError; gone (released meanwhile) → returns, for one more claim.
   */
  private async answerAfterDeadline(params: CheckAndRecordParams, startedAt: number): Promise<void> {
    const current = await this.store.readDuty(params);
    if (current?.status === DutyStatus.SIGNED) this.refuseSigned(params, current);
    if (current) this.inProgress(params, current, startedAt);
  }

  private inProgress(params: CheckAndRecordParams, holder: ValidatorDutyRecord, startedAt: number): never {
    this.observer.dutyInProgress?.(params.dutyType);
    this.logger.warn(
      { dutyType: params.dutyType, slot: params.slot.toString(), signingNode: holder.nodeId, timeoutMs: this.config.signingTimeoutMs },
      'timed out waiting for another node to finish signing',
    );
    throw new DutyInProgressError(params.slot, params.dutyType, holder.blockIndexWithinCheckpoint, holder.nodeId, Date.now() - startedAt);
  }

  /** Waits for the duty's notification, or polls when notifications are down; at most `remaining` ms. */
  private async waitForChange(subscription: DutySubscription | undefined, remaining: number): Promise<void> {
    const connected = this.store.notificationsConnected;
    const recheckMs = connected ? Math.max(NOTIFIED_RECHECK_MS, this.config.pollingIntervalMs) : this.config.pollingIntervalMs;
    const waitMs = Math.min(remaining, recheckMs);
    if (subscription && connected) await subscription.wait(waitMs);
    else await sleep(waitMs);
  }

  /** A signed duty: the same hash gets DutyAlreadySignedError with the stored signature, another hash SlashingProtectionError. */
  private refuseSigned(params: CheckAndRecordParams, record: ValidatorDutyRecord): never {
    if (record.messageHash !== params.messageHash) {
      this.observer.slashingProtectionTriggered?.(params.dutyType, 'different_hash');
      const { dutyType, validatorAddress: validator, messageHash: attempted } = params;
      const fields = {
        dutyType,
        slot: params.slot.toString(),
        validator,
        existing: record.messageHash,
        attempted,
        signedByNode: record.nodeId,
      };
      this.logger.warn(fields, 'slashing protection: refused to sign different data for a signed duty');
      throw new SlashingProtectionError(
        params.slot,
        params.dutyType,
        record.blockIndexWithinCheckpoint,
        record.messageHash,
        params.messageHash,
        record.nodeId,
      );
    }
    this.observer.dutyAlreadySigned?.(params.dutyType);
    throw new DutyAlreadySignedError(params.slot, params.dutyType, record.blockIndexWithinCheckpoint, record.nodeId, record.signature);
  }

  /** Records the signature (the package's API; validates its input); true only when this lock token still held the duty. */
  async recordSuccess(params: RecordSuccessParams): Promise<boolean> {
    const key = normalizeDutyKey(params);
    const recorded = await this.store.recordSigned(key, params.lockToken, normalizeSignature('signature', params.signature));
    if (recorded) this.gates.noteSigned(key);
    return recorded;
  }

  /** Releases a duty after a failed signing (only under its own token) so another node can retry. */
  async deleteDuty(params: DeleteDutyParams): Promise<boolean> {
    return await this.store.release(normalizeDutyKey(params), params.lockToken);
  }

  /** Checks (or makes) the rollup binding (RollupBindingError), starts notifications, the gates' checks and cleanup. */
  async start(): Promise<void> {
    await this.store.ensureRollupBinding(this.config.rollupAddress);
    await this.store.startNotifications();
    await this.gates.start();
    this.housekeeping.start();
  }

  async stop(): Promise<void> {
    await this.housekeeping.stop();
    await this.gates.stop();
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  /** One round of background cleanup; errors are logged, never thrown (the next round retries). */
  async cleanup(): Promise<void> {
    await this.housekeeping.runOnce();
  }
}

/**
 * Slashing protection: claims a duty (first writer holds the lock), tells later callers what happened to it,
 * lets waiters learn the outcome through database notifications, takes over duties whose holder's lease expired,
 * and keeps the table tidy (stuck duties, pruning under the low watermark).
 */
import { type ResolvedSignerConfig, type ValidatorHASignerConfig, resolveSignerConfig } from './config.js';
import { belowWatermarkError, type PostgresSlashingProtectionDatabase } from './db.js';
import { DutyAlreadySignedError, SlashingProtectionError } from './errors.js';
import { silentLogger } from './logger.js';
import {
  type CheckAndRecordParams,
  type DeleteDutyParams,
  DutyStatus,
  type Logger,
  type ProtectionObserver,
  type RecordSuccessParams,
} from './types.js';
import { normalizeSignature } from './values.js';

export interface SlashingProtectionServiceDeps {
  logger?: Logger;
  observer?: ProtectionObserver;
}

/** With notifications connected, waiters still re-check this often (a safety net, not the mechanism). */
const NOTIFIED_RECHECK_MS = 1_000;
/** Old-duty pruning runs at most this often. */
const OLD_DUTIES_CLEANUP_INTERVAL_MS = 3_600_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class SlashingProtectionService {
  readonly config: ResolvedSignerConfig;
  private readonly logger: Logger;
  private readonly observer: ProtectionObserver;
  private cleanupTimer: NodeJS.Timeout | undefined;
  private runningCleanup: Promise<void> | undefined;
  private lastOldDutiesCleanupAt: number | undefined;

  constructor(
    private readonly db: PostgresSlashingProtectionDatabase,
    config: ValidatorHASignerConfig | ResolvedSignerConfig,
    deps: SlashingProtectionServiceDeps = {},
  ) {
    this.config = 'leaseMs' in config ? config : resolveSignerConfig(config);
    this.logger = deps.logger ?? silentLogger;
    this.observer = deps.observer ?? {};
  }

  get nodeId(): string {
    return this.config.nodeId;
  }

  /**
   * Acquires the lock of a duty and returns its token, or throws DutyAlreadySignedError (same hash already signed
   * or still in progress after signingTimeoutMs) or SlashingProtectionError (different hash, or pruned slot).
   */
  async checkAndRecord(params: CheckAndRecordParams): Promise<string> {
    const startedAt = Date.now();
    const deadline = startedAt + this.config.signingTimeoutMs;
    let waited = false;
    for (;;) {
      // Subscribe before reading, so a completion between the read and the wait still wakes us.
      const subscription = this.db.subscribe(params);
      try {
        const claim = await this.db.claim(params, this.config.leaseMs);
        if (claim.isNew && claim.record) {
          this.observer.lockAcquired?.(params.dutyType, 'inserted');
          if (waited) this.observer.lockWaited?.(params.dutyType, Date.now() - startedAt);
          return claim.record.lockToken;
        }
        const record = claim.record;
        if (!record) {
          this.observer.slashingProtectionTriggered?.(params.dutyType, 'below_watermark');
          throw belowWatermarkError(params, claim.watermarkLowSlot ?? 0n);
        }
        if (record.status === DutyStatus.SIGNED) {
          if (waited) this.observer.lockWaited?.(params.dutyType, Date.now() - startedAt);
          if (record.messageHash !== params.messageHash) {
            this.observer.slashingProtectionTriggered?.(params.dutyType, 'different_hash');
            this.logger.warn(
              { dutyType: params.dutyType, slot: params.slot.toString(), validator: params.validatorAddress, existing: record.messageHash, attempted: params.messageHash, signedByNode: record.nodeId },
              'slashing protection: refused to sign different data for a signed duty',
            );
            throw new SlashingProtectionError(params.slot, params.dutyType, record.blockIndexWithinCheckpoint, record.messageHash, params.messageHash, record.nodeId);
          }
          this.observer.dutyAlreadySigned?.(params.dutyType);
          throw new DutyAlreadySignedError(params.slot, params.dutyType, record.blockIndexWithinCheckpoint, record.nodeId, record.signature);
        }
        // In progress elsewhere. A lapsed lease means its holder died or stalled: take the duty over. A holder
        // without a lease (Aztec's package) is taken over only when stuck and only with the same hash.
        const foreignHolder = record.leaseExpiresAt === undefined;
        if (claim.leaseExpired || (foreignHolder && claim.stuck && record.messageHash === params.messageHash)) {
          const lockToken = await this.db.takeOver(params, this.config.leaseMs);
          if (lockToken) {
            this.observer.lockAcquired?.(params.dutyType, 'takeover');
            this.logger.warn(
              { dutyType: params.dutyType, slot: params.slot.toString(), validator: params.validatorAddress, previousNode: record.nodeId, nodeId: this.nodeId },
              'took over an in-progress duty whose holder lease expired',
            );
            return lockToken;
          }
          continue;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          this.observer.dutyAlreadySigned?.(params.dutyType);
          this.logger.warn(
            { dutyType: params.dutyType, slot: params.slot.toString(), signingNode: record.nodeId, timeoutMs: this.config.signingTimeoutMs },
            'timed out waiting for another node to finish signing',
          );
          throw new DutyAlreadySignedError(params.slot, params.dutyType, record.blockIndexWithinCheckpoint, 'unknown (timeout)');
        }
        waited = true;
        const connected = this.db.notifications?.connected === true;
        const waitMs = Math.min(remaining, connected ? Math.max(NOTIFIED_RECHECK_MS, this.config.pollingIntervalMs) : this.config.pollingIntervalMs);
        if (subscription && connected) await subscription.wait(waitMs);
        else await sleep(waitMs);
      } finally {
        subscription?.close();
      }
    }
  }

  /** Records the signature; true only when this lock token still held the duty and the record is durable. */
  async recordSuccess(params: RecordSuccessParams): Promise<boolean> {
    return await this.db.updateDutySigned(
      params.rollupAddress,
      params.validatorAddress,
      params.slot,
      params.dutyType,
      normalizeSignature('signature', params.signature),
      params.lockToken,
      params.blockIndexWithinCheckpoint,
    );
  }

  /** Releases a duty after a failed signing (only under its own token) so another node can retry. */
  async deleteDuty(params: DeleteDutyParams): Promise<boolean> {
    return await this.db.deleteDuty(
      params.rollupAddress,
      params.validatorAddress,
      params.slot,
      params.dutyType,
      params.lockToken,
      params.blockIndexWithinCheckpoint,
    );
  }

  /** Checks (or makes) the rollup binding, then starts background cleanup. Throws RollupBindingError on mismatch. */
  async start(): Promise<void> {
    await this.db.ensureRollupBinding(this.config.rollupAddress);
    await this.db.notifications?.start();
    if (this.cleanupTimer) return;
    const interval = Math.max(1_000, Math.min(this.config.leaseMs, 60_000));
    this.cleanupTimer = setInterval(() => {
      this.runningCleanup ??= this.cleanup().finally(() => {
        this.runningCleanup = undefined;
      });
    }, interval);
    this.cleanupTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
    this.cleanupTimer = undefined;
    await this.runningCleanup;
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  /** One round of background cleanup; errors are logged, never thrown (the next round retries). */
  async cleanup(): Promise<void> {
    try {
      const stuck = await this.db.cleanupOwnStuckDuties(this.nodeId, this.config.leaseMs);
      if (stuck > 0) this.observer.cleanedUp?.('stuck', stuck);
      const hours = this.config.cleanupOldDutiesAfterHours;
      const now = Date.now();
      if (hours !== undefined && (this.lastOldDutiesCleanupAt === undefined || now - this.lastOldDutiesCleanupAt >= OLD_DUTIES_CLEANUP_INTERVAL_MS)) {
        const pruned = await this.db.cleanupOldDuties(hours * 3_600_000);
        this.lastOldDutiesCleanupAt = now;
        if (pruned > 0) this.observer.cleanedUp?.('old', pruned);
      }
    } catch (error) {
      this.logger.warn({ err: String(error) }, 'duty cleanup failed; will retry');
    }
  }
}

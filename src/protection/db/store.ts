/** What the slashing-protection service and the signer need of their database: the signing path and housekeeping. */
import type { DutySubscription } from '../notifications.js';
import type { CheckAndRecordParams, DutyKey, ValidatorDutyRecord } from '../types.js';
import type { PruneOptions } from './maintenance.js';
import type { ClaimResult } from './rows.js';

export type { ClaimResult } from './rows.js';

export interface ProtectionStore {
  /** Inserts the duty holding a fresh lock token (isNew), or reports the existing record and whether its lease lapsed. */
  claim(params: CheckAndRecordParams, leaseMs: number): Promise<ClaimResult>;
  /** Takes over an in-progress duty whose lease lapsed; the new lock token, or undefined when another node won. */
  takeOver(params: CheckAndRecordParams, leaseMs: number): Promise<string | undefined>;
  /** Records a normalized signature under the lock token; true only when the token still held the duty (durable). */
  recordSigned(key: DutyKey, lockToken: string, signature: string): Promise<boolean>;
  /** Deletes an in-progress duty held under the lock token; true when it did. */
  release(key: DutyKey, lockToken: string): Promise<boolean>;
  /** The duty's current record, read with a fresh snapshot. */
  readDuty(key: DutyKey): Promise<ValidatorDutyRecord | undefined>;
  /** Wake-ups for the duty's changes; undefined when the store has no notifications (waiters poll). */
  subscribe(key: DutyKey): DutySubscription | undefined;
  /** True while notifications are connected (waiters then rely on them and re-check rarely). */
  readonly notificationsConnected: boolean;
  startNotifications(): Promise<void>;
  /** Binds an unbound database to the (normalized) rollup; throws RollupBindingError when bound to another. */
  ensureRollupBinding(rollupAddress: string): Promise<void>;
  cleanupOwnStuckDuties(nodeId: string, maxAgeMs: number): Promise<number>;
  /** Prunes signed duties older than maxAgeMs under raised watermarks, in paced batches (PruneOptions.signal ends it early). */
  cleanupOldDuties(maxAgeMs: number, options?: PruneOptions): Promise<number>;
  close(): Promise<void>;
}

/** Background housekeeping of a signer: its own stuck duties, and pruning under the low watermark when configured. */
import type { ResolvedSignerConfig } from './config.js';
import type { ProtectionStore } from './db/store.js';
import type { Logger, ProtectionObserver } from './types.js';

/** Old-duty pruning runs at most this often. */
const OLD_DUTIES_CLEANUP_INTERVAL_MS = 3_600_000;

export class BackgroundCleanup {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastOldDutiesCleanupAt: number | undefined;
  /** Ends a prune round between its batches when the signer stops. */
  private stopping = new AbortController();

  constructor(
    private readonly store: Pick<ProtectionStore, 'cleanupOwnStuckDuties' | 'cleanupOldDuties'>,
    private readonly config: ResolvedSignerConfig,
    private readonly logger: Logger,
    private readonly observer: ProtectionObserver,
  ) {}

  /** Runs a round every min(lease, 60 s), at least every second; one round at a time. */
  start(): void {
    if (this.timer) return;
    if (this.stopping.signal.aborted) this.stopping = new AbortController();
    const interval = Math.max(1_000, Math.min(this.config.leaseMs, 60_000));
    this.timer = setInterval(() => {
      this.running ??= this.runOnce().finally(() => {
        this.running = undefined;
      });
    }, interval);
    this.timer.unref();
  }

  /** Stops the schedule and waits for a running round. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopping.abort();
    await this.running;
  }

  /** One round; errors are logged, never thrown (the next round retries). */
  async runOnce(): Promise<void> {
    try {
      const stuck = await this.store.cleanupOwnStuckDuties(this.config.nodeId, this.config.leaseMs);
      if (stuck > 0) this.observer.cleanedUp?.('stuck', stuck);
      const hours = this.config.cleanupOldDutiesAfterHours;
      const now = Date.now();
      const due = this.lastOldDutiesCleanupAt === undefined || now - this.lastOldDutiesCleanupAt >= OLD_DUTIES_CLEANUP_INTERVAL_MS;
      if (hours !== undefined && due) {
        const pruned = await this.store.cleanupOldDuties(hours * 3_600_000, { signal: this.stopping.signal });
        this.lastOldDutiesCleanupAt = now;
        if (pruned > 0) this.observer.cleanedUp?.('old', pruned);
      }
    } catch (error) {
      this.logger.warn({ err: String(error) }, 'duty cleanup failed; will retry');
    }
  }
}

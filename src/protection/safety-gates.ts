/**
 * Checks in front of every claim that depend on the database as a whole rather than on one duty: its record commits
 * are synchronously replicated (when required), and it has not gone back in time below the external high-water
 * marks. Both are answered from state refreshed in the background, so the signing path pays no query for them.
 */
import { SynchronousReplicationRequiredError } from './errors.js';
import type { HistoryGuard } from './history-guard.js';
import type { ReplicationMonitor } from './replication.js';
import type { DutyKey } from './types.js';

export interface SafetyGateOptions {
  /** Detects a database holding less history than the external high-water marks. */
  historyGuard?: HistoryGuard;
  /** Watches synchronous replication; with `required`, duties are refused while commits are not replicated. */
  replication?: { monitor: ReplicationMonitor; required: boolean };
}

export class SafetyGates {
  constructor(private readonly options: SafetyGateOptions = {}) {}

  get historyGuard(): HistoryGuard | undefined {
    return this.options.historyGuard;
  }

  get replication(): ReplicationMonitor | undefined {
    return this.options.replication?.monitor;
  }

  /** Throws when the duty must not be claimed now (SynchronousReplicationRequiredError, DatabaseRegressedError). */
  assertAllowed(key: DutyKey): void {
    const replication = this.options.replication;
    if (replication?.required) {
      const status = replication.monitor.current;
      if (!status?.synchronous) throw new SynchronousReplicationRequiredError(status?.reasons ?? ['its status was not checked yet']);
    }
    this.options.historyGuard?.assertAllowed(key);
  }

  /** After a durable record. */
  noteSigned(key: DutyKey): void {
    this.options.historyGuard?.noteSigned(key);
  }

  async start(): Promise<void> {
    await this.options.replication?.monitor.start();
    try {
      await this.options.historyGuard?.start();
    } catch (error) {
      this.options.replication?.monitor.stop(); // a failed start leaves no timer behind (serve retries the start)
      throw error;
    }
  }

  async stop(): Promise<void> {
    this.options.replication?.monitor.stop();
    await this.options.historyGuard?.stop();
  }
}

/**
 * Detects a protection database that went back in time (restored from a backup, failed over to a standby that
 * lagged): every signed duty raises this process's high-water mark (validator × duty kind), written to an external
 * HighWaterMarkStore at most every flushIntervalMs; at start and every checkIntervalMs the marks are compared with
 * what the database holds. A validator whose database history ends below its mark (and whose low watermark does not
 * cover the gap) gets every duty at or below the mark refused with DatabaseRegressedError until the history is
 * restored (`ha-signer history import`) or the gap closed (`ha-signer watermark raise --slot <mark or more>`).
 *
 * Why a healthy database is never flagged: a mark is raised only after the duty's record committed, and the marks
 * are read before the database, so every mark the check sees is at or below a record the database already held.
 */
import { DatabaseRegressedError } from './errors.js';
import { type HighWaterMarkStore, type HighWaterMarks, markKey, mergeMarks, splitMarkKey } from './high-water-mark.js';
import type { DutyKey, Logger } from './types.js';

/** What the guard asks of the database: per (validator, duty kind), the highest signed slot and the low watermark. */
export interface HistoryTop {
  validatorAddress: string;
  dutyType: string;
  /** The slot asked about (a mark). */
  slot: bigint;
  /** Whether the database holds that duty (validator, kind, slot) as signed. */
  holdsSlot: boolean;
  /** The highest signed slot of the kind (for the message). */
  topSlot: bigint | undefined;
  lowWatermarkSlot: bigint | undefined;
}

export type HistoryTopsReader = (
  rollupAddress: string,
  marks: { validatorAddress: string; dutyType: string; slot: bigint }[],
) => Promise<HistoryTop[]>;

export interface Regression {
  validatorAddress: string;
  /** Duties of this validator at or below this slot are refused. */
  refusedUpToSlot: bigint;
  /** The kinds whose history ends below their mark: mark and what the database holds. */
  kinds: { dutyType: string; mark: bigint; databaseTop: bigint | undefined; lowWatermark: bigint | undefined }[];
}

/** The database holds the marked duty, or its low watermark covers the mark. */
const covers = (top: HistoryTop): boolean => top.holdsSlot || (top.lowWatermarkSlot !== undefined && top.lowWatermarkSlot >= top.slot);

export interface HistoryGuardOptions {
  /** Marks are written at most this often (default 2000 ms); stop() writes what is left. */
  flushIntervalMs?: number;
  /** The database is compared with the marks this often (default 10000 ms). */
  checkIntervalMs?: number;
  logger?: Logger;
  onCheck?: (regressions: Regression[]) => void;
}

export class HistoryGuard {
  /** Marks of duties this process signed that the store may not hold yet. */
  private readonly pending: HighWaterMarks = new Map();
  /** Every mark known (store and own signatures). */
  private readonly known: HighWaterMarks = new Map();
  private regressions = new Map<string, Regression>();
  private flushTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private checking: Promise<Regression[]> | undefined;
  private lastFlushAt = 0;
  private readonly flushIntervalMs: number;
  private readonly checkIntervalMs: number;

  constructor(
    private readonly store: HighWaterMarkStore,
    private readonly readTops: HistoryTopsReader,
    private readonly rollupAddress: string,
    private readonly options: HistoryGuardOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 2_000;
    this.checkIntervalMs = options.checkIntervalMs ?? 10_000;
  }

  /** Validators refused for now, with what was found. */
  get currentRegressions(): Regression[] {
    return [...this.regressions.values()];
  }

  /** The first check must succeed (a store that cannot be read fails the start: fail closed); then periodic. */
  async start(): Promise<void> {
    await this.check();
    this.checkTimer ??= setInterval(() => void this.check().catch(() => {}), this.checkIntervalMs);
    this.checkTimer.unref();
  }

  /** Stops the schedule and writes the marks not yet stored. */
  async stop(): Promise<void> {
    if (this.checkTimer) clearInterval(this.checkTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.checkTimer = undefined;
    this.flushTimer = undefined;
    await this.checking?.catch(() => {});
    await this.flush().catch((error: unknown) => this.options.logger?.warn({ err: String(error) }, 'could not write high-water marks'));
  }

  /** Throws DatabaseRegressedError when the duty is at or below the mark of a validator whose database lost history. */
  assertAllowed(key: DutyKey): void {
    const regression = this.regressions.get(key.validatorAddress);
    if (regression && key.slot <= regression.refusedUpToSlot) throw new DatabaseRegressedError(regression, key.slot, key.dutyType);
  }

  /** After a durable record: raises the mark, and schedules a write (at most one per flushIntervalMs). */
  noteSigned(key: DutyKey): void {
    const k = markKey(key.validatorAddress, key.dutyType);
    const current = this.pending.get(k);
    if (current === undefined || key.slot > current) this.pending.set(k, key.slot);
    const known = this.known.get(k);
    if (known === undefined || key.slot > known) this.known.set(k, key.slot);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer || this.pending.size === 0) return;
    const delay = Math.max(0, this.lastFlushAt + this.flushIntervalMs - Date.now());
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.flush().catch((error: unknown) => {
        this.options.logger?.warn({ err: String(error) }, 'could not write high-water marks; will retry');
        this.scheduleFlush();
      });
    }, delay);
    this.flushTimer.unref();
  }

  /** Writes the pending marks (one write at a time). */
  async flush(): Promise<void> {
    await this.flushing?.catch(() => {});
    if (this.pending.size === 0) return;
    const batch = new Map(this.pending);
    this.pending.clear();
    this.lastFlushAt = Date.now();
    this.flushing = this.store.raise(this.rollupAddress, batch).catch((error: unknown) => {
      // Put them back (merged with newer ones) for the next attempt.
      mergeMarks(this.pending, batch);
      throw error;
    });
    await this.flushing;
  }

  /** Compares the marks with the database; returns (and enforces) the regressions found. */
  async check(): Promise<Regression[]> {
    this.checking ??= this.runCheck().finally(() => {
      this.checking = undefined;
    });
    return await this.checking;
  }

  private async runCheck(): Promise<Regression[]> {
    // Marks first, then the database: a mark read here was recorded before the database is read.
    mergeMarks(this.known, await this.store.read(this.rollupAddress));
    const marks = new Map(this.known);
    // A detected regression is sticky: signing above its mark must not hide the history still missing below it.
    // It ends when the database holds the duties at the marks it was detected at again (history import) or the
    // validator's low watermark covers them (watermark raise).
    const asked: { validatorAddress: string; dutyType: string; slot: bigint }[] = [...marks].map(([key, slot]) => ({
      ...splitMarkKey(key),
      slot,
    }));
    for (const regression of this.regressions.values())
      for (const kind of regression.kinds)
        asked.push({ validatorAddress: regression.validatorAddress, dutyType: kind.dutyType, slot: kind.mark });
    const tops = asked.length === 0 ? [] : await this.readTops(this.rollupAddress, asked);
    const found = this.stillRegressed(tops);
    this.addNewRegressions(tops, marks, found);
    this.setRegressions(found);
    return [...found.values()];
  }

  /** The regressions detected before that the database has not recovered from. */
  private stillRegressed(tops: HistoryTop[]): Map<string, Regression> {
    const found = new Map<string, Regression>();
    for (const previous of this.regressions.values()) {
      const asks = tops.filter(
        (t) =>
          t.validatorAddress === previous.validatorAddress && previous.kinds.some((k) => k.dutyType === t.dutyType && k.mark === t.slot),
      );
      const low = asks.find((t) => t.lowWatermarkSlot !== undefined)?.lowWatermarkSlot;
      const recovered = (low !== undefined && low >= previous.refusedUpToSlot) || (asks.length > 0 && asks.every(covers));
      if (!recovered) found.set(previous.validatorAddress, previous);
    }
    return found;
  }

  /**
   * Validators whose database lacks a marked duty. Once a validator's database lost history of one kind, every kind
   * of it is suspect: refused up to its highest mark (fixed at detection).
   */
  private addNewRegressions(tops: HistoryTop[], marks: HighWaterMarks, found: Map<string, Regression>): void {
    const fresh = new Map<string, Regression>();
    for (const top of tops) {
      if (this.regressions.has(top.validatorAddress) || covers(top)) continue;
      const regression = fresh.get(top.validatorAddress) ?? { validatorAddress: top.validatorAddress, refusedUpToSlot: 0n, kinds: [] };
      regression.kinds.push({ dutyType: top.dutyType, mark: top.slot, databaseTop: top.topSlot, lowWatermark: top.lowWatermarkSlot });
      fresh.set(top.validatorAddress, regression);
    }
    for (const [key, slot] of marks) {
      const regression = fresh.get(splitMarkKey(key).validatorAddress);
      if (regression && slot > regression.refusedUpToSlot) regression.refusedUpToSlot = slot;
    }
    for (const [validator, regression] of fresh) found.set(validator, regression);
  }

  private setRegressions(found: Map<string, Regression>): void {
    for (const [validator, regression] of found)
      if (!this.regressions.has(validator))
        this.options.logger?.error(
          {
            validator,
            refusedUpToSlot: regression.refusedUpToSlot.toString(),
            kinds: regression.kinds.map((k) => ({
              ...k,
              mark: k.mark.toString(),
              databaseTop: k.databaseTop?.toString() ?? null,
              lowWatermark: k.lowWatermark?.toString() ?? null,
            })),
          },
          'the protection database holds less history than the external high-water mark: refusing duties at or below it',
        );
    for (const validator of this.regressions.keys())
      if (!found.has(validator)) this.options.logger?.info({ validator }, 'protection database history covers the high-water mark again');
    this.regressions = found;
    this.options.onCheck?.([...found.values()]);
  }
}

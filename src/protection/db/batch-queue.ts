/**
 * Natural batching of the signing path's statements: the first item goes out at once; items that arrive while
 * a statement is in flight are sent together when it returns. Latency at concurrency 1 stays one round trip, and
 * under load many duties share one statement (and one commit flush) instead of queueing for a commit each.
 *
 * A statement that has not returned after `stallAfterMs` (a hung connection, a row lock held elsewhere) stops
 * counting against `maxInFlight`, so the next items go out on another connection instead of waiting behind it;
 * the stalled statement still ends by its own timeout. While `maxStalled` are stalled, items wait.
 */
export interface BatchQueueOptions {
  /** Largest number of items one statement carries (default 256). */
  maxBatchSize?: number;
  /** Statements in flight at once (default 1: measured best; larger batches share one commit flush). */
  maxInFlight?: number;
  /** After this long a statement counts as stalled (default 250 ms; normal statements take a few ms). */
  stallAfterMs?: number;
  /** No new statement goes out while this many are stalled (default 3), so a hung database cannot take the whole pool. */
  maxStalled?: number;
}

interface Entry<In, Out> {
  item: In;
  resolve: (value: Out) => void;
  reject: (error: unknown) => void;
}

export class BatchQueue<In, Out> {
  private readonly queue: Entry<In, Out>[] = [];
  private active = 0;
  private stalled = 0;
  private readonly maxBatchSize: number;
  private readonly maxInFlight: number;
  private readonly stallAfterMs: number;
  private readonly maxStalled: number;

  constructor(
    private readonly runBatch: (items: In[]) => Promise<Out[]>,
    options: BatchQueueOptions = {},
  ) {
    this.maxBatchSize = options.maxBatchSize ?? 256;
    this.maxInFlight = options.maxInFlight ?? 1;
    this.stallAfterMs = options.stallAfterMs ?? 250;
    this.maxStalled = options.maxStalled ?? 3;
  }

  submit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.active < this.maxInFlight && this.stalled < this.maxStalled && this.queue.length > 0) {
      this.send(this.queue.splice(0, this.maxBatchSize));
    }
  }

  private send(batch: Entry<In, Out>[]): void {
    this.active++;
    let isStalled = false;
    const stallTimer = setTimeout(() => {
      isStalled = true;
      this.active--;
      this.stalled++;
      this.pump();
    }, this.stallAfterMs);
    stallTimer.unref();
    this.runBatch(batch.map((entry) => entry.item))
      .then(
        (results) => {
          if (results.length !== batch.length) throw new Error(`batch returned ${results.length} results for ${batch.length} items`);
          batch.forEach((entry, i) => entry.resolve(results[i] as Out));
        },
        (error: unknown) => batch.forEach((entry) => entry.reject(error)),
      )
      .catch((error: unknown) => batch.forEach((entry) => entry.reject(error)))
      .finally(() => {
        clearTimeout(stallTimer);
        if (isStalled) this.stalled--;
        else this.active--;
        this.pump();
      });
  }
}

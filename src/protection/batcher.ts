/**
 * Natural batching: the first item goes out at once; items that arrive while statements are in flight are sent
 * together when one returns. Latency at concurrency 1 stays one round trip, and under load many duties share one
 * statement (and one commit flush) instead of queueing for a commit each.
 */
export class Coalescer<In, Out> {
  private readonly queue: { item: In; resolve: (value: Out) => void; reject: (error: unknown) => void }[] = [];
  private inFlight = 0;

  constructor(
    private readonly runBatch: (items: In[]) => Promise<Out[]>,
    private readonly maxBatchSize = 256,
    private readonly maxInFlight = 1,
  ) {}

  submit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  get pending(): number {
    return this.queue.length;
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatchSize);
      this.inFlight++;
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
          this.inFlight--;
          this.pump();
        });
    }
  }
}

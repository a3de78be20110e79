import { describe, expect, it } from 'vitest';
import { BatchQueue } from '../../src/protection/db/batch-queue.js';

describe('BatchQueue', () => {
  it('sends the first item at once and batches items that arrive while a batch is in flight', async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const queue = new BatchQueue<number, number>(async (items) => {
      batches.push(items);
      if (batches.length === 1) await gate;
      return items.map((x) => x * 10);
    });
    const first = queue.submit(1);
    const rest = [2, 3, 4].map((x) => queue.submit(x));
    expect(batches).toEqual([[1]]);
    release();
    expect(await first).toBe(10);
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it('respects the batch size and in-flight limits', async () => {
    const sizes: number[] = [];
    let inFlight = 0;
    let maxSeen = 0;
    const queue = new BatchQueue<number, number>(
      async (items) => {
        inFlight++;
        maxSeen = Math.max(maxSeen, inFlight);
        sizes.push(items.length);
        await new Promise((resolve) => setTimeout(resolve, 5));
        inFlight--;
        return items;
      },
      { maxBatchSize: 3, maxInFlight: 2 },
    );
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => queue.submit(i)));
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3);
    expect(maxSeen).toBe(2);
  });

  it('rejects every item of a failed batch and carries on with the next', async () => {
    let calls = 0;
    const queue = new BatchQueue<number, number>(async (items) => {
      calls++;
      if (calls === 1) throw new Error('connection lost');
      return items;
    });
    await expect(queue.submit(1)).rejects.toThrow('connection lost');
    await expect(queue.submit(2)).resolves.toBe(2);
  });

  it('rejects a batch that returns the wrong number of results', async () => {
    const queue = new BatchQueue<number, number>(async () => []);
    await expect(queue.submit(1)).rejects.toThrow(/0 results for 1 items/);
  });

  it('does not hold new items behind a stalled statement, and caps the stalled ones', async () => {
    const hung: number[][] = [];
    const queue = new BatchQueue<number, number>(
      async (items) => {
        if (items.some((x) => x < 100)) {
          hung.push(items);
          return await new Promise<number[]>(() => {});
        }
        return items;
      },
      { stallAfterMs: 50, maxStalled: 2 },
    );
    void queue.submit(1);
    const startedAt = Date.now();
    // Without stall handling this waits behind the hung statement forever.
    expect(await queue.submit(100)).toBe(100);
    expect(Date.now() - startedAt).toBeLessThan(1_000);
    void queue.submit(2);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(hung).toEqual([[1], [2]]);
    // Two stalled statements outstanding: the cap is reached, further items wait.
    let third = false;
    void queue.submit(3).then(() => (third = true));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(hung).toEqual([[1], [2]]);
    expect(third).toBe(false);
  });
});

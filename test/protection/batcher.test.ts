import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../src/protection/batcher.js';

describe('Coalescer', () => {
  it('sends the first item at once and batches items that arrive while a batch is in flight', async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const coalescer = new Coalescer<number, number>(async (items) => {
      batches.push(items);
      if (batches.length === 1) await gate;
      return items.map((x) => x * 10);
    }, 256, 1);
    const first = coalescer.submit(1);
    const rest = [2, 3, 4].map((x) => coalescer.submit(x));
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
    const coalescer = new Coalescer<number, number>(async (items) => {
      inFlight++;
      maxSeen = Math.max(maxSeen, inFlight);
      sizes.push(items.length);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      return items;
    }, 3, 2);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => coalescer.submit(i)));
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3);
    expect(maxSeen).toBe(2);
  });

  it('rejects every item of a failed batch and carries on with the next', async () => {
    let calls = 0;
    const coalescer = new Coalescer<number, number>(async (items) => {
      calls++;
      if (calls === 1) throw new Error('connection lost');
      return items;
    });
    await expect(coalescer.submit(1)).rejects.toThrow('connection lost');
    await expect(coalescer.submit(2)).resolves.toBe(2);
  });

  it('rejects a batch that returns the wrong number of results', async () => {
    const coalescer = new Coalescer<number, number>(async () => []);
    await expect(coalescer.submit(1)).rejects.toThrow(/0 results for 1 items/);
  });
});

import { describe, expect, it } from 'vitest';
import { RateLimiter, WorkQueue } from '../../../src/operator/queue.js';

describe('work queue', () => {
  it('de-duplicates waiting keys', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands a key in progress to a second worker; re-queues it after done', async () => {
    const q = new WorkQueue();
    q.add('a');
    const k = await q.get();
    q.add('a'); // changed while processing
    expect(q.len()).toBe(0);
    let second: string | undefined;
    void q.get().then((x) => (second = x));
    await new Promise((r) => setTimeout(r, 10));
    expect(second).toBeUndefined();
    q.done(k!);
    await new Promise((r) => setTimeout(r, 0));
    expect(second).toBe('a');
  });

  it('addAfter and shutDown', async () => {
    const q = new WorkQueue();
    q.addAfter('x', 20);
    const t0 = Date.now();
    expect(await q.get()).toBe('x');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
    const pending = q.get();
    q.shutDown();
    expect(await pending).toBeUndefined();
  });

  it('backs off exponentially per key, forget resets', () => {
    const r = new RateLimiter({ baseDelayMs: 5, maxDelayMs: 1000, qps: 1000, burst: 1000 });
    expect([r.when('k'), r.when('k'), r.when('k'), r.when('k')]).toEqual([5, 10, 20, 40]);
    expect(r.when('other')).toBe(5);
    for (let i = 0; i < 20; i++) r.when('k');
    expect(r.when('k')).toBe(1000);
    r.forget('k');
    expect(r.when('k')).toBe(5);
  });

  it('limits the overall rate with a token bucket', () => {
    const r = new RateLimiter({ baseDelayMs: 1, qps: 10, burst: 2 });
    expect(r.when('a')).toBe(1);
    expect(r.when('b')).toBe(1);
    expect(r.when('c')).toBeGreaterThanOrEqual(90);
  });
});

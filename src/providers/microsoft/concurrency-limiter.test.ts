import { describe, expect, it } from 'vitest';
import { ConcurrencyLimiter } from './concurrency-limiter.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ConcurrencyLimiter', () => {
  it('never runs more than max tasks at once and runs them all', async () => {
    const limiter = new ConcurrencyLimiter(4);
    let running = 0;
    let peak = 0;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        limiter.run(async () => {
          running += 1;
          peak = Math.max(peak, running);
          await tick(2);
          running -= 1;
          return i;
        }),
      ),
    );
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(peak).toBe(4);
    expect(limiter.peak).toBe(4);
    expect(limiter.inFlight).toBe(0);
  });

  it('releases the slot when a task throws', async () => {
    const limiter = new ConcurrencyLimiter(1);
    await expect(limiter.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(limiter.run(async () => 'next')).resolves.toBe('next');
  });

  it('holds every new request back for a Retry-After pause', async () => {
    let now = 0;
    const slept: number[] = [];
    const limiter = new ConcurrencyLimiter(4, {
      now: () => now,
      sleep: async (ms) => {
        slept.push(ms);
        now += ms;
      },
    });
    limiter.pauseFor(5000);
    await limiter.run(async () => undefined);
    expect(slept).toEqual([5000]);
    await limiter.run(async () => undefined);
    expect(slept).toEqual([5000]);
  });

  it('rejects a nonsensical limit', () => {
    expect(() => new ConcurrencyLimiter(0)).toThrow();
  });
});

import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';

describe('Backoff (exponential, full jitter, cap)', () => {
  it('doubles the ceiling per attempt up to the cap', () => {
    const b = new Backoff({ baseMs: 1000, capMs: 10_000 });
    expect([1, 2, 3, 4, 5, 50, 10_000].map((n) => b.ceilingMs(n))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
    expect(b.ceilingMs(0)).toBe(1000);
  });

  it('draws uniformly below the ceiling with the injected random source', () => {
    const draws = [0, 0.5, 0.999999];
    const b = new Backoff({ baseMs: 1000, capMs: 60_000 }, { random: () => draws.shift() ?? 0 });
    expect(b.delayMs(3)).toBe(0);
    expect(b.delayMs(3)).toBe(2000);
    expect(b.delayMs(3)).toBe(3999);
  });

  it('spreads many retries of one attempt over the whole window (not in lockstep)', () => {
    const b = new Backoff({ baseMs: 1000, capMs: 60_000 });
    const delays = Array.from({ length: 2000 }, () => b.delayMs(4));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(8000);
    const buckets = [0, 0, 0, 0];
    for (const d of delays) buckets[Math.floor(d / 2000)]! += 1;
    for (const n of buckets) expect(n).toBeGreaterThan(350);
  });

  it('keeps a floor, never above the cap, and a jitter-free mode', () => {
    expect(new Backoff({ baseMs: 1000, capMs: 8000, floorMs: 1000 }, { random: () => 0 }).delayMs(3)).toBe(1000);
    expect(new Backoff({ baseMs: 1000, capMs: 8000, floorMs: 20_000 }, { random: () => 0 }).delayMs(1)).toBe(8000);
    expect(new Backoff({ baseMs: 250, capMs: 30_000, jitter: 'none' }).delayMs(4)).toBe(2000);
  });

  it('lets a longer Retry-After win and schedules on the injected clock', () => {
    const b = new Backoff({ baseMs: 1000, capMs: 60_000 }, { random: () => 0.5, now: () => Date.UTC(2026, 0, 1) });
    expect(b.delayOrRetryAfterMs(1, 30_000)).toBe(30_000);
    expect(b.delayOrRetryAfterMs(3, 100)).toBe(2000);
    expect(b.delayOrRetryAfterMs(3, undefined)).toBe(2000);
    expect(b.retryAt(2).toISOString()).toBe('2026-01-01T00:00:01.000Z');
  });

  it('refuses a policy that cannot back off', () => {
    expect(() => new Backoff({ baseMs: 0, capMs: 10 })).toThrow(RangeError);
    expect(() => new Backoff({ baseMs: 10, capMs: 5 })).toThrow(RangeError);
  });
});

import { describe, expect, it } from 'vitest';
import { GmailQuotaBudget } from './gmail-quota.js';

/** A fake clock whose sleep advances time instantly, so the budget's waiting is observable. */
function fakeClock() {
  let t = 0;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
    advance: (ms: number) => {
      t += ms;
    },
    sleeps,
  };
}

describe('GmailQuotaBudget', () => {
  it('lets calls through while they fit and makes the next one wait for the window to roll', async () => {
    const clock = fakeClock();
    const budget = new GmailQuotaBudget({ unitsPerWindow: 100, windowMs: 60_000, safetyFactor: 1, expiryMarginMs: 0, ...clock });
    for (let i = 0; i < 5; i++) await budget.take('messages.get');
    expect(clock.now()).toBe(0);
    expect(budget.used()).toBe(100);
    await budget.take('messages.get');
    expect(clock.now()).toBeGreaterThanOrEqual(60_000);
    expect(budget.used()).toBeLessThanOrEqual(100);
  });

  it('never spends more than limit x safetyFactor in any window', async () => {
    const clock = fakeClock();
    const budget = new GmailQuotaBudget({ unitsPerWindow: 6000, safetyFactor: 0.9, ...clock });
    const log: Array<{ at: number; units: number }> = [];
    for (let i = 0; i < 1000; i++) {
      const method = i % 10 === 0 ? 'messages.send' : 'messages.get';
      await budget.take(method);
      log.push({ at: clock.now(), units: method === 'messages.send' ? 100 : 20 });
    }
    for (const start of log.map((e) => e.at)) {
      const inWindow = log.filter((e) => e.at >= start && e.at < start + 60_000).reduce((s, e) => s + e.units, 0);
      expect(inWindow).toBeLessThanOrEqual(5400);
    }
    expect(clock.now()).toBeGreaterThan(60_000 * 4);
  });

  it('pauses every call after a Retry-After', async () => {
    const clock = fakeClock();
    const budget = new GmailQuotaBudget({ ...clock });
    budget.pauseFor(30_000);
    await budget.take('getProfile');
    expect(clock.now()).toBe(30_000);
  });

  it('a rate limit without a time backs off 1 s, 2 s, 4 s … (full jitter, at least 1 s, capped), reset by a success', async () => {
    const clock = fakeClock();
    const draws = [0.5, 0.5, 0.5, 0, 0.5, 0.999, 0.5];
    const budget = new GmailQuotaBudget({ ...clock, random: () => draws.shift() ?? 0.5 });
    // Ceilings 1, 2, 4 s: half of each with random 0.5, but never under Google's 1 s.
    expect([budget.rateLimited(undefined), budget.rateLimited(undefined), budget.rateLimited(undefined)]).toEqual([1000, 1000, 2000]);
    expect(budget.rateLimited(undefined)).toBe(1000); // ceiling 8 s, random 0 → the 1 s floor
    expect(budget.rateLimited(undefined)).toBe(8000); // ceiling 16 s
    for (let i = 0; i < 10; i++) budget.rateLimited(undefined);
    expect(budget.rateLimited(undefined)).toBeLessThanOrEqual(64_000);
    // Every wait paused the budget: the next call starts after the longest one.
    const t0 = clock.now();
    await budget.take('getProfile');
    expect(clock.now() - t0).toBeGreaterThan(0);
    // A success resets the streak: the next rate limit's ceiling is 1 s again (it was 64 s).
    budget.succeeded();
    expect(budget.rateLimited(undefined)).toBe(1000);
    expect(budget.rateLimited(undefined)).toBe(1000);
    expect(budget.rateLimited(undefined)).toBe(2000);
  });

  it('a rate limit with a time (Retry-After or the sending limit’s message) waits exactly that', async () => {
    const clock = fakeClock();
    const budget = new GmailQuotaBudget({ ...clock });
    expect(budget.rateLimited(42_000)).toBe(42_000);
    await budget.take('getProfile');
    expect(clock.now()).toBe(42_000);
  });

  it('serves waiting calls in order', async () => {
    const clock = fakeClock();
    const budget = new GmailQuotaBudget({ unitsPerWindow: 40, windowMs: 1000, safetyFactor: 1, expiryMarginMs: 0, ...clock });
    const order: string[] = [];
    await Promise.all([
      budget.take('messages.get').then(() => order.push('a')),
      budget.take('messages.get').then(() => order.push('b')),
      budget.take('messages.get').then(() => order.push('c')),
      budget.take('getProfile').then(() => order.push('d')),
    ]);
    expect(order).toEqual(['a', 'b', 'c', 'd']);
  });

  it('spends at least 95% of the per-user rate without ever exceeding it in any window, under varying latency', async () => {
    const clock = fakeClock();
    const limit = 6000;
    const windowMs = 60_000;
    const budget = new GmailQuotaBudget({ unitsPerWindow: limit, windowMs, ...clock });
    // The stand-in's model: Google counts a call when it ARRIVES, somewhere between our send and
    // the response. Latencies vary (1-400 ms) so arrivals reorder against sends.
    let seed = 7;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const arrivals: Array<{ at: number; units: number }> = [];
    const methods = ['messages.get', 'messages.get', 'messages.get', 'messages.list', 'history.list', 'messages.send'] as const;
    const costs = { 'messages.get': 20, 'messages.list': 5, 'history.list': 2, 'messages.send': 100 };
    for (let i = 0; clock.now() < windowMs * 30; i++) {
      const method = methods[i % methods.length]!;
      const ticket = await budget.take(method);
      const latency = 1 + Math.floor(random() * 400);
      arrivals.push({ at: clock.now() + Math.floor(random() * latency), units: costs[method] });
      clock.advance(latency);
      ticket.settle();
    }
    arrivals.sort((a, b) => a.at - b.at);
    // Never more than the limit in any window Google could look at (each one ending at an arrival).
    let lo = 0;
    let inWindow = 0;
    let peak = 0;
    for (const a of arrivals) {
      inWindow += a.units;
      while (arrivals[lo]!.at <= a.at - windowMs) inWindow -= arrivals[lo++]!.units;
      peak = Math.max(peak, inWindow);
    }
    expect(peak).toBeLessThanOrEqual(limit);
    // Steady state (after the first window): the share of the quota-bound rate actually used.
    const from = windowMs;
    const to = arrivals.at(-1)!.at;
    const units = arrivals.filter((a) => a.at >= from).reduce((s, a) => s + a.units, 0);
    const share = units / ((limit * (to - from)) / windowMs);
    expect(share).toBeGreaterThanOrEqual(0.95);
    expect(share).toBeLessThanOrEqual(1.0001);
  });

  it('after a 429 pauses for Retry-After, spends less for a while, then recovers the whole limit', async () => {
    const clock = fakeClock();
    const budget = new GmailQuotaBudget({ unitsPerWindow: 1000, windowMs: 10_000, ...clock });
    expect(budget.currentLimit()).toBe(1000);
    budget.pauseFor(2_000);
    expect(budget.currentLimit()).toBe(900);
    await budget.take('getProfile');
    expect(clock.now()).toBe(2_000);
    budget.pauseFor(1_000);
    expect(budget.currentLimit()).toBe(810);
    clock.advance(10_000);
    expect(budget.currentLimit()).toBe(910);
    clock.advance(20_000);
    expect(budget.currentLimit()).toBe(1000);
  });

  it('a settled call leaves the window one window after its response, an unsettled one only after the margin', async () => {
    const clock = fakeClock();
    const budget = new GmailQuotaBudget({ unitsPerWindow: 40, windowMs: 1000, expiryMarginMs: 500, ...clock });
    const a = await budget.take('messages.get');
    clock.advance(100);
    a.settle();
    await budget.take('messages.get'); // never settled
    await budget.take('messages.get');
    expect(clock.now()).toBe(1101); // a left at 100 + 1000
    await budget.take('messages.get');
    expect(clock.now()).toBe(1601); // the unsettled one stays until 100 + 1000 + 500
  });
});


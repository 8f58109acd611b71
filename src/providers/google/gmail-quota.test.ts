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
});

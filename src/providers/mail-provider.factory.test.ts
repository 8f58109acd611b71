import { afterEach, describe, expect, it, vi } from 'vitest';
import { GmailQuotaBudget } from './google/gmail-quota.js';
import { GOOGLE_ENDPOINTS } from './google/google-endpoints.js';
import { ConcurrencyLimiter } from './microsoft/concurrency-limiter.js';
import { MailProviderFactory } from './mail-provider.factory.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('per-mailbox budgets and limiters are released when at rest (idle memory)', () => {
  it('a Gmail budget is at rest only once its spend has left the window and no 429 penalty remains', async () => {
    let now = 1_000_000;
    const b = new GmailQuotaBudget({ unitsPerWindow: 100, windowMs: 60_000, now: () => now });
    expect(b.atRest()).toBe(true);
    const ticket = await b.take('messages.get');
    expect(b.atRest()).toBe(false);
    ticket.settle();
    now += 59_000;
    expect(b.atRest()).toBe(false);
    now += 1_001;
    expect(b.atRest()).toBe(true);
    b.pauseFor(5_000);
    expect(b.atRest()).toBe(false);
    now += 5_001;
    // The pause is over but the penalty (a lower limit recovering window by window) is remembered.
    expect(b.atRest()).toBe(false);
    now += 60 * 60_000;
    expect(b.atRest()).toBe(true);
  });

  it('a Graph limiter is at rest only with nothing running, waiting or paused', async () => {
    let now = 0;
    const l = new ConcurrencyLimiter(1, { now: () => now, sleep: async () => undefined });
    const release = await l.acquire();
    expect(l.atRest()).toBe(false);
    release();
    expect(l.atRest()).toBe(true);
    l.pauseFor(1000);
    expect(l.atRest()).toBe(false);
    now = 1001;
    expect(l.atRest()).toBe(true);
  });

  it('the factory drops the budgets of mailboxes with no call in the window on its sweep', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const f = new MailProviderFactory({ tokenSource: () => async () => 'token', google: GOOGLE_ENDPOINTS, microsoft: undefined, gmailUnitsPerMinute: 6000, sweepIntervalMs: 60_000 });
    for (let i = 0; i < 50; i++) f.gmailWatch({ id: `mbx_${i}`, provider: 'google' });
    expect(f.tracked).toBe(50);
    vi.advanceTimersByTime(60_000);
    // No call spent anything: every budget was at rest, none is kept.
    expect(f.tracked).toBe(0);
  });
});

import { describe, it, expect } from 'vitest';
import { nextAction, SVIX_RETRY_DELAYS_MS, type AttemptOutcome } from './retry-schedule.js';

const now = new Date('2026-05-01T00:00:00Z');
const mid = () => 0.5; // no jitter
const fail: AttemptOutcome = { ok: false, status: 500 };
const at = (attempt: number, result: AttemptOutcome, random = mid) => nextAction({ attempt, result, now, random });

describe('nextAction', () => {
  it('marks 2xx delivered', () => {
    expect(at(1, { ok: true, status: 200 })).toEqual({ kind: 'delivered' });
    expect(at(8, { ok: true, status: 204 })).toEqual({ kind: 'delivered' });
  });

  it('follows the Svix schedule and then gives up', () => {
    const minutes = [];
    for (let attempt = 1; attempt <= 7; attempt += 1) {
      const action = at(attempt, fail);
      expect(action.kind).toBe('retry');
      if (action.kind === 'retry') minutes.push((action.at.getTime() - now.getTime()) / 60_000);
    }
    expect(minutes).toEqual([5 / 60, 5, 30, 120, 300, 600, 600]);
    expect(at(8, fail)).toEqual({ kind: 'dead', reason: 'exhausted' });
    expect(SVIX_RETRY_DELAYS_MS).toHaveLength(7);
  });

  it('jitters by at most ±10 %', () => {
    const low = at(2, fail, () => 0);
    const high = at(2, fail, () => 0.999999);
    expect(low).toMatchObject({ kind: 'retry', delayMs: 270_000 });
    expect(high.kind === 'retry' && high.delayMs).toBeGreaterThan(329_000);
    expect(high.kind === 'retry' && high.delayMs).toBeLessThanOrEqual(330_000);
  });

  it('retries redirects, timeouts and client errors', () => {
    expect(at(1, { ok: false, status: 302 }).kind).toBe('retry');
    expect(at(1, { ok: false }).kind).toBe('retry');
    expect(at(1, { ok: false, status: 400 }).kind).toBe('retry');
    // a 2xx status without ok (should not happen) is not trusted as delivered
    expect(at(1, { ok: false, status: 200 }).kind).toBe('retry');
  });

  it('honours a longer Retry-After only for throttling statuses, capped', () => {
    for (const status of [429, 502, 503, 504]) {
      expect(at(1, { ok: false, status, retryAfterMs: 60_000 })).toMatchObject({ kind: 'retry', delayMs: 60_000 });
    }
    expect(at(1, { ok: false, status: 500, retryAfterMs: 60_000 })).toMatchObject({ delayMs: 5_000 });
    // a shorter Retry-After never makes us retry sooner than the schedule
    expect(at(3, { ok: false, status: 429, retryAfterMs: 1_000 })).toMatchObject({ delayMs: 30 * 60_000 });
    expect(at(1, { ok: false, status: 503, retryAfterMs: 365 * 86_400_000 })).toMatchObject({ delayMs: 86_400_000 });
  });

  it('disables the endpoint on 410 and stops on abort-message', () => {
    expect(at(1, { ok: false, status: 410 })).toEqual({ kind: 'disable_endpoint' });
    expect(at(1, { ok: false, status: 500, abortMessage: true })).toEqual({ kind: 'dead', reason: 'aborted_by_receiver' });
  });

  it('takes a custom schedule', () => {
    const schedule = { delaysMs: [1_000], jitter: 0 };
    expect(nextAction({ attempt: 1, result: fail, now, random: Math.random, schedule })).toMatchObject({ delayMs: 1_000 });
    expect(nextAction({ attempt: 2, result: fail, now, random: Math.random, schedule })).toEqual({ kind: 'dead', reason: 'exhausted' });
    expect(() => nextAction({ attempt: 0, result: fail, now, random: mid })).toThrow(RangeError);
  });
});

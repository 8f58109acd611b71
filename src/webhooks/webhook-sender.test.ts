import { describe, it, expect } from 'vitest';
import { parseRetryAfter } from './webhook-sender.js';

const now = new Date('2026-03-01T12:00:00Z');

describe('parseRetryAfter', () => {
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 30 ', now)).toBe(30_000);
    expect(parseRetryAfter(['7', '9'], now)).toBe(7_000);
  });

  it('reads the three HTTP-date forms relative to now and clamps the past to 0', () => {
    expect(parseRetryAfter('Sun, 01 Mar 2026 12:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Sunday, 01-Mar-26 12:02:00 GMT', now)).toBe(120_000);
    expect(parseRetryAfter('Sun Mar  1 12:00:10 2026', now)).toBeGreaterThanOrEqual(0);
    expect(parseRetryAfter('Sat, 28 Feb 2026 12:00:00 GMT', now)).toBe(0);
  });

  it('ignores absent or malformed values', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('99999999999999999999', now)).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { parseHttpDate, parseRetryAfter } from './retry-after.js';

const now = Date.UTC(2026, 2, 1, 12, 0, 0); // Sun, 01 Mar 2026 12:00:00 GMT

describe('parseRetryAfter (RFC 9110 §10.2.3)', () => {
  it('reads delay-seconds as integers only', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 30 ', now)).toBe(30_000);
    expect(parseRetryAfter(['7', '9'], now)).toBe(7_000);
    // delay-seconds = 1*DIGIT: a decimal, a sign or an exponent is not a delay.
    for (const bad of ['1.5', '-5', '+5', '1e3', '0x10', '99999999999999999999']) expect(parseRetryAfter(bad, now), bad).toBeUndefined();
  });

  it('reads all three HTTP-date forms as UTC, whatever the process time zone', () => {
    expect(parseRetryAfter('Sun, 01 Mar 2026 12:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Sunday, 01-Mar-26 12:02:00 GMT', now)).toBe(120_000);
    // asctime-date names no zone and is UTC (Date.parse would read it as local time).
    expect(parseRetryAfter('Sun Mar  1 12:00:10 2026', now)).toBe(10_000);
    expect(parseRetryAfter('Sun Mar 15 12:00:00 2026', now)).toBe(14 * 86_400_000);
    expect(parseRetryAfter('Sat, 28 Feb 2026 12:00:00 GMT', now)).toBe(0);
  });

  it('does not depend on TZ: the asctime date equals the IMF-fixdate of the same instant', () => {
    const tz = process.env.TZ;
    try {
      for (const zone of ['UTC', 'America/Los_Angeles', 'Asia/Kolkata', 'Pacific/Kiritimati']) {
        process.env.TZ = zone;
        expect(parseHttpDate('Sun Nov  6 08:49:37 1994', now), zone).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
        expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', now), zone).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
      }
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('places a two-digit rfc850 year within 50 years of now', () => {
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', now)).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpDate('Monday, 01-Mar-30 00:00:00 GMT', now)).toBe(Date.UTC(2030, 2, 1));
  });

  it('ignores anything else instead of guessing', () => {
    for (const bad of [undefined, null, '', 'soon', 'tomorrow', '2026-03-01T12:01:00Z', 'Sun, 01 Mar 2026 12:01:00 PST', 'Sun, 31 Feb 2026 12:00:00 GMT', 'Sun, 01 Foo 2026 12:00:00 GMT', 'Sun, 01 Mar 2026 25:00:00 GMT']) {
      expect(parseRetryAfter(bad, now), String(bad)).toBeUndefined();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { mapGoogleError } from './google-error.mapper.js';

/** The shape gaxios gives a failed call: `response.{status, headers, data}`. */
function gaxiosError(status: number, data: unknown, headers: Record<string, string> = {}) {
  return Object.assign(new Error('Request failed: SECRET body text'), {
    status,
    response: { status, headers: new Headers(headers), data },
  });
}
const envelope = (code: number, reason: string, domain = 'global') => ({
  error: { code, message: 'whatever Google says', errors: [{ message: 'x', domain, reason }], status: 'X' },
});

describe('mapGoogleError', () => {
  it.each([
    [gaxiosError(401, envelope(401, 'authError')), 'messages.get', 'auth_revoked'],
    [gaxiosError(400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' }), 'oauth.token', 'auth_revoked'],
    [gaxiosError(401, { error: 'invalid_client', error_description: 'Unauthorized' }), 'oauth.token', 'invalid_request'],
    [gaxiosError(429, envelope(429, 'rateLimitExceeded', 'usageLimits'), { 'retry-after': '7' }), 'messages.get', 'rate_limited'],
    [gaxiosError(403, envelope(403, 'userRateLimitExceeded', 'usageLimits')), 'messages.list', 'rate_limited'],
    [gaxiosError(403, envelope(403, 'rateLimitExceeded', 'usageLimits')), 'messages.list', 'rate_limited'],
    [gaxiosError(404, envelope(404, 'notFound')), 'history.list', 'cursor_expired'],
    [gaxiosError(404, envelope(404, 'notFound')), 'messages.get', 'not_found'],
    [gaxiosError(400, envelope(400, 'invalidArgument')), 'messages.send', 'invalid_request'],
    [gaxiosError(413, envelope(413, 'uploadTooLarge')), 'messages.send', 'invalid_request'],
    [gaxiosError(500, envelope(500, 'backendError')), 'messages.get', 'transient'],
    [gaxiosError(503, '<html>unavailable</html>'), 'messages.get', 'transient'],
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'messages.get', 'transient'],
  ] as const)('%#: maps to the right kind', (err, op, kind) => {
    expect(mapGoogleError(err, op).kind).toBe(kind);
  });

  it('honours Retry-After and keeps the Google reason, never the provider message', () => {
    const e = mapGoogleError(gaxiosError(429, envelope(429, 'rateLimitExceeded'), { 'retry-after': '7' }), 'messages.get');
    expect(e.retryAfterMs).toBe(7000);
    expect(e.reason).toBe('rateLimitExceeded');
    expect(e.status).toBe(429);
    expect(e.message).not.toContain('SECRET');
    expect(e.message).not.toContain('whatever Google says');
    expect(e.cause).toBeUndefined();
  });

  it('reads an HTTP-date Retry-After with the shared RFC 9110 parser', () => {
    const err = gaxiosError(429, envelope(429, 'rateLimitExceeded'), { 'retry-after': new Date(10_000 + 5_000).toUTCString() });
    expect(mapGoogleError(err, 'messages.get', 10_000).retryAfterMs).toBe(5000);
    expect(mapGoogleError(gaxiosError(429, envelope(429, 'rateLimitExceeded'), { 'retry-after': 'soon' }), 'messages.get').retryAfterMs).toBeUndefined();
  });

  it('leaves a 429/403 rate limit without any time undefined (the adapter backs off), not a fixed second', () => {
    for (const err of [gaxiosError(429, envelope(429, 'rateLimitExceeded')), gaxiosError(403, envelope(403, 'userRateLimitExceeded', 'usageLimits'))]) {
      expect(mapGoogleError(err, 'messages.get')).toMatchObject({ kind: 'rate_limited', retryAfterMs: undefined });
    }
  });

  it('takes the sending limit’s time to retry from its message (no header), capped at a day, and never echoes it', () => {
    const now = Date.parse('2026-03-02T10:00:00Z');
    const sending = (message: string) => ({
      error: { code: 429, message, errors: [{ message, domain: 'usageLimits', reason: 'rateLimitExceeded' }], status: 'RESOURCE_EXHAUSTED' },
    });
    const e = mapGoogleError(gaxiosError(429, sending('User-rate limit exceeded.  Retry after 2026-03-02T10:15:42.247Z (Mail sending)')), 'messages.send', now);
    expect(e).toMatchObject({ kind: 'rate_limited', retryAfterMs: 15 * 60_000 + 42_247, reason: 'rateLimitExceeded' });
    expect(e.message).not.toContain('Retry after');
    // A header wins over the text; a time in the past means now; a far one is capped; junk is ignored.
    const both = gaxiosError(429, sending('User-rate limit exceeded.  Retry after 2026-03-02T11:00:00Z (Mail sending)'), { 'retry-after': '30' });
    expect(mapGoogleError(both, 'messages.send', now).retryAfterMs).toBe(30_000);
    expect(mapGoogleError(gaxiosError(429, sending('Retry after 2026-03-02T09:00:00Z')), 'messages.send', now).retryAfterMs).toBe(0);
    expect(mapGoogleError(gaxiosError(429, sending('Retry after 2027-03-02T09:00:00Z')), 'messages.send', now).retryAfterMs).toBe(86_400_000);
    expect(mapGoogleError(gaxiosError(429, sending('Retry after tomorrow')), 'messages.send', now).retryAfterMs).toBeUndefined();
  });
});

import { InteractionRequiredAuthError, ServerError } from '@azure/msal-node';
import { GraphError } from '@microsoft/microsoft-graph-client';
import { describe, expect, it } from 'vitest';
import { ProviderError } from '../provider-error.js';
import { mapGraphError } from './graph-error.mapper.js';
import { GraphResponseError } from './graph-request.runner.js';
import { MsalNetworkError } from './msal-network.client.js';

const failure = (status: number, code?: string, retryAfter: string | null = null) => new GraphResponseError({ status, code, retryAfter });

describe('mapGraphError', () => {
  it('maps delta expiry (410 and syncStateNotFound/resyncRequired) to cursor_expired', () => {
    expect(mapGraphError(failure(410, 'resyncRequired'), 'delta').kind).toBe('cursor_expired');
    expect(mapGraphError(failure(410), 'delta').kind).toBe('cursor_expired');
    expect(mapGraphError(failure(400, 'syncStateNotFound'), 'delta')).toMatchObject({ kind: 'cursor_expired', reason: 'syncStateNotFound', status: 400 });
    expect(mapGraphError(failure(404, 'SyncStateNotFound'), 'delta').kind).toBe('cursor_expired');
    // A 410 outside delta is a gone resource, not a cursor problem.
    expect(mapGraphError(failure(410), 'read').kind).toBe('not_found');
  });

  it('maps 429 with Retry-After seconds or HTTP date to rate_limited with retryAfterMs', () => {
    expect(mapGraphError(failure(429, 'ApplicationThrottled', '7'), 'read')).toMatchObject({ kind: 'rate_limited', retryAfterMs: 7000 });
    const now = Date.parse('2026-03-02T10:00:00Z');
    expect(mapGraphError(failure(429, undefined, 'Mon, 02 Mar 2026 10:00:30 GMT'), 'read', now).retryAfterMs).toBe(30_000);
    expect(mapGraphError(failure(429), 'read')).toMatchObject({ kind: 'rate_limited', retryAfterMs: undefined });
    expect(mapGraphError(failure(503, 'ServiceUnavailable', '3'), 'read').kind).toBe('rate_limited');
  });

  it('maps 401 to auth_revoked, 404 to not_found, 400/413 to invalid_request, 5xx to transient', () => {
    expect(mapGraphError(failure(401, 'InvalidAuthenticationToken'), 'read').kind).toBe('auth_revoked');
    expect(mapGraphError(failure(404, 'ErrorItemNotFound'), 'read').kind).toBe('not_found');
    expect(mapGraphError(failure(400, 'ErrorMimeContentInvalidBase64String'), 'send').kind).toBe('invalid_request');
    expect(mapGraphError(failure(413, 'RequestEntityTooLarge'), 'send').kind).toBe('invalid_request');
    expect(mapGraphError(failure(500), 'read').kind).toBe('transient');
    expect(mapGraphError(failure(504), 'read').kind).toBe('transient');
  });

  it('reads status, code and Retry-After from the Graph client GraphError', () => {
    const e = new GraphError(429, 'throttled');
    e.code = 'ApplicationThrottled';
    e.headers = new Headers({ 'retry-after': '2' });
    expect(mapGraphError(e, 'read')).toMatchObject({ kind: 'rate_limited', retryAfterMs: 2000, reason: 'ApplicationThrottled' });
    expect(mapGraphError(new GraphError(-1, 'fetch failed'), 'read').kind).toBe('transient');
  });

  it('maps MSAL invalid_grant, bad_token and interaction_required to auth_revoked, network failures to transient', () => {
    expect(mapGraphError(new ServerError('invalid_grant', 'corr', 'AADSTS50173: revoked', 'bad_token', '50173', 400), 'token').kind).toBe('auth_revoked');
    expect(mapGraphError(new InteractionRequiredAuthError('interaction_required', 'AADSTS50076'), 'token').kind).toBe('auth_revoked');
    expect(mapGraphError(new ServerError('temporarily_unavailable', 'corr', 'busy', '', '', 503), 'token').kind).toBe('transient');
    expect(mapGraphError(new MsalNetworkError('down', 'timeout'), 'token').kind).toBe('transient');
    expect(mapGraphError(new TypeError('fetch failed'), 'read').kind).toBe('transient');
  });

  it('never copies the provider message text (it may quote mail content) into the error', () => {
    const e = new GraphError(400, 'Subject "Salary review for Zoë" is invalid');
    e.code = 'ErrorInvalidRequest';
    const mapped = mapGraphError(e, 'send');
    expect(mapped.message).not.toContain('Salary');
    expect(mapped.reason).toBe('ErrorInvalidRequest');
  });

  it('passes an existing ProviderError through unchanged', () => {
    const pe = new ProviderError('microsoft', 'not_found', 'x');
    expect(mapGraphError(pe, 'read')).toBe(pe);
  });

  it('reads Retry-After with the one RFC 9110 parser: integer seconds or a UTC HTTP-date, nothing else', () => {
    const now = Date.parse('2026-03-02T10:00:00Z');
    const wait = (h: string) => mapGraphError(failure(429, 'ApplicationThrottled', h), 'read', now).retryAfterMs;
    expect(wait('0')).toBe(0);
    expect(wait('Mon Mar  2 10:00:05 2026')).toBe(5000);
    // Not delay-seconds (1*DIGIT): left to the runner's own backoff instead of guessed.
    expect(wait('1.5')).toBeUndefined();
    expect(wait('soon')).toBeUndefined();
  });
});

import { parseRetryAfter } from '../../retry/retry-after.js';
import { ProviderError, type ProviderErrorKind } from '../provider-error.js';

/** Which Gmail call failed: a 404 means "cursor expired" only for history.list. */
export type GoogleOperation =
  | 'history.list'
  | 'messages.get'
  | 'messages.list'
  | 'messages.send'
  | 'messages.attachments.get'
  | 'getProfile'
  | 'settings.sendAs.list'
  | 'watch'
  | 'stop'
  | 'oauth.token'
  | 'oauth.revoke';

interface ErrorFacts {
  status: number | undefined;
  reason: string | undefined;
  oauthError: string | undefined;
  retryAfterMs: number | undefined;
  networkCode: string | undefined;
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'TimeoutError',
  'AbortError',
]);

const RATE_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'tooManyConcurrentRequests']);

function record(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
}

function header(headers: unknown, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const h = record(headers)?.[name];
  return typeof h === 'string' ? h : undefined;
}

/** Longest wait taken from a message's "Retry after" time: a rate limit is not a daily quota. */
const MESSAGE_RETRY_AFTER_CAP_MS = 24 * 3_600_000;
const MESSAGE_RETRY_AFTER = /\bRetry after (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z)/;

/**
 * The user-rate limits (mail sending, forwarding rules…) give their time to retry only in the
 * message text — "User-rate limit exceeded.  Retry after 2024-11-12T11:16:42.247Z (Mail sending)"
 * (handle-errors: "with a time to retry") — not in a Retry-After header. Only that timestamp is
 * read (the kind is decided by status and reason, never by text); ms from `now`, capped at a day.
 */
export function retryAfterFromMessage(message: unknown, now: number): number | undefined {
  if (typeof message !== 'string') return undefined;
  const m = MESSAGE_RETRY_AFTER.exec(message.slice(0, 1000));
  const at = m?.[1] ? Date.parse(m[1]) : Number.NaN;
  if (Number.isNaN(at)) return undefined;
  return Math.min(MESSAGE_RETRY_AFTER_CAP_MS, Math.max(0, at - now));
}

/**
 * Pulls status / Google reason / OAuth error out of a gaxios error (any version: googleapis-common
 * bundles its own gaxios, so `instanceof` is not reliable) by shape, never by message text.
 */
function facts(err: unknown, now: number): ErrorFacts {
  const e = record(err);
  const response = record(e?.response);
  const statusRaw = response?.status ?? e?.status;
  const status = typeof statusRaw === 'number' ? statusRaw : typeof statusRaw === 'string' && /^\d+$/.test(statusRaw) ? Number(statusRaw) : undefined;
  let data = response?.data;
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data);
    } catch {
      data = undefined;
    }
  }
  const d = record(data);
  const apiError = record(d?.error);
  const first = record(Array.isArray(apiError?.errors) ? apiError.errors[0] : undefined);
  const reason = typeof first?.reason === 'string' ? first.reason : undefined;
  // OAuth endpoints answer RFC 6749 5.2 `{error: "invalid_grant", error_description}`.
  const oauthError = typeof d?.error === 'string' ? d.error : undefined;
  const code = e?.code;
  return {
    status,
    reason,
    oauthError,
    retryAfterMs: parseRetryAfter(header(response?.headers, 'retry-after'), now) ?? retryAfterFromMessage(apiError?.message ?? first?.message, now),
    networkCode: typeof code === 'string' && NETWORK_CODES.has(code) ? code : e?.name === 'AbortError' || e?.name === 'TimeoutError' ? String(e.name) : undefined,
  };
}

/**
 * Maps a Google API / OAuth failure to the connector's ProviderError kinds.
 * https://developers.google.com/workspace/gmail/api/guides/handle-errors
 * Messages are fixed strings: Google's own messages can echo request content.
 */
export function mapGoogleError(err: unknown, operation: GoogleOperation, now: number = Date.now()): ProviderError {
  if (err instanceof ProviderError) return err;
  const f = facts(err, now);
  const opts = { status: f.status, reason: f.reason ?? f.oauthError ?? f.networkCode };
  const make = (kind: ProviderErrorKind, message: string, extra: { retryAfterMs?: number } = {}) =>
    new ProviderError('google', kind, `Google ${operation}: ${message}`, { ...opts, ...extra });

  if (f.oauthError === 'invalid_grant' || f.oauthError === 'unauthorized_client' || f.oauthError === 'admin_policy_enforced') {
    return make('auth_revoked', 'grant is no longer valid');
  }
  if (f.oauthError === 'invalid_client') {
    // Our client id/secret is wrong: a configuration fault, not the customer's grant.
    return make('invalid_request', 'OAuth client rejected');
  }
  if (f.status === undefined) {
    return make('transient', f.networkCode ? 'network error' : 'no response');
  }
  if (f.status === 401) return make('auth_revoked', 'access token rejected after refresh');
  if (f.status === 429 || (f.status === 403 && f.reason !== undefined && RATE_REASONS.has(f.reason))) {
    // No time given: undefined, and the adapter's budget backs off exponentially with jitter.
    return make('rate_limited', 'rate limited', { retryAfterMs: f.retryAfterMs });
  }
  if (f.status === 404) {
    return operation === 'history.list' ? make('cursor_expired', 'history id is out of date') : make('not_found', 'not found');
  }
  if (f.status === 413) return make('invalid_request', 'message too large');
  if (f.status === 408 || f.status >= 500) return make('transient', 'server error');
  if (f.status === 403 && (f.reason === 'insufficientPermissions' || f.reason === 'forbidden' || f.reason === 'domainPolicy')) {
    // The grant lacks a scope or the domain forbids the app: only a new consent fixes it.
    return make('auth_revoked', 'permission denied');
  }
  if (f.status === 403 && f.reason === 'dailyLimitExceeded') {
    return make('rate_limited', 'daily limit exceeded', { retryAfterMs: f.retryAfterMs ?? 3_600_000 });
  }
  return make('invalid_request', 'request rejected');
}

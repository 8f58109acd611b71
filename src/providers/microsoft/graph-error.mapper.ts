import { AuthError, InteractionRequiredAuthError, ServerError } from '@azure/msal-node';
import { GraphError } from '@microsoft/microsoft-graph-client';
import { ProviderError, type ProviderErrorKind } from '../provider-error.js';
import { MsalNetworkError } from './msal-network.client.js';
import { parseRetryAfter } from '../../retry/retry-after.js';

export type GraphOperation = 'delta' | 'read' | 'write' | 'send' | 'subscription' | 'token';

/** MSAL server/client codes that mean "the customer has to sign in again". */
const RECONNECT_CODES = new Set([
  'invalid_grant',
  'interaction_required',
  'consent_required',
  'login_required',
  'bad_token',
  'no_tokens_found',
  'refresh_token_expired',
  'unauthorized_client',
]);

/** Graph error codes that mean the stored delta token is useless (delta-query-overview, "Token duration"). */
const CURSOR_CODES = new Set(['syncstatenotfound', 'resyncrequired', 'syncstateinvalid']);

function headerOf(headers: unknown, name: string): string | null {
  if (headers && typeof (headers as Headers).get === 'function') return (headers as Headers).get(name);
  if (headers && typeof headers === 'object') {
    const v = (headers as Record<string, unknown>)[name] ?? (headers as Record<string, unknown>)[name.toLowerCase()];
    return typeof v === 'string' ? v : null;
  }
  return null;
}

function providerError(kind: ProviderErrorKind, message: string, opts: { status?: number; reason?: string; retryAfterMs?: number; cause?: unknown }): ProviderError {
  return new ProviderError('microsoft', kind, message, opts);
}

/** Status + code of a failed Graph call, whichever shape it arrived in (GraphError or our own fetch). */
export interface GraphFailure {
  status: number;
  code: string | undefined;
  retryAfter: string | null;
}

export function graphFailureOf(err: unknown): GraphFailure | undefined {
  if (err instanceof GraphError && err.statusCode > 0) {
    return { status: err.statusCode, code: err.code ?? undefined, retryAfter: headerOf(err.headers, 'retry-after') };
  }
  if (err && typeof err === 'object' && 'graphFailure' in err) return (err as { graphFailure: GraphFailure }).graphFailure;
  return undefined;
}

/**
 * Translates any failure of a Graph call or an MSAL token request into a ProviderError kind.
 * Branches on HTTP status and machine codes only — never on message text — and never copies the
 * provider's message (it can quote request content) into ours.
 */
export function mapGraphError(err: unknown, operation: GraphOperation, nowMs: number = Date.now()): ProviderError {
  if (err instanceof ProviderError) return err;

  if (err instanceof InteractionRequiredAuthError) {
    return providerError('auth_revoked', `Microsoft sign-in is required again (${err.errorCode})`, { reason: err.errorCode, cause: err });
  }
  if (err instanceof MsalNetworkError) {
    return providerError('transient', `Microsoft identity endpoint unreachable (${err.code})`, { reason: err.code, cause: err });
  }
  if (err instanceof AuthError) {
    const code = err.errorCode;
    const sub = err.subError;
    if (RECONNECT_CODES.has(code) || (sub && RECONNECT_CODES.has(sub))) {
      return providerError('auth_revoked', `Microsoft refused the stored grant (${code}${sub ? `/${sub}` : ''})`, { reason: code, status: err instanceof ServerError ? err.status : undefined, cause: err });
    }
    const status = err instanceof ServerError ? err.status : undefined;
    if (code === 'temporarily_unavailable' || code === 'network_error' || code === 'endpoints_resolution_error' || (status !== undefined && status >= 500)) {
      return providerError('transient', `Microsoft identity endpoint failed (${code})`, { reason: code, status, cause: err });
    }
    return providerError('invalid_request', `Microsoft identity request rejected (${code})`, { reason: code, status, cause: err });
  }

  const failure = graphFailureOf(err);
  if (failure) {
    const { status } = failure;
    const code = failure.code;
    const lower = (code ?? '').toLowerCase();
    const base = { status, reason: code, cause: err };
    if (operation === 'delta' && (status === 410 || CURSOR_CODES.has(lower))) {
      return providerError('cursor_expired', `Graph delta token is no longer valid (${status} ${code ?? ''})`.trim(), base);
    }
    if (CURSOR_CODES.has(lower)) return providerError('cursor_expired', `Graph sync state is gone (${code})`, base);
    if (status === 401) return providerError('auth_revoked', `Graph rejected the access token (${code ?? 'unauthorized'})`, base);
    if (status === 429 || (status === 503 && failure.retryAfter)) {
      return providerError('rate_limited', `Graph throttled the request (${code ?? status})`, { ...base, retryAfterMs: parseRetryAfter(failure.retryAfter, nowMs) });
    }
    if (status === 404) return providerError('not_found', `Graph resource not found (${code ?? '404'})`, base);
    if (status === 410) return providerError('not_found', `Graph resource is gone (${code ?? '410'})`, base);
    if (status >= 500 || status === 408) return providerError('transient', `Graph failed (${status} ${code ?? ''})`.trim(), base);
    if (status === 403 && (lower === 'erroraccessdenied' || lower === 'accessdenied' || lower === 'authorization_requestdenied')) {
      // Consent for a scope was removed: reconnecting (re-consent) is the only fix.
      return providerError('auth_revoked', `Graph denied access (${code})`, base);
    }
    return providerError('invalid_request', `Graph rejected the request (${status} ${code ?? ''})`.trim(), base);
  }

  if (err instanceof GraphError) {
    // statusCode -1: the request never got an HTTP answer (DNS, reset, timeout inside fetch).
    return providerError('transient', 'Graph request failed without a response', { cause: err });
  }
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError' || err.name === 'TypeError' || 'code' in err)) {
    return providerError('transient', `Graph request failed (${err.name})`, { cause: err });
  }
  return providerError('transient', 'Graph request failed', { cause: err });
}

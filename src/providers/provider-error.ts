/**
 * Every provider adapter translates its failures into one of these kinds; the sync engine,
 * the token vault and the sender branch on `kind`, never on message text.
 */
export type ProviderErrorKind =
  | 'auth_revoked' // invalid_grant, interaction_required, consent revoked: the customer must reconnect
  | 'rate_limited' // 429 / 403 rateLimitExceeded / userRateLimitExceeded: wait retryAfterMs
  | 'cursor_expired' // Gmail history 404, Graph delta 410 Gone / syncStateNotFound: resync a window
  | 'not_found' // the resource is gone (message deleted, subscription missing)
  | 'invalid_request' // the provider rejected what we sent (bad recipient, too large): permanent
  | 'transient'; // 5xx, network errors, timeouts: retry with backoff

export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  readonly kind: ProviderErrorKind;
  readonly provider: 'google' | 'microsoft';
  /** Set for `rate_limited` (from Retry-After when the provider sent one). */
  readonly retryAfterMs: number | undefined;
  /** HTTP status the provider answered, when there was one. */
  readonly status: number | undefined;
  /** Provider's own machine-readable reason (e.g. `rateLimitExceeded`, `syncStateNotFound`). Never mail content. */
  readonly reason: string | undefined;

  constructor(
    provider: 'google' | 'microsoft',
    kind: ProviderErrorKind,
    message: string,
    opts: { retryAfterMs?: number; status?: number; reason?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.provider = provider;
    this.kind = kind;
    this.retryAfterMs = opts.retryAfterMs;
    this.status = opts.status;
    this.reason = opts.reason;
  }
}

export function isProviderError(err: unknown, kind?: ProviderErrorKind): err is ProviderError {
  return err instanceof ProviderError && (kind === undefined || err.kind === kind);
}

/**
 * A provider answered 2xx with a body the adapter cannot use (a required field missing or of the
 * wrong type, e.g. a Graph createReply without an `id`, a Gmail send without an `id`). Reported
 * as `transient` (retried with backoff, as for a 5xx: the provider is misbehaving, not our input)
 * with reason `unexpected_response`, unless `retryable: false`. The message names the operation
 * and the failing field paths only — never the body, which may hold mail content.
 */
export function unexpectedResponse(
  provider: 'google' | 'microsoft',
  operation: string,
  opts: { issues?: ReadonlyArray<{ path: ReadonlyArray<PropertyKey> }>; retryable?: boolean; status?: number; cause?: unknown } = {},
): ProviderError {
  const fields = [...new Set((opts.issues ?? []).map((i) => i.path.map(String).join('.') || '(body)'))].slice(0, 5);
  const where = fields.length > 0 ? ` (${fields.join(', ')})` : '';
  return new ProviderError(provider, opts.retryable === false ? 'invalid_request' : 'transient', `${provider === 'google' ? 'Gmail' : 'Graph'} ${operation} answered with an unexpected shape${where}`, {
    reason: 'unexpected_response',
    status: opts.status,
    cause: opts.cause,
  });
}

/** The same rate limit, carrying the wait the adapter decided on (its backoff when the provider named none). */
export function withRetryAfter(err: ProviderError, retryAfterMs: number): ProviderError {
  if (err.retryAfterMs === retryAfterMs) return err;
  return new ProviderError(err.provider, err.kind, err.message, { retryAfterMs, status: err.status, reason: err.reason, cause: err.cause });
}

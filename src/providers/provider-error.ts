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

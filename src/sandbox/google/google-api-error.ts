import type { Response } from 'express';

/**
 * Google's JSON error envelope as the Gmail API returns it (the "v1 error format" that
 * googleapis clients parse): `{error: {code, message, errors: [{message, domain, reason}], status}}`.
 * Shapes follow https://developers.google.com/workspace/gmail/api/guides/handle-errors.
 */
export interface GoogleErrorEnvelope {
  error: {
    code: number;
    message: string;
    errors: Array<{ message: string; domain: string; reason: string; location?: string; locationType?: string }>;
    status: string;
  };
}

export class GoogleApiError extends Error {
  constructor(
    readonly code: number,
    readonly status: string,
    readonly reason: string,
    readonly domain: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly extra: { location?: string; locationType?: string; detailMessage?: string } = {},
  ) {
    super(message);
  }

  toEnvelope(): GoogleErrorEnvelope {
    return {
      error: {
        code: this.code,
        message: this.message,
        errors: [
          {
            message: this.extra.detailMessage ?? this.message,
            domain: this.domain,
            reason: this.reason,
            ...(this.extra.location ? { location: this.extra.location, locationType: this.extra.locationType ?? 'header' } : {}),
          },
        ],
        status: this.status,
      },
    };
  }
}

export const googleErrors = {
  unauthenticated: () =>
    new GoogleApiError(
      401,
      'UNAUTHENTICATED',
      'authError',
      'global',
      'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
      { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
      { location: 'Authorization', locationType: 'header', detailMessage: 'Invalid Credentials' },
    ),
  insufficientScopes: () =>
    new GoogleApiError(
      403,
      'PERMISSION_DENIED',
      'insufficientPermissions',
      'global',
      'Request had insufficient authentication scopes.',
      { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="insufficient_scope"' },
      { detailMessage: 'Insufficient Permission' },
    ),
  delegationDenied: (userId: string) =>
    new GoogleApiError(403, 'PERMISSION_DENIED', 'forbidden', 'global', `Delegation denied for ${userId}`),
  notFound: () =>
    new GoogleApiError(404, 'NOT_FOUND', 'notFound', 'global', 'Requested entity was not found.'),
  invalidArgument: (message: string) =>
    new GoogleApiError(400, 'INVALID_ARGUMENT', 'invalidArgument', 'global', message),
  badRequest: (message: string) => new GoogleApiError(400, 'INVALID_ARGUMENT', 'badRequest', 'global', message),
  failedPrecondition: (message: string) =>
    new GoogleApiError(400, 'FAILED_PRECONDITION', 'failedPrecondition', 'global', message),
  uploadTooLarge: (max: number) =>
    new GoogleApiError(413, 'OUT_OF_RANGE', 'uploadTooLarge', 'global', `Request payload size exceeds the limit: ${max} bytes.`),
  rateLimited429: (retryAfterSeconds: number, retryAt: Date) =>
    new GoogleApiError(
      429,
      'RESOURCE_EXHAUSTED',
      'rateLimitExceeded',
      'usageLimits',
      `User-rate limit exceeded.  Retry after ${retryAt.toISOString()}`,
      { 'retry-after': String(retryAfterSeconds) },
    ),
  userRateLimited403: (retryAfterSeconds: number) =>
    new GoogleApiError(
      403,
      'PERMISSION_DENIED',
      'userRateLimitExceeded',
      'usageLimits',
      'User Rate Limit Exceeded',
      { 'retry-after': String(retryAfterSeconds) },
    ),
  backendError: () => new GoogleApiError(500, 'INTERNAL', 'backendError', 'global', 'Backend Error'),
  unavailable: () => new GoogleApiError(503, 'UNAVAILABLE', 'backendError', 'global', 'The service is currently unavailable.'),
};

export function sendGoogleError(res: Response, err: GoogleApiError): void {
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.status(err.code).json(err.toEnvelope());
}

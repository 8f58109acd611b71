/**
 * The API's error catalogue: every public error code, its status and when it is answered. The
 * `Error` schema of the OpenAPI document enumerates exactly these codes and docs/api.md's error
 * table lists each one (src/http/error-catalogue.test.ts fails when one is missing).
 *
 * Errors are named after what they mean to the caller; `expose` is true below 500, so the
 * message is public. `detail` is private: it goes to the log, never into a response. For 5xx
 * only a generic message leaves the process (node-oidc-provider's convention).
 */
export const ERROR_CATALOGUE = {
  validation_error: { status: 400, when: 'a path, query, header or body field is invalid or unknown (`details.field`, `details.location`); a NUL byte anywhere' },
  invalid_cursor: { status: 400, when: 'a cursor this API did not issue' },
  invalid_json: { status: 400, when: 'the request body is not valid JSON' },
  bad_request: { status: 400, when: 'the request could not be read (aborted, wrong length); the status may be another 4xx' },
  idempotency_key_required: { status: 400, when: 'a send without the `Idempotency-Key` header' },
  invalid_idempotency_key: { status: 400, when: '`Idempotency-Key` is not 1-255 visible ASCII characters' },
  invalid_attachment: { status: 400, when: 'an attachment of a send cannot be used (docs/sending.md)' },
  invalid_message: { status: 400, when: 'a send that cannot be composed (docs/sending.md)' },
  provider_mismatch: { status: 400, when: 'reconnecting a mailbox with the other provider' },
  provider_not_configured: { status: 400, when: 'the provider asked for is not configured on this connector' },
  return_url_not_allowed: { status: 400, when: '`returnUrl` is not absolute http(s), carries credentials, or its origin is not allowed for the tenant' },
  break_glass_reason_required: { status: 400, when: 'break-glass without a specific reason' },
  break_glass_ticket_required: { status: 400, when: 'break-glass without a ticket reference' },
  unauthorized: { status: 401, when: 'missing, malformed, unknown or revoked API key' },
  sandbox_key_refused: { status: 401, when: 'a sandbox key (`mbc_test_…`) presented to a production process' },
  forbidden: { status: 403, when: 'a valid key of the wrong kind (admin key on a tenant route, tenant key on an admin route)' },
  break_glass_mailbox_unavailable: { status: 403, when: 'break-glass on a mailbox that is disconnecting or purged' },
  break_glass_session_ended: { status: 403, when: 'the break-glass session was closed' },
  break_glass_session_expired: { status: 403, when: 'the break-glass session expired' },
  break_glass_wrong_mailbox: { status: 403, when: 'the message is not in the break-glass session’s mailbox' },
  not_found: { status: 404, when: 'no such id for this tenant (another tenant’s id is indistinguishable), the data was purged, or an ops command names a missing mailbox, tenant, key, event, endpoint, purge or session' },
  route_not_found: { status: 404, when: 'no route for this method and path' },
  unknown_command: { status: 404, when: '`POST /v1/admin/ops/:name` with no such ops command' },
  mailbox_disconnecting: { status: 409, when: 'the mailbox is being disconnected; its content is no longer served and it cannot be reconnected' },
  attachment_not_clean: { status: 409, when: 'the attachment’s scan verdict is not `clean` (`details.scanStatus`)' },
  no_matching_endpoint: { status: 409, when: 'replay with no enabled endpoint subscribed to the event' },
  endpoint_limit_reached: { status: 409, when: 'creating a webhook endpoint beyond the tenant’s limit (docs/webhooks.md)' },
  idempotency_key_reuse: { status: 409, when: 'an `Idempotency-Key` reused with another request' },
  mailbox_not_active: { status: 409, when: 'sending from a mailbox that is not `active`' },
  payload_too_large: { status: 413, when: 'the request body is larger than this endpoint accepts' },
  message_too_large: { status: 413, when: 'a send over the provider’s size limit (Microsoft 365: Graph’s 4 MB request, `details.limit` `graph_request_4mb` with `details.maxMessageBytes`)' },
  export_too_large: { status: 413, when: 'a data-subject export with too many messages for one answer' },
  unsupported_encoding: { status: 415, when: 'the request body’s encoding or charset is not supported' },
  url_not_allowed: { status: 422, when: 'a webhook URL refused by the egress rules (`details.reason`; docs/webhooks.md)' },
  no_recipients: { status: 422, when: 'a send with no usable recipient' },
  attachment_infected: { status: 422, when: 'an attachment of a send is infected' },
  from_not_allowed: { status: 422, when: 'a send whose `from` is neither the mailbox’s address nor one of its verified send-as addresses (`details.reason`: `not_an_alias` or `alias_not_verified`), or a Microsoft 365 `from.delegated` that cannot work (`send_as_denied`: Exchange refused that address at a recent send; `shared_scope_missing`; `delegation_not_supported`), or a Microsoft 365 alias Exchange rewrote at a recent send (`alias_rewritten`)' },
  rate_limited: { status: 429, when: 'too many failed authentications, connect sessions, callbacks or pushes from this client; retry after `Retry-After` seconds' },
  internal_error: { status: 500, when: 'anything unexpected; the body carries no internals — quote `requestId`' },
  scan_unavailable: { status: 503, when: 'a send with attachments while the scanner is unavailable: retry with the same `Idempotency-Key`' },
  send_as_unavailable: { status: 503, when: 'a send with another `from` while the provider’s send-as list cannot be read: retry with the same `Idempotency-Key`' },
  queue_unavailable: { status: 503, when: 'the job queue is unavailable: retry with the same `Idempotency-Key`' },
} as const satisfies Record<string, { status: number; when: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;
export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as [ErrorCode, ...ErrorCode[]];

export interface ApiErrorOptions {
  /** Public, structured: sent as `error.details` (4xx only). */
  details?: Record<string, unknown>;
  /** Private: written to the log with the request id, never sent. */
  detail?: string;
  cause?: unknown;
}

/** An error with a catalogue code; the one HTTP mapper (app.ts) turns it into the response. */
export class ApiError extends Error {
  readonly status: number;
  readonly expose: boolean;
  readonly details: Record<string, unknown> | undefined;
  readonly detail: string | undefined;
  constructor(
    readonly code: ErrorCode,
    message: string,
    opts: ApiErrorOptions = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    // The class's own name (ValidationError, NotFoundError, …) in logs and stack traces.
    this.name = new.target.name;
    this.status = ERROR_CATALOGUE[code].status;
    this.expose = this.status < 500;
    this.details = opts.details;
    this.detail = opts.detail;
  }
}

/** 400 `validation_error`: `field` names the offending field, `location` where it was (body, query, …). */
export class ValidationError extends ApiError {
  constructor(message: string, where: { field: string; location: string }) {
    super('validation_error', message, { details: { ...where } });
  }
}

export class InvalidCursorError extends ApiError {
  constructor() {
    super('invalid_cursor', 'cursor is not one this API returned');
  }
}

export class UnauthorizedError extends ApiError {
  constructor(message: string) {
    super('unauthorized', message);
  }
}

export class ForbiddenError extends ApiError {
  constructor(message: string) {
    super('forbidden', message);
  }
}

/** 404 `not_found` for `what` ("mailbox", "webhook endpoint", …): never says whose it is. */
export class NotFoundError extends ApiError {
  constructor(what: string, opts: ApiErrorOptions = {}) {
    super('not_found', `${what} not found`, opts);
  }
}

export class RouteNotFoundError extends ApiError {
  constructor(message: string) {
    super('route_not_found', message);
  }
}

export class RateLimitedError extends ApiError {
  constructor(what: string, retryAfterSeconds: number) {
    super('rate_limited', `too many ${what} from this client; retry after ${retryAfterSeconds} s`, { details: { retryAfterSeconds } });
  }
}

/** 4xx body-parser/express errors that name no catalogue case: their own status, code `bad_request`. */
export class BadRequestError extends ApiError {
  override readonly status: number;
  constructor(status: number, detail?: string) {
    super('bad_request', 'the request could not be processed', detail === undefined ? {} : { detail });
    this.status = status;
  }
}

export class InternalError extends ApiError {
  constructor(cause: unknown) {
    super('internal_error', 'internal error', { cause });
  }
}

export interface ErrorBody {
  error: { code: string; message: string; requestId?: string; details?: Record<string, unknown> };
}

/** The response body of `err`: its public message (a generic one for 5xx) and public details. */
export function errorBody(err: ApiError, requestId: string | undefined): ErrorBody {
  return {
    error: {
      code: err.code,
      message: err.expose ? err.message : 'internal error',
      ...(requestId ? { requestId } : {}),
      ...(err.expose && err.details ? { details: err.details } : {}),
    },
  };
}

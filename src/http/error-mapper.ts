import { BreakGlassRefusedError, type BreakGlassRefusal } from '../lifecycle/break-glass.service.js';
import { ExportTooLargeError } from '../lifecycle/data-subject.service.js';
import { MailboxNotFoundError } from '../lifecycle/purge.service.js';
import { ReadRefusedError } from '../messages/message-read.service.js';
import { ConnectRequestError } from '../oauth/connect.service.js';
import { OrganizationInstallError } from '../organizations/organization-install.service.js';
import { OpsNotFoundError } from '../ops/ops-command.js';
import { SendRejectedError } from '../send/send-rejection.js';
import { EndpointRejectedError } from '../webhooks/webhook-endpoint.service.js';
import { NoMatchingEndpointError } from '../webhooks/webhook-dispatcher.service.js';
import { ApiError, BadRequestError, InternalError, NotFoundError } from './api-error.js';

/**
 * The one place where a domain error becomes an HTTP answer (used by the express error handler,
 * the ops console and the admin ops route alike): routes and ops commands throw what happened,
 * never a status. Anything unknown is a 500 whose body says nothing.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof MailboxNotFoundError) return new NotFoundError('mailbox');
  if (err instanceof OpsNotFoundError) return new ApiError('not_found', err.message);
  if (err instanceof ReadRefusedError) {
    const f = err.failure;
    if (f.kind === 'not_found') return new NotFoundError(f.what);
    if (f.kind === 'mailbox_disconnecting') return new ApiError('mailbox_disconnecting', 'the mailbox is being disconnected; its content is no longer served');
    return new ApiError('attachment_not_clean', `the attachment’s scan verdict is ${f.scanStatus}; only clean attachments are served`, { details: { scanStatus: f.scanStatus } });
  }
  if (err instanceof SendRejectedError) return new ApiError(err.code, err.message, err.details ? { details: err.details } : {});
  if (err instanceof ConnectRequestError) return new ApiError(err.code, err.message);
  if (err instanceof OrganizationInstallError) return new ApiError(err.code, err.message, err.reason ? { details: { reason: err.reason } } : {});
  if (err instanceof EndpointRejectedError) {
    const d = err.detail;
    if (d.kind === 'limit_reached') return new ApiError('endpoint_limit_reached', err.message);
    return new ApiError('url_not_allowed', err.message, { details: { reason: d.reason, ...(d.category ? { category: d.category } : {}) } });
  }
  if (err instanceof NoMatchingEndpointError) return new ApiError('no_matching_endpoint', err.message);
  if (err instanceof ExportTooLargeError) return new ApiError('export_too_large', 'too many messages for one export; contact support for an offline export', { detail: err.message });
  if (err instanceof BreakGlassRefusedError) return breakGlassError(err.code, err.message);
  const e = err as { type?: string; status?: number; statusCode?: number } | null;
  // body-parser's own errors: say what was wrong with the request, never echo the body.
  if (e?.type === 'entity.too.large') return new ApiError('payload_too_large', 'request body is larger than this endpoint accepts');
  if (e?.type === 'entity.parse.failed') return new ApiError('invalid_json', 'request body is not valid JSON');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return new ApiError('unsupported_encoding', 'request body encoding is not supported');
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return new BadRequestError(status, e?.type);
  return new InternalError(err);
}

/** Break-glass refusals keep their own codes, except "not found", which is `not_found` as everywhere. */
function breakGlassError(code: BreakGlassRefusal, message: string): ApiError {
  switch (code) {
    case 'mailbox_not_found':
      return new NotFoundError('mailbox');
    case 'session_not_found':
      return new NotFoundError('break-glass session');
    case 'message_not_found':
      return new NotFoundError('message');
    default:
      return new ApiError(`break_glass_${code}`, message);
  }
}

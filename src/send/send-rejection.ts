/**
 * A send request refused before anything was queued. Named after what it means to the caller;
 * the message is public (it never repeats recipients, bodies or filenames), and the HTTP route
 * turns it into the `{"error": {code, message}}` body with `status`.
 */
export type SendRejectionCode =
  | 'not_found'
  | 'idempotency_key_reuse'
  | 'mailbox_not_active'
  | 'invalid_attachment'
  | 'invalid_message'
  | 'no_recipients'
  | 'message_too_large'
  | 'attachment_infected'
  | 'scan_unavailable'
  | 'queue_unavailable'
  | 'from_not_allowed'
  | 'send_as_unavailable';

const STATUS: Record<SendRejectionCode, number> = {
  not_found: 404,
  idempotency_key_reuse: 409,
  mailbox_not_active: 409,
  invalid_attachment: 400,
  invalid_message: 400,
  no_recipients: 422,
  message_too_large: 413,
  attachment_infected: 422,
  scan_unavailable: 503,
  queue_unavailable: 503,
  from_not_allowed: 422,
  send_as_unavailable: 503,
};

export class SendRejectedError extends Error {
  override readonly name = 'SendRejectedError';
  readonly status: number;
  /** 503s are "try again with the same Idempotency-Key"; their message is still safe to show. */
  readonly expose = true;

  constructor(
    readonly code: SendRejectionCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.status = STATUS[code];
  }
}

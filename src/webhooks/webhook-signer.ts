import { createHmac } from 'node:crypto';
import { parseWebhookSecret } from './webhook-secret.js';

/**
 * Standard Webhooks v1 (symmetric) signing.
 *
 * Signed content is `${webhook-id}.${webhook-timestamp}.${body}` over the exact body bytes that
 * go on the wire (spec: "do not re-serialise JSON"); the signature header is a space-delimited
 * list of `v1,<base64 HMAC-SHA256>` so that, while an endpoint's secret is being rotated, the
 * old and the new secret both sign and a receiver holding either one verifies.
 * https://www.standardwebhooks.com — spec/standard-webhooks.md "Signature scheme".
 */
export interface WebhookSignInput {
  /** Stable event id: the same on every retry, receivers use it as an idempotency key. */
  msgId: string;
  /** Time of this attempt (receivers reject timestamps more than 5 min away from their clock). */
  timestamp: Date;
  body: string | Buffer;
  /** `whsec_` secrets; normally one, two during rotation (new first). */
  secrets: readonly string[];
}

// A type alias (not an interface) so it is assignable to Record<string, string> header maps.
export type WebhookSignatureHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

export class WebhookSigningError extends Error {
  override readonly name = 'WebhookSigningError';
  readonly code = 'webhook_signing_failed';
}

// The id is part of the dot-delimited signed content and travels as a header value, so it
// must not contain '.', whitespace or control characters (spec: "must not contain a full-stop").
const MSG_ID = /^[\x21-\x2d\x2f-\x7e]{1,255}$/;

export function signWebhook(input: WebhookSignInput): WebhookSignatureHeaders {
  if (!MSG_ID.test(input.msgId)) {
    throw new WebhookSigningError('msgId must be 1-255 printable ASCII characters without "."');
  }
  const millis = input.timestamp.getTime();
  if (!Number.isFinite(millis) || millis < 0) {
    throw new WebhookSigningError('timestamp must be a valid date');
  }
  if (input.secrets.length === 0) {
    throw new WebhookSigningError('at least one signing secret is required');
  }
  const timestamp = String(Math.floor(millis / 1000));
  const body = typeof input.body === 'string' ? Buffer.from(input.body, 'utf8') : input.body;
  const prefix = Buffer.from(`${input.msgId}.${timestamp}.`, 'utf8');

  const signatures: string[] = [];
  for (const secret of new Set(input.secrets)) {
    const hmac = createHmac('sha256', parseWebhookSecret(secret));
    hmac.update(prefix);
    hmac.update(body);
    signatures.push(`v1,${hmac.digest('base64')}`);
  }

  return {
    'webhook-id': input.msgId,
    'webhook-timestamp': timestamp,
    'webhook-signature': signatures.join(' '),
  };
}

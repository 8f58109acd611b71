import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { z } from 'zod';

/**
 * Endpoint signing secrets in the Standard Webhooks symmetric format:
 * `whsec_` + base64(random key), the key "between 24 bytes (192 bits) and 64 bytes (512 bits)"
 * (https://www.standardwebhooks.com, spec/standard-webhooks.md "Signature scheme").
 * The `standardwebhooks` npm package strips the same prefix and base64-decodes the rest, so a
 * secret we hand out once at endpoint creation is what the receiver passes to `new Webhook()`.
 */
export const WEBHOOK_SECRET_PREFIX = 'whsec_';
export const WEBHOOK_SECRET_MIN_BYTES = 24;
export const WEBHOOK_SECRET_MAX_BYTES = 64;
/** What we generate: 256 bits, the middle of the allowed range and Svix's default. */
export const WEBHOOK_SECRET_GENERATED_BYTES = 32;

// Strict standard base64 (not base64url): Buffer.from(…, 'base64') silently skips junk, so the
// shape is checked first and a secret that would decode to something else is refused.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export type WebhookSecretProblem = 'missing_prefix' | 'not_base64' | 'too_short' | 'too_long';

export class InvalidWebhookSecretError extends Error {
  override readonly name = 'InvalidWebhookSecretError';
  readonly code = 'invalid_webhook_secret';
  readonly problem: WebhookSecretProblem;

  constructor(problem: WebhookSecretProblem) {
    // Never echo the secret itself: this message may reach a log line.
    super(`webhook secret is invalid (${problem})`);
    this.problem = problem;
  }
}

/** Generates a fresh `whsec_` secret. `randomBytes` is injectable for deterministic tests. */
export function generateWebhookSecret(
  randomBytes: (size: number) => Buffer = nodeRandomBytes,
): string {
  return WEBHOOK_SECRET_PREFIX + randomBytes(WEBHOOK_SECRET_GENERATED_BYTES).toString('base64');
}

function inspect(secret: string): { key: Buffer } | { problem: WebhookSecretProblem } {
  if (!secret.startsWith(WEBHOOK_SECRET_PREFIX)) return { problem: 'missing_prefix' };
  const encoded = secret.slice(WEBHOOK_SECRET_PREFIX.length);
  if (encoded.length === 0 || !BASE64.test(encoded)) return { problem: 'not_base64' };
  const key = Buffer.from(encoded, 'base64');
  if (key.length < WEBHOOK_SECRET_MIN_BYTES) return { problem: 'too_short' };
  if (key.length > WEBHOOK_SECRET_MAX_BYTES) return { problem: 'too_long' };
  return { key };
}

/** Decodes a `whsec_` secret to its HMAC key, throwing {@link InvalidWebhookSecretError}. */
export function parseWebhookSecret(secret: string): Buffer {
  const result = inspect(secret);
  if ('problem' in result) throw new InvalidWebhookSecretError(result.problem);
  return result.key;
}

export function isValidWebhookSecret(secret: string): boolean {
  return 'key' in inspect(secret);
}

/** zod schema for a stored or configured secret; the issue message never contains the value. */
export const webhookSecretSchema = z.string().superRefine((value, ctx) => {
  const result = inspect(value);
  if ('problem' in result) {
    ctx.addIssue({ code: 'custom', message: `invalid webhook secret (${result.problem})` });
  }
});

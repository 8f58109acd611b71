import { z } from 'zod';
import { addressListSchema, addressSchema, displayNameSchema, subjectSchema } from './address-policy.js';
import { attachmentContentTypeSchema, attachmentFilenameSchema, MAX_ATTACHMENTS, MAX_BODY_LENGTH } from './reply-composer.js';

/**
 * Request bodies of `POST /v1/messages/:id/reply` and `POST /v1/mailboxes/:id/send`. Addresses
 * and subjects go through the address policy (a CR/LF or other control character is refused,
 * never cleaned); attachments arrive base64-encoded. Issue messages never echo the values.
 */

// Standard base64 (RFC 4648 §4), optionally wrapped in CRLF-separated lines as MIME tools write it.
// A single character class (no groups): linear on 50 MB strings, where a grouped pattern overflows the stack.
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;
const isBase64 = (v: string) => v.length % 4 === 0 && BASE64_CHARS.test(v);

export const attachmentInputSchema = z.strictObject({
  filename: attachmentFilenameSchema,
  contentType: attachmentContentTypeSchema,
  contentBase64: z
    .string()
    .transform((v) => v.replace(/\r?\n/g, ''))
    .refine(isBase64, { message: 'contentBase64 is not valid base64' }),
});

const bodyFields = {
  text: z.string().max(MAX_BODY_LENGTH).optional(),
  html: z.string().max(MAX_BODY_LENGTH).optional(),
  cc: addressListSchema.optional(),
  bcc: addressListSchema.optional(),
  /**
   * From: the mailbox's own address (the default) or one of its verified send-as aliases
   * (issue 15 item 4); anything else is refused with 422 `from_not_allowed`.
   */
  from: addressSchema.optional(),
  /** Display name for From; `from.name` wins when both are given. */
  fromName: displayNameSchema.optional(),
  attachments: z.array(attachmentInputSchema).max(MAX_ATTACHMENTS).optional(),
};

const hasBody = (b: { text?: string | undefined; html?: string | undefined }) => (b.text ?? '').trim() !== '' || (b.html ?? '').trim() !== '';
const EMPTY_BODY = { message: 'text or html is required and must not be empty', path: ['text'] };

export const replyBodySchema = z
  .strictObject({ ...bodyFields, to: addressListSchema.optional() })
  .refine(hasBody, EMPTY_BODY)
  .meta({ id: 'ReplyRequest' });

export const newMessageBodySchema = z
  .strictObject({
    ...bodyFields,
    to: addressListSchema.refine((list) => list.length > 0, { message: 'at least one recipient is required' }),
    subject: subjectSchema.refine((s) => s.trim() !== '', { message: 'subject is required' }),
  })
  .refine(hasBody, EMPTY_BODY)
  .meta({ id: 'SendRequest' });

export type ReplyBody = z.output<typeof replyBodySchema>;
export type NewMessageBody = z.output<typeof newMessageBodySchema>;

/**
 * Idempotency-Key: 1–255 visible ASCII characters (Stripe allows 255). It is stored as is and
 * scoped to the tenant.
 */
export const idempotencyKeySchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, { message: 'Idempotency-Key must be 1-255 visible ASCII characters' });

/** Decoded size of a validated base64 string, without decoding it. */
export function base64DecodedSize(b64: string): number {
  const padding = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  return (b64.length / 4) * 3 - padding;
}

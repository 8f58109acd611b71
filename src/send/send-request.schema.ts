import { z } from 'zod';
import { addressListSchema, addressSchema, displayNameSchema, subjectSchema, type EmailAddress } from './address-policy.js';
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

/**
 * `from`: an address (`"Name" <a@b>` text or `{name?, address}`), or on Microsoft 365
 * `{address, name?, delegated: true}` — an address the connected account may send from through
 * an Exchange Send As / Send on Behalf permission, which Graph cannot list: Exchange decides when
 * the message is sent (docs/sending.md "Send-as addresses").
 */
export const fromSchema = z
  .union([
    z.string(),
    z.strictObject({
      name: z.string().optional(),
      address: z.string(),
      delegated: z
        .boolean()
        .optional()
        .meta({
          description:
            'Microsoft 365 only: send from this address through an Exchange Send As / Send on Behalf permission of the connected account (not listable in advance; Exchange decides at send, a refusal fails the send with from_not_allowed).',
        }),
    }),
  ])
  .transform((value, ctx): EmailAddress & { delegated?: true } => {
    const plain = typeof value === 'string' ? value : value.name === undefined ? { address: value.address } : { name: value.name, address: value.address };
    const parsed = addressSchema.safeParse(plain);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
      return { address: '' };
    }
    return typeof value !== 'string' && value.delegated === true ? { ...parsed.data, delegated: true } : parsed.data;
  });

const bodyFields = {
  text: z.string().max(MAX_BODY_LENGTH).optional(),
  html: z.string().max(MAX_BODY_LENGTH).optional(),
  cc: addressListSchema.optional(),
  bcc: addressListSchema.optional(),
  /**
   * From: the mailbox's own address (the default), one of its verified send-as aliases, or
   * (Microsoft 365, `delegated: true`) an address Exchange lets the account send as / on behalf
   * of (issue 15 item 4); anything else is refused with 422 `from_not_allowed`.
   */
  from: fromSchema.optional(),
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

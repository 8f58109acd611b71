import { z } from 'zod';

/**
 * The decrypted form of `messages.contentEnc` (AAD: table `messages`, column `contentEnc`, row =
 * message id; key: the mailbox DEK). Versioned: a reader meeting an unknown version fails closed.
 * Ingest writes it; the read API, webhooks payload builder, reply composer and DSAR export read it.
 */
/** `address` is null for a name without an address (`From: MAILER-DAEMON (Mail Delivery System)`). */
export const addressSchema = z.object({ name: z.string().nullable(), address: z.string().nullable() });
export type MessageAddress = z.infer<typeof addressSchema>;

export const messageContentSchema = z.object({
  v: z.literal(1),
  internetMessageId: z.string().nullable(),
  /** True when the message had no Message-ID and one was synthesized from its headers. */
  messageIdSynthetic: z.boolean().default(false),
  inReplyTo: z.string().nullable(),
  references: z.array(z.string()),
  from: addressSchema.nullable(),
  to: z.array(addressSchema),
  cc: z.array(addressSchema),
  bcc: z.array(addressSchema),
  replyTo: z.array(addressSchema),
  subject: z.string(),
  /** ISO 8601; the Date header, or the provider's received time when the header is unusable. */
  date: z.string(),
  text: z.string().nullable(),
  html: z.string().nullable(),
  /**
   * `html` sanitised for display (messages/safe-html.ts), computed once at ingest. Absent in rows
   * stored before it existed: readers compute it from `html` then.
   */
  safeHtml: z.string().nullable().optional(),
  /**
   * Reply text (without quoted history), signature and forwarded-message facts
   * (messages/reply-extraction.ts), computed once at ingest. Absent in rows stored before they
   * existed: readers compute them from `text` and `subject` then.
   */
  replyText: z.string().nullable().optional(),
  signature: z.string().nullable().optional(),
  forwarded: z
    .object({
      from: z.object({ name: z.string().nullable(), address: z.string().nullable() }).nullable(),
      date: z.string().nullable(),
      subject: z.string().nullable(),
    })
    .nullable()
    .optional(),
  /** Only the headers classification and threading looked at (auto-submitted, precedence, …). */
  headers: z.record(z.string(), z.string()),
  autoReplyReason: z.string().nullable().default(null),
  bounceReason: z.string().nullable().default(null),
});
export type MessageContent = z.infer<typeof messageContentSchema>;

export const MESSAGE_CONTENT_AAD = (messageId: string) => ({ table: 'messages', column: 'contentEnc', rowId: messageId }) as const;
export const ATTACHMENT_FILENAME_AAD = (attachmentId: string) => ({ table: 'attachments', column: 'filenameEnc', rowId: attachmentId }) as const;
export const ATTACHMENT_CONTENT_ID_AAD = (attachmentId: string) => ({ table: 'attachments', column: 'contentIdEnc', rowId: attachmentId }) as const;
export const MAILBOX_ADDRESS_AAD = (mailboxId: string) => ({ table: 'mailboxes', column: 'addressEnc', rowId: mailboxId }) as const;
/** AAD of `mailboxes.connectedByEnc` (mailbox DEK): the member whose grant reads a shared mailbox. */
export const CONNECTED_BY_AAD = (mailboxId: string) => ({ table: 'mailboxes', column: 'connectedByEnc', rowId: mailboxId }) as const;
export const MAILBOX_CREDENTIAL_AAD = (mailboxId: string) => ({ table: 'mailboxes', column: 'credentialEnc', rowId: mailboxId }) as const;

export function encodeMessageContent(content: MessageContent): Buffer {
  return Buffer.from(JSON.stringify(content), 'utf8');
}

export function decodeMessageContent(plain: Buffer): MessageContent {
  return messageContentSchema.parse(JSON.parse(plain.toString('utf8')));
}

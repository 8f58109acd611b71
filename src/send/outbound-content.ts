import { z } from 'zod';

/**
 * The decrypted form of `outbound_messages.contentEnc` (mailbox DEK, AAD {table
 * `outbound_messages`, column `contentEnc`, row = outbound id}). It holds the composed request:
 * where the exact MIME bytes are (a mailbox-keyed blob, so every retry sends byte-identical mail
 * with the same Message-ID and Date), the headers for status views, and how to thread it at the
 * provider. Versioned: an unknown version fails closed.
 */
const addressSchema = z.object({ name: z.string().optional(), address: z.string() });

export const outboundContentSchema = z.object({
  v: z.literal(1),
  kind: z.enum(['reply', 'new']),
  /** The generated `<id@domain>` Message-ID, recorded before the first send attempt. */
  internetMessageId: z.string().min(3),
  mime: z.object({ blobId: z.string().min(1), size: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  headers: z.object({
    from: addressSchema,
    to: z.array(addressSchema),
    cc: z.array(addressSchema),
    bcc: z.array(addressSchema),
    subject: z.string(),
    inReplyTo: z.string().nullable(),
    references: z.array(z.string()),
  }),
  attachments: z.array(z.object({ filename: z.string(), contentType: z.string(), size: z.number().int().nonnegative(), sha256: z.string() })),
  /** Provider threading: Gmail threadId of the original; Graph id of the message replied to. */
  provider: z.object({ threadId: z.string().nullable(), replyToProviderMessageId: z.string().nullable() }),
});

export type OutboundContent = z.infer<typeof outboundContentSchema>;

export const OUTBOUND_CONTENT_AAD = (outboundId: string) => ({ table: 'outbound_messages', column: 'contentEnc', rowId: outboundId }) as const;

export function encodeOutboundContent(content: OutboundContent): Buffer {
  return Buffer.from(JSON.stringify(outboundContentSchema.parse(content)), 'utf8');
}

export function decodeOutboundContent(plain: Buffer): OutboundContent {
  return outboundContentSchema.parse(JSON.parse(plain.toString('utf8')));
}

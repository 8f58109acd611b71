import { z } from 'zod';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { ATTACHMENT_FILENAME_AAD, decodeMessageContent, MESSAGE_CONTENT_AAD, type MessageContent } from '../mailboxes/message-content.js';
import type { AttachmentRecord, MessageRecord } from '../storage/message-read.repository.js';

export const SCAN_STATUSES = ['pending', 'clean', 'infected', 'error', 'unscannable'] as const;

const address = z.object({ name: z.string().nullable(), address: z.string() }).meta({ id: 'EmailAddress' });

export const attachmentMetaSchema = z
  .object({
    id: z.string(),
    object: z.literal('attachment'),
    filename: z.string().nullable(),
    contentType: z.string(),
    size: z.number().int(),
    isInline: z.boolean(),
    scanStatus: z.enum(SCAN_STATUSES),
  })
  .meta({ id: 'Attachment' });
export type AttachmentMeta = z.infer<typeof attachmentMetaSchema>;

export const messageSummarySchema = z
  .object({
    id: z.string(),
    object: z.literal('message'),
    mailboxId: z.string(),
    threadKey: z.string(),
    providerThreadId: z.string().nullable(),
    direction: z.enum(['inbound', 'outbound']),
    from: address.nullable(),
    to: z.array(address),
    cc: z.array(address),
    subject: z.string(),
    date: z.string(),
    receivedAt: z.string(),
    isAutoReply: z.boolean(),
    isBounce: z.boolean(),
    oversize: z.boolean(),
    sizeBytes: z.number().int(),
    attachments: z.array(attachmentMetaSchema),
  })
  .meta({ id: 'MessageSummary' });
export type MessageSummary = z.infer<typeof messageSummarySchema>;

export const messageSchema = messageSummarySchema
  .extend({
    internetMessageId: z.string().nullable(),
    inReplyTo: z.string().nullable(),
    references: z.array(z.string()),
    bcc: z.array(address),
    replyTo: z.array(address),
    text: z.string().nullable(),
    html: z.string().nullable(),
  })
  .meta({ id: 'Message' });
export type MessageView = z.infer<typeof messageSchema>;

/**
 * Decrypts stored messages into their API / webhook shapes. Everything here is mail content:
 * callers decide who may see it (owning tenant only) and audit the read.
 */
export class MessageViewer {
  constructor(private readonly dataKeys: DataKeyService) {}

  async content(row: Pick<MessageRecord, 'id' | 'mailboxId' | 'contentEnc'>): Promise<MessageContent> {
    const plain = await this.dataKeys.decryptFor({ type: 'mailbox', id: row.mailboxId }, row.contentEnc, MESSAGE_CONTENT_AAD(row.id));
    return decodeMessageContent(plain);
  }

  async filename(att: Pick<AttachmentRecord, 'id' | 'mailboxId' | 'filenameEnc'>): Promise<string | null> {
    if (!att.filenameEnc) return null;
    const plain = await this.dataKeys.decryptFor({ type: 'mailbox', id: att.mailboxId }, att.filenameEnc, ATTACHMENT_FILENAME_AAD(att.id));
    return plain.toString('utf8');
  }

  async attachment(att: AttachmentRecord): Promise<AttachmentMeta> {
    return {
      id: att.id,
      object: 'attachment',
      filename: await this.filename(att),
      contentType: att.contentType,
      size: att.size,
      isInline: att.isInline,
      scanStatus: (SCAN_STATUSES as readonly string[]).includes(att.scanStatus) ? (att.scanStatus as AttachmentMeta['scanStatus']) : 'pending',
    };
  }

  async summary(row: MessageRecord, content?: MessageContent): Promise<MessageSummary> {
    const c = content ?? (await this.content(row));
    return {
      id: row.id,
      object: 'message',
      mailboxId: row.mailboxId,
      threadKey: row.threadKey,
      providerThreadId: row.providerThreadId,
      direction: row.direction === 'outbound' ? 'outbound' : 'inbound',
      from: c.from,
      to: c.to,
      cc: c.cc,
      subject: c.subject,
      date: c.date,
      receivedAt: row.receivedAt.toISOString(),
      isAutoReply: row.isAutoReply,
      isBounce: row.isBounce,
      oversize: row.oversize,
      sizeBytes: row.sizeBytes,
      attachments: await Promise.all(row.attachments.map((a) => this.attachment(a))),
    };
  }

  async full(row: MessageRecord): Promise<MessageView> {
    const c = await this.content(row);
    return {
      ...(await this.summary(row, c)),
      internetMessageId: c.internetMessageId,
      inReplyTo: c.inReplyTo,
      references: c.references,
      bcc: c.bcc,
      replyTo: c.replyTo,
      text: c.text,
      html: c.html,
    };
  }
}

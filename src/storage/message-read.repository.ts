import type { PrismaClient } from './database.js';

export interface AttachmentRecord {
  id: string;
  tenantId: string;
  mailboxId: string;
  messageId: string;
  ordinal: number;
  filenameEnc: Uint8Array | null;
  contentType: string;
  size: number;
  isInline: boolean;
  /** Encrypted Content-ID (mailbox key), null when the part had none. */
  contentIdEnc: Uint8Array | null;
  scanStatus: string;
  scanSignature: string | null;
  blobId: string | null;
}

export interface MessageRecord {
  id: string;
  tenantId: string;
  mailboxId: string;
  providerMessageId: string;
  providerThreadId: string | null;
  threadKey: string;
  direction: string;
  isAutoReply: boolean;
  isBounce: boolean;
  oversize: boolean;
  /** Why parsing stopped early (mime-parser ParseErrorCode), or null. */
  parseError: string | null;
  sizeBytes: number;
  /** `backfill` (history fetched by a window walk) or `live` (arrived after the sync cursor). */
  origin: string;
  receivedAt: Date;
  contentEnc: Uint8Array;
  outboundId: string | null;
  createdAt: Date;
  attachments: AttachmentRecord[];
}

export interface OutboundRecord {
  id: string;
  tenantId: string;
  mailboxId: string;
  kind: string;
  replyToMessageId: string | null;
  status: string;
  failureCode: string | null;
  failureReason: string | null;
  providerMessageId: string | null;
  providerThreadId: string | null;
  threadKey: string | null;
  sentAt: Date | null;
  /** The stored copy of the sent message, when sync has seen it. */
  messageId: string | null;
}

const ATTACHMENT_SELECT = {
  id: true,
  tenantId: true,
  mailboxId: true,
  messageId: true,
  ordinal: true,
  filenameEnc: true,
  contentType: true,
  size: true,
  isInline: true,
  contentIdEnc: true,
  scanStatus: true,
  scanSignature: true,
  blobId: true,
} as const;

const MESSAGE_SELECT = {
  id: true,
  tenantId: true,
  mailboxId: true,
  providerMessageId: true,
  providerThreadId: true,
  threadKey: true,
  direction: true,
  isAutoReply: true,
  isBounce: true,
  oversize: true,
  parseError: true,
  sizeBytes: true,
  origin: true,
  receivedAt: true,
  contentEnc: true,
  outboundId: true,
  createdAt: true,
  attachments: { select: ATTACHMENT_SELECT, orderBy: { ordinal: 'asc' } },
} as const;

/** Read side of stored mail (messages, attachments, outbound status) for the API and webhooks. */
/** Filters and keyset position of a newest-first message list (`limit + 1` to see whether more exist). */
export interface MessageListOptions {
  threadKey?: string;
  origin?: 'backfill' | 'live';
  before?: { receivedAt: Date; id: string };
  limit: number;
}

export class MessageReadRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async findMessageForTenant(tenantId: string, messageId: string): Promise<MessageRecord | null> {
    return this.prisma.message.findFirst({ where: { id: messageId, tenantId }, select: MESSAGE_SELECT });
  }

  /** Workers (payload builder) know the tenant from the event, but the lookup is by id. */
  async findMessageUnscoped(messageId: string): Promise<MessageRecord | null> {
    return this.prisma.message.findUnique({ where: { id: messageId }, select: MESSAGE_SELECT });
  }

  /** Several messages by id in one query (webhook payloads built for a batch of events). */
  async findMessagesUnscoped(messageIds: readonly string[]): Promise<MessageRecord[]> {
    if (messageIds.length === 0) return [];
    return this.prisma.message.findMany({ where: { id: { in: [...messageIds] } }, select: MESSAGE_SELECT });
  }

  /**
   * Newest first by (receivedAt, id); `before` is the keyset position of the last row seen.
   * Fetch `limit + 1` to know whether another page exists.
   */
  async listMessages(
    tenantId: string,
    mailboxId: string,
    opts: MessageListOptions,
  ): Promise<MessageRecord[]> {
    return this.newestFirst(tenantId, mailboxId, opts);
  }

  /** The same order and keyset as listMessages, across the given mailboxes of the tenant. */
  async listTenantMessages(
    tenantId: string,
    mailboxIds: readonly string[],
    opts: MessageListOptions,
  ): Promise<MessageRecord[]> {
    if (mailboxIds.length === 0) return [];
    return this.newestFirst(tenantId, { in: [...mailboxIds] }, opts);
  }

  /** Newest first by (receivedAt, id), after the keyset position `before`. */
  private newestFirst(
    tenantId: string,
    mailboxId: string | { in: string[] },
    opts: MessageListOptions,
  ): Promise<MessageRecord[]> {
    const b = opts.before;
    return this.prisma.message.findMany({
      where: {
        tenantId,
        mailboxId,
        ...(opts.threadKey ? { threadKey: opts.threadKey } : {}),
        ...(opts.origin ? { origin: opts.origin } : {}),
        ...(b ? { OR: [{ receivedAt: { lt: b.receivedAt } }, { receivedAt: b.receivedAt, id: { lt: b.id } }] } : {}),
      },
      orderBy: [{ receivedAt: 'desc' }, { id: 'desc' }],
      take: opts.limit,
      select: MESSAGE_SELECT,
    });
  }

  async findAttachmentForTenant(tenantId: string, attachmentId: string): Promise<AttachmentRecord | null> {
    return this.prisma.attachment.findFirst({ where: { id: attachmentId, tenantId }, select: ATTACHMENT_SELECT });
  }

  async findAttachmentUnscoped(attachmentId: string): Promise<AttachmentRecord | null> {
    return this.prisma.attachment.findUnique({ where: { id: attachmentId }, select: ATTACHMENT_SELECT });
  }

  async findOutboundUnscoped(outboundId: string): Promise<OutboundRecord | null> {
    const row = await this.prisma.outboundMessage.findUnique({
      where: { id: outboundId },
      select: {
        id: true,
        tenantId: true,
        mailboxId: true,
        kind: true,
        replyToMessageId: true,
        status: true,
        failureCode: true,
        failureReason: true,
        providerMessageId: true,
        providerThreadId: true,
        threadKey: true,
        sentAt: true,
      },
    });
    if (!row) return null;
    const stored = await this.prisma.message.findFirst({ where: { outboundId, mailboxId: row.mailboxId }, select: { id: true } });
    return { ...row, messageId: stored?.id ?? null };
  }
}

/** Size and completeness of a stored blob (checked before streaming starts, so errors are clean). */
export async function blobInfo(prisma: PrismaClient, blobId: string): Promise<{ size: number; complete: boolean } | null> {
  const row = await prisma.blob.findUnique({ where: { id: blobId }, select: { size: true, complete: true } });
  return row ? { size: Number(row.size), complete: row.complete } : null;
}

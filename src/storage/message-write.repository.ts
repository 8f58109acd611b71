import type { Prisma, PrismaClient } from './database.js';

type Tx = Prisma.TransactionClient;

export interface NewMessageRow {
  id: string;
  tenantId: string;
  mailboxId: string;
  providerMessageId: string;
  providerThreadId: string | null;
  messageIdIndex: string | null;
  threadKey: string;
  direction: 'inbound' | 'outbound';
  isAutoReply: boolean;
  isBounce: boolean;
  oversize: boolean;
  parseError: string | null;
  sizeBytes: number;
  receivedAt: Date;
  contentEnc: Uint8Array;
  outboundId: string | null;
}

export interface NewAddressRow {
  id: string;
  role: 'from' | 'to' | 'cc' | 'bcc' | 'reply_to';
  addressIndex: string;
}

export interface NewAttachmentRow {
  id: string;
  ordinal: number;
  filenameEnc: Uint8Array | null;
  contentType: string;
  size: number;
  contentIdEnc: Uint8Array | null;
  isInline: boolean;
  scanStatus: 'pending' | 'clean' | 'infected' | 'unscannable';
  scanSignature: string | null;
  scanAttempts: number;
  scanError: string | null;
  scannedAt: Date | null;
  nextScanAt: Date | null;
  blobId: string | null;
}

export interface OutboundMatch {
  id: string;
  threadKey: string | null;
}

/** Raised inside the ingest transaction to roll it back when the message row already exists. */
export class MessageAlreadyStoredError extends Error {
  override readonly name = 'MessageAlreadyStoredError';
}

/**
 * The write side of stored mail: one message with its participants and attachments, inserted in
 * the caller's transaction (ingest appends the outbox event in the same one). Uniqueness per
 * (mailboxId, providerMessageId) is enforced by the database; a concurrent second insert is
 * reported as MessageAlreadyStoredError, never as a second row.
 */
export class MessageWriteRepository {
  constructor(private readonly prisma: PrismaClient) {}

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(fn, { timeout: 60_000, maxWait: 30_000 });
  }

  /** Which of `providerMessageIds` this mailbox already stored (skips a fetch, saves quota). */
  async storedProviderIds(mailboxId: string, providerMessageIds: readonly string[]): Promise<Set<string>> {
    if (providerMessageIds.length === 0) return new Set();
    const rows = await this.prisma.message.findMany({
      where: { mailboxId, providerMessageId: { in: [...providerMessageIds] } },
      select: { providerMessageId: true },
    });
    return new Set(rows.map((r) => r.providerMessageId));
  }

  async findStoredId(mailboxId: string, providerMessageId: string): Promise<string | null> {
    const row = await this.prisma.message.findUnique({ where: { mailboxId_providerMessageId: { mailboxId, providerMessageId } }, select: { id: true } });
    return row?.id ?? null;
  }

  /** Receive time of the newest stored message: where a window resync starts (minus overlap). */
  async newestReceivedAt(mailboxId: string): Promise<Date | null> {
    const row = await this.prisma.message.findFirst({ where: { mailboxId }, orderBy: { receivedAt: 'desc' }, select: { receivedAt: true } });
    return row?.receivedAt ?? null;
  }

  /**
   * A reply the connector itself sent, recognised by the blind index of its generated Message-ID
   * (recorded before sending) or by the provider id the send returned.
   */
  async findOutbound(tx: Tx, mailboxId: string, messageIdIndex: string | null, providerMessageId: string): Promise<OutboundMatch | null> {
    const row = await tx.outboundMessage.findFirst({
      where: {
        mailboxId,
        OR: [...(messageIdIndex ? [{ messageIdIndex }] : []), { providerMessageId }],
      },
      orderBy: { createdAt: 'asc' },
      select: { id: true, threadKey: true },
    });
    return row;
  }

  /** Inserts the message or throws MessageAlreadyStoredError (ON CONFLICT DO NOTHING: no aborted transaction). */
  async insertMessage(tx: Tx, row: NewMessageRow, addresses: readonly NewAddressRow[], attachments: readonly NewAttachmentRow[]): Promise<void> {
    const inserted = await tx.message.createMany({
      data: [{ ...row, contentEnc: new Uint8Array(row.contentEnc) }],
      skipDuplicates: true,
    });
    if (inserted.count === 0) throw new MessageAlreadyStoredError('message already stored');
    if (addresses.length > 0) {
      await tx.messageAddress.createMany({
        data: addresses.map((a) => ({ id: a.id, tenantId: row.tenantId, mailboxId: row.mailboxId, messageId: row.id, role: a.role, addressIndex: a.addressIndex })),
      });
    }
    if (attachments.length > 0) {
      await tx.attachment.createMany({
        data: attachments.map((a) => ({
          ...a,
          filenameEnc: a.filenameEnc ? new Uint8Array(a.filenameEnc) : null,
          contentIdEnc: a.contentIdEnc ? new Uint8Array(a.contentIdEnc) : null,
          tenantId: row.tenantId,
          mailboxId: row.mailboxId,
          messageId: row.id,
        })),
      });
    }
  }
}

import type { PrismaClient } from './database.js';
import { deleteMessagesTx } from './purge.repository.js';

export interface SubjectMessageRow {
  id: string;
  mailboxId: string;
  direction: string;
  receivedAt: Date;
  contentEnc: Uint8Array;
  messageIdIndex: string | null;
  rawBlobId: string | null;
  roles: string[];
  attachments: Array<{ id: string; ordinal: number; filenameEnc: Uint8Array | null; contentType: string; size: number; scanStatus: string; isInline: boolean }>;
}

/** Data-subject requests: everything of one tenant reachable from one address's blind index. */
export class DataSubjectRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** Message ids (keyset by id) where the address appears in any role. */
  async messageIdsPage(tenantId: string, addressIndex: string, afterId: string | undefined, limit: number): Promise<string[]> {
    const rows = await this.prisma.messageAddress.findMany({
      where: { tenantId, addressIndex, ...(afterId ? { messageId: { gt: afterId } } : {}) },
      select: { messageId: true },
      distinct: ['messageId'],
      orderBy: { messageId: 'asc' },
      take: limit,
    });
    return rows.map((r) => r.messageId);
  }

  async loadMessages(tenantId: string, addressIndex: string, messageIds: string[]): Promise<SubjectMessageRow[]> {
    const rows = await this.prisma.message.findMany({
      where: { tenantId, id: { in: messageIds } },
      orderBy: { id: 'asc' },
      select: {
        id: true,
        mailboxId: true,
        direction: true,
        receivedAt: true,
        contentEnc: true,
        messageIdIndex: true,
        rawBlobId: true,
        addresses: { where: { addressIndex }, select: { role: true } },
        attachments: {
          orderBy: { ordinal: 'asc' },
          select: { id: true, ordinal: true, filenameEnc: true, contentType: true, size: true, scanStatus: true, isInline: true },
        },
      },
    });
    return rows.map(({ addresses, ...r }) => ({ ...r, roles: [...new Set(addresses.map((a) => a.role))] }));
  }

  /** The tenant's mailboxes whose own address is the subject's. */
  async mailboxesWithAddress(tenantId: string, addressIndex: string): Promise<Array<{ id: string; provider: string; status: string; createdAt: Date }>> {
    return this.prisma.mailbox.findMany({ where: { tenantId, addressIndex }, select: { id: true, provider: true, status: true, createdAt: true }, orderBy: { id: 'asc' } });
  }

  /** Deletes the given messages (tenant-checked) with attachments, blobs, addresses and thread refs. */
  async eraseMessages(tenantId: string, messageIds: string[]): Promise<{ messages: number; messageAddresses: number; attachments: number; blobs: number; threadRefs: number }> {
    return this.prisma.$transaction(async (tx) => {
      const msgs = await tx.message.findMany({ where: { tenantId, id: { in: messageIds } }, select: { id: true, rawBlobId: true, mailboxId: true, messageIdIndex: true } });
      let threadRefs = 0;
      // A thread ref derived from an erased message's Message-ID would still link the subject's
      // mail to a thread: remove it with the message.
      for (const m of msgs) {
        if (!m.messageIdIndex) continue;
        threadRefs += (await tx.threadRef.deleteMany({ where: { mailboxId: m.mailboxId, refIndex: m.messageIdIndex } })).count;
      }
      const counts = await deleteMessagesTx(tx, msgs);
      return { ...counts, threadRefs };
    });
  }
}

import type { Prisma, PrismaClient } from './database.js';

type Tx = Prisma.TransactionClient;

export interface BreakGlassSessionRecord {
  id: string;
  tenantId: string;
  mailboxId: string;
  operator: string;
  reason: string;
  ticketRef: string;
  expiresAt: Date;
  createdAt: Date;
  endedAt: Date | null;
}

export interface BreakGlassMessageRow {
  id: string;
  tenantId: string;
  mailboxId: string;
  direction: string;
  receivedAt: Date;
  contentEnc: Uint8Array;
  attachments: Array<{ id: string; filenameEnc: Uint8Array | null; contentType: string; size: number; scanStatus: string }>;
}

/** Break-glass sessions and the single message read they permit. */
export class BreakGlassRepository {
  constructor(private readonly prisma: PrismaClient) {}

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(fn);
  }

  async findMailbox(tx: Tx, mailboxId: string): Promise<{ id: string; tenantId: string; status: string } | null> {
    return tx.mailbox.findUnique({ where: { id: mailboxId }, select: { id: true, tenantId: true, status: true } });
  }

  async create(tx: Tx, session: Omit<BreakGlassSessionRecord, 'endedAt'>): Promise<BreakGlassSessionRecord> {
    return tx.breakGlassSession.create({ data: session });
  }

  async find(sessionId: string): Promise<BreakGlassSessionRecord | null> {
    return this.prisma.breakGlassSession.findUnique({ where: { id: sessionId } });
  }

  async end(sessionId: string, endedAt: Date): Promise<boolean> {
    const res = await this.prisma.breakGlassSession.updateMany({ where: { id: sessionId, endedAt: null }, data: { endedAt } });
    return res.count === 1;
  }

  async list(opts: { activeAt?: Date; mailboxId?: string; limit: number }): Promise<BreakGlassSessionRecord[]> {
    return this.prisma.breakGlassSession.findMany({
      where: {
        ...(opts.mailboxId ? { mailboxId: opts.mailboxId } : {}),
        ...(opts.activeAt ? { endedAt: null, expiresAt: { gt: opts.activeAt } } : {}),
      },
      orderBy: { createdAt: 'desc' },
      take: opts.limit,
    });
  }

  async message(messageId: string): Promise<BreakGlassMessageRow | null> {
    return this.prisma.message.findUnique({
      where: { id: messageId },
      select: {
        id: true,
        tenantId: true,
        mailboxId: true,
        direction: true,
        receivedAt: true,
        contentEnc: true,
        attachments: { orderBy: { ordinal: 'asc' }, select: { id: true, filenameEnc: true, contentType: true, size: true, scanStatus: true } },
      },
    });
  }
}

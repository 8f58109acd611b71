import type { Prisma, PrismaClient } from './database.js';

type Tx = Prisma.TransactionClient;

export interface AttachmentScanRecord {
  id: string;
  tenantId: string;
  mailboxId: string;
  messageId: string;
  contentType: string;
  size: number;
  scanStatus: string;
  scanAttempts: number;
  scanError: string | null;
  nextScanAt: Date | null;
  blobId: string | null;
}

const SELECT = {
  id: true,
  tenantId: true,
  mailboxId: true,
  messageId: true,
  contentType: true,
  size: true,
  scanStatus: true,
  scanAttempts: true,
  scanError: true,
  nextScanAt: true,
  blobId: true,
} as const satisfies Prisma.AttachmentSelect;

export interface ScanUpdate {
  scanStatus: 'pending' | 'clean' | 'infected' | 'unscannable';
  scanAttempts: number;
  scanSignature: string | null;
  scanError: string | null;
  scannedAt: Date | null;
  nextScanAt: Date | null;
  /** Set to null when infected content is discarded. */
  blobId?: null;
}

/** The scan-retry side of `attachments`: what is due, and the verdict written back. */
export class AttachmentScanRepository {
  constructor(private readonly prisma: PrismaClient) {}

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(fn, { timeout: 30_000 });
  }

  /** Pending attachments with content whose retry time has come (or that never had one). */
  async listDue(now: Date, limit: number, ids?: readonly string[]): Promise<AttachmentScanRecord[]> {
    return (await this.prisma.attachment.findMany({
      where: {
        scanStatus: 'pending',
        blobId: { not: null },
        OR: [{ nextScanAt: null }, { nextScanAt: { lte: now } }],
        ...(ids && ids.length > 0 ? { id: { in: [...ids] } } : {}),
      },
      orderBy: [{ nextScanAt: { sort: 'asc', nulls: 'first' } }, { id: 'asc' }],
      take: limit,
      select: SELECT,
    })) as AttachmentScanRecord[];
  }

  /** Writes a verdict only if the row is still pending (a concurrent scan may have decided it). */
  async update(tx: Tx, attachmentId: string, u: ScanUpdate): Promise<boolean> {
    const res = await tx.attachment.updateMany({ where: { id: attachmentId, scanStatus: 'pending' }, data: u });
    return res.count === 1;
  }
}

import type { PrismaClient } from './database.js';

export interface AdminSessionRecord {
  tokenHash: string;
  apiKeyId: string;
  createdAt: Date;
  seenAt: Date;
  expiresAt: Date;
  endedAt: Date | null;
}

/** Ops console sessions (table `admin_sessions`), keyed by the SHA-256 of the cookie's token. */
export class AdminSessionRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async create(row: { tokenHash: string; apiKeyId: string; createdAt: Date; expiresAt: Date }): Promise<void> {
    await this.prisma.adminSession.create({ data: { ...row, seenAt: row.createdAt } });
  }

  async find(tokenHash: string): Promise<AdminSessionRecord | null> {
    return this.prisma.adminSession.findUnique({ where: { tokenHash } });
  }

  async touch(tokenHash: string, at: Date): Promise<void> {
    await this.prisma.adminSession.updateMany({ where: { tokenHash, endedAt: null }, data: { seenAt: at } });
  }

  async end(tokenHash: string, at: Date): Promise<boolean> {
    const r = await this.prisma.adminSession.updateMany({ where: { tokenHash, endedAt: null }, data: { endedAt: at } });
    return r.count > 0;
  }

  /** Rows of sessions that ended or expired before `before` (kept a while for nothing but debugging). */
  async prune(before: Date): Promise<number> {
    const r = await this.prisma.adminSession.deleteMany({ where: { OR: [{ expiresAt: { lt: before } }, { endedAt: { lt: before } }] } });
    return r.count;
  }
}

import type { PrismaClient } from './database.js';

/** Why a From is refused: the provider refused it (Exchange ErrorSendAsDenied) or sent another address instead. */
export type SendFromRefusalReason = 'send_as_denied' | 'alias_rewritten';

/**
 * From addresses the provider refused or rewrote at a send, per mailbox (table
 * `send_from_refusals`), so that every process — the API as well as the worker that saw the
 * refusal — refuses requests naming them until `expiresAt`. The address is only its keyed blind
 * index (`BlindIndex.emailIndex`): the caller passes the index, never the address.
 */
export class SendFromRefusalRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** Records (or renews) a refusal; the latest reason and expiry win. */
  async remember(row: { mailboxId: string; addressIndex: string; reason: SendFromRefusalReason; expiresAt: Date; now: Date }): Promise<void> {
    const { mailboxId, addressIndex, reason, expiresAt, now } = row;
    await this.prisma.sendFromRefusal.upsert({
      where: { mailboxId_addressIndex: { mailboxId, addressIndex } },
      create: { mailboxId, addressIndex, reason, expiresAt, createdAt: now },
      update: { reason, expiresAt, createdAt: now },
    });
  }

  /** The refusal in force at `now`, if any (an expired row counts as none). */
  async find(mailboxId: string, addressIndex: string, now: Date): Promise<{ reason: SendFromRefusalReason; expiresAt: Date } | null> {
    const row = await this.prisma.sendFromRefusal.findFirst({ where: { mailboxId, addressIndex, expiresAt: { gt: now } }, select: { reason: true, expiresAt: true } });
    if (!row) return null;
    return { reason: row.reason === 'alias_rewritten' ? 'alias_rewritten' : 'send_as_denied', expiresAt: row.expiresAt };
  }

  /** Drops a mailbox's refusals (the mailbox row going takes them too: ON DELETE CASCADE). */
  async forget(mailboxId: string): Promise<void> {
    await this.prisma.sendFromRefusal.deleteMany({ where: { mailboxId } });
  }

  /** Housekeeping: deletes rows past their expiry; returns how many. */
  async deleteExpired(now: Date): Promise<number> {
    const r = await this.prisma.sendFromRefusal.deleteMany({ where: { expiresAt: { lte: now } } });
    return r.count;
  }
}

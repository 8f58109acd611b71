import type { PrismaClient } from './database.js';
import { newId } from './ids.js';

/** Status of a webhook delivery that a restore found undelivered: sent only once an operator releases it. */
export const HELD_AFTER_RESTORE = 'held_after_restore';

const PAGE = 500;

/** What `mailbox-connector restore` does to the restored data database before anything serves it. */
export class RestoreRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** Every mailbox a purge receipt names (a purge that started is a purge: its key must be gone). */
  async purgedMailboxIds(): Promise<string[]> {
    const rows = await this.prisma.purgeReceipt.findMany({ select: { mailboxId: true }, distinct: ['mailboxId'], orderBy: { mailboxId: 'asc' } });
    return rows.map((r) => r.mailboxId);
  }

  /** Mailbox ids, keyset by id. */
  async mailboxIdsAfter(afterId: string): Promise<string[]> {
    const rows = await this.prisma.mailbox.findMany({ where: { id: { gt: afterId } }, select: { id: true }, orderBy: { id: 'asc' }, take: PAGE });
    return rows.map((r) => r.id);
  }

  /**
   * Receipts of these mailboxes still `running` in the backup are closed: their purge finished
   * before the restore (it is why the key is gone), and resuming it would announce it again.
   */
  async closeRunningReceipts(mailboxIds: readonly string[], at: Date): Promise<number> {
    if (mailboxIds.length === 0) return 0;
    const res = await this.prisma.purgeReceipt.updateMany({ where: { mailboxId: { in: [...mailboxIds] }, status: 'running' }, data: { status: 'completed', completedAt: at } });
    return res.count;
  }

  /**
   * Holds every webhook delivery of the restored data that was not delivered yet (pending, failed,
   * in flight), and fans out events that were not dispatched yet into held deliveries (one per
   * enabled endpoint subscribed to the type, as the dispatcher would). The ticket service already
   * received, or must not receive again, what the old data was about to send.
   */
  async holdUndelivered(now: Date): Promise<{ deliveries: number; fannedOut: number }> {
    return this.prisma.$transaction(
      async (tx) => {
        const deliveries = await tx.$executeRaw`
          UPDATE "webhook_deliveries" SET "status" = ${HELD_AFTER_RESTORE}, "nextAttemptAt" = NULL, "updatedAt" = ${now}
           WHERE "status" IN ('pending', 'failed', 'delivering')`;
        const events = await tx.outboxEvent.findMany({ where: { dispatchedAt: null }, select: { id: true, tenantId: true, type: true } });
        let fannedOut = 0;
        if (events.length > 0) {
          const endpoints = await tx.webhookEndpoint.findMany({
            where: { tenantId: { in: [...new Set(events.map((e) => e.tenantId))] }, enabled: true, deletedAt: null },
            select: { id: true, tenantId: true, events: true },
          });
          const rows = events.flatMap((e) =>
            endpoints
              .filter((ep) => ep.tenantId === e.tenantId && (ep.events.length === 0 || ep.events.includes(e.type)))
              .map((ep) => ({ id: newId('delivery'), tenantId: e.tenantId, eventId: e.id, endpointId: ep.id, status: HELD_AFTER_RESTORE, createdAt: now, updatedAt: now })),
          );
          if (rows.length > 0) fannedOut = (await tx.webhookDelivery.createMany({ data: rows, skipDuplicates: true })).count;
          await tx.outboxEvent.updateMany({ where: { id: { in: events.map((e) => e.id) } }, data: { dispatchedAt: now } });
        }
        return { deliveries, fannedOut };
      },
      { timeout: 120_000 },
    );
  }

  async countHeld(): Promise<number> {
    return this.prisma.webhookDelivery.count({ where: { status: HELD_AFTER_RESTORE } });
  }

  /** Held deliveries become due now (`release`) or cancelled (`discard`). Returns how many. */
  async releaseHeld(mode: 'release' | 'discard', now: Date): Promise<number> {
    const res = await this.prisma.webhookDelivery.updateMany({
      where: { status: HELD_AFTER_RESTORE },
      data: mode === 'release' ? { status: 'pending', nextAttemptAt: null, updatedAt: now } : { status: 'cancelled', nextAttemptAt: null, updatedAt: now },
    });
    return res.count;
  }
}

import type { PrismaClient } from './database.js';
import { deleteMessagesTx } from './purge.repository.js';

const BATCH = 500;

/** Tenants with a retention period, and batched deletion of their messages older than a cut-off. */
export class RetentionRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async tenantsWithRetention(): Promise<Array<{ id: string; retentionDays: number }>> {
    const rows = await this.prisma.tenant.findMany({ where: { retentionDays: { not: null } }, select: { id: true, retentionDays: true }, orderBy: { id: 'asc' } });
    return rows.map((r) => ({ id: r.id, retentionDays: r.retentionDays! }));
  }

  /**
   * Deletes one batch of the tenant's messages received before `cutoff` (with their addresses,
   * attachments and blobs). A mailbox being purged may be swept by both; each delete is idempotent.
   */
  async deleteBatchOlderThan(tenantId: string, cutoff: Date): Promise<{ messages: number; messageAddresses: number; attachments: number; blobs: number }> {
    return this.prisma.$transaction(async (tx) => {
      const msgs = await tx.message.findMany({
        where: { tenantId, receivedAt: { lt: cutoff } },
        select: { id: true, rawBlobId: true },
        orderBy: { receivedAt: 'asc' },
        take: BATCH,
      });
      return deleteMessagesTx(tx, msgs);
    });
  }
}

import type { Prisma, PrismaClient } from './database.js';

type Tx = Prisma.TransactionClient;

/**
 * Outbox rows for the lifecycle room's events (`mailbox.purged`, `mailbox.reauth_required`,
 * `mailbox.break_glass_opened`). Written inside the caller's transaction so the event exists if
 * and only if the state change it announces committed (transactional outbox).
 *
 * The webhooks room owns dispatching; this only inserts, following the table's contract: ids in
 * `refs`, anything else in `dataEnc` under the tenant DEK (it must outlive a purge).
 */
export class PurgeEventsRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** Next per-mailbox sequence number (the mailbox row is the counter). Null if the mailbox is gone. */
  async nextMailboxSeq(tx: Tx, mailboxId: string): Promise<bigint | null> {
    const rows = await tx.$queryRaw<Array<{ eventSeq: bigint }>>`
      UPDATE "mailboxes" SET "eventSeq" = "eventSeq" + 1 WHERE "id" = ${mailboxId} RETURNING "eventSeq"`;
    return rows[0]?.eventSeq ?? null;
  }

  async insert(
    tx: Tx,
    event: { id: string; tenantId: string; mailboxId: string | null; type: string; seq: bigint; refs: Record<string, string>; dataEnc: Uint8Array | null; createdAt: Date },
  ): Promise<void> {
    await tx.outboxEvent.create({
      data: {
        id: event.id,
        tenantId: event.tenantId,
        mailboxId: event.mailboxId,
        type: event.type,
        seq: event.seq,
        refs: event.refs,
        dataEnc: event.dataEnc ? new Uint8Array(event.dataEnc) : null,
        createdAt: event.createdAt,
      },
    });
  }

  async findForTenant(tenantId: string, eventId: string): Promise<{ id: string; type: string; mailboxId: string | null; refs: unknown; dataEnc: Uint8Array | null } | null> {
    return this.prisma.outboxEvent.findFirst({ where: { id: eventId, tenantId }, select: { id: true, type: true, mailboxId: true, refs: true, dataEnc: true } });
  }
}

import type { Prisma, PrismaClient } from './database.js';
import type { SqlTransaction } from './sql-executor.port.js';

type Tx = Prisma.TransactionClient;

/** Serialises per-tenant sequence numbers for events without a mailbox (second key: tenant hash). */
const TENANT_SEQ_LOCK_KEY = 727_384_617;

export interface OutboxEventRecord {
  id: string;
  tenantId: string;
  mailboxId: string | null;
  type: string;
  seq: bigint;
  refs: unknown;
  dataEnc: Uint8Array | null;
  createdAt: Date;
  dispatchedAt: Date | null;
}

export interface NewOutboxEvent {
  id: string;
  tenantId: string;
  mailboxId: string | null;
  type: string;
  seq: bigint;
  refs: Record<string, string>;
  dataEnc: Uint8Array | null;
  createdAt: Date;
}

export interface EventListFilter {
  type?: string;
  mailboxId?: string;
  /** Only events with at least one delivery in this status. */
  deliveryStatus?: string;
  /** Keyset: events with a smaller id (newest first). */
  beforeId?: string;
  limit: number;
}

/** The transactional outbox (`outbox_events`). Writes happen inside the caller's transaction. */
export class OutboxRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * Hands out the mailbox's next sequence number. The row lock taken by the UPDATE orders
   * concurrent writers for one mailbox; it is released when the caller's transaction ends, so
   * sequence order equals commit order per mailbox. Null when the mailbox row does not exist.
   */
  async nextMailboxSeq(tx: Tx, mailboxId: string): Promise<bigint | null> {
    const rows = await tx.$queryRaw<Array<{ eventSeq: bigint | number }>>`
      UPDATE mailboxes SET "eventSeq" = "eventSeq" + 1 WHERE id = ${mailboxId} RETURNING "eventSeq"`;
    const row = rows[0];
    return row ? BigInt(row.eventSeq) : null;
  }

  /** Per-tenant sequence for events without a mailbox: max + 1 under a transaction-scoped lock. */
  async nextTenantSeq(tx: Tx, tenantId: string): Promise<bigint> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${TENANT_SEQ_LOCK_KEY}::int4, hashtext(${tenantId}))`;
    const rows = await tx.$queryRaw<Array<{ next: bigint | number }>>`
      SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM outbox_events WHERE "tenantId" = ${tenantId} AND "mailboxId" IS NULL`;
    return BigInt(rows[0]?.next ?? 1);
  }

  async insert(tx: Tx, event: NewOutboxEvent): Promise<void> {
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

  /**
   * Several events of ONE mailbox in one statement, in the caller's driver transaction: the
   * counter advances by their number (row lock, as nextMailboxSeq) and they take consecutive
   * sequence numbers in the given order. Returns the sequence numbers, or null when the mailbox
   * row does not exist (nothing inserted).
   */
  async insertMailboxEvents(
    tx: SqlTransaction,
    mailboxId: string,
    events: ReadonlyArray<Pick<NewOutboxEvent, 'id' | 'tenantId' | 'type' | 'refs' | 'createdAt'>>,
  ): Promise<bigint[] | null> {
    if (events.length === 0) return [];
    const inserted = await tx.query<{ id: string; seq: string | number | bigint }>(
      `WITH s AS (UPDATE mailboxes SET "eventSeq" = "eventSeq" + $2 WHERE id = $1 RETURNING "eventSeq")
       INSERT INTO outbox_events (id, "tenantId", "mailboxId", type, seq, refs, "createdAt")
       SELECT x.id, x.tid, $1, x.type, s."eventSeq" - $2 + x.ord, x.refs, x.at
         FROM unnest($3::text[], $4::text[], $5::text[], $6::jsonb[], $7::timestamp[]) WITH ORDINALITY AS x(id, tid, type, refs, at, ord), s
       RETURNING id, seq`,
      [
        mailboxId,
        events.length,
        events.map((e) => e.id),
        events.map((e) => e.tenantId),
        events.map((e) => e.type),
        events.map((e) => JSON.stringify(e.refs)),
        events.map((e) => e.createdAt.toISOString()),
      ],
    );
    if (inserted.rows.length === 0) return null;
    const seqById = new Map(inserted.rows.map((r) => [r.id, BigInt(r.seq)]));
    return events.map((e) => seqById.get(e.id)!);
  }

  async findUnscoped(eventId: string): Promise<OutboxEventRecord | null> {
    return this.prisma.outboxEvent.findUnique({ where: { id: eventId } });
  }

  async findForTenant(tenantId: string, eventId: string): Promise<OutboxEventRecord | null> {
    return this.prisma.outboxEvent.findFirst({ where: { id: eventId, tenantId } });
  }

  async findManyUnscoped(eventIds: readonly string[]): Promise<OutboxEventRecord[]> {
    if (eventIds.length === 0) return [];
    return this.prisma.outboxEvent.findMany({ where: { id: { in: [...eventIds] } }, orderBy: { id: 'asc' } });
  }

  async markManyDispatched(eventIds: readonly string[], at: Date): Promise<void> {
    if (eventIds.length === 0) return;
    await this.prisma.outboxEvent.updateMany({ where: { id: { in: [...eventIds] }, dispatchedAt: null }, data: { dispatchedAt: at } });
  }

  async markDispatched(eventId: string, at: Date): Promise<void> {
    await this.prisma.outboxEvent.updateMany({ where: { id: eventId, dispatchedAt: null }, data: { dispatchedAt: at } });
  }

  /** Events committed but never fanned out (the enqueue after commit was lost). */
  async listUndispatched(createdBefore: Date, limit: number): Promise<string[]> {
    const rows = await this.prisma.outboxEvent.findMany({
      where: { dispatchedAt: null, createdAt: { lt: createdBefore } },
      orderBy: { id: 'asc' },
      take: limit,
      select: { id: true },
    });
    return rows.map((r) => r.id);
  }

  async listForTenant(tenantId: string, filter: EventListFilter): Promise<OutboxEventRecord[]> {
    return this.prisma.outboxEvent.findMany({
      where: {
        tenantId,
        ...(filter.type ? { type: filter.type } : {}),
        ...(filter.mailboxId ? { mailboxId: filter.mailboxId } : {}),
        ...(filter.beforeId ? { id: { lt: filter.beforeId } } : {}),
        ...(filter.deliveryStatus ? { deliveries: { some: { status: filter.deliveryStatus } } } : {}),
      },
      orderBy: { id: 'desc' },
      take: filter.limit,
    });
  }

  /** Ops replay by time: ids created at or after `since`, oldest first, keyset by id. */
  async listIdsSinceUnscoped(since: Date, afterId: string | undefined, limit: number): Promise<Array<{ id: string; tenantId: string }>> {
    return this.prisma.outboxEvent.findMany({
      where: { createdAt: { gte: since }, ...(afterId ? { id: { gt: afterId } } : {}) },
      orderBy: { id: 'asc' },
      take: limit,
      select: { id: true, tenantId: true },
    });
  }
}

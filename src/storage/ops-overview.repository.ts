import type { PrismaClient } from './database.js';
import type { SqlExecutor } from './sql-executor.port.js';

/**
 * Read-only queries behind the ops views (`tenants.overview`, `mailboxes.health`,
 * `mailboxes.inspect`, `webhookEndpoints.list`): ids, states, timestamps, counts and error codes.
 * Nothing here selects an `*Enc` column, a snippet of a receiver's answer or a free-text failure
 * message: what an operator sees cannot contain mail content.
 */
export class OpsOverviewRepository {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly sql: SqlExecutor,
  ) {}

  /** Mailboxes per tenant and status. */
  async mailboxCountsByTenant(): Promise<Array<{ tenantId: string; status: string; count: number }>> {
    const rows = await this.prisma.mailbox.groupBy({ by: ['tenantId', 'status'], _count: { _all: true } });
    return rows.map((r) => ({ tenantId: r.tenantId, status: r.status, count: r._count._all }));
  }

  /**
   * Webhook work per mailbox: `pending` = events not yet fanned out plus deliveries waiting,
   * in flight or retrying; `dead` = deliveries that gave up.
   */
  async eventCounts(mailboxIds: readonly string[]): Promise<Map<string, { pending: number; dead: number }>> {
    const out = new Map<string, { pending: number; dead: number }>();
    if (mailboxIds.length === 0) return out;
    const ids = [...mailboxIds];
    const deliveries = await this.sql.query<{ mailboxId: string; pending: string | number; dead: string | number }>(
      `SELECT e."mailboxId" AS "mailboxId",
              count(*) FILTER (WHERE d."status" IN ('pending', 'delivering', 'failed')) AS "pending",
              count(*) FILTER (WHERE d."status" = 'dead') AS "dead"
         FROM "webhook_deliveries" d JOIN "outbox_events" e ON e."id" = d."eventId"
        WHERE e."mailboxId" = ANY($1::text[])
        GROUP BY e."mailboxId"`,
      [ids],
    );
    for (const r of deliveries.rows) out.set(r.mailboxId, { pending: Number(r.pending), dead: Number(r.dead) });
    const undispatched = await this.sql.query<{ mailboxId: string; n: string | number }>(
      `SELECT "mailboxId" AS "mailboxId", count(*) AS "n" FROM "outbox_events"
        WHERE "dispatchedAt" IS NULL AND "mailboxId" = ANY($1::text[]) GROUP BY "mailboxId"`,
      [ids],
    );
    for (const r of undispatched.rows) {
      const c = out.get(r.mailboxId) ?? { pending: 0, dead: 0 };
      c.pending += Number(r.n);
      out.set(r.mailboxId, c);
    }
    return out;
  }

  /** Dead deliveries of a mailbox's events, oldest first. */
  async deadDeliveries(mailboxId: string, limit: number): Promise<Array<{ deliveryId: string; eventId: string; endpointId: string }>> {
    const rows = await this.prisma.webhookDelivery.findMany({
      where: { status: 'dead', event: { mailboxId } },
      select: { id: true, eventId: true, endpointId: true },
      orderBy: { id: 'asc' },
      take: limit,
    });
    return rows.map((r) => ({ deliveryId: r.id, eventId: r.eventId, endpointId: r.endpointId }));
  }

  /**
   * The mailbox's recent `sync.mailbox` jobs from the job queue's own tables (pg-boss keeps them
   * for 7 days): when, why, how they ended. `output` is what the queue recorded at the end (the
   * handler's outcome and counts, or the error's name) — never content.
   */
  async syncJobs(mailboxId: string, limit: number): Promise<SyncJobRow[]> {
    const cols = `"id", "state", "data"->>'reason' AS "reason", "retry_count" AS "retryCount", "created_on" AS "createdOn", "started_on" AS "startedOn", "completed_on" AS "completedOn", "output"`;
    const where = `"name" = 'sync.mailbox' AND "data"->>'mailboxId' = $1`;
    try {
      const res = await this.sql.query<SyncJobRow>(
        `SELECT * FROM (SELECT ${cols} FROM pgboss.job WHERE ${where}
                  UNION ALL SELECT ${cols} FROM pgboss.archive WHERE ${where}) j
          ORDER BY "createdOn" DESC LIMIT $2`,
        [mailboxId, limit],
      );
      return res.rows;
    } catch (err) {
      // The queue's schema exists once any process started the queue; a fresh database without it has no history.
      if ((err as { code?: string }).code === '42P01') return [];
      throw err;
    }
  }

  /** The newest failed delivery attempts for the mailbox's events: status codes and our error codes only. */
  async failedAttempts(mailboxId: string, limit: number): Promise<Array<{ at: Date; deliveryId: string; eventType: string; endpointId: string; statusCode: number | null; error: string | null }>> {
    const rows = await this.prisma.deliveryAttempt.findMany({
      where: { delivery: { event: { mailboxId } }, OR: [{ error: { not: null } }, { statusCode: { gte: 300 } }, { statusCode: null }] },
      select: { createdAt: true, deliveryId: true, statusCode: true, error: true, delivery: { select: { endpointId: true, event: { select: { type: true } } } } },
      orderBy: { createdAt: 'desc' },
      take: limit,
    });
    return rows.map((r) => ({ at: r.createdAt, deliveryId: r.deliveryId, eventType: r.delivery.event.type, endpointId: r.delivery.endpointId, statusCode: r.statusCode, error: r.error }));
  }

  /** Failed sends of the mailbox: the failure code only (the reason text may quote the provider). */
  async failedSends(mailboxId: string, limit: number): Promise<Array<{ at: Date; outboundId: string; code: string | null }>> {
    const rows = await this.prisma.outboundMessage.findMany({
      where: { mailboxId, status: 'failed' },
      select: { id: true, updatedAt: true, failureCode: true },
      orderBy: { updatedAt: 'desc' },
      take: limit,
    });
    return rows.map((r) => ({ at: r.updatedAt, outboundId: r.id, code: r.failureCode }));
  }

  /** Attachments of the mailbox whose scan failed (the scanner could not give a verdict). */
  async scanErrors(mailboxId: string): Promise<{ count: number; latest: Date | null }> {
    const agg = await this.prisma.attachment.aggregate({ where: { mailboxId, scanStatus: 'error' }, _count: { _all: true }, _max: { createdAt: true } });
    return { count: agg._count._all, latest: agg._max.createdAt };
  }

  async purgesOfMailbox(mailboxId: string, limit: number): Promise<string[]> {
    const rows = await this.prisma.purgeReceipt.findMany({ where: { mailboxId }, select: { id: true }, orderBy: { startedAt: 'desc' }, take: limit });
    return rows.map((r) => r.id);
  }

  /** A tenant's webhook endpoints (not deleted) with their dead-delivery counts; never the secret. */
  async endpointsOfTenant(tenantId: string): Promise<EndpointOverviewRow[]> {
    const rows = await this.prisma.webhookEndpoint.findMany({
      where: { tenantId, deletedAt: null },
      select: { id: true, tenantId: true, url: true, enabled: true, disabledReason: true, previousSecretExpiresAt: true, createdAt: true, updatedAt: true },
      orderBy: { id: 'asc' },
      take: 200,
    });
    const dead = rows.length
      ? await this.prisma.webhookDelivery.groupBy({ by: ['endpointId'], where: { endpointId: { in: rows.map((r) => r.id) }, status: 'dead' }, _count: { _all: true } })
      : [];
    const deadBy = new Map(dead.map((d) => [d.endpointId, d._count._all]));
    return rows.map((r) => ({ ...r, deadDeliveries: deadBy.get(r.id) ?? 0 }));
  }

  async findEndpointUnscoped(endpointId: string): Promise<{ id: string; tenantId: string } | null> {
    return this.prisma.webhookEndpoint.findFirst({ where: { id: endpointId, deletedAt: null }, select: { id: true, tenantId: true } });
  }
}

export interface SyncJobRow {
  id: string;
  state: string;
  reason: string | null;
  retryCount: number;
  createdOn: Date;
  startedOn: Date | null;
  completedOn: Date | null;
  output: unknown;
}

export interface EndpointOverviewRow {
  id: string;
  tenantId: string;
  url: string;
  enabled: boolean;
  disabledReason: string | null;
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  deadDeliveries: number;
}

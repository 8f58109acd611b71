import type { Prisma, PrismaClient } from './database.js';
import { newId } from './ids.js';

/** Serialises delivery claims per endpoint (second key: endpoint hash) across worker processes. */
const ENDPOINT_CLAIM_LOCK_KEY = 727_384_618;

export type DeliveryStatus = 'pending' | 'delivering' | 'delivered' | 'failed' | 'dead' | 'cancelled';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivering', 'delivered', 'failed', 'dead', 'cancelled'];

export interface WebhookEndpointRecord {
  id: string;
  tenantId: string;
  url: string;
  description: string | null;
  events: string[];
  enabled: boolean;
  disabledReason: string | null;
  secretEnc: Uint8Array;
  previousSecretEnc: Uint8Array | null;
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
}

export interface DeliveryRecord {
  id: string;
  tenantId: string;
  eventId: string;
  endpointId: string;
  status: string;
  attempts: number;
  nextAttemptAt: Date | null;
  lastAttemptAt: Date | null;
  lastStatus: number | null;
  deliveredAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface DeliveryAttemptRecord {
  id: string;
  deliveryId: string;
  attemptNo: number;
  statusCode: number | null;
  latencyMs: number;
  responseSnippet: string | null;
  error: string | null;
  createdAt: Date;
}

export type ClaimResult =
  | { kind: 'claimed'; delivery: DeliveryRecord; endpoint: WebhookEndpointRecord }
  | { kind: 'missing' }
  | { kind: 'final'; status: string }
  /** Another worker holds a live lease on this delivery. */
  | { kind: 'busy' }
  | { kind: 'not_due'; at: Date }
  /** The endpoint already has `limit` deliveries in flight. */
  | { kind: 'throttled' };

export interface EndpointPatch {
  url?: string;
  description?: string | null;
  events?: string[];
  enabled?: boolean;
  disabledReason?: string | null;
  secretEnc?: Uint8Array;
  previousSecretEnc?: Uint8Array | null;
  previousSecretExpiresAt?: Date | null;
}

/** Webhook endpoints, their deliveries (one per event × endpoint) and the attempt log. */
export class WebhookRepository {
  constructor(private readonly prisma: PrismaClient) {}

  // ------------------------------------------------------------------ endpoints

  async createEndpoint(row: { id: string; tenantId: string; url: string; description: string | null; events: string[]; secretEnc: Uint8Array }): Promise<WebhookEndpointRecord> {
    return this.prisma.webhookEndpoint.create({ data: { ...row, secretEnc: new Uint8Array(row.secretEnc) } });
  }

  async countEndpoints(tenantId: string): Promise<number> {
    return this.prisma.webhookEndpoint.count({ where: { tenantId, deletedAt: null } });
  }

  async listEndpoints(tenantId: string, opts: { afterId?: string; limit: number }): Promise<WebhookEndpointRecord[]> {
    return this.prisma.webhookEndpoint.findMany({
      where: { tenantId, deletedAt: null, ...(opts.afterId ? { id: { gt: opts.afterId } } : {}) },
      orderBy: { id: 'asc' },
      take: opts.limit,
    });
  }

  async findEndpoint(tenantId: string, endpointId: string): Promise<WebhookEndpointRecord | null> {
    return this.prisma.webhookEndpoint.findFirst({ where: { id: endpointId, tenantId, deletedAt: null } });
  }

  async updateEndpoint(tenantId: string, endpointId: string, patch: EndpointPatch): Promise<WebhookEndpointRecord | null> {
    const { secretEnc, previousSecretEnc, ...rest } = patch;
    const data: Prisma.WebhookEndpointUpdateManyMutationInput = {
      ...rest,
      ...(secretEnc ? { secretEnc: new Uint8Array(secretEnc) } : {}),
      ...(previousSecretEnc ? { previousSecretEnc: new Uint8Array(previousSecretEnc) } : {}),
    };
    const res = await this.prisma.webhookEndpoint.updateMany({ where: { id: endpointId, tenantId, deletedAt: null }, data });
    return res.count ? this.findEndpoint(tenantId, endpointId) : null;
  }

  /** Soft delete (the delivery log keeps pointing at it); queued deliveries are cancelled. */
  async deleteEndpoint(tenantId: string, endpointId: string, at: Date): Promise<boolean> {
    return this.prisma.$transaction(async (tx) => {
      const res = await tx.webhookEndpoint.updateMany({ where: { id: endpointId, tenantId, deletedAt: null }, data: { deletedAt: at, enabled: false, disabledReason: 'deleted' } });
      if (!res.count) return false;
      await tx.webhookDelivery.updateMany({ where: { endpointId, status: { in: ['pending', 'failed'] } }, data: { status: 'cancelled', nextAttemptAt: null } });
      return true;
    });
  }

  /** A receiver answered 410 Gone: stop sending (Standard Webhooks sender guidance). */
  async disableEndpointUnscoped(endpointId: string, reason: string): Promise<void> {
    await this.prisma.webhookEndpoint.updateMany({ where: { id: endpointId, deletedAt: null }, data: { enabled: false, disabledReason: reason } });
  }

  /** Enabled, not deleted, subscribed to `type` (an empty filter means every type). */
  async matchingEndpoints(tenantId: string, type: string): Promise<WebhookEndpointRecord[]> {
    return this.prisma.webhookEndpoint.findMany({
      where: { tenantId, enabled: true, deletedAt: null, OR: [{ events: { isEmpty: true } }, { events: { has: type } }] },
      orderBy: { id: 'asc' },
    });
  }

  // ------------------------------------------------------------------ deliveries

  /** One delivery per endpoint; existing (eventId, endpointId) pairs are left alone. Returns the new ones. */
  async createDeliveries(tenantId: string, eventId: string, endpointIds: readonly string[]): Promise<DeliveryRecord[]> {
    if (endpointIds.length === 0) return [];
    const existing = await this.prisma.webhookDelivery.findMany({ where: { eventId, endpointId: { in: [...endpointIds] } }, select: { endpointId: true } });
    const have = new Set(existing.map((e) => e.endpointId));
    const rows = endpointIds.filter((id) => !have.has(id)).map((endpointId) => ({ id: newId('delivery'), tenantId, eventId, endpointId }));
    if (rows.length) await this.prisma.webhookDelivery.createMany({ data: rows, skipDuplicates: true });
    return this.prisma.webhookDelivery.findMany({ where: { id: { in: rows.map((r) => r.id) } } });
  }

  /**
   * Replay: every listed endpoint gets a delivery that starts the schedule again (attempts reset,
   * due now). Deliveries in flight are left alone. Returns the deliveries to enqueue.
   */
  async resetForReplay(tenantId: string, eventId: string, endpointIds: readonly string[]): Promise<DeliveryRecord[]> {
    await this.createDeliveries(tenantId, eventId, endpointIds);
    await this.prisma.webhookDelivery.updateMany({
      where: { eventId, endpointId: { in: [...endpointIds] }, status: { not: 'delivering' } },
      data: { status: 'pending', attempts: 0, nextAttemptAt: null },
    });
    return this.prisma.webhookDelivery.findMany({ where: { eventId, endpointId: { in: [...endpointIds] }, status: 'pending' } });
  }

  /**
   * Takes a delivery for one attempt. Under a per-endpoint transaction lock it checks the delivery
   * is due and not final, and that the endpoint has fewer than `limit` live leases; then it marks
   * the delivery `delivering` with a lease (lastAttemptAt) that expires after `leaseMs`, so a
   * crashed worker's delivery is taken over later instead of being stuck.
   */
  async claim(deliveryId: string, now: Date, opts: { limit: number; leaseMs: number }): Promise<ClaimResult> {
    const head = await this.prisma.webhookDelivery.findUnique({ where: { id: deliveryId }, select: { endpointId: true } });
    if (!head) return { kind: 'missing' };
    return this.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ENDPOINT_CLAIM_LOCK_KEY}::int4, hashtext(${head.endpointId}))`;
      const delivery = await tx.webhookDelivery.findUnique({ where: { id: deliveryId }, include: { endpoint: true } });
      if (!delivery) return { kind: 'missing' } as const;
      const { endpoint, ...record } = delivery;
      if (['delivered', 'dead', 'cancelled'].includes(record.status)) return { kind: 'final', status: record.status } as const;
      const leaseFloor = new Date(now.getTime() - opts.leaseMs);
      if (record.status === 'delivering' && record.lastAttemptAt && record.lastAttemptAt > leaseFloor) return { kind: 'busy' } as const;
      if (record.nextAttemptAt && record.nextAttemptAt > now) return { kind: 'not_due', at: record.nextAttemptAt } as const;
      if (endpoint.deletedAt) {
        await tx.webhookDelivery.update({ where: { id: deliveryId }, data: { status: 'cancelled', nextAttemptAt: null } });
        return { kind: 'final', status: 'cancelled' } as const;
      }
      if (!endpoint.enabled) {
        // Parked as dead: visible under ?status=dead and replayable once the endpoint is enabled.
        await tx.webhookDelivery.update({ where: { id: deliveryId }, data: { status: 'dead', nextAttemptAt: null } });
        return { kind: 'final', status: 'dead' } as const;
      }
      const inFlight = await tx.webhookDelivery.count({
        where: { endpointId: record.endpointId, status: 'delivering', lastAttemptAt: { gt: leaseFloor }, id: { not: deliveryId } },
      });
      if (inFlight >= opts.limit) return { kind: 'throttled' } as const;
      const claimed = await tx.webhookDelivery.update({ where: { id: deliveryId }, data: { status: 'delivering', lastAttemptAt: now } });
      return { kind: 'claimed', delivery: claimed, endpoint } as const;
    });
  }

  /** Ends an attempt. Only a delivery still `delivering` is changed (a replay meanwhile wins). */
  async finishAttempt(
    deliveryId: string,
    patch: { status: DeliveryStatus; attempts: number; nextAttemptAt: Date | null; lastStatus: number | null; deliveredAt?: Date },
  ): Promise<boolean> {
    const res = await this.prisma.webhookDelivery.updateMany({ where: { id: deliveryId, status: 'delivering' }, data: patch });
    return res.count > 0;
  }

  async recordAttempt(row: Omit<DeliveryAttemptRecord, 'id' | 'createdAt' | 'attemptNo'> & { createdAt: Date }): Promise<DeliveryAttemptRecord> {
    const attemptNo = (await this.prisma.deliveryAttempt.count({ where: { deliveryId: row.deliveryId } })) + 1;
    return this.prisma.deliveryAttempt.create({ data: { id: newId('deliveryAttempt'), attemptNo, ...row } });
  }

  async deliveriesForEvents(eventIds: readonly string[]): Promise<DeliveryRecord[]> {
    if (eventIds.length === 0) return [];
    return this.prisma.webhookDelivery.findMany({ where: { eventId: { in: [...eventIds] } }, orderBy: { id: 'asc' } });
  }

  async attemptsForDeliveries(deliveryIds: readonly string[]): Promise<DeliveryAttemptRecord[]> {
    if (deliveryIds.length === 0) return [];
    return this.prisma.deliveryAttempt.findMany({ where: { deliveryId: { in: [...deliveryIds] } }, orderBy: [{ deliveryId: 'asc' }, { attemptNo: 'asc' }] });
  }

  /**
   * Deliveries ready for an attempt now, oldest first, skipping endpoints that already have
   * `limit` live leases (so one slow endpoint's backlog does not fill the batch). Includes
   * deliveries whose lease expired (their worker died mid-attempt).
   */
  async listDue(now: Date, opts: { take: number; limit: number; leaseMs: number }): Promise<string[]> {
    const leaseFloor = new Date(now.getTime() - opts.leaseMs);
    const rows = await this.prisma.$queryRaw<Array<{ id: string }>>`
      SELECT d.id FROM webhook_deliveries d
       WHERE ((d.status IN ('pending', 'failed') AND (d."nextAttemptAt" IS NULL OR d."nextAttemptAt" <= ${now}))
              OR (d.status = 'delivering' AND d."lastAttemptAt" < ${leaseFloor}))
         AND d."endpointId" NOT IN (
              SELECT l."endpointId" FROM webhook_deliveries l
               WHERE l.status = 'delivering' AND l."lastAttemptAt" >= ${leaseFloor}
               GROUP BY l."endpointId" HAVING count(*) >= ${opts.limit})
       ORDER BY d.id
       LIMIT ${opts.take}`;
    return rows.map((r) => r.id);
  }

  /** Deliveries whose job was lost: due long ago but still waiting, or holding an expired lease. */
  async listStrandedDeliveries(dueBefore: Date, leaseFloor: Date, limit: number): Promise<string[]> {
    const rows = await this.prisma.webhookDelivery.findMany({
      where: {
        OR: [
          { status: { in: ['pending', 'failed'] }, OR: [{ nextAttemptAt: null, createdAt: { lt: dueBefore } }, { nextAttemptAt: { lt: dueBefore } }] },
          { status: 'delivering', lastAttemptAt: { lt: leaseFloor } },
        ],
      },
      orderBy: { id: 'asc' },
      take: limit,
      select: { id: true },
    });
    return rows.map((r) => r.id);
  }
}

import type { OutboxEventRecord, OutboxRepository } from '../storage/outbox.repository.js';
import type { DeliveryAttemptRecord, DeliveryRecord, WebhookRepository } from '../storage/webhook.repository.js';

export type EventStatus = 'pending' | 'delivering' | 'delivered' | 'failed' | 'dead' | 'cancelled' | 'held_after_restore' | 'no_endpoints';

export interface AttemptView {
  id: string;
  attemptNo: number;
  statusCode: number | null;
  latencyMs: number;
  responseSnippet: string | null;
  error: string | null;
  createdAt: string;
}

export interface DeliveryView {
  id: string;
  endpointId: string;
  status: string;
  attempts: number;
  lastStatus: number | null;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  attemptLog?: AttemptView[];
}

export interface EventView {
  id: string;
  object: 'event';
  type: string;
  mailboxId: string | null;
  sequence: number;
  createdAt: string;
  dispatchedAt: string | null;
  /** The worst delivery status across endpoints (dead > failed > delivering > pending > …). */
  status: EventStatus;
  deliveries: DeliveryView[];
}

const SEVERITY: EventStatus[] = ['dead', 'failed', 'held_after_restore', 'delivering', 'pending', 'delivered', 'cancelled'];
const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** The tenant's delivery log: events with per-endpoint status (no payloads — ids and codes only). */
export class EventQueryService {
  constructor(private readonly deps: { outbox: OutboxRepository; webhooks: WebhookRepository }) {}

  /** `limit + 1` rows so the caller can tell whether there is a next page. */
  async list(tenantId: string, filter: { status?: string; type?: string; mailboxId?: string; beforeId?: string; limit: number }): Promise<EventView[]> {
    const events = await this.deps.outbox.listForTenant(tenantId, {
      ...(filter.type ? { type: filter.type } : {}),
      ...(filter.mailboxId ? { mailboxId: filter.mailboxId } : {}),
      ...(filter.status ? { deliveryStatus: filter.status } : {}),
      ...(filter.beforeId ? { beforeId: filter.beforeId } : {}),
      limit: filter.limit + 1,
    });
    const deliveries = await this.deps.webhooks.deliveriesForEvents(events.map((e) => e.id));
    return events.map((e) => toView(e, deliveries.filter((d) => d.eventId === e.id)));
  }

  async get(tenantId: string, eventId: string): Promise<EventView | null> {
    const event = await this.deps.outbox.findForTenant(tenantId, eventId);
    if (!event) return null;
    const { deliveries, attempts } = await this.deps.webhooks.deliveriesWithAttempts(event.id);
    return toView(event, deliveries, attempts);
  }
}

function toView(e: OutboxEventRecord, deliveries: DeliveryRecord[], attempts?: DeliveryAttemptRecord[]): EventView {
  const statuses = new Set(deliveries.map((d) => d.status));
  const status: EventStatus = deliveries.length === 0 ? (e.dispatchedAt ? 'no_endpoints' : 'pending') : (SEVERITY.find((s) => statuses.has(s)) ?? 'pending');
  return {
    id: e.id,
    object: 'event',
    type: e.type,
    mailboxId: e.mailboxId,
    sequence: Number(e.seq),
    createdAt: e.createdAt.toISOString(),
    dispatchedAt: iso(e.dispatchedAt),
    status,
    deliveries: deliveries.map((d) => ({
      id: d.id,
      endpointId: d.endpointId,
      status: d.status,
      attempts: d.attempts,
      lastStatus: d.lastStatus,
      lastAttemptAt: iso(d.lastAttemptAt),
      nextAttemptAt: iso(d.nextAttemptAt),
      deliveredAt: iso(d.deliveredAt),
      ...(attempts
        ? {
            attemptLog: attempts
              .filter((a) => a.deliveryId === d.id)
              .map((a) => ({ id: a.id, attemptNo: a.attemptNo, statusCode: a.statusCode, latencyMs: a.latencyMs, responseSnippet: a.responseSnippet, error: a.error, createdAt: a.createdAt.toISOString() })),
          }
        : {}),
    })),
  };
}

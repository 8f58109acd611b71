import { z } from 'zod';
import { EVENT_TYPES } from '../../events/event-types.js';
import { DELIVERY_STATUSES } from '../../storage/webhook.repository.js';
import type { EventQueryService } from '../../webhooks/event-query.service.js';
import { NotFoundError } from '../api-error.js';
import { decodeCursor, page, paginationQuery } from '../pagination.js';
import { commonErrors, errorSchema, type RouteRegistry } from '../route-registry.js';

const attemptSchema = z
  .object({
    id: z.string(),
    attemptNo: z.number().int(),
    statusCode: z.number().int().nullable(),
    latencyMs: z.number().int(),
    responseSnippet: z.string().nullable().meta({ description: 'First characters of the receiver’s answer.' }),
    error: z.string().nullable().meta({ description: 'Transport failure (timeout, connect, tls, redirect, http_status, egress_denied…).' }),
    createdAt: z.string(),
  })
  .meta({ id: 'DeliveryAttempt' });

const deliverySchema = z
  .object({
    id: z.string(),
    endpointId: z.string(),
    status: z.enum(DELIVERY_STATUSES as [string, ...string[]]),
    attempts: z.number().int(),
    lastStatus: z.number().int().nullable(),
    lastAttemptAt: z.string().nullable(),
    nextAttemptAt: z.string().nullable(),
    deliveredAt: z.string().nullable(),
    attemptLog: z.array(attemptSchema).optional(),
  })
  .meta({ id: 'WebhookDelivery' });

export const eventSchema = z
  .object({
    id: z.string().meta({ description: 'Also the `webhook-id` header of every delivery of this event.' }),
    object: z.literal('event'),
    type: z.enum(EVENT_TYPES),
    mailboxId: z.string().nullable(),
    sequence: z.number().int(),
    createdAt: z.string(),
    dispatchedAt: z.string().nullable(),
    status: z.enum(['pending', 'delivering', 'delivered', 'failed', 'dead', 'cancelled', 'held_after_restore', 'no_endpoints']),
    deliveries: z.array(deliverySchema),
  })
  .meta({ id: 'Event' });

export interface EventRouteDeps {
  events: EventQueryService;
  /** Replays one of the tenant's events; null when it is not theirs. */
  replay(tenantId: string, eventId: string, endpointId: string | undefined, actorId: string): Promise<Array<{ id: string; endpointId: string }> | null>;
}

export function registerEventRoutes(routes: RouteRegistry, deps: EventRouteDeps): void {
  routes.add({
    method: 'get',
    path: '/v1/events',
    operationId: 'listEvents',
    summary: 'List events with their delivery status per endpoint',
    description: '`status` matches events with at least one delivery in that state: `?status=dead` is the dead-letter list.',
    tags: ['Events'],
    auth: 'tenant',
    query: paginationQuery.extend({
      status: z.enum(DELIVERY_STATUSES as [string, ...string[]]).optional(),
      type: z.enum(EVENT_TYPES).optional(),
      mailboxId: z.string().min(1).max(64).optional(),
    }),
    responses: {
      200: { description: 'A page of events, newest first', schema: z.object({ object: z.literal('list'), data: z.array(eventSchema), nextCursor: z.string().nullable() }) },
      ...commonErrors,
    },
    async handler({ query, principal }) {
      const beforeId = decodeCursor(query.cursor);
      const rows = await deps.events.list(principal.tenantId, {
        limit: query.limit,
        ...(beforeId ? { beforeId } : {}),
        ...(query.status ? { status: query.status } : {}),
        ...(query.type ? { type: query.type } : {}),
        ...(query.mailboxId ? { mailboxId: query.mailboxId } : {}),
      });
      return { status: 200, body: { object: 'list', ...page(rows, query.limit) } };
    },
  });

  routes.add({
    method: 'get',
    path: '/v1/events/:id',
    operationId: 'getEvent',
    summary: 'Get an event with every delivery attempt',
    description:
      'One event with every delivery and its attempt log (status code, latency, the start of the receiver’s answer, our error code).',
    tags: ['Events'],
    auth: 'tenant',
    params: z.strictObject({ id: z.string().min(1).max(64) }),
    responses: { 200: { description: 'The event and its attempt log', schema: eventSchema }, ...commonErrors },
    async handler({ params, principal }) {
      const ev = await deps.events.get(principal.tenantId, params.id);
      if (!ev) throw new NotFoundError('event');
      return { status: 200, body: ev };
    },
  });

  routes.add({
    method: 'post',
    path: '/v1/events/:id/replay',
    operationId: 'replayEvent',
    summary: 'Deliver an event again to every enabled endpoint subscribed to it',
    description: 'Starts a fresh retry schedule per endpoint. The `webhook-id` is the event id, as on the first delivery.',
    tags: ['Events'],
    auth: 'tenant',
    params: z.strictObject({ id: z.string().min(1).max(64) }),
    body: z.strictObject({ endpointId: z.string().min(1).max(64).optional() }),
    responses: {
      202: {
        description: 'Deliveries queued',
        schema: z.object({ eventId: z.string(), deliveries: z.array(z.object({ id: z.string(), endpointId: z.string() })) }),
      },
      ...commonErrors,
      409: { description: 'No enabled endpoint is subscribed to this event', schema: errorSchema },
    },
    async handler({ params, body, principal }) {
      const deliveries = await deps.replay(principal.tenantId, params.id, body?.endpointId, principal.apiKeyId);
      if (!deliveries) throw new NotFoundError('event');
      return { status: 202, body: { eventId: params.id, deliveries: deliveries.map((d) => ({ id: d.id, endpointId: d.endpointId })) } };
    },
  });
}

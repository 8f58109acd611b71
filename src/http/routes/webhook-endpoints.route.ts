import { z } from 'zod';
import { EVENT_TYPES } from '../../events/event-types.js';
import type { WebhookEndpointService } from '../../webhooks/webhook-endpoint.service.js';
import { NotFoundError } from '../api-error.js';
import { decodeCursor, page, paginationQuery } from '../pagination.js';
import { commonErrors, errorSchema, type RouteRegistry } from '../route-registry.js';

export const webhookEndpointSchema = z
  .object({
    id: z.string(),
    object: z.literal('webhook_endpoint'),
    url: z.string(),
    description: z.string().nullable(),
    events: z.array(z.enum(EVENT_TYPES)).meta({ description: 'Event types delivered; empty = all.' }),
    enabled: z.boolean(),
    disabledReason: z.string().nullable(),
    previousSecretExpiresAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'WebhookEndpoint' });

const withSecret = webhookEndpointSchema
  .extend({ secret: z.string().meta({ description: 'The `whsec_` signing secret. Shown only in this response.' }) })
  .meta({ id: 'WebhookEndpointWithSecret' });

const idParams = z.strictObject({ id: z.string().min(1).max(64) });
const url = z.string().min(1).max(2048);
const events = z.array(z.enum(EVENT_TYPES)).max(EVENT_TYPES.length);
const description = z.string().trim().max(500);

const endpointErrors = {
  ...commonErrors,
  409: { description: 'Too many endpoints for this tenant', schema: errorSchema },
  422: { description: 'The URL is refused by the egress rules (https, public address)', schema: errorSchema },
} as const;

export function registerWebhookEndpointRoutes(routes: RouteRegistry, deps: { endpoints: WebhookEndpointService }): void {
  routes.add({
    method: 'post',
    path: '/v1/webhook-endpoints',
    operationId: 'createWebhookEndpoint',
    summary: 'Register a webhook endpoint',
    description: 'The response carries the signing secret; it is never shown again (rotate it to get a new one).',
    tags: ['Webhooks'],
    auth: 'tenant',
    body: z.strictObject({ url, events: events.optional(), description: description.optional() }),
    responses: { 201: { description: 'The endpoint and its secret', schema: withSecret }, ...endpointErrors },
    async handler({ body, principal }) {
      const created = await deps.endpoints
        .create(principal.tenantId, { url: body.url, ...(body.events ? { events: body.events } : {}), ...(body.description ? { description: body.description } : {}) });
      return { status: 201, body: { ...created.endpoint, secret: created.secret } };
    },
  });

  routes.add({
    method: 'get',
    path: '/v1/webhook-endpoints',
    operationId: 'listWebhookEndpoints',
    summary: 'List webhook endpoints',
    description:
      'The tenant’s webhook endpoints, without their secrets. Cursor pagination.',
    tags: ['Webhooks'],
    auth: 'tenant',
    query: paginationQuery,
    responses: {
      200: { description: 'A page of endpoints', schema: z.object({ object: z.literal('list'), data: z.array(webhookEndpointSchema), nextCursor: z.string().nullable() }) },
      ...commonErrors,
    },
    async handler({ query, principal }) {
      const afterId = decodeCursor(query.cursor);
      const rows = await deps.endpoints.list(principal.tenantId, { limit: query.limit, ...(afterId ? { afterId } : {}) });
      return { status: 200, body: { object: 'list', ...page(rows, query.limit) } };
    },
  });

  routes.add({
    method: 'get',
    path: '/v1/webhook-endpoints/:id',
    operationId: 'getWebhookEndpoint',
    summary: 'Get a webhook endpoint (without its secret)',
    description:
      'One endpoint, without its secret; `previousSecretExpiresAt` is set while a rotated-out secret still signs.',
    tags: ['Webhooks'],
    auth: 'tenant',
    params: idParams,
    responses: { 200: { description: 'The endpoint', schema: webhookEndpointSchema }, ...commonErrors },
    async handler({ params, principal }) {
      const ep = await deps.endpoints.get(principal.tenantId, params.id);
      if (!ep) throw new NotFoundError('webhook endpoint');
      return { status: 200, body: ep };
    },
  });

  routes.add({
    method: 'patch',
    path: '/v1/webhook-endpoints/:id',
    operationId: 'updateWebhookEndpoint',
    summary: 'Change an endpoint’s URL, event filter, description, or enable/disable it',
    description:
      'Changes the URL (checked against the egress rules again), the event filter or the description, or disables/enables the endpoint. A disabled endpoint receives nothing.',
    tags: ['Webhooks'],
    auth: 'tenant',
    params: idParams,
    body: z.strictObject({ url: url.optional(), events: events.optional(), enabled: z.boolean().optional(), description: description.nullable().optional() }),
    responses: { 200: { description: 'The updated endpoint', schema: webhookEndpointSchema }, ...endpointErrors },
    async handler({ params, body, principal }) {
      const patch = {
        ...(body.url !== undefined ? { url: body.url } : {}),
        ...(body.events !== undefined ? { events: body.events } : {}),
        ...(body.enabled !== undefined ? { enabled: body.enabled } : {}),
        ...(body.description !== undefined ? { description: body.description } : {}),
      };
      const ep = await deps.endpoints.update(principal.tenantId, params.id, patch);
      if (!ep) throw new NotFoundError('webhook endpoint');
      return { status: 200, body: ep };
    },
  });

  routes.add({
    method: 'delete',
    path: '/v1/webhook-endpoints/:id',
    operationId: 'deleteWebhookEndpoint',
    summary: 'Delete a webhook endpoint (queued deliveries to it are cancelled)',
    description:
      'Deletes the endpoint; deliveries still queued for it are cancelled. Past events stay in the event log.',
    tags: ['Webhooks'],
    auth: 'tenant',
    params: idParams,
    responses: {
      200: { description: 'Deleted', schema: z.object({ id: z.string(), object: z.literal('webhook_endpoint'), deleted: z.literal(true) }) },
      ...commonErrors,
    },
    async handler({ params, principal }) {
      if (!(await deps.endpoints.delete(principal.tenantId, params.id))) throw new NotFoundError('webhook endpoint');
      return { status: 200, body: { id: params.id, object: 'webhook_endpoint', deleted: true } };
    },
  });

  routes.add({
    method: 'post',
    path: '/v1/webhook-endpoints/:id/rotate-secret',
    operationId: 'rotateWebhookEndpointSecret',
    summary: 'Issue a new signing secret; the previous one keeps signing for 24 hours',
    description: 'During the overlap every delivery carries two `v1,` signatures, one per secret, so a receiver holding either verifies.',
    tags: ['Webhooks'],
    auth: 'tenant',
    params: idParams,
    responses: { 200: { description: 'The endpoint and its new secret', schema: withSecret }, ...commonErrors },
    async handler({ params, principal }) {
      const rotated = await deps.endpoints.rotateSecret(principal.tenantId, params.id);
      if (!rotated) throw new NotFoundError('webhook endpoint');
      return { status: 200, body: { ...rotated.endpoint, secret: rotated.secret } };
    },
  });
}

import { z } from 'zod';
import type { OutboundQueryService } from '../../send/outbound-view.js';
import { NotFoundError } from '../api-error.js';
import { commonErrors, type RouteRegistry } from '../route-registry.js';

export const outboundSchema = z
  .object({
    id: z.string(),
    object: z.literal('outbound'),
    kind: z.enum(['reply', 'new']),
    status: z.enum(['queued', 'sending', 'sent', 'failed']),
    failure: z.object({ code: z.string(), reason: z.string() }).nullable(),
    messageId: z.string().nullable().meta({ description: 'The message replied to; null for a new message' }),
    mailboxId: z.string(),
    threadKey: z.string().nullable(),
    providerMessageId: z.string().nullable(),
    providerThreadId: z.string().nullable(),
    attempts: z.number().int(),
    createdAt: z.string(),
    sentAt: z.string().nullable(),
  })
  .meta({ id: 'Outbound' });

export function registerOutboundRoutes(routes: RouteRegistry, deps: { outbound: OutboundQueryService }): void {
  routes.add({
    method: 'get',
    path: '/v1/outbound/:id',
    operationId: 'getOutbound',
    summary: 'Delivery status of a reply or new message',
    description:
      'The state of a send: `queued`, `sending`, `sent` (with the stored message id) or `failed` (with `failure.code`).',
    tags: ['Sending'],
    auth: 'tenant',
    params: z.strictObject({ id: z.string().min(1).max(64) }),
    responses: { 200: { description: 'The outbound message status', schema: outboundSchema }, ...commonErrors },
    async handler({ params, principal }) {
      const view = await deps.outbound.get(principal.tenantId, params.id);
      if (!view) throw new NotFoundError('outbound message');
      return { status: 200, body: view };
    },
  });
}

import { z } from 'zod';
import { actorOf } from '../auth-context.js';
import { NotFoundError } from '../api-error.js';
import { decodeCursor, page, paginationQuery } from '../pagination.js';
import { commonErrors, type RouteRegistry } from '../route-registry.js';
import { mailboxIdParams } from './mailboxes.route.js';

export const purgeReceiptSchema = z
  .object({
    id: z.string(),
    object: z.literal('purge'),
    mailboxId: z.string(),
    provider: z.string(),
    trigger: z.enum(['customer', 'ops', 'provider_revoked', 'retention']),
    reason: z.string().nullable(),
    status: z.enum(['running', 'completed']),
    steps: z.array(z.string()),
    counts: z.record(z.string(), z.union([z.number(), z.string()])),
    revoke: z.object({
      status: z.enum(['pending', 'revoked', 'failed', 'not_supported', 'not_needed']),
      attempts: z.number(),
      error: z.string().nullable(),
      retryPending: z.boolean(),
    }),
    startedAt: z.string(),
    completedAt: z.string().nullable(),
  })
  .meta({ id: 'PurgeReceipt' });

export interface LifecycleRouteDeps {
  /** Throws the purge room's MailboxNotFoundError (404) for a mailbox that is not the tenant's. */
  startPurge(input: { tenantId: string; mailboxId: string; actor: { actorType: 'api_key' | 'ops'; actorId: string } }): Promise<{ purgeId: string }>;
  /** The receipt as `purgeReceiptSchema` documents it. */
  receipt(tenantId: string, purgeId: string): Promise<object | null>;
  list(tenantId: string, opts: { beforeId?: string; limit: number }): Promise<Array<{ id: string }>>;
}

/** Customer disconnect (DELETE /v1/mailboxes/:id) and purge receipts. */
export function registerLifecycleRoutes(routes: RouteRegistry, deps: LifecycleRouteDeps): void {
  routes.add({
    method: 'delete',
    path: '/v1/mailboxes/:id',
    operationId: 'disconnectMailbox',
    summary: 'Disconnect a mailbox: stop sync, revoke the grant, delete its data',
    description:
      'The mailbox is `disconnecting` as soon as this returns: reads and sends are refused. The purge runs in the background; ' +
      'follow it at `GET /v1/purges/{purgeId}`; a `mailbox.purged` event is sent when it is done. Repeating the call returns the same purge.',
    tags: ['Mailboxes'],
    auth: 'tenant',
    params: mailboxIdParams,
    responses: {
      202: { description: 'Purge started (or already under way)', schema: z.object({ purgeId: z.string() }) },
      ...commonErrors,
    },
    async handler({ params, principal }) {
      const started = await deps.startPurge({ tenantId: principal.tenantId, mailboxId: params.id, actor: actorOf(principal) });
      return { status: 202, body: { purgeId: started.purgeId }, headers: { location: `/v1/purges/${started.purgeId}` } };
    },
  });

  routes.add({
    method: 'get',
    path: '/v1/purges',
    operationId: 'listPurges',
    summary: 'List the tenant’s purge receipts, newest first',
    description:
      'Purge receipts of the tenant’s disconnected mailboxes, newest first: what each purge deleted and whether the provider grant was revoked. Cursor pagination.',
    tags: ['Mailboxes'],
    auth: 'tenant',
    query: paginationQuery,
    responses: {
      200: { description: 'A page of receipts', schema: z.object({ object: z.literal('list'), data: z.array(purgeReceiptSchema), nextCursor: z.string().nullable() }) },
      ...commonErrors,
    },
    async handler({ query, principal }) {
      const beforeId = decodeCursor(query.cursor);
      const rows = await deps.list(principal.tenantId, { limit: query.limit + 1, ...(beforeId ? { beforeId } : {}) });
      return { status: 200, body: { object: 'list', ...page(rows, query.limit) } };
    },
  });

  routes.add({
    method: 'get',
    path: '/v1/purges/:id',
    operationId: 'getPurge',
    summary: 'Get a purge receipt: what was deleted, when, and the revoke outcome',
    description:
      'One purge receipt. While `status` is `running` the counts grow; `revoke.retryPending` says a failed grant revocation is still being retried in the background.',
    tags: ['Mailboxes'],
    auth: 'tenant',
    params: z.strictObject({ id: z.string().min(1).max(64) }),
    responses: { 200: { description: 'The receipt', schema: purgeReceiptSchema }, ...commonErrors },
    async handler({ params, principal }) {
      const receipt = await deps.receipt(principal.tenantId, params.id);
      if (!receipt) throw new NotFoundError('purge');
      return { status: 200, body: receipt };
    },
  });
}

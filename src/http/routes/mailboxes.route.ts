import { z } from 'zod';
import type { MailboxQueryService } from '../../mailboxes/mailbox-query.service.js';
import { NotFoundError } from '../api-error.js';
import { decodeCursor, page, paginationQuery } from '../pagination.js';
import { commonErrors, type RouteRegistry } from '../route-registry.js';

export const mailboxSchema = z
  .object({
    id: z.string(),
    object: z.literal('mailbox'),
    provider: z.enum(['google', 'microsoft']),
    address: z.string().nullable().meta({
      description: 'The connected address; null when its data key is gone (the mailbox is being purged, or its row was restored from a backup taken before its purge).',
    }),
    access: z.enum(['delegated', 'shared_member', 'organization']).meta({
      description:
        'On whose authority the mailbox is read: `delegated` — the person who signed in, their own mailbox; `shared_member` — a Microsoft 365 shared mailbox read through a member’s sign-in (`connectedBy`), polled, no push; `organization` — an organization install.',
    }),
    connectedBy: z.string().nullable().meta({
      description: 'For a shared mailbox, the address of the member whose sign-in reads it (`address` is the shared address); null for a person’s own mailbox, or when the data key is gone.',
    }),
    status: z.enum(['active', 'reauth_required', 'disconnecting', 'purged']),
    statusReason: z.string().nullable(),
    grantedScopes: z.array(z.string()),
    sync: z.object({
      state: z.string(),
      error: z.string().nullable(),
      backfillCompletedAt: z.string().nullable(),
      lastSyncedAt: z.string().nullable(),
      lastPushAt: z.string().nullable(),
      watchExpiresAt: z.string().nullable(),
    }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Mailbox' });

export const mailboxIdParams = z.strictObject({ id: z.string().min(1).max(64) });

/** What the read route needs from purge receipts (lifecycle room) to answer for a purged mailbox. */
export interface MailboxPurgeLookup {
  forMailbox(tenantId: string, mailboxId: string): Promise<{ purgeId: string; status: 'running' | 'completed'; completedAt: string | null } | null>;
}

export const purgedMailboxSchema = z
  .object({
    id: z.string(),
    object: z.literal('mailbox'),
    status: z.enum(['disconnecting', 'purged']),
    purgeId: z.string(),
    purgedAt: z.string().nullable(),
  })
  .meta({ id: 'PurgedMailbox' });

export function registerMailboxReadRoutes(routes: RouteRegistry, deps: { mailboxes: MailboxQueryService; purges?: MailboxPurgeLookup }): void {
  routes.add({
    method: 'get',
    path: '/v1/mailboxes',
    operationId: 'listMailboxes',
    summary: 'List connected mailboxes',
    description:
      'The tenant’s mailboxes with status and sync state (last sync, last push notification, watch expiry); filter by `status`. Cursor pagination.',
    tags: ['Mailboxes'],
    auth: 'tenant',
    query: paginationQuery.extend({ status: z.enum(['active', 'reauth_required', 'disconnecting', 'purged']).optional() }),
    responses: {
      200: {
        description: 'A page of mailboxes',
        schema: z.object({ object: z.literal('list'), data: z.array(mailboxSchema), nextCursor: z.string().nullable() }),
      },
      ...commonErrors,
    },
    async handler({ query, principal }) {
      const afterId = decodeCursor(query.cursor);
      const rows = await deps.mailboxes.list(principal.tenantId, { limit: query.limit, ...(afterId ? { afterId } : {}), ...(query.status ? { status: query.status } : {}) });
      return { status: 200, body: { object: 'list', ...page(rows, query.limit) } };
    },
  });

  routes.add({
    method: 'get',
    path: '/v1/mailboxes/:id',
    operationId: 'getMailbox',
    summary: 'Get one mailbox with its sync state',
    description:
      'One mailbox: the connected address, granted scopes, status (`reauth_required` with a reason when the customer must reconnect) and sync state.',
    tags: ['Mailboxes'],
    auth: 'tenant',
    params: mailboxIdParams,
    responses: {
      200: { description: 'The mailbox (or, once disconnected, its purge status)', schema: z.union([mailboxSchema, purgedMailboxSchema]) },
      ...commonErrors,
    },
    async handler({ params, principal }) {
      // After a purge the row is gone and the receipt answers; while a purge runs the mailbox
      // key may already be shredded, so the receipt answers then too.
      const purge = await deps.purges?.forMailbox(principal.tenantId, params.id);
      if (purge) {
        const status = purge.status === 'completed' ? 'purged' : 'disconnecting';
        return { status: 200, body: { id: params.id, object: 'mailbox', status, purgeId: purge.purgeId, purgedAt: purge.completedAt } };
      }
      const view = await deps.mailboxes.get(principal.tenantId, params.id);
      if (!view) throw new NotFoundError('mailbox');
      return { status: 200, body: view };
    },
  });
}

import { z } from 'zod';
import { NotFoundError } from '../api-error.js';
import { commonErrors, type RouteRegistry } from '../route-registry.js';

export interface MailboxResyncRouteDeps {
  /** Queues a sync of the tenant's mailbox; false when it is not the tenant's (or does not exist). */
  requestSync(tenantId: string, mailboxId: string): Promise<{ queued: boolean; status: string } | null>;
}

export function registerMailboxResyncRoutes(routes: RouteRegistry, deps: MailboxResyncRouteDeps): void {
  routes.add({
    method: 'post',
    path: '/v1/mailboxes/:id/resync',
    operationId: 'resyncMailbox',
    summary: 'Force a sync of a mailbox',
    description:
      'Queues a sync of the mailbox now (coalesced with one already waiting). Only an active mailbox syncs; otherwise the answer says its status.',
    tags: ['Mailboxes'],
    auth: 'tenant',
    params: z.strictObject({ id: z.string().min(1).max(64) }),
    responses: {
      202: { description: 'Sync queued', schema: z.object({ mailboxId: z.string(), queued: z.boolean(), status: z.string() }) },
      ...commonErrors,
    },
    async handler({ params, principal }) {
      const r = await deps.requestSync(principal.tenantId, params.id);
      if (!r) throw new NotFoundError('mailbox');
      return { status: 202, body: { mailboxId: params.id, queued: r.queued, status: r.status } };
    },
  });
}

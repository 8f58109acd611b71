import { z } from 'zod';
import { opsActorId } from '../auth-context.js';
import { commonErrors, type RouteRegistry } from '../route-registry.js';
import { mailboxIdParams } from './mailboxes.route.js';

export interface AdminMailboxRouteDeps {
  /** Throws the purge room's MailboxNotFoundError (404) for a missing mailbox. */
  revoke(input: { mailboxId: string; reason: string; actorId: string }): Promise<{ purgeId: string }>;
}

/** Ops revocation over the admin API (same as `mailbox-connector mailboxes revoke`). */
export function registerAdminMailboxRoutes(routes: RouteRegistry, deps: AdminMailboxRouteDeps): void {
  routes.add({
    method: 'post',
    path: '/v1/admin/mailboxes/:id/revoke',
    operationId: 'adminRevokeMailbox',
    summary: 'Ops revocation: stop sync, revoke the grant, purge the data',
    description:
      'Admin key only; the same as `mailbox-connector mailboxes revoke`: stops sync, revokes the grant at the provider and purges every message, attachment and event of the mailbox (crypto-shredding). The reason goes to the purge receipt and the audit log; the tenant receives `mailbox.disconnected` and `mailbox.purged`.',
    tags: ['Admin'],
    auth: 'admin',
    params: mailboxIdParams,
    body: z.strictObject({ reason: z.string().trim().min(3).max(500) }),
    responses: {
      202: { description: 'Purge started (or already under way)', schema: z.object({ purgeId: z.string() }) },
      ...commonErrors,
      403: { description: 'Not an admin key' },
    },
    async handler({ params, body, principal }) {
      const started = await deps.revoke({ mailboxId: params.id, reason: body.reason, actorId: opsActorId(principal) });
      return { status: 202, body: { purgeId: started.purgeId } };
    },
  });
}

import { z } from 'zod';
import type { AuditService } from '../audit/audit.service.js';
import type { JobQueue } from '../jobs/job-queue.js';
import { defineOps, OpsNotFoundError, type OpsCommand } from '../ops/ops-command.js';
import type { MailboxRecord, MailboxRepository } from '../storage/mailbox.repository.js';
import { requestMailboxSync } from './sync-request.js';

export interface ResyncAnswer {
  queued: boolean;
  /** `queued`, or the mailbox's status when it is not `active` (nothing is queued then). */
  status: string;
}

export interface MailboxResyncDeps {
  mailboxes: Pick<MailboxRepository, 'findForTenant' | 'findByIdUnscoped'>;
  jobs: Pick<JobQueue, 'enqueue'>;
  audit: Pick<AuditService, 'record'>;
}

/**
 * "Sync this mailbox now", for a tenant (`POST /v1/mailboxes/:id/resync`) and for ops
 * (`mailboxes.resync`): only an `active` mailbox is synced; the request coalesces with a sync
 * already waiting, so it counts as queued.
 */
export class MailboxResync {
  constructor(private readonly deps: MailboxResyncDeps) {}

  /** Null when the mailbox is not the tenant's. */
  async forTenant(tenantId: string, mailboxId: string): Promise<ResyncAnswer | null> {
    const mailbox = await this.deps.mailboxes.findForTenant(tenantId, mailboxId);
    return mailbox ? this.request(mailbox, 'manual') : null;
  }

  ops(): OpsCommand[] {
    return [
      defineOps({
        name: 'mailboxes.resync',
        summary: 'Queue a sync of one mailbox now',
        input: z.strictObject({ mailboxId: z.string().min(1).max(64) }),
        run: async (input, ctx) => {
          const mailbox = await this.deps.mailboxes.findByIdUnscoped(input.mailboxId);
          if (!mailbox) throw new OpsNotFoundError('mailbox');
          const answer = await this.request(mailbox, 'resync');
          if (answer.queued) {
            await this.deps.audit.record({ tenantId: mailbox.tenantId, actorType: 'ops', actorId: ctx.actorId, action: 'mailbox.resync', targetType: 'mailbox', targetId: mailbox.id });
          }
          return { mailboxId: mailbox.id, ...answer };
        },
      }),
    ];
  }

  private async request(mailbox: Pick<MailboxRecord, 'id' | 'status'>, reason: 'manual' | 'resync'): Promise<ResyncAnswer> {
    if (mailbox.status !== 'active') return { queued: false, status: mailbox.status };
    return { queued: await requestMailboxSync(this.deps.jobs, mailbox.id, reason), status: 'queued' };
  }
}

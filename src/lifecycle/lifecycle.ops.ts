import { userInfo } from 'node:os';
import { z } from 'zod';
import type { AuditService } from '../audit/audit.service.js';
import { defineOps, OpsNotFoundError, type OpsCommand } from '../ops/ops-command.js';
import type { PurgeRepository } from '../storage/purge.repository.js';
import type { RestoreRepository } from '../storage/restore.repository.js';
import { MAX_SESSION_MINUTES, type BreakGlassService } from './break-glass.service.js';
import { purgeReceiptView } from './purge-receipt.view.js';
import type { PurgeService } from './purge.service.js';
import type { RetentionService } from './retention.service.js';

export interface LifecycleOpsDeps {
  purges: Pick<PurgeService, 'start' | 'sweepShredded'>;
  receipts: Pick<PurgeRepository, 'findReceipt'>;
  restore: Pick<RestoreRepository, 'countHeld' | 'releaseHeld'>;
  retention: Pick<RetentionService, 'run'>;
  breakGlass: Pick<BreakGlassService, 'open' | 'read' | 'close' | 'list'>;
  audit: Pick<AuditService, 'record'>;
  clock: () => Date;
  /** Deliveries were made due (held ones released): wake the webhook pumps (events-committed.ts wakeDeliveryPumps). */
  deliveriesDue?: () => void;
}

const id = z.string().min(1).max(64);
const operator = z.string().trim().min(1).max(100).optional();

/**
 * Ops revocation, purge receipts, the after-restore sweeps, retention and break-glass access.
 * Refusals are the services' own errors (a missing mailbox is MailboxNotFoundError or a
 * break-glass `mailbox_not_found`): the HTTP mapper answers 404 `not_found` for both.
 */
export function lifecycleOps(deps: LifecycleOpsDeps): OpsCommand[] {
  const operatorOf = (given: string | undefined, actorId: string): string => `${(given ?? safeUser()).slice(0, 100)} via ${actorId}`;
  return [
    defineOps({
      name: 'mailboxes.revoke',
      summary: 'ops revocation: stop sync, revoke the grant, purge the data',
      input: z.strictObject({ mailboxId: id, reason: z.string().trim().min(3).max(500) }),
      async run({ mailboxId, reason }, ctx) {
        const started = await deps.purges.start({ tenantId: null, mailboxId, trigger: 'ops', reason, actor: { actorType: 'ops', actorId: ctx.actorId } });
        return { mailboxId, purgeId: started.purgeId, alreadyRunning: !started.created };
      },
    }),
    defineOps({
      name: 'purges.get',
      summary: 'show a purge receipt',
      input: z.strictObject({ purgeId: id }),
      async run({ purgeId }, ctx) {
        const r = await deps.receipts.findReceipt(purgeId);
        if (!r) throw new OpsNotFoundError('purge');
        await deps.audit.record({ tenantId: r.tenantId, actorType: 'ops', actorId: ctx.actorId, action: 'purge.viewed', targetType: 'purge', targetId: r.id });
        return { ...purgeReceiptView(r), tenantId: r.tenantId };
      },
    }),
    defineOps({
      name: 'purges.sweepShredded',
      summary: 'after a database restore: purge again every mailbox whose data key was destroyed, delete rows left without a mailbox',
      input: z.strictObject({}),
      async run(_input, ctx) {
        return deps.purges.sweepShredded({ actorType: 'ops', actorId: ctx.actorId });
      },
    }),
    defineOps({
      name: 'events.releaseHeld',
      summary: 'after a restore: send the webhook deliveries held since then (or cancel them with discard: true); audited',
      input: z.strictObject({ discard: z.boolean().default(false) }),
      async run({ discard }, ctx) {
        const held = await deps.restore.countHeld();
        const changed = await deps.restore.releaseHeld(discard ? 'discard' : 'release', deps.clock());
        // Released deliveries are due now: tell the webhook pumps rather than wait for their tick.
        if (!discard && changed > 0) deps.deliveriesDue?.();
        await deps.audit.record({ actorType: 'ops', actorId: ctx.actorId, action: discard ? 'events.held_discarded' : 'events.held_released', metadata: { deliveries: changed } });
        return { held, [discard ? 'discarded' : 'released']: changed };
      },
    }),
    defineOps({
      name: 'retention.run',
      summary: 'delete messages older than each tenant’s retention now; prints counts',
      input: z.strictObject({}),
      async run(_input, ctx) {
        return deps.retention.run({ actorType: 'ops', actorId: ctx.actorId, progress: (l) => ctx.progress(l) });
      },
    }),
    defineOps({
      name: 'breakGlass.open',
      summary: 'open a time-limited break-glass session on one mailbox (reason and ticket required; audited; the tenant is notified)',
      input: z.strictObject({
        mailboxId: id,
        reason: z.string().max(1000).default(''),
        ticket: z.string().max(200).default(''),
        minutes: z.number().int().min(1).max(MAX_SESSION_MINUTES).default(30),
        operator,
      }),
      async run(input, ctx) {
        return deps.breakGlass.open({ mailboxId: input.mailboxId, reason: input.reason, ticketRef: input.ticket, minutes: input.minutes, operator: operatorOf(input.operator, ctx.actorId) });
      },
    }),
    defineOps({
      name: 'breakGlass.read',
      summary: 'decrypt one message of the session’s mailbox (audited)',
      input: z.strictObject({ sessionId: id, messageId: id, operator }),
      async run(input, ctx) {
        return deps.breakGlass.read({ sessionId: input.sessionId, messageId: input.messageId, operator: operatorOf(input.operator, ctx.actorId) });
      },
    }),
    defineOps({
      name: 'breakGlass.close',
      summary: 'end a break-glass session before it expires',
      input: z.strictObject({ sessionId: id, operator }),
      async run(input, ctx) {
        return deps.breakGlass.close({ sessionId: input.sessionId, operator: operatorOf(input.operator, ctx.actorId) });
      },
    }),
    defineOps({
      name: 'breakGlass.list',
      summary: 'list break-glass sessions (active only by default)',
      input: z.strictObject({ all: z.boolean().default(false), mailboxId: id.optional() }),
      async run(input, ctx) {
        await deps.audit.record({ actorType: 'ops', actorId: ctx.actorId, action: 'break_glass.listed', ...(input.mailboxId ? { targetType: 'mailbox', targetId: input.mailboxId } : {}), metadata: { all: input.all } });
        return deps.breakGlass.list({ activeOnly: !input.all, ...(input.mailboxId ? { mailboxId: input.mailboxId } : {}) });
      },
    }),
  ];
}

function safeUser(): string {
  try {
    return userInfo().username || 'operator';
  } catch {
    return 'operator';
  }
}

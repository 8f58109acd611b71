import { z } from 'zod';
import type { AuditService } from '../audit/audit.service.js';
import { defineOps, OpsNotFoundError, type OpsCommand } from '../ops/ops-command.js';
import type { MailboxRepository } from '../storage/mailbox.repository.js';
import type { OpsOverviewRepository } from '../storage/ops-overview.repository.js';
import type { OutboxEventRecord, OutboxRepository } from '../storage/outbox.repository.js';
import { NoMatchingEndpointError, type WebhookDispatcher } from './webhook-dispatcher.service.js';
import type { WebhookEndpointService } from './webhook-endpoint.service.js';

export interface WebhookOpsDeps {
  outbox: Pick<OutboxRepository, 'findUnscoped' | 'listIdsSinceUnscoped'>;
  dispatcher: Pick<WebhookDispatcher, 'replay'>;
  endpoints: Pick<WebhookEndpointService, 'rotateSecret'>;
  overview: Pick<OpsOverviewRepository, 'deadDeliveries' | 'findEndpointUnscoped'>;
  mailboxes: Pick<MailboxRepository, 'findByIdUnscoped'>;
  audit: Pick<AuditService, 'record'>;
}

/** Replay (one event, everything since a time, a mailbox's dead deliveries) and secret rotation for ops. */
export function webhookOps(deps: WebhookOpsDeps): OpsCommand[] {
  /** Deliveries queued by replaying `event`; none when no enabled endpoint is subscribed (any more). */
  const replayQuietly = async (event: OutboxEventRecord, endpointId?: string): Promise<number | null> => {
    try {
      return (await deps.dispatcher.replay(event, endpointId)).length;
    } catch (err) {
      if (err instanceof NoMatchingEndpointError) return null;
      throw err;
    }
  };
  return [
    defineOps({
      name: 'events.replay',
      summary: 'deliver one event again, or every event created since a time',
      input: z.union([z.strictObject({ eventId: z.string().min(1).max(64) }), z.strictObject({ since: z.iso.datetime({ offset: true }) })]),
      async run(input, ctx) {
        const replayOne = async (eventId: string): Promise<number> => {
          const event = await deps.outbox.findUnscoped(eventId);
          if (!event) throw new OpsNotFoundError('event');
          return (await replayQuietly(event)) ?? 0;
        };
        let replayed = 0;
        let deliveries = 0;
        if ('eventId' in input) {
          deliveries = await replayOne(input.eventId);
          replayed = 1;
        } else {
          let afterId: string | undefined;
          for (;;) {
            const batch = await deps.outbox.listIdsSinceUnscoped(new Date(input.since), afterId, 200);
            for (const e of batch) {
              deliveries += await replayOne(e.id);
              replayed++;
            }
            if (batch.length < 200) break;
            afterId = batch[batch.length - 1]!.id;
            ctx.progress(`replayed ${replayed} events, ${deliveries} deliveries queued`);
          }
        }
        await deps.audit.record({
          actorType: 'ops',
          actorId: ctx.actorId,
          action: 'events.replayed',
          metadata: { events: replayed, deliveries, ...('eventId' in input ? { eventId: input.eventId } : { since: input.since }) },
        });
        return { events: replayed, deliveries };
      },
    }),
    defineOps({
      name: 'events.replayDead',
      summary: 'deliver again every dead webhook delivery of one mailbox (to the same endpoint, if it is still enabled and subscribed)',
      input: z.strictObject({ mailboxId: z.string().min(1).max(64) }),
      async run({ mailboxId }, ctx) {
        const mailbox = await deps.mailboxes.findByIdUnscoped(mailboxId);
        if (!mailbox) throw new OpsNotFoundError('mailbox');
        let replayed = 0;
        let skipped = 0;
        const tried = new Set<string>();
        // Each replay turns its delivery back to pending, so the next read finds the rest.
        for (let round = 0; round < 50; round++) {
          const dead = (await deps.overview.deadDeliveries(mailboxId, 200)).filter((d) => !tried.has(d.deliveryId));
          if (dead.length === 0) break;
          for (const d of dead) {
            tried.add(d.deliveryId);
            const event = await deps.outbox.findUnscoped(d.eventId);
            if (!event) continue;
            const queued = await replayQuietly(event, d.endpointId);
            if (queued === null) skipped++;
            else replayed += queued;
          }
          ctx.progress(`replayed ${replayed} dead deliveries, ${skipped} skipped (endpoint disabled or unsubscribed)`);
        }
        await deps.audit.record({ tenantId: mailbox.tenantId, actorType: 'ops', actorId: ctx.actorId, action: 'events.dead_replayed', targetType: 'mailbox', targetId: mailboxId, metadata: { deliveries: replayed, skipped } });
        return { mailboxId, deliveries: replayed, skipped };
      },
    }),
    defineOps({
      name: 'webhookEndpoints.rotateSecret',
      summary: 'issue a new signing secret for an endpoint (shown once; the previous one keeps signing for 24 hours)',
      input: z.strictObject({ endpointId: z.string().min(1).max(64) }),
      async run({ endpointId }, ctx) {
        const found = await deps.overview.findEndpointUnscoped(endpointId);
        const rotated = found ? await deps.endpoints.rotateSecret(found.tenantId, endpointId) : null;
        if (!found || !rotated) throw new OpsNotFoundError('webhook endpoint');
        await deps.audit.record({ tenantId: found.tenantId, actorType: 'ops', actorId: ctx.actorId, action: 'webhook_endpoint.secret_rotated', targetType: 'webhook_endpoint', targetId: endpointId });
        return { endpointId, tenantId: found.tenantId, secret: rotated.secret, previousSecretExpiresAt: rotated.endpoint.previousSecretExpiresAt };
      },
    }),
  ];
}

import { z } from 'zod';
import { setEventsCommittedHook } from '../events/events-committed.js';
import { PayloadBuilder } from '../events/payload-builder.js';
import { ApiError } from '../http/api-error.js';
import { registerEventRoutes } from '../http/routes/events.route.js';
import { registerWebhookEndpointRoutes } from '../http/routes/webhook-endpoints.route.js';
import { MessageViewer } from '../messages/message-view.js';
import { TenantDisplaySettings } from '../tenancy/display-settings.js';
import { defineOps } from '../ops/ops-command.js';
import { MessageReadRepository } from '../storage/message-read.repository.js';
import { OutboxRepository } from '../storage/outbox.repository.js';
import { OpsOverviewRepository } from '../storage/ops-overview.repository.js';
import { WakeChannel } from '../storage/wake-listener.js';
import { WebhookRepository } from '../storage/webhook.repository.js';
import type { EgressPolicy } from '../webhooks/egress-guard.js';
import { DeliveryPump } from '../webhooks/delivery-pump.js';
import { EventQueryService } from '../webhooks/event-query.service.js';
import { NoMatchingEndpointError, WebhookDispatcher } from '../webhooks/webhook-dispatcher.service.js';
import { WebhookEndpointService } from '../webhooks/webhook-endpoint.service.js';
import { createWebhookSender, type WebhookSender } from '../webhooks/webhook-sender.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';
import { VERSION } from './service.js';

export interface WebhooksModuleOptions {
  /** Replace the HTTP sender (tests of failure shapes); default is the pinned node:http sender. */
  sender?: WebhookSender;
}

/** Webhook endpoints, the outbox dispatcher and delivery jobs, the event log and replay. */
export function webhooksModule(core: Core, opts: WebhooksModuleOptions = {}): ServiceModule {
  const settings = core.config.webhooks;
  const egress: EgressPolicy = { production: core.config.production, allowHosts: settings.allowedHosts };
  const outbox = new OutboxRepository(core.prisma);
  const webhooks = new WebhookRepository(core.prisma, core.db);
  const endpoints = new WebhookEndpointService({ repo: webhooks, dataKeys: core.dataKeys, egress, clock: core.clock });
  const payloads = new PayloadBuilder({
    messages: new MessageReadRepository(core.prisma),
    mailboxes: core.mailboxes,
    // Remote-image blocking read per tenant at most every 5 s while building batches of bodies.
    viewer: new MessageViewer(core.dataKeys, new TenantDisplaySettings(core.tenants, 5_000).for),
    dataKeys: core.dataKeys,
    bulkMessages: (ids) => webhooks.messagesForPayloads(ids),
  });
  const sender = opts.sender ?? createWebhookSender({ version: VERSION, defaultTimeoutMs: settings.timeoutMs });
  const dispatcher = new WebhookDispatcher({
    outbox,
    webhooks,
    payloads,
    endpoints,
    sender,
    egress,
    jobs: core.jobs,
    logger: core.logger.child({ room: 'webhooks' }),
    metrics: core.metrics,
    clock: core.clock,
    settings: { retryDelaysMs: settings.retryDelaysMs, timeoutMs: settings.timeoutMs, endpointConcurrency: settings.endpointConcurrency },
    wake: () => pump.wake(),
    retryScheduled: (at) => pump.wakeAt(at),
  });
  const events = new EventQueryService({ outbox, webhooks });
  const overview = new OpsOverviewRepository(core.prisma, core.db.sql);
  const pump = new DeliveryPump({
    dispatcher,
    webhooks,
    outbox,
    logger: core.logger.child({ room: 'webhooks' }),
    clock: core.clock,
    slots: settings.workerConcurrency,
    endpointConcurrency: settings.endpointConcurrency,
    leaseMs: dispatcher.leaseDurationMs,
  });

  // Wake-ups instead of a job per event: after a commit that appended events, this process's
  // pump (if it runs workers) looks at once, and other processes' pumps hear a NOTIFY (Postgres).
  const dbUrl = core.config.database.url;
  const channel = dbUrl
    ? new WakeChannel({ connectionString: dbUrl, channel: 'mbc_webhooks_wake', query: (text, values) => core.db.sql.query(text, values), logger: core.logger.child({ room: 'webhooks' }), applicationName: 'mbc-webhooks-wake' })
    : undefined;
  setEventsCommittedHook(core.jobs, () => {
    pump.wakeDispatch();
    channel?.notify();
  });

  return {
    name: 'webhooks',
    routes(registry) {
      registerWebhookEndpointRoutes(registry, { endpoints });
      registerEventRoutes(registry, {
        events,
        async replay(tenantId, eventId, endpointId, actorId) {
          const event = await outbox.findForTenant(tenantId, eventId);
          if (!event) return null;
          const deliveries = await dispatcher.replay(event, endpointId);
          await core.audit.record({
            tenantId,
            actorType: 'api_key',
            actorId,
            action: 'event.replayed',
            targetType: 'event',
            targetId: eventId,
            metadata: { deliveries: deliveries.length },
          });
          return deliveries;
        },
      });
    },
    jobs(queue) {
      // Registering handlers means this process runs workers: start the pump's own polling too.
      pump.start();
      channel?.listen(() => pump.wakeDispatch());
      // Both jobs only wake the pump: the outbox row and the delivery row are the work items, and
      // the pump fans out and claims in batches (see DeliveryPump).
      queue.register('webhooks.dispatch', (p) => pump.onDispatchJob(p.eventId), { concurrency: 1 });
      queue.register('webhooks.deliver', (p) => pump.onJob(p.deliveryId), { concurrency: 1 });
      queue.register('webhooks.sweep', () => dispatcher.sweep(), { concurrency: 1 });
    },
    schedules: [{ name: 'webhooks.sweep', cron: '* * * * *' }],
    async stop() {
      await channel?.stop();
      await pump.stop();
      sender.close?.();
    },
    ops: [
      defineOps({
        name: 'events.replay',
        summary: 'deliver one event again, or every event created since a time',
        input: z.union([z.strictObject({ eventId: z.string().min(1).max(64) }), z.strictObject({ since: z.iso.datetime({ offset: true }) })]),
        async run(input, ctx) {
          const replayOne = async (eventId: string): Promise<number> => {
            const event = await outbox.findUnscoped(eventId);
            if (!event) throw new ApiError(404, 'not_found', 'event not found');
            try {
              return (await dispatcher.replay(event)).length;
            } catch (err) {
              if (err instanceof NoMatchingEndpointError) return 0;
              throw err;
            }
          };
          let replayed = 0;
          let deliveries = 0;
          if ('eventId' in input) {
            deliveries = await replayOne(input.eventId);
            replayed = 1;
          } else {
            let afterId: string | undefined;
            for (;;) {
              const batch = await outbox.listIdsSinceUnscoped(new Date(input.since), afterId, 200);
              for (const e of batch) {
                deliveries += await replayOne(e.id);
                replayed++;
              }
              if (batch.length < 200) break;
              afterId = batch[batch.length - 1]!.id;
              ctx.progress(`replayed ${replayed} events, ${deliveries} deliveries queued`);
            }
          }
          await core.audit.record({
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
          const mailbox = await core.mailboxes.findByIdUnscoped(mailboxId);
          if (!mailbox) throw new ApiError(404, 'not_found', 'mailbox not found');
          let replayed = 0;
          let skipped = 0;
          const tried = new Set<string>();
          // Each replay turns its delivery back to pending, so the next read finds the rest.
          for (let round = 0; round < 50; round++) {
            const dead = (await overview.deadDeliveries(mailboxId, 200)).filter((d) => !tried.has(d.deliveryId));
            if (dead.length === 0) break;
            for (const d of dead) {
              tried.add(d.deliveryId);
              const event = await outbox.findUnscoped(d.eventId);
              if (!event) continue;
              try {
                replayed += (await dispatcher.replay(event, d.endpointId)).length;
              } catch (err) {
                if (!(err instanceof NoMatchingEndpointError)) throw err;
                skipped++;
              }
            }
            ctx.progress(`replayed ${replayed} dead deliveries, ${skipped} skipped (endpoint disabled or unsubscribed)`);
          }
          await core.audit.record({ tenantId: mailbox.tenantId, actorType: 'ops', actorId: ctx.actorId, action: 'events.dead_replayed', targetType: 'mailbox', targetId: mailboxId, metadata: { deliveries: replayed, skipped } });
          return { mailboxId, deliveries: replayed, skipped };
        },
      }),
      defineOps({
        name: 'webhookEndpoints.rotateSecret',
        summary: 'issue a new signing secret for an endpoint (shown once; the previous one keeps signing for 24 hours)',
        input: z.strictObject({ endpointId: z.string().min(1).max(64) }),
        async run({ endpointId }, ctx) {
          const found = await overview.findEndpointUnscoped(endpointId);
          const rotated = found ? await endpoints.rotateSecret(found.tenantId, endpointId) : null;
          if (!found || !rotated) throw new ApiError(404, 'not_found', 'webhook endpoint not found');
          await core.audit.record({ tenantId: found.tenantId, actorType: 'ops', actorId: ctx.actorId, action: 'webhook_endpoint.secret_rotated', targetType: 'webhook_endpoint', targetId: endpointId });
          return { endpointId, tenantId: found.tenantId, secret: rotated.secret, previousSecretExpiresAt: rotated.endpoint.previousSecretExpiresAt };
        },
      }),
    ],
  };
}

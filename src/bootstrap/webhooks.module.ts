import { setEventsCommittedHook } from '../events/events-committed.js';
import { PayloadBuilder } from '../events/payload-builder.js';
import { registerEventRoutes } from '../http/routes/events.route.js';
import { registerWebhookEndpointRoutes } from '../http/routes/webhook-endpoints.route.js';
import { MessageContentPool } from '../messages/content-pool.js';
import { MessageViewer } from '../messages/message-view.js';
import { TenantDisplaySettings } from '../tenancy/display-settings.js';
import { MessageReadRepository } from '../storage/message-read.repository.js';
import { OutboxRepository } from '../storage/outbox.repository.js';
import { OpsOverviewRepository } from '../storage/ops-overview.repository.js';
import { WakeChannel } from '../storage/wake-listener.js';
import { WebhookRepository } from '../storage/webhook.repository.js';
import type { EgressPolicy } from '../webhooks/egress-guard.js';
import { DeliveryPump } from '../webhooks/delivery-pump.js';
import { EventQueryService } from '../webhooks/event-query.service.js';
import { WebhookDispatcher } from '../webhooks/webhook-dispatcher.service.js';
import { WebhookEndpointService } from '../webhooks/webhook-endpoint.service.js';
import { createWebhookSender, type WebhookSender } from '../webhooks/webhook-sender.js';
import { webhookOps } from '../webhooks/webhooks.ops.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';
import { VERSION } from './service.js';

export interface WebhooksModuleOptions {
  /** Replace the HTTP sender (tests of failure shapes); default is the pinned undici sender (webhook-sender.ts). */
  sender?: WebhookSender;
}

/** Webhook endpoints, the outbox dispatcher and delivery jobs, the event log and replay. */
export function webhooksModule(core: Core, opts: WebhooksModuleOptions = {}): ServiceModule {
  const settings = core.config.webhooks;
  const egress: EgressPolicy = { production: core.config.production, allowHosts: settings.allowedHosts };
  const outbox = new OutboxRepository(core.prisma);
  const webhooks = new WebhookRepository(core.prisma, core.db);
  const endpoints = new WebhookEndpointService({ repo: webhooks, dataKeys: core.dataKeys, egress, clock: core.clock });
  // Large message contents become their webhook JSON in a worker thread, not on the event loop.
  const contentPool = new MessageContentPool();
  const payloads = new PayloadBuilder({
    messages: new MessageReadRepository(core.prisma),
    mailboxes: core.mailboxes,
    // Remote-image blocking read per tenant at most every 5 s while building batches of bodies.
    viewer: new MessageViewer(core.dataKeys, new TenantDisplaySettings(core.tenants, 5_000).for),
    dataKeys: core.dataKeys,
    bulkMessages: (ids) => webhooks.messagesForPayloads(ids),
    contentPool,
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
      await contentPool.close();
    },
    ops: webhookOps({ outbox, dispatcher, endpoints, overview, mailboxes: core.mailboxes, audit: core.audit }),
  };
}

import { syncConcurrency } from '../config/config.js';
import { registerGooglePushRoutes } from '../http/routes/push-google.route.js';
import { registerMailboxResyncRoutes } from '../http/routes/mailbox-resync.route.js';
import { registerMicrosoftPushRoutes } from '../http/routes/push-microsoft.route.js';
import { IngestService } from '../ingest/ingest.service.js';
import { MimeParsePool } from '../ingest/parse-pool.js';
import { GOOGLE_ENDPOINTS } from '../providers/google/google-endpoints.js';
import { GooglePushVerifier } from '../providers/google/pubsub-push.verifier.js';
import type { ScanPolicy } from '../scan/scan-policy.js';
import type { ConfiguredScanner } from '../scan/scanner.factory.js';
import { BlobStore } from '../storage/blob.store.js';
import { MessageWriteRepository } from '../storage/message-write.repository.js';
import { SyncLockRepository } from '../storage/sync-lock.repository.js';
import { SyncStateRepository } from '../storage/sync-state.repository.js';
import { MailboxSyncService, type SyncHooks, type SyncSettings } from '../sync/mailbox-sync.service.js';
import { PushIntakeService } from '../sync/push-intake.service.js';
import { MailboxResync } from '../sync/mailbox-resync.js';
import { SyncSchedulerService } from '../sync/sync-scheduler.service.js';
import type { SyncProviders } from '../sync/sync-providers.port.js';
import { WatchService } from '../sync/watch.service.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';
import type { ProcessServices } from './modules.js';

export interface SyncModuleOptions {
  /** Default: the token-vault-backed MailProviderFactory of the process services. */
  providers?: SyncProviders;
  scanner?: ConfiguredScanner;
  scanPolicy?: ScanPolicy;
  hooks?: SyncHooks;
  settings?: Partial<SyncSettings>;
  /** sync.mailbox jobs run at once per worker process (each holds one database connection); default syncConcurrency(config). */
  concurrency?: number;
}

/**
 * Sync and ingest: `sync.mailbox` (backfill, incremental, window resync), the poll and watch
 * renewal schedules, the Gmail and Graph push endpoints, `POST /v1/mailboxes/:id/resync` and the
 * `mailboxes.resync` ops command.
 */
export function syncModule(core: Core, { access, scanner }: ProcessServices, opts: SyncModuleOptions = {}): ServiceModule {
  const providers: SyncProviders = opts.providers ?? access.providers;
  const messages = new MessageWriteRepository(core.prisma, core.db);
  const state = new SyncStateRepository(core.prisma);
  const parsePool = new MimeParsePool();
  const ingest = new IngestService({
    messages,
    // Chunk statements through the raw SQL executor (binary parameters, no base64 copies).
    blobs: new BlobStore(core.prisma, core.dataKeys, { sql: core.db.sql }),
    dataKeys: core.dataKeys,
    blindIndex: core.blindIndex,
    outbox: core.outbox,
    jobs: core.jobs,
    scanner: opts.scanner ?? scanner,
    maxMessageBytes: core.config.sync.maxMessageBytes,
    // MIME parsing in worker threads: no message can stall HTTP or health checks.
    parse: parsePool.parse,
    ...(opts.scanPolicy ? { scanPolicy: opts.scanPolicy } : {}),
    clock: core.clock,
    logger: core.logger,
    metrics: core.metrics,
  });
  const googleTopic = access.settings.google?.pubsub.topic;
  const watches = new WatchService({
    providers,
    state,
    dataKeys: core.dataKeys,
    clock: core.clock,
    logger: core.logger,
    settings: { googleTopic, publicUrl: core.config.http.publicUrl },
    // A 401 from users.watch / a Graph subscription call is checked with the vault as reads are.
    confirmAuthFailure: (id) => access.vault.confirmAuthFailure(id),
  });
  const sync = new MailboxSyncService({
    providers,
    state,
    locks: new SyncLockRepository(core.db),
    messages,
    ingest,
    watches,
    settings: { backfillDays: core.config.sync.backfillDays, ...opts.settings },
    clock: core.clock,
    logger: core.logger,
    metrics: core.metrics,
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
  });
  const scheduler = new SyncSchedulerService({
    state,
    jobs: core.jobs,
    clock: core.clock,
    pollIntervalSeconds: core.config.sync.pollIntervalSeconds,
    sharedPollIntervalSeconds: core.config.sync.sharedPollIntervalSeconds,
    googleWatchEnabled: googleTopic !== undefined,
  });
  const google = access.settings.google;
  const push = new PushIntakeService({
    jobs: core.jobs,
    state,
    blindIndex: core.blindIndex,
    dataKeys: core.dataKeys,
    clock: core.clock,
    logger: core.logger,
    metrics: core.metrics,
    google: new GooglePushVerifier({
      audience: google?.pubsub.audience ?? `${core.config.http.publicUrl}/push/google`,
      serviceAccount: google?.pubsub.serviceAccount,
      endpoints: google?.endpoints ?? GOOGLE_ENDPOINTS,
      clock: core.clock,
    }),
  });

  const resync = new MailboxResync({ mailboxes: core.mailboxes, jobs: core.jobs, audit: core.audit });

  return {
    name: 'sync',
    async stop() {
      await parsePool.close();
    },
    routes(registry) {
      registerGooglePushRoutes(registry, push);
      registerMicrosoftPushRoutes(registry, push);
      registerMailboxResyncRoutes(registry, { requestSync: (tenantId, mailboxId) => resync.forTenant(tenantId, mailboxId) });
    },
    jobs(queue) {
      queue.register('sync.mailbox', (payload, ctx) => sync.run(payload, ctx.attempt), { concurrency: opts.concurrency ?? syncConcurrency(core.config, core.db.kind !== 'postgres') });
      queue.register('sync.poll', () => scheduler.poll(), { concurrency: 1 });
      queue.register('sync.renew-watches', () => scheduler.renewWatches(), { concurrency: 1 });
    },
    schedules: [
      { name: 'sync.poll', cron: '* * * * *' },
      { name: 'sync.renew-watches', cron: '17 * * * *' },
    ],
    ops: resync.ops(),
  };
}

import { registerAdminMailboxRoutes } from '../http/routes/admin-mailboxes.route.js';
import { registerDataSubjectRoutes } from '../http/routes/data-subjects.route.js';
import { registerLifecycleRoutes } from '../http/routes/lifecycle.route.js';
import { registerRiscRoutes } from '../http/routes/risc.route.js';
import { BreakGlassService } from '../lifecycle/break-glass.service.js';
import { DataSubjectService } from '../lifecycle/data-subject.service.js';
import { LifecycleEventWriter } from '../lifecycle/lifecycle-event.writer.js';
import { MailboxCredentialReader } from '../lifecycle/mailbox-credential.reader.js';
import { lifecycleOps } from '../lifecycle/lifecycle.ops.js';
import { purgeReceiptView } from '../lifecycle/purge-receipt.view.js';
import { PurgeService, type PurgeServiceOptions } from '../lifecycle/purge.service.js';
import { expireReauthRequired } from '../lifecycle/reauth-expiry.js';
import { RetentionService } from '../lifecycle/retention.service.js';
import { RiscReceiverService } from '../lifecycle/risc-receiver.service.js';
import { GOOGLE_ENDPOINTS } from '../providers/google/google-endpoints.js';
import { SetVerificationError, SetVerifier } from '../providers/google/set-verifier.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import type { TeardownPort } from '../providers/ports.js';
import { BreakGlassRepository } from '../storage/break-glass.repository.js';
import { DataSubjectRepository } from '../storage/data-subject.repository.js';
import { PurgeRepository } from '../storage/purge.repository.js';
import { RestoreRepository } from '../storage/restore.repository.js';
import { RetentionRepository } from '../storage/retention.repository.js';
import { SyncLockRepository } from '../storage/sync-lock.repository.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';
import type { ProcessServices } from './modules.js';
import { wakeDeliveryPumps } from '../events/events-committed.js';
import { SendFromRefusalRepository } from '../storage/send-from-refusal.repository.js';

export interface LifecycleModuleOptions {
  /** Replaces the real provider adapters (tests that stage a provider outage without a sandbox). */
  teardown?: Partial<Record<ProviderName, TeardownPort>>;
  purge?: PurgeServiceOptions;
}

/**
 * Disconnect/revoke/purge, retention, data-subject requests, break-glass access and the
 * optional Google RISC receiver (issue 8).
 */
/** The lifecycle module, and its one purge service for the rooms that start purges (organization installs). */
export type LifecycleModule = ServiceModule & { purges: Pick<PurgeService, 'start'> };

export function lifecycleModule(core: Core, { access }: Pick<ProcessServices, 'access'>, opts: LifecycleModuleOptions = {}): LifecycleModule {
  const { config } = core;
  const purgeRepo = new PurgeRepository(core.prisma, core.keyStore);
  const events = new LifecycleEventWriter(core.outbox, core.jobs, core.logger, core.clock);
  // Real or sandbox provider endpoints and the token vault, shared with the connect/sync rooms.
  const google = access.settings.google;
  const googleEndpoints = google?.endpoints ?? GOOGLE_ENDPOINTS;
  const teardown: Record<ProviderName, TeardownPort> = {
    google: opts.teardown?.google ?? access.modules.google.teardown,
    microsoft: opts.teardown?.microsoft ?? access.modules.microsoft.teardown,
  };
  const purgesTotal = core.metrics.counter('mbc_purges_total', 'Completed mailbox purges by trigger and revoke outcome', ['trigger', 'revoke'] as const);
  const revokeRetries = core.metrics.counter('mbc_purge_revoke_retries_total', 'Background revoke retries by outcome', ['outcome'] as const);
  const purges = new PurgeService(
    {
      repo: purgeRepo,
      dataKeys: core.dataKeys,
      audit: core.audit,
      jobs: core.jobs,
      events,
      teardown,
      credentials: new MailboxCredentialReader(core.dataKeys),
      logger: core.logger,
      clock: core.clock,
      syncLock: new SyncLockRepository(core.db),
      forgetCredential: (mailboxId) => access.vault.forget(mailboxId),
      metrics: {
        purgeCompleted: (l) => purgesTotal.inc(l),
        revokeRetried: (l) => revokeRetries.inc(l),
      },
    },
    opts.purge,
  );
  const retention = new RetentionService(new RetentionRepository(core.prisma), core.audit, core.logger, core.clock);
  const dataSubjects = new DataSubjectService(new DataSubjectRepository(core.prisma), core.dataKeys, core.blindIndex, core.audit, core.clock);
  const breakGlass = new BreakGlassService(new BreakGlassRepository(core.prisma), core.dataKeys, core.audit, events, core.clock);
  const risc = config.google.riscEnabled
    ? new RiscReceiverService(
        new SetVerifier({
          jwksUrl: config.google.riscJwksUrl ?? (access.settings.mode !== 'production' && google ? googleEndpoints.oauth2FederatedSignonJwkCertsUrl : undefined),
          discoveryUrl: 'https://accounts.google.com/.well-known/risc-configuration',
          issuers: config.google.riscIssuers,
          audiences: google ? [google.clientId] : [],
          clock: core.clock,
        }),
        purgeRepo,
        core.blindIndex,
        events,
        core.audit,
        core.logger,
        core.clock,
      )
    : undefined;

  return {
    name: 'lifecycle',
    purges,
    routes(registry) {
      registerLifecycleRoutes(registry, {
        startPurge: ({ tenantId, mailboxId, actor }) => purges.start({ tenantId, mailboxId, trigger: 'customer', reason: null, actor }),
        async receipt(tenantId, purgeId) {
          const r = await purgeRepo.findReceiptForTenant(tenantId, purgeId);
          return r ? purgeReceiptView(r) : null;
        },
        async list(tenantId, opts) {
          return (await purgeRepo.listForTenant(tenantId, opts)).map(purgeReceiptView);
        },
      });
      registerAdminMailboxRoutes(registry, {
        revoke: ({ mailboxId, reason, actorId }) => purges.start({ tenantId: null, mailboxId, trigger: 'ops', reason, actor: { actorType: 'ops', actorId } }),
      });
      registerDataSubjectRoutes(registry, {
        export: (tenantId, email, actor) => dataSubjects.export(tenantId, email, actor),
        erase: (tenantId, email, actor) => dataSubjects.erase(tenantId, email, actor),
      });
      if (risc) {
        registerRiscRoutes(registry, {
          async receive(jwt) {
            try {
              await risc.receive(jwt);
              return { accepted: true };
            } catch (err) {
              if (err instanceof SetVerificationError) return { accepted: false, reason: err.code };
              throw err;
            }
          },
        });
      }
    },
    jobs(queue) {
      queue.register('lifecycle.purge', async ({ purgeId }) => purges.run(purgeId), { concurrency: 1 });
      queue.register('lifecycle.revoke-retry', async ({ purgeId }) => purges.retryRevoke(purgeId), { concurrency: 1 });
      queue.register('lifecycle.reauth-expiry', () => expireReauthRequired({ purges, repo: purgeRepo, clock: core.clock }, config.lifecycle.reauthGraceDays));
      queue.register('retention.run', async () => {
        const results = await retention.run({ actorType: 'system', actorId: 'retention' });
        // Expired From refusals (send-as, 10 min): readers already ignore them; this deletes them.
        await new SendFromRefusalRepository(core.prisma).deleteExpired(core.clock()).catch((err: unknown) => core.logger.warn({ err }, 'deleting expired From refusals failed'));
        return { status: 'done', detail: { tenants: results.length, messages: results.reduce((n, r) => n + r.messages, 0) } };
      });
    },
    schedules: [
      { name: 'lifecycle.reauth-expiry', cron: '*/10 * * * *' },
      { name: 'retention.run', cron: '17 3 * * *' },
    ],
    ops: lifecycleOps({ purges, receipts: purgeRepo, restore: new RestoreRepository(core.prisma), retention, breakGlass, audit: core.audit, clock: core.clock, deliveriesDue: () => wakeDeliveryPumps(core.jobs) }),
  };
}

import { userInfo } from 'node:os';
import { z } from 'zod';
import { ApiError } from '../http/api-error.js';
import { registerAdminMailboxRoutes } from '../http/routes/admin-mailboxes.route.js';
import { registerDataSubjectRoutes } from '../http/routes/data-subjects.route.js';
import { registerLifecycleRoutes } from '../http/routes/lifecycle.route.js';
import { registerRiscRoutes } from '../http/routes/risc.route.js';
import { BreakGlassRefusedError, BreakGlassService, MAX_SESSION_MINUTES } from '../lifecycle/break-glass.service.js';
import { DataSubjectService, ExportTooLargeError } from '../lifecycle/data-subject.service.js';
import { LifecycleEventWriter } from '../lifecycle/lifecycle-event.writer.js';
import { MailboxCredentialReader } from '../lifecycle/mailbox-credential.reader.js';
import { purgeReceiptView } from '../lifecycle/purge-receipt.view.js';
import { MailboxNotFoundError, PurgeService, type PurgeServiceOptions } from '../lifecycle/purge.service.js';
import { RetentionService } from '../lifecycle/retention.service.js';
import { RiscReceiverService } from '../lifecycle/risc-receiver.service.js';
import { defineOps } from '../ops/ops-command.js';
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
import { OutboxService } from '../events/outbox.service.js';
import { OutboxRepository } from '../storage/outbox.repository.js';
import { mailAccess } from './connect.module.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';

export interface LifecycleModuleOptions {
  /** Replaces the real provider adapters (tests that stage a provider outage without a sandbox). */
  teardown?: Partial<Record<ProviderName, TeardownPort>>;
  purge?: PurgeServiceOptions;
}

/** A purge left `running` this long without progress is re-enqueued by the sweep. */
const STALE_PURGE_MS = 10 * 60_000;

/**
 * Disconnect/revoke/purge, retention, data-subject requests, break-glass access and the
 * optional Google RISC receiver (issue 8).
 */
export async function lifecycleModule(core: Core, opts: LifecycleModuleOptions = {}): Promise<ServiceModule> {
  const { config } = core;
  const purgeRepo = new PurgeRepository(core.prisma, core.keyStore);
  const outbox = new OutboxService({ repo: new OutboxRepository(core.prisma), dataKeys: core.dataKeys, clock: core.clock });
  const events = new LifecycleEventWriter(outbox, core.jobs, core.logger, core.clock);
  // Real or sandbox provider endpoints and the token vault, shared with the connect/sync rooms.
  const access = await mailAccess(core);
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

  const breakGlassError = (err: unknown): never => {
    if (err instanceof BreakGlassRefusedError) {
      const status = err.code === 'reason_required' || err.code === 'ticket_required' ? 400 : err.code.endsWith('not_found') ? 404 : 403;
      throw new ApiError(status, `break_glass_${err.code}`, err.message);
    }
    throw err;
  };
  const operatorOf = (given: string | undefined, actorId: string): string => `${(given ?? safeUser()).slice(0, 100)} via ${actorId}`;

  return {
    name: 'lifecycle',
    routes(registry) {
      registerLifecycleRoutes(registry, {
        async startPurge({ tenantId, mailboxId, actor }) {
          try {
            return await purges.start({ tenantId, mailboxId, trigger: 'customer', reason: null, actor });
          } catch (err) {
            if (err instanceof MailboxNotFoundError) return null;
            throw err;
          }
        },
        async receipt(tenantId, purgeId) {
          const r = await purgeRepo.findReceiptForTenant(tenantId, purgeId);
          return r ? purgeReceiptView(r) : null;
        },
        async list(tenantId, opts) {
          return (await purgeRepo.listForTenant(tenantId, opts)).map(purgeReceiptView);
        },
      });
      registerAdminMailboxRoutes(registry, {
        async revoke({ mailboxId, reason, actorId }) {
          try {
            return await purges.start({ tenantId: null, mailboxId, trigger: 'ops', reason, actor: { actorType: 'ops', actorId } });
          } catch (err) {
            if (err instanceof MailboxNotFoundError) return null;
            throw err;
          }
        },
      });
      registerDataSubjectRoutes(registry, {
        export: (tenantId, email, actor) => dataSubjects.export(tenantId, email, actor),
        erase: (tenantId, email, actor) => dataSubjects.erase(tenantId, email, actor),
        isTooLarge: (err) => err instanceof ExportTooLargeError,
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
      queue.register('lifecycle.reauth-expiry', async () => {
        const grace = config.lifecycle.reauthGraceDays * 86_400_000;
        const expired = await purgeRepo.listReauthExpired(new Date(core.clock().getTime() - grace), 100);
        for (const m of expired) {
          await purges.start({
            tenantId: m.tenantId,
            mailboxId: m.id,
            trigger: 'provider_revoked',
            reason: `reauth_required for more than ${config.lifecycle.reauthGraceDays} days`,
            actor: { actorType: 'system', actorId: 'lifecycle' },
          });
        }
        const resumed = await purges.resumeStale(STALE_PURGE_MS);
        return { status: 'done', detail: { expired: expired.length, ...resumed } };
      });
      queue.register('retention.run', async () => {
        const results = await retention.run({ actorType: 'system', actorId: 'retention' });
        return { status: 'done', detail: { tenants: results.length, messages: results.reduce((n, r) => n + r.messages, 0) } };
      });
    },
    schedules: [
      { name: 'lifecycle.reauth-expiry', cron: '*/10 * * * *' },
      { name: 'retention.run', cron: '17 3 * * *' },
    ],
    ops: [
      defineOps({
        name: 'mailboxes.revoke',
        summary: 'ops revocation: stop sync, revoke the grant, purge the data',
        input: z.strictObject({ mailboxId: z.string().min(1).max(64), reason: z.string().trim().min(3).max(500) }),
        async run({ mailboxId, reason }, ctx) {
          try {
            const started = await purges.start({ tenantId: null, mailboxId, trigger: 'ops', reason, actor: { actorType: 'ops', actorId: ctx.actorId } });
            return { mailboxId, purgeId: started.purgeId, alreadyRunning: !started.created };
          } catch (err) {
            if (err instanceof MailboxNotFoundError) throw new ApiError(404, 'not_found', 'mailbox not found');
            throw err;
          }
        },
      }),
      defineOps({
        name: 'purges.get',
        summary: 'show a purge receipt',
        input: z.strictObject({ purgeId: z.string().min(1).max(64) }),
        async run({ purgeId }, ctx) {
          const r = await purgeRepo.findReceipt(purgeId);
          if (!r) throw new ApiError(404, 'not_found', 'purge not found');
          await core.audit.record({ tenantId: r.tenantId, actorType: 'ops', actorId: ctx.actorId, action: 'purge.viewed', targetType: 'purge', targetId: r.id });
          return { ...purgeReceiptView(r), tenantId: r.tenantId };
        },
      }),
      defineOps({
        name: 'purges.sweepShredded',
        summary: 'after a database restore: purge again every mailbox whose data key was destroyed, delete rows left without a mailbox',
        input: z.strictObject({}),
        async run(_input, ctx) {
          return purges.sweepShredded({ actorType: 'ops', actorId: ctx.actorId });
        },
      }),
      defineOps({
        name: 'events.releaseHeld',
        summary: 'after a restore: send the webhook deliveries held since then (or cancel them with discard: true); audited',
        input: z.strictObject({ discard: z.boolean().default(false) }),
        async run({ discard }, ctx) {
          const restoreRepo = new RestoreRepository(core.prisma);
          const held = await restoreRepo.countHeld();
          const changed = await restoreRepo.releaseHeld(discard ? 'discard' : 'release', core.clock());
          await core.audit.record({ actorType: 'ops', actorId: ctx.actorId, action: discard ? 'events.held_discarded' : 'events.held_released', metadata: { deliveries: changed } });
          return { held, [discard ? 'discarded' : 'released']: changed };
        },
      }),
      defineOps({
        name: 'retention.run',
        summary: 'delete messages older than each tenant’s retention now; prints counts',
        input: z.strictObject({}),
        async run(_input, ctx) {
          return retention.run({ actorType: 'ops', actorId: ctx.actorId, progress: (l) => ctx.progress(l) });
        },
      }),
      defineOps({
        name: 'breakGlass.open',
        summary: 'open a time-limited break-glass session on one mailbox (reason and ticket required; audited; the tenant is notified)',
        input: z.strictObject({
          mailboxId: z.string().min(1).max(64),
          reason: z.string().max(1000).default(''),
          ticket: z.string().max(200).default(''),
          minutes: z.number().int().min(1).max(MAX_SESSION_MINUTES).default(30),
          operator: z.string().trim().min(1).max(100).optional(),
        }),
        async run(input, ctx) {
          return breakGlass
            .open({ mailboxId: input.mailboxId, reason: input.reason, ticketRef: input.ticket, minutes: input.minutes, operator: operatorOf(input.operator, ctx.actorId) })
            .catch(breakGlassError);
        },
      }),
      defineOps({
        name: 'breakGlass.read',
        summary: 'decrypt one message of the session’s mailbox (audited)',
        input: z.strictObject({ sessionId: z.string().min(1).max(64), messageId: z.string().min(1).max(64), operator: z.string().trim().min(1).max(100).optional() }),
        async run(input, ctx) {
          return breakGlass.read({ sessionId: input.sessionId, messageId: input.messageId, operator: operatorOf(input.operator, ctx.actorId) }).catch(breakGlassError);
        },
      }),
      defineOps({
        name: 'breakGlass.close',
        summary: 'end a break-glass session before it expires',
        input: z.strictObject({ sessionId: z.string().min(1).max(64), operator: z.string().trim().min(1).max(100).optional() }),
        async run(input, ctx) {
          return breakGlass.close({ sessionId: input.sessionId, operator: operatorOf(input.operator, ctx.actorId) }).catch(breakGlassError);
        },
      }),
      defineOps({
        name: 'breakGlass.list',
        summary: 'list break-glass sessions (active only by default)',
        input: z.strictObject({ all: z.boolean().default(false), mailboxId: z.string().min(1).max(64).optional() }),
        async run(input, ctx) {
          await core.audit.record({ actorType: 'ops', actorId: ctx.actorId, action: 'break_glass.listed', ...(input.mailboxId ? { targetType: 'mailbox', targetId: input.mailboxId } : {}), metadata: { all: input.all } });
          return breakGlass.list({ activeOnly: !input.all, ...(input.mailboxId ? { mailboxId: input.mailboxId } : {}) });
        },
      }),
    ],
  };
}

function safeUser(): string {
  try {
    return userInfo().username || 'operator';
  } catch {
    return 'operator';
  }
}

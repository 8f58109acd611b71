import { registerMailboxReadRoutes } from '../http/routes/mailboxes.route.js';
import { registerSettingsRoutes } from '../http/routes/settings.route.js';
import { MailboxQueryService } from '../mailboxes/mailbox-query.service.js';
import { PurgeRepository } from '../storage/purge.repository.js';
import { tenancyOps } from '../tenancy/tenancy.ops.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';

/** Tenants, API keys, key rotation, audit verification and the mailbox read routes. */
export function tenancyModule(core: Core): ServiceModule {
  const mailboxQuery = new MailboxQueryService(core.mailboxes, core.dataKeys);
  const purgeReceipts = new PurgeRepository(core.prisma);
  const brandingPolicy = { production: core.config.production };
  return {
    name: 'tenancy',
    routes(registry) {
      registerSettingsRoutes(registry, { tenants: core.tenants, audit: core.audit, branding: { production: core.config.production } });
      registerMailboxReadRoutes(registry, {
        mailboxes: mailboxQuery,
        purges: {
          async forMailbox(tenantId, mailboxId) {
            const r = await purgeReceipts.latestReceiptForMailbox(tenantId, mailboxId);
            return r ? { purgeId: r.id, status: r.status, completedAt: r.completedAt?.toISOString() ?? null } : null;
          },
        },
      });
    },
    readiness: [
      {
        name: 'database',
        required: true,
        async check() {
          await core.db.sql.query('SELECT 1');
          return { status: 'ok' };
        },
      },
      {
        // The data keys (docs/security.md): without them nothing can be sealed or opened.
        name: 'keystore',
        required: true,
        async check() {
          await core.keystore.sql.query('SELECT 1');
          return { status: 'ok' };
        },
      },
      {
        name: 'queue',
        required: true,
        async check() {
          return (await core.jobs.ping()) ? { status: 'ok' } : { status: 'error', detail: 'job queue unreachable' };
        },
      },
    ],
    ops: tenancyOps({
      tenants: core.tenants,
      tenantService: core.tenantService,
      apiKeys: core.apiKeys,
      apiKeyRepo: core.apiKeyRepo,
      mailboxes: core.mailboxes,
      dataKeys: core.dataKeys,
      keyring: core.keyring,
      audit: core.audit,
      anchorFile: core.config.audit.anchorFile,
      branding: brandingPolicy,
    }),
  };
}

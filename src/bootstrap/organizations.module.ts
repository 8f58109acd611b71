import { notifyEventsCommitted } from '../events/outbox.service.js';
import { registerOrganizationInstallRoutes } from '../http/routes/organization-installs.route.js';
import { syncPriority } from '../jobs/job-map.js';
import type { PurgeService } from '../lifecycle/purge.service.js';
import { GoogleOrganizationInstalls } from '../organizations/google-organization-install.js';
import { OrganizationInstallService } from '../organizations/organization-install.service.js';
import { OrganizationMailboxes } from '../organizations/organization-mailboxes.js';
import { MicrosoftAdminSignIn } from '../organizations/microsoft-admin-signin.js';
import { OrganizationAccessWarnings } from '../organizations/organization-access-warning.js';
import { OrganizationAccessNoticeRepository } from '../storage/organization-access-notice.repository.js';
import type { CredentialKindPort } from '../providers/grant-port.js';
import { googleOrganizationKind } from '../providers/google/google-organization-grant.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import { MicrosoftAppTokenClient } from '../providers/microsoft/microsoft-app-token.client.js';
import { microsoftOrganizationKind } from '../providers/microsoft/microsoft-organization-grant.js';
import { GoogleOrganizationInstallRepository } from '../storage/google-organization-install.repository.js';
import { OrganizationInstallRepository } from '../storage/organization-install.repository.js';
import { OrganizationSignInRepository } from '../storage/organization-signin.repository.js';
import { pageBrandingLoader } from '../tenancy/tenant-branding.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';
import type { ProcessServices } from './modules.js';
import type { ProviderSettings } from './provider-settings.js';

/** What organization installs add to the process's mail access (built with it, in buildMailAccess). */
export interface OrganizationMailAccess {
  /** App-only tokens (client credentials); undefined when Microsoft is not configured. */
  appTokens: MicrosoftAppTokenClient | undefined;
  /** Which mailboxes are organization-install mailboxes (the provider factory asks). */
  mailboxes: OrganizationMailboxes;
  /** Google Workspace installs (their keys sign the `organization` kind's tokens); undefined when Google is not configured. */
  google: GoogleOrganizationInstalls | undefined;
  /** The `organization` credential kind of each provider's grant port (beside `delegated`; buildProviderModules). */
  kinds: Record<ProviderName, CredentialKindPort>;
}

/**
 * Builds the app-token client and the Google installs, and each provider's `organization`
 * credential kind, which buildProviderModules adds to its grant port beside `delegated`, so the
 * token vault, teardown and purge treat an organization mailbox like any other. Called by
 * buildMailAccess before the provider modules and the vault are built.
 */
export function organizationMailAccess(core: Core, settings: ProviderSettings): OrganizationMailAccess {
  const ms = settings.microsoft;
  const msalLog = core.logger.child({ component: 'msal-app' });
  const appTokens = ms
    ? new MicrosoftAppTokenClient(
        {
          clientId: ms.clientId,
          credential: ms.credential,
          endpoints: ms.endpoints,
          adminConsentRedirectUri: `${core.config.http.publicUrl.replace(/\/+$/, '')}/oauth/microsoft/admin-consent`,
        },
        (level, message) => msalLog[level](message),
      )
    : undefined;
  // Google: JWT grants signed with the install's key.
  const googleEndpoints = settings.google?.endpoints;
  const googleInstalls = googleEndpoints
    ? new GoogleOrganizationInstalls({ repo: new GoogleOrganizationInstallRepository(core.prisma), dataKeys: core.dataKeys, audit: core.audit, logger: core.logger, clock: core.clock, endpoints: googleEndpoints })
    : undefined;
  return {
    appTokens,
    mailboxes: new OrganizationMailboxes(new OrganizationInstallRepository(core.prisma), core.dataKeys),
    google: googleInstalls,
    kinds: {
      microsoft: microsoftOrganizationKind({ client: appTokens }),
      google: googleOrganizationKind({ keys: googleInstalls ? (id) => googleInstalls.key(id) : undefined, endpoints: googleEndpoints }),
    },
  };
}

/** Organization installs: the API, the hosted admin-consent page and its redirect. */
export function organizationsModule(
  core: Core,
  { access }: Pick<ProcessServices, 'access'>,
  /** The lifecycle module's purge service: an uninstall or a removed mailbox is purged like any disconnect. */
  { purges }: { purges: Pick<PurgeService, 'start'> },
): ServiceModule {
  const ms = access.settings.microsoft;
  const appTokens = access.organizations.appTokens;
  const installs = new OrganizationInstallService({
    repo: new OrganizationInstallRepository(core.prisma),
    dataKeys: core.dataKeys,
    blindIndex: core.blindIndex,
    audit: core.audit,
    logger: core.logger,
    clock: core.clock,
    microsoft:
      ms && appTokens
        ? {
            tokens: appTokens,
            endpoints: ms.endpoints,
            adminSignIn: new MicrosoftAdminSignIn({ repo: new OrganizationSignInRepository(core.prisma), dataKeys: core.dataKeys, tokens: appTokens, audit: core.audit, logger: core.logger, clock: core.clock }),
          }
        : undefined,
    google: access.organizations.google,
    sealCredential: (mailboxId, credential) => access.vault.sealCredential(mailboxId, credential),
    async appendConnected(tx, input) {
      return (await core.outbox.appendEvent(tx, { tenantId: input.tenantId, mailboxId: input.mailboxId, type: 'mailbox.connected', data: { provider: input.provider, reconnected: input.reconnected } })).id;
    },
    eventsCommitted: (ids) => notifyEventsCommitted(core.jobs, ids, core.logger),
    async enqueueFirstSync(mailboxId) {
      await core.jobs.enqueue('sync.mailbox', { mailboxId, reason: 'connect' }, { singletonKey: mailboxId, priority: syncPriority('connect') });
    },
    startPurge: ({ tenantId, mailboxId, actor }) => purges.start({ tenantId, mailboxId, trigger: 'customer', reason: null, actor: { actorType: actor.actorType === 'system' ? 'ops' : actor.actorType, actorId: actor.actorId } }),
    accessWarnings: new OrganizationAccessWarnings({
      repo: new OrganizationAccessNoticeRepository(core.prisma),
      async appendTenantEvent(tx, input) {
        return (await core.outbox.appendEvent(tx, { tenantId: input.tenantId, mailboxId: null, type: input.type, data: { ...input.data } })).id;
      },
      eventsCommitted: (ids) => notifyEventsCommitted(core.jobs, ids, core.logger),
      logger: core.logger,
    }),
    publicUrl: core.config.http.publicUrl,
  });
  return {
    name: 'organizations',
    routes(registry) {
      // The hosted admin page and its result page carry the tenant's branding, like the connect pages.
      registerOrganizationInstallRoutes(registry, { installs, branding: pageBrandingLoader(core.tenants, { production: core.config.production }) });
    },
    jobs(queue) {
      queue.register('organizations.access-check', async () => ({ status: 'done', detail: await installs.recheckAll() }), { concurrency: 1 });
    },
    schedules: [{ name: 'organizations.access-check', cron: '41 5 * * *' }],
  };
}

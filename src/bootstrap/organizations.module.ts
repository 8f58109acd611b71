import { notifyEventsCommitted } from '../events/outbox.service.js';
import { registerOrganizationInstallRoutes } from '../http/routes/organization-installs.route.js';
import { syncPriority } from '../jobs/job-map.js';
import type { PurgeService } from '../lifecycle/purge.service.js';
import { OrganizationInstallService } from '../organizations/organization-install.service.js';
import { OrganizationMailboxes } from '../organizations/organization-mailboxes.js';
import { composeGrantPort } from '../providers/grant-port.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import { MicrosoftAppTokenClient } from '../providers/microsoft/microsoft-app-token.client.js';
import { microsoftDelegatedKind } from '../providers/microsoft/microsoft-grant.js';
import type { MicrosoftOAuthClient } from '../providers/microsoft/microsoft-oauth.client.js';
import { microsoftOrganizationKind } from '../providers/microsoft/microsoft-organization-grant.js';
import type { ProviderModule } from '../providers/ports.js';
import { OrganizationInstallRepository } from '../storage/organization-install.repository.js';
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
}

/**
 * Builds the app-token client and gives the Microsoft grant port its second credential kind
 * (`organization`, beside `delegated`), so the token vault, teardown and purge treat an
 * organization mailbox like any other. Called by buildMailAccess before the vault is built.
 */
export function organizationMailAccess(
  core: Core,
  settings: ProviderSettings,
  modules: Record<ProviderName, ProviderModule>,
  microsoft: MicrosoftOAuthClient | undefined,
): OrganizationMailAccess {
  const ms = settings.microsoft;
  const msalLog = core.logger.child({ component: 'msal-app' });
  const appTokens = ms
    ? new MicrosoftAppTokenClient(
        {
          clientId: ms.clientId,
          credential: { kind: 'secret', clientSecret: ms.clientSecret },
          endpoints: ms.endpoints,
          adminConsentRedirectUri: `${core.config.http.publicUrl.replace(/\/+$/, '')}/oauth/microsoft/admin-consent`,
        },
        (level, message) => msalLog[level](message),
      )
    : undefined;
  modules.microsoft = {
    ...modules.microsoft,
    grant: composeGrantPort({
      provider: 'microsoft',
      displayName: modules.microsoft.grant.displayName,
      consent: modules.microsoft.grant.consent,
      kinds: [microsoftDelegatedKind({ client: microsoft }), microsoftOrganizationKind({ client: appTokens })],
    }),
  };
  return { appTokens, mailboxes: new OrganizationMailboxes(new OrganizationInstallRepository(core.prisma), core.dataKeys) };
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
    microsoft: ms && appTokens ? { tokens: appTokens, endpoints: ms.endpoints } : undefined,
    sealCredential: (mailboxId, credential) => access.vault.sealCredential(mailboxId, credential),
    async appendConnected(tx, input) {
      return (await core.outbox.appendEvent(tx, { tenantId: input.tenantId, mailboxId: input.mailboxId, type: 'mailbox.connected', data: { provider: input.provider, reconnected: input.reconnected } })).id;
    },
    eventsCommitted: (ids) => notifyEventsCommitted(core.jobs, ids, core.logger),
    async enqueueFirstSync(mailboxId) {
      await core.jobs.enqueue('sync.mailbox', { mailboxId, reason: 'connect' }, { singletonKey: mailboxId, priority: syncPriority('connect') });
    },
    startPurge: ({ tenantId, mailboxId, actor }) => purges.start({ tenantId, mailboxId, trigger: 'customer', reason: null, actor: { actorType: actor.actorType === 'system' ? 'ops' : actor.actorType, actorId: actor.actorId } }),
    publicUrl: core.config.http.publicUrl,
  });
  return {
    name: 'organizations',
    routes(registry) {
      registerOrganizationInstallRoutes(registry, { installs });
    },
    jobs(queue) {
      queue.register('organizations.access-check', async () => ({ status: 'done', detail: await installs.recheckAll() }), { concurrency: 1 });
    },
    schedules: [{ name: 'organizations.access-check', cron: '41 5 * * *' }],
  };
}

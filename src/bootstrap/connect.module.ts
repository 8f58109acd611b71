import { notifyEventsCommitted } from '../events/outbox.service.js';
import { registerConnectRoutes } from '../http/routes/connect.route.js';
import { registerOAuthCallbackRoutes } from '../http/routes/oauth-callback.route.js';
import { ConnectService } from '../oauth/connect.service.js';
import type { MailboxEventSink } from '../oauth/mailbox-event.port.js';
import { SandboxStateService, type ProviderReach } from '../oauth/sandbox-state.service.js';
import { MICROSOFT_SHARED_SCOPES, requestedScopes } from '../oauth/scope-policy.js';
import { MAILBOX_ADDRESS_AAD } from '../mailboxes/message-content.js';
import { microsoftGrantPort } from '../providers/microsoft/microsoft-grant.js';
import { TokenVault } from '../oauth/token-vault.service.js';
import { GOOGLE_ENDPOINTS } from '../providers/google/google-endpoints.js';
import { GoogleOAuthClient } from '../providers/google/google-oauth.client.js';
import { MailProviderFactory } from '../providers/mail-provider.factory.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import { MicrosoftOAuthClient } from '../providers/microsoft/microsoft-oauth.client.js';
import type { ProviderModule } from '../providers/ports.js';
import { buildProviderModules } from '../providers/provider-modules.js';
import { OrganizationMailProviderFactory } from '../providers/microsoft/organization-mail.factory.js';
import { organizationMailAccess, type OrganizationMailAccess } from './organizations.module.js';
import { ConnectSessionRepository } from '../storage/connect-session.repository.js';
import { MailboxGrantRepository } from '../storage/mailbox-grant.repository.js';
import { pageBrandingLoader } from '../tenancy/tenant-branding.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';
import { resolveProviderSettings, type ProviderSettings } from './provider-settings.js';

/**
 * Everything that needs a mailbox's access token: the provider settings (real or sandbox), the
 * token vault, and the provider factory the sync, send and purge rooms use. The composition root
 * builds it once per process (`buildProcessServices`, modules.ts) and passes it to the modules.
 */
export interface MailAccess {
  settings: ProviderSettings;
  vault: TokenVault;
  providers: MailProviderFactory;
  /** One ProviderModule per provider (limits, teardown), bound to this run's endpoints. */
  modules: Record<ProviderName, ProviderModule>;
  google: GoogleOAuthClient | undefined;
  microsoft: MicrosoftOAuthClient | undefined;
  connect: ConnectService;
  /** Run when workers start: mailboxes this provider setup cannot serve, said once (sandbox_reset, provider_not_configured). */
  sandboxState: SandboxStateService;
  /** Organization installs: app-only tokens and which mailboxes belong to an install. */
  organizations: OrganizationMailAccess;
}

export async function buildMailAccess(core: Core): Promise<MailAccess> {
  const settings = await resolveProviderSettings(core.config, core.logger);
  // In-process stand-ins live exactly as long as the core: one-off CLI commands close the core but
  // never stop modules, and a listening stand-in would keep such a process from exiting.
  core.onClose(() => settings.close());
  const clock = core.clock;
  const google = settings.google
    ? new GoogleOAuthClient({ clientId: settings.google.clientId, clientSecret: settings.google.clientSecret, redirectUri: settings.google.redirectUri, endpoints: settings.google.endpoints, scopes: requestedScopes('google') }, clock)
    : undefined;
  const msalLog = core.logger.child({ component: 'msal' });
  // A refresh keeps a shared mailbox's .Shared scopes when its grant has them (keepScopes).
  const microsoftClient = (sharedMailbox: boolean) =>
    settings.microsoft
      ? new MicrosoftOAuthClient(
          {
            clientId: settings.microsoft.clientId,
            clientSecret: settings.microsoft.clientSecret,
            ...(settings.microsoft.credential.kind === 'certificate' ? { clientCertificate: settings.microsoft.credential } : {}),
            redirectUri: settings.microsoft.redirectUri,
            endpoints: settings.microsoft.endpoints,
            scopes: requestedScopes('microsoft', { sharedMailbox }),
            keepScopes: MICROSOFT_SHARED_SCOPES.map((s) => s.scope),
          },
          (level, message) => msalLog[level](message),
        )
      : undefined;
  const microsoft = microsoftClient(false);
  // Connect sessions naming a Microsoft 365 shared mailbox ask for the .Shared scopes too.
  const microsoftShared = microsoftClient(true);
  const events: MailboxEventSink = {
    async append(tx, input) {
      return (await core.outbox.appendEvent(tx, { tenantId: input.tenantId, mailboxId: input.mailboxId, type: input.type, ...(input.data ? { data: input.data } : {}) })).id;
    },
    committed: (ids) => notifyEventsCommitted(core.jobs, ids, core.logger),
  };
  const grants = new MailboxGrantRepository(core.prisma);
  // The Microsoft teardown asks the vault for tokens, and a module's mail() the provider factory,
  // when they are used (after start-up); both are built below from the modules' grant ports.
  const tokens: { vault?: TokenVault; providers?: MailProviderFactory } = {};
  const organizations = organizationMailAccess(core, settings);
  const modules = buildProviderModules({
    mail: { forMailbox: (mailbox) => tokens.providers!.forMailbox(mailbox) },
    google: { endpoints: settings.google?.endpoints ?? GOOGLE_ENDPOINTS, client: google, organizationToken: (mailbox) => tokens.vault!.accessToken(mailbox.id), kinds: [organizations.kinds.google] },
    microsoft: { endpoints: settings.microsoft?.endpoints, client: microsoft, accessToken: (mailbox) => tokens.vault!.accessToken(mailbox.id), kinds: [organizations.kinds.microsoft] },
  });
  const grantPorts = { google: modules.google.grant, microsoft: modules.microsoft.grant };
  const vault = new TokenVault({ grants, dataKeys: core.dataKeys, events, audit: core.audit, logger: core.logger, metrics: core.metrics, grantPorts, clock });
  tokens.vault = vault;
  const providers = new OrganizationMailProviderFactory({
    organizationMailbox: (id) => organizations.mailboxes.binding(id),
    organizationAccessDenied: (id) =>
      vault.markReauthRequired(id, 'organization_access_denied', 'The organization no longer lets the app read this mailbox (Exchange application access policy); once it is back in the policy, add it to the install again'),
    tokenSource: (id) => vault.tokenSource(id),
    onAuthFailure: (id) => vault.confirmAuthFailure(id),
    async onAccessDenied(id, reason) {
      await vault.markReauthRequired(id, reason, `${reason}: the member whose sign-in connected this shared mailbox no longer has access to it; a member must reconnect it`);
    },
    google: settings.google?.endpoints,
    microsoft: settings.microsoft?.endpoints,
    gmailUnitsPerMinute: core.config.sync.gmailQuotaUnitsPerMinute,
    async sharedMailboxAddress(mailboxId) {
      const mailbox = await core.mailboxes.findByIdUnscoped(mailboxId);
      if (!mailbox) throw new Error(`mailbox ${mailboxId} not found`);
      return (await core.dataKeys.decryptFor({ type: 'mailbox', id: mailbox.id }, mailbox.addressEnc, MAILBOX_ADDRESS_AAD(mailbox.id))).toString('utf8');
    },
  });
  tokens.providers = providers;
  const connect = new ConnectService({
    sessions: new ConnectSessionRepository(core.prisma),
    grants,
    tenants: core.tenants,
    mailboxes: core.mailboxes,
    dataKeys: core.dataKeys,
    blindIndex: core.blindIndex,
    vault,
    events,
    audit: core.audit,
    jobs: core.jobs,
    logger: core.logger,
    grantPorts,
    ...(microsoftShared
      ? { sharedMailboxes: { consent: microsoftGrantPort({ client: microsoftShared }).consent!, checkAccess: (token: string, address: string) => microsoftShared.checkSharedMailbox(token, address) } }
      : {}),
    publicUrl: core.config.http.publicUrl,
    sessionTtlMinutes: core.config.connect.sessionTtlMinutes,
    sandbox: settings.mode !== 'production',
    metrics: core.metrics,
    clock,
  });
  const reach = (configured: boolean, inProcess: boolean): ProviderReach =>
    settings.mode === 'production' ? (configured ? 'real' : 'not_configured') : inProcess ? 'fresh_stand_in' : 'external_stand_in';
  const sandboxState = new SandboxStateService({
    grants,
    vault,
    logger: core.logger,
    reach: { google: reach(settings.google !== undefined, settings.sandbox.google !== undefined), microsoft: reach(settings.microsoft !== undefined, settings.sandbox.microsoft !== undefined) },
  });
  return { settings, vault, providers, modules, google, microsoft, connect, sandboxState, organizations };
}

/** Hosted connect pages, OAuth callbacks and the connect-session API. */
export function connectModule(core: Core, { access }: { access: MailAccess }): ServiceModule {
  let reconciling: Promise<unknown> | undefined;
  return {
    name: 'connect',
    jobs() {
      // This process runs workers: once, say which mailboxes this provider setup cannot serve
      // (in the background — it must not hold up the start).
      reconciling = access.sandboxState.reconcile().catch((err: unknown) => core.logger.error({ err }, 'checking mailboxes against the provider setup failed'));
      access.vault.holdRefreshesUntil(reconciling);
      // Only that check asks which grants this process sealed: afterwards, remember none.
      void reconciling.then(() => access.vault.stopTrackingSeals());
    },
    routes(registry) {
      const branding = pageBrandingLoader(core.tenants, { production: core.config.production });
      registerConnectRoutes(registry, { connect: access.connect, secureCookies: core.config.http.publicUrl.startsWith('https://'), branding });
      registerOAuthCallbackRoutes(registry, { connect: access.connect, branding });
    },
    readiness: [
      {
        name: 'providers',
        required: false,
        async check() {
          const configured = access.connect.configuredProviders();
          return configured.length ? { status: 'ok', detail: `${access.settings.mode}: ${configured.join(', ')}` } : { status: 'not_configured', detail: 'set GOOGLE_CLIENT_ID and/or MICROSOFT_CLIENT_ID, or SANDBOX=1' };
        },
      },
    ],
    async stop() {
      await reconciling;
      await access.settings.close();
    },
  };
}

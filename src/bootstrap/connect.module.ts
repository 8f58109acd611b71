import { notifyEventsCommitted } from '../events/outbox.service.js';
import { registerConnectRoutes } from '../http/routes/connect.route.js';
import { registerOAuthCallbackRoutes } from '../http/routes/oauth-callback.route.js';
import { ConnectService } from '../oauth/connect.service.js';
import type { MailboxEventSink } from '../oauth/mailbox-event.port.js';
import { SandboxStateService, type ProviderReach } from '../oauth/sandbox-state.service.js';
import { requestedScopes } from '../oauth/scope-policy.js';
import { TokenVault } from '../oauth/token-vault.service.js';
import { GOOGLE_ENDPOINTS } from '../providers/google/google-endpoints.js';
import { GoogleOAuthClient } from '../providers/google/google-oauth.client.js';
import { MailProviderFactory } from '../providers/mail-provider.factory.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import { MicrosoftOAuthClient } from '../providers/microsoft/microsoft-oauth.client.js';
import type { ProviderModule } from '../providers/ports.js';
import { buildProviderModules } from '../providers/provider-modules.js';
import { ConnectSessionRepository } from '../storage/connect-session.repository.js';
import { MailboxGrantRepository } from '../storage/mailbox-grant.repository.js';
import { pageBrandingLoader } from '../tenancy/tenant-branding.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';
import { resolveProviderSettings, type ProviderSettings } from './provider-settings.js';

/**
 * Everything that needs a mailbox's access token, built once per process: the provider settings
 * (real or sandbox), the token vault, and the provider factory the sync, send and purge rooms use.
 * `await mailAccess(core)` from any module returns the same instance.
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
}

const instances = new WeakMap<Core, Promise<MailAccess>>();

export function mailAccess(core: Core): Promise<MailAccess> {
  let pending = instances.get(core);
  if (!pending) {
    pending = buildMailAccess(core);
    instances.set(core, pending);
    pending.catch(() => instances.delete(core));
  }
  return pending;
}

async function buildMailAccess(core: Core): Promise<MailAccess> {
  const settings = await resolveProviderSettings(core.config, core.logger);
  // In-process stand-ins live exactly as long as the core: one-off CLI commands close the core but
  // never stop modules, and a listening stand-in would keep such a process from exiting.
  core.onClose(() => settings.close());
  const clock = core.clock;
  const google = settings.google
    ? new GoogleOAuthClient({ clientId: settings.google.clientId, clientSecret: settings.google.clientSecret, redirectUri: settings.google.redirectUri, endpoints: settings.google.endpoints, scopes: requestedScopes('google') }, clock)
    : undefined;
  const msalLog = core.logger.child({ component: 'msal' });
  const microsoft = settings.microsoft
    ? new MicrosoftOAuthClient(
        { clientId: settings.microsoft.clientId, clientSecret: settings.microsoft.clientSecret, redirectUri: settings.microsoft.redirectUri, endpoints: settings.microsoft.endpoints, scopes: requestedScopes('microsoft') },
        (level, message) => msalLog[level](message),
      )
    : undefined;
  const events: MailboxEventSink = {
    async append(tx, input) {
      return (await core.outbox.appendEvent(tx, { tenantId: input.tenantId, mailboxId: input.mailboxId, type: input.type, ...(input.data ? { data: input.data } : {}) })).id;
    },
    committed: (ids) => notifyEventsCommitted(core.jobs, ids, core.logger),
  };
  const grants = new MailboxGrantRepository(core.prisma);
  const vault = new TokenVault({ grants, dataKeys: core.dataKeys, events, audit: core.audit, logger: core.logger, metrics: core.metrics, google, microsoft, clock });
  const providers = new MailProviderFactory({
    tokenSource: (id) => vault.tokenSource(id),
    onAuthFailure: (id) => vault.confirmAuthFailure(id),
    google: settings.google?.endpoints,
    microsoft: settings.microsoft?.endpoints,
    gmailUnitsPerMinute: core.config.sync.gmailQuotaUnitsPerMinute,
  });
  const modules = buildProviderModules({
    google: { endpoints: settings.google?.endpoints ?? GOOGLE_ENDPOINTS, grant: google },
    microsoft: { endpoints: settings.microsoft?.endpoints, accessToken: (mailbox) => vault.accessToken(mailbox.id) },
  });
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
    google,
    microsoft,
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
  return { settings, vault, providers, modules, google, microsoft, connect, sandboxState };
}

/** Hosted connect pages, OAuth callbacks and the connect-session API. */
export async function connectModule(core: Core): Promise<ServiceModule> {
  const access = await mailAccess(core);
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

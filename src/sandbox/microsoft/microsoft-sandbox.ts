import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { sendJson } from './sandbox-http.util.js';
import { SandboxGraph } from './sandbox-graph.handler.js';
import { SandboxIdentity, type RevocationRecord, type SandboxClient } from './sandbox-identity.handler.js';
import { parseMime, SandboxMailboxStore, type FolderName, type RefreshFailureMode, type SendRight, type SentRecord } from './sandbox-mailbox.store.js';
import { SandboxSubscriptions, type LifecycleEvent, type NotificationAttempt, type NotificationTiming } from './sandbox-subscriptions.service.js';
import { SandboxThrottle, type FaultInput, type ThrottleOptions } from './sandbox-throttle.js';
import { selfSignedCertificate } from '../self-signed-certificate.js';
import { handleControlRequest } from './sandbox-control.handler.js';
import { registerSandboxCa, unregisterSandboxCa } from './sandbox-ca.registry.js';
import { SandboxAppAccess, type AdminConsent } from './sandbox-app-access.js';

export interface MicrosoftSandboxOptions {
  /** Directory (tenant) id used in the authority, id_token `tid` and client_info `utid`. */
  tenantId?: string;
  /** App registrations. Default: one client `sandbox-client-id` / `sandbox-client-secret` accepting any redirect URI. */
  clients?: SandboxClient[];
  users?: Array<{ email: string; displayName?: string }>;
  identityPort?: number;
  graphPort?: number;
  accessTokenTtlSeconds?: number;
  /** Consent for an unknown address creates the mailbox (default true). */
  autoCreateUsers?: boolean;
  throttle?: Partial<ThrottleOptions>;
  notifications?: Partial<NotificationTiming>;
  /** Mail sent to another sandbox user lands in that user's inbox (default true). */
  deliverToLocalRecipients?: boolean;
  /** When set, the /_sandbox control API requires header `x-sandbox-control-token`. */
  controlToken?: string;
  now?: () => number;
}

export interface MsalSandboxConfig {
  authority: string;
  knownAuthorities: string[];
  cloudDiscoveryMetadata: string;
}

export interface SandboxUserInfo {
  id: string;
  email: string;
  displayName: string;
  tenantId: string;
  /** MSAL's homeAccountId for this user: `<uid>.<utid>`. */
  homeAccountId: string;
}

export interface DeliveredMessage {
  id: string;
  conversationId: string;
  internetMessageId: string;
  receivedDateTime: string;
}

export interface MailboxItemSummary {
  id: string;
  folder: FolderName;
  subject: string;
  internetMessageId: string;
  conversationId: string;
  isDraft: boolean;
  receivedDateTime: string;
  attachments: Array<{ name: string; size: number; sha256: string }>;
}

export interface SubscriptionInfo {
  id: string;
  email: string;
  resource: string;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl: string | undefined;
  expirationDateTime: string;
  deleted: boolean;
  removedBy: 'client' | 'lifecycle' | undefined;
  reauthorizedCount: number;
}

export interface MicrosoftSandbox {
  readonly tenantId: string;
  /** `https://127.0.0.1:PORT/<tenant>` — MSAL only accepts https authorities. */
  readonly authority: string;
  readonly identityOrigin: string;
  /** Plain-http Graph root without version, e.g. `http://127.0.0.1:PORT` (requests go to `/v1.0/...`). */
  readonly graphBaseUrl: string;
  /** PEM of the self-signed certificate the identity endpoint serves; trust it as a CA. */
  readonly caCertPem: string;
  /** The exact MSAL `auth` pieces that keep MSAL from calling out (knownAuthorities + cloudDiscoveryMetadata). */
  readonly msal: MsalSandboxConfig;
  readonly clients: readonly SandboxClient[];

  createUser(email: string, displayName?: string): SandboxUserInfo;
  registerClient(client: SandboxClient): void;
  /** Puts raw RFC 5322 bytes into the inbox: threads by In-Reply-To/References, adds a delta change, notifies subscriptions. */
  deliver(email: string, rawMime: Buffer, opts?: { receivedAt?: Date; folder?: FolderName }): Promise<DeliveredMessage>;
  deleteMessage(email: string, messageId: string): boolean;
  /** A shared mailbox (no sign-in of its own); members read it under `/users/{address}/…` with the delegated `.Shared` scopes. */
  createSharedMailbox(email: string, displayName?: string): { id: string; email: string };
  /** Gives a user full access to a shared mailbox (`member: true`) or takes it away (next call: 403 ErrorAccessDenied). */
  setSharedMember(sharedEmail: string, memberEmail: string, member: boolean): void;
  /** The mailbox's secondary SMTP addresses (proxyAddresses `smtp:`), readable with `/me?$select=proxyAddresses`. */
  setAliases(email: string, aliases: string[]): void;
  /** Exchange Send As / Send on Behalf for `trusteeEmail` on `mailboxEmail` (`null` removes it); see sandbox-send-as.ts. */
  setSendRight(mailboxEmail: string, trusteeEmail: string, right: SendRight | null): void;
  /** Set-OrganizationConfig -SendFromAliasEnabled (default false: an alias in From is rewritten to the primary address). */
  setSendFromAliasEnabled(enabled: boolean): void;
  /** A bearer token for Graph calls without the OAuth dance. */
  issueAccessToken(email: string, scopes?: string[]): string;
  /** Entra directory roles (template ids, SANDBOX_DIRECTORY_ROLES) of a user: the ID token's `wids`; admin consent needs Global or Privileged Role Administrator. */
  setDirectoryRoles(email: string, roleTemplateIds: string[]): void;
  /** Admin consent without the page (the consent page at `/{tenant}/v2.0/adminconsent` does the same). */
  grantAdminConsent(clientId: string, roles?: string[], consentedBy?: string): void;
  /** Removes the app from the tenant: client-credential tokens are refused, and issued ones stop working. */
  revokeAdminConsent(clientId: string): void;
  adminConsents(): Record<string, AdminConsent>;
  /**
   * Exchange Online application access policy (RestrictAccess) for the app: only these mailboxes
   * answer app-only calls; `null` removes the policy (every mailbox of the tenant).
   */
  setApplicationAccessPolicy(clientId: string, mailboxes: string[] | null): void;
  /** Deletes the user's refresh tokens: the next refresh gets invalid_grant (AADSTS50173, suberror bad_token). */
  revokeGrants(email: string, opts?: { invalidateAccessTokens?: boolean }): void;
  /** Makes refresh fail with interaction_required (AADSTS50076) until cleared or the user consents again. */
  setRefreshFailure(email: string, mode: RefreshFailureMode | undefined): void;
  expireAccessTokens(email: string): void;
  /** Invalidates every delta/skip token of the mailbox: next use gets 410 Gone or 400 syncStateNotFound. */
  expireDelta(email: string, mode: 'gone' | 'syncStateNotFound'): void;
  /** Delta links name the inbox `mailFolders('inbox')` (default) or by its folder id, as Microsoft's samples do. */
  setDeltaLinkFolder(email: string, style: 'name' | 'id'): void;
  /** Delta pages served to the mailbox: `Prefer: odata.maxpagesize` asked for (string as sent) and items returned. */
  deltaRequests(email: string): Array<{ maxPageSize: string | undefined; returned: number }>;
  /** Authority metadata GETs served so far (OpenID configuration, instance discovery). */
  metadataRequests(): number;
  injectFault(fault: FaultInput): void;
  clearFaults(): void;
  setLatency(ms: number): void;
  configureThrottle(patch: Partial<ThrottleOptions>): void;
  /** The next `count` change notifications are not sent at all. */
  dropNotifications(count: number): void;
  sendLifecycleNotification(subscriptionId: string, event: LifecycleEvent): void;

  sentMessages(email: string): SentRecord[];
  mailbox(email: string): MailboxItemSummary[];
  subscriptions(): SubscriptionInfo[];
  notificationAttempts(): NotificationAttempt[];
  revocations(): RevocationRecord[];
  peakConcurrency(email: string): number;
  throttledCount(): number;
  close(): Promise<void>;
}

async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export const DEFAULT_SANDBOX_CLIENT: SandboxClient = { clientId: 'sandbox-client-id', clientSecret: 'sandbox-client-secret' };

export async function startMicrosoftSandbox(options: MicrosoftSandboxOptions = {}): Promise<MicrosoftSandbox> {
  const now = options.now ?? Date.now;
  const tenantId = options.tenantId ?? randomUUID();
  const store = new SandboxMailboxStore(tenantId);
  const appAccess = new SandboxAppAccess();
  let identityOrigin = '';
  let graphBaseUrl = '';
  const identity = new SandboxIdentity(store, {
    issuerOrigin: () => identityOrigin,
    tenantId,
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 3600,
    now,
    autoCreateUsers: options.autoCreateUsers ?? true,
    appAccess,
  });
  const clients = options.clients ?? [DEFAULT_SANDBOX_CLIENT];
  for (const c of clients) identity.registerClient(c);
  const throttle = new SandboxThrottle(
    { maxConcurrentPerMailbox: 4, requestsPerWindow: 10_000, windowMs: 10 * 60_000, retryAfterSeconds: 1, ...options.throttle },
    now,
  );
  const subscriptions = new SandboxSubscriptions(
    { ackTimeoutMs: 3000, retryDelaysMs: [1000, 5000, 30_000], validationTimeoutMs: 10_000, ...options.notifications },
    now,
  );

  const deliver = async (email: string, rawMime: Buffer, opts: { receivedAt?: Date; folder?: FolderName } = {}): Promise<DeliveredMessage> => {
    const user = store.requireUser(email);
    const parsed = await parseMime(rawMime);
    const msg = store.addMessage(user, { folder: opts.folder ?? 'inbox', mime: Buffer.from(rawMime), mimeFromClient: true, parsed, receivedAt: opts.receivedAt ?? new Date(now()), isDraft: false });
    subscriptions.notifyCreated(user, msg);
    return { id: msg.id, conversationId: msg.conversationId, internetMessageId: msg.internetMessageId, receivedDateTime: msg.receivedDateTime };
  };

  const graph = new SandboxGraph({
    store,
    identity,
    subscriptions,
    throttle,
    baseUrl: () => graphBaseUrl,
    now,
    appAccess,
    onSent: (from, mime, recipients) => {
      if (options.deliverToLocalRecipients === false) return;
      for (const r of new Set(recipients.map((x) => x.toLowerCase()))) {
        if (r !== from.email.toLowerCase() && store.findByEmail(r)) void deliver(r, mime).catch(() => undefined);
      }
    },
  });

  // MSAL refuses an authority that is not https (authority_uri_insecure): a throw-away certificate
  // for 127.0.0.1, trusted by clients as its own CA.
  const cert = await selfSignedCertificate({ commonName: '127.0.0.1', ips: ['127.0.0.1'], dnsNames: ['localhost'], ca: true });
  const identityServer = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    identity
      .handle(req, res)
      .then((handled) => {
        if (!handled) sendJson(res, 404, { error: 'not_found', error_description: 'AADSTS90002: Unknown endpoint.' });
      })
      .catch(() => {
        if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: 'AADSTS90033: A transient error has occurred.' });
      });
  });

  // Assigned once the ports are known; the control routes only run after that.
  const ref: { sandbox?: MicrosoftSandbox } = {};
  const graphServer = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    if ((req.url ?? '').startsWith('/_sandbox/')) {
      if (!ref.sandbox) return sendJson(res, 503, { error: 'sandbox starting' });
      handleControlRequest(ref.sandbox, req, res, options.controlToken).catch(() => {
        if (!res.headersSent) sendJson(res, 500, { error: 'control request failed' });
      });
      return;
    }
    void graph.handle(req, res);
  });

  const identityPort = await listen(identityServer, options.identityPort ?? 0);
  const graphPort = await listen(graphServer, options.graphPort ?? 0);
  identityOrigin = `https://127.0.0.1:${identityPort}`;
  graphBaseUrl = `http://127.0.0.1:${graphPort}`;
  const authority = `${identityOrigin}/${tenantId}`;
  registerSandboxCa(identityOrigin, cert.certPem);
  const host = `127.0.0.1:${identityPort}`;

  for (const u of options.users ?? []) store.createUser(u.email, u.displayName);

  const info = (email: string): SandboxUserInfo => {
    const u = store.requireUser(email);
    return { id: u.id, email: u.email, displayName: u.displayName, tenantId: u.tenantId, homeAccountId: `${u.id}.${u.tenantId}` };
  };

  const api: MicrosoftSandbox = {
    tenantId,
    authority,
    identityOrigin,
    graphBaseUrl,
    caCertPem: cert.certPem,
    msal: {
      authority,
      knownAuthorities: [host],
      cloudDiscoveryMetadata: JSON.stringify({
        tenant_discovery_endpoint: `${authority}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
      }),
    },
    clients,
    createUser: (email, displayName) => {
      store.createUser(email, displayName);
      return info(email);
    },
    registerClient: (c) => identity.registerClient(c),
    deliver,
    deleteMessage: (email, id) => store.deleteMessage(store.requireUser(email), id),
    createSharedMailbox: (email, displayName) => {
      const u = store.createSharedMailbox(email, displayName);
      return { id: u.id, email: u.email };
    },
    setSharedMember: (sharedEmail, memberEmail, member) => store.setSharedMember(sharedEmail, memberEmail, member),
    setAliases: (email, aliases) => store.setAliases(email, aliases),
    setSendRight: (mailboxEmail, trusteeEmail, right) => store.setSendRight(mailboxEmail, trusteeEmail, right),
    setSendFromAliasEnabled: (enabled) => {
      store.sendFromAliasEnabled = enabled;
    },
    issueAccessToken: (email, scopes) => identity.issueAccessToken(email, scopes),
    setDirectoryRoles: (email, roles) => identity.setDirectoryRoles(email, roles),
    grantAdminConsent: (clientId, roles = ['Mail.Read', 'Mail.Send'], consentedBy = 'admin@sandbox.test') => appAccess.grantConsent(clientId, roles, consentedBy, now()),
    revokeAdminConsent: (clientId) => {
      appAccess.revokeConsent(clientId);
      identity.expireAppTokens(clientId);
    },
    adminConsents: () => Object.fromEntries([...appAccess.consents].map(([k, v]) => [k, { ...v, roles: [...v.roles] }])),
    setApplicationAccessPolicy: (clientId, mailboxes) => appAccess.setPolicy(clientId, mailboxes === null ? undefined : mailboxes.map((e) => store.requireUser(e).id)),
    revokeGrants: (email, opts) => identity.revokeGrants(email, opts),
    setRefreshFailure: (email, mode) => {
      store.requireUser(email).refreshFailure = mode;
    },
    expireAccessTokens: (email) => identity.expireAccessTokens(email),
    expireDelta: (email, mode) => {
      const u = store.requireUser(email);
      u.deltaEpoch += 1;
      u.deltaExpiryMode = mode;
    },
    deltaRequests: (email) => [...store.requireUser(email).deltaRequests],
    metadataRequests: () => identity.metadataRequests,
    setDeltaLinkFolder: (email, style) => {
      store.requireUser(email).deltaLinkFolder = style;
    },
    injectFault: (f) => throttle.injectFault(f),
    clearFaults: () => throttle.clearFaults(),
    setLatency: (ms) => {
      throttle.latencyMs = ms;
    },
    configureThrottle: (patch) => throttle.configure(patch),
    dropNotifications: (count) => {
      subscriptions.dropRemaining = count;
    },
    sendLifecycleNotification: (id, event) => subscriptions.sendLifecycle(id, event),
    sentMessages: (email) => store.requireUser(email).sent.map((s) => ({ ...s })),
    mailbox: (email) =>
      [...store.requireUser(email).messages.values()].map((m) => ({
        id: m.id,
        folder: m.folder,
        subject: m.subject,
        internetMessageId: m.internetMessageId,
        conversationId: m.conversationId,
        isDraft: m.isDraft,
        receivedDateTime: m.receivedDateTime,
        attachments: m.attachments.map((a) => ({ name: a.name, size: a.size, sha256: a.sha256 })),
      })),
    subscriptions: () =>
      [...subscriptions.subscriptions.values()].map((s) => ({
        id: s.id,
        email: store.findById(s.userId)?.email ?? '',
        resource: s.resource,
        changeType: s.changeType,
        notificationUrl: s.notificationUrl,
        lifecycleNotificationUrl: s.lifecycleNotificationUrl,
        expirationDateTime: s.expirationDateTime,
        deleted: s.deleted,
        removedBy: s.removedBy,
        reauthorizedCount: s.reauthorizedCount,
      })),
    notificationAttempts: () => [...subscriptions.attempts],
    revocations: () => [...identity.revocations],
    peakConcurrency: (email) => throttle.peakConcurrency.get(store.requireUser(email).id) ?? 0,
    throttledCount: () => throttle.throttledCount,
    close: async () => {
      subscriptions.close();
      unregisterSandboxCa(identityOrigin);
      await Promise.all([closeServer(identityServer as unknown as Server), closeServer(graphServer)]);
    },
  };
  ref.sandbox = api;
  return api;
}

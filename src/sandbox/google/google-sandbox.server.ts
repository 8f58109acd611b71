import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { z } from 'zod';
import type { GoogleEndpoints } from '../../providers/google/google-endpoints.js';
import { googleErrors } from './google-api-error.js';
import { createGmailApiRouter, gmailErrorHandler, type GmailFaults, type SentRecord, type WatchRecord } from './gmail-api.route.js';
import { GmailMailboxStore, type SandboxMailbox, type SandboxSendAs, type StoredMessage } from './gmail-mailbox.store.js';
import { DEFAULT_QUOTA_CONFIG, GmailQuotaMeter, type GmailMethod, type QuotaCharge, type QuotaConfig } from './gmail-quota.meter.js';
import { createGoogleOAuthRouter, OAUTH_PATHS } from './google-oauth.route.js';
import { GoogleOAuthStore, type RegisteredClient } from './google-oauth.store.js';
import { ServiceAccountDirectory, type ServiceAccountKeyFile } from './google-service-accounts.js';
import { createSigningKey, type SigningKey } from './google-signing-key.js';
import { PubSubPushService, type PushAttempt, type PushConfig } from './pubsub-push.service.js';

export interface GoogleSandboxOptions {
  /** 0 (default) = ephemeral port. Always binds 127.0.0.1. */
  port?: number;
  /** Registered OAuth clients. Omitted = any client id with any loopback redirect_uri. */
  clients?: RegisteredClient[];
  quota?: Partial<Omit<QuotaConfig, 'costs'>> & { costs?: Partial<Record<GmailMethod, number>> };
  push?: PushConfig;
  /** Refresh tokens of the accept-any-client mode expire after this long ("Testing" apps: 7 days). */
  testingRefreshTokenTtlMs?: number;
  /** History records kept per mailbox; startHistoryIds older than the kept range answer 404. */
  historyMaxRecords?: number;
  /** Reuse a signing key (e.g. across restarts of the standalone sandbox) so cached JWKS stay valid. */
  signingKey?: SigningKey;
  /** Clock for token/code expiry, quota windows, internalDate defaults. */
  now?: () => number;
  random?: () => number;
}

export interface DeliverOptions {
  labelIds?: string[];
  internalDate?: number;
  threadId?: string;
}

/** The stand-in's URLs in the connector's own endpoint shape, plus its userinfo endpoint. */
export type SandboxEndpoints = Omit<GoogleEndpoints, 'issuers'> & { userInfoUrl: string };

export interface GoogleSandbox {
  readonly url: string;
  readonly endpoints: SandboxEndpoints;
  close(): Promise<void>;

  // --- mail
  createUser(email: string): SandboxMailbox;
  deliver(email: string, rawMime: Buffer, opts?: DeliverOptions): StoredMessage;
  modifyLabels(email: string, messageId: string, add: string[], remove: string[]): void;
  deleteMessage(email: string, messageId: string): void;
  mailbox(email: string): SandboxMailbox | undefined;
  currentHistoryId(email: string): string;
  /** Adds or replaces a custom send-as alias (`verificationStatus` `pending` until verified). */
  setSendAs(email: string, alias: { sendAsEmail: string; displayName?: string; verificationStatus: SandboxSendAs['verificationStatus'] }): void;
  removeSendAs(email: string, address: string): void;

  // --- Google Workspace: service accounts and domain-wide delegation (jwt-bearer grant)
  /** A new service account (or a new key of an existing one); answers its key file. */
  createServiceAccount(opts?: { name?: string; projectId?: string }): Promise<ServiceAccountKeyFile>;
  deleteServiceAccountKey(email: string, keyId: string): void;
  /** The administrator of `domain` authorises the service account's client id for `scopes`. */
  delegateDomainWide(domain: string, clientId: string, scopes: string[]): void;
  revokeDomainWideDelegation(domain: string, clientId: string): void;

  // --- faults
  rateLimitNext(n: number): void;
  serverErrorNext(n: number, status?: 500 | 503): void;
  setLatency(ms: number): void;
  /** Move the history horizon to now (or to `beforeHistoryId`): older startHistoryIds get 404. */
  expireHistory(email: string, beforeHistoryId?: string): void;
  /** The user removed the app's access: every refresh/access token for them stops working. */
  revokeUserGrants(email: string, clientId?: string): void;
  dropNextPushes(n: number): void;
  configurePush(config: PushConfig | undefined): void;
  setQuota(config: Partial<Omit<QuotaConfig, 'costs'>> & { costs?: Partial<Record<GmailMethod, number>> }): void;

  // --- inspection
  sent(email?: string): SentRecord[];
  revokedTokens(): Array<{ kind: 'access' | 'refresh'; email: string; clientId: string; at: number }>;
  watches(): WatchRecord[];
  quotaUsed(email: string): number;
  /** Every quota decision (granted or answered 429/403) from now on; returns the unsubscribe. */
  observeQuota(fn: (charge: QuotaCharge) => void): () => void;
  pushes(): PushAttempt[];
}

const deliverBody = z.object({
  raw: z.string().min(1),
  labelIds: z.array(z.string()).optional(),
  internalDate: z.number().int().optional(),
  threadId: z.string().optional(),
});
const sendAsBody = z.object({
  sendAsEmail: z.email(),
  displayName: z.string().max(256).optional(),
  verificationStatus: z.enum(['accepted', 'pending']),
});
const faultsBody = z.object({
  rateLimitNext: z.number().int().min(0).optional(),
  serverErrorNext: z.number().int().min(0).optional(),
  serverErrorStatus: z.union([z.literal(500), z.literal(503)]).optional(),
  latencyMs: z.number().int().min(0).max(60_000).optional(),
  dropNextPushes: z.number().int().min(0).optional(),
});
const pushBody = z.object({
  endpoint: z.url(),
  audience: z.string().optional(),
  serviceAccountEmail: z.email(),
  subscription: z.string().optional(),
  dropProbability: z.number().min(0).max(1).optional(),
  maxAttempts: z.number().int().min(1).max(20).optional(),
  retryBackoffMs: z.number().int().min(0).optional(),
  minIntervalMs: z.number().int().min(0).optional(),
});
const quotaBody = z.object({
  unitsPerWindow: z.number().int().positive().optional(),
  windowMs: z.number().int().positive().optional(),
  overLimitResponse: z.enum(['429', '403']).optional(),
  costs: z.record(z.string(), z.number().int().min(0)).optional(),
});

/**
 * A local stand-in for Google OAuth 2.0 + the Gmail API + Pub/Sub push, faithful enough that
 * google-auth-library's OAuth2Client and @googleapis/gmail run against it unchanged.
 */
export async function startGoogleSandbox(options: GoogleSandboxOptions = {}): Promise<GoogleSandbox> {
  const now = options.now ?? Date.now;
  const key = options.signingKey ?? (await createSigningKey());
  const oauth = new GoogleOAuthStore(options.clients, now, options.testingRefreshTokenTtlMs);
  const mailboxes = new GmailMailboxStore(now, options.historyMaxRecords);
  const quota = new GmailQuotaMeter(mergeQuota(DEFAULT_QUOTA_CONFIG, options.quota), now);
  const faults: GmailFaults = { rateLimitNext: 0, serverErrorNext: 0, serverErrorStatus: 503, latencyMs: 0 };
  const sent: SentRecord[] = [];
  const watches = new Map<string, WatchRecord>();
  const push = new PubSubPushService(key, now, options.random);
  push.configure(options.push);
  let baseUrl = '';
  // A Workspace user is a mailbox of the stand-in (createUser / a delivery).
  const serviceAccounts = new ServiceAccountDirectory(now, () => baseUrl + OAUTH_PATHS.token, (email) => mailboxes.get(email) !== undefined);

  mailboxes.onChange((mb, entry) => {
    const w = watches.get(mb.email);
    if (!w || !w.active || w.expiration <= now()) return;
    const labels = new Set([...entry.labelIds, ...entry.changedLabelIds]);
    const hit = w.labelIds.length === 0 || w.labelIds.some((l) => labels.has(l));
    if (w.labelFilterBehavior === 'EXCLUDE' ? hit && w.labelIds.length > 0 : !hit) return;
    push.notify(mb.email, mb.historyId.toString());
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(
    createGoogleOAuthRouter({
      store: oauth,
      key,
      now,
      baseUrl: () => baseUrl,
      onUserSeen: (email) => mailboxes.ensure(email),
      serviceAccounts,
    }),
  );
  app.use(
    createGmailApiRouter({
      oauth,
      mailboxes,
      quota,
      faults,
      sent,
      watches,
      now,
      onWatch: (email, historyId) => push.notify(email, historyId),
    }),
  );

  const control = express.Router();
  control.use(express.json({ limit: '60mb' }));
  control.post('/users', (req, res) => {
    const p = z.object({ email: z.email() }).safeParse(req.body);
    if (!p.success) return res.status(400).json({ error: 'invalid_email' });
    const mb = mailboxes.ensure(p.data.email);
    res.status(201).json({ email: mb.email, historyId: mb.historyId.toString() });
  });
  control.post('/users/:email/messages', express.raw({ type: 'message/rfc822', limit: '60mb' }), (req, res) => {
    const email = String(req.params.email);
    if (Buffer.isBuffer(req.body)) {
      const m = mailboxes.addMessage(email, req.body);
      return res.status(201).json({ id: m.id, threadId: m.threadId, historyId: m.historyId });
    }
    const p = deliverBody.safeParse(req.body);
    if (!p.success) return res.status(400).json({ error: 'invalid_body', issues: p.error.issues.map((i) => i.path.join('.')) });
    const m = mailboxes.addMessage(email, Buffer.from(p.data.raw, 'base64'), p.data);
    res.status(201).json({ id: m.id, threadId: m.threadId, historyId: m.historyId });
  });
  control.put('/users/:email/send-as', (req, res) => {
    const p = sendAsBody.safeParse(req.body);
    if (!p.success) return res.status(400).json({ error: 'invalid_body' });
    mailboxes.setSendAs(String(req.params.email), { ...p.data, displayName: p.data.displayName ?? '' });
    res.status(204).end();
  });
  control.delete('/users/:email/send-as/:address', (req, res) => {
    mailboxes.removeSendAs(String(req.params.email), String(req.params.address));
    res.status(204).end();
  });
  control.post('/service-accounts', async (req, res) => {
    const p = z.object({ name: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/).optional(), projectId: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/).optional() }).safeParse(req.body ?? {});
    if (!p.success) return res.status(400).json({ error: 'invalid_body' });
    res.status(201).json(await serviceAccounts.create(p.data));
  });
  control.put('/domain-wide-delegation', (req, res) => {
    const p = z.object({ domain: z.string().min(3), clientId: z.string().regex(/^\d+$/), scopes: z.array(z.string()).min(1) }).safeParse(req.body);
    if (!p.success) return res.status(400).json({ error: 'invalid_body' });
    serviceAccounts.delegate(p.data.domain, p.data.clientId, p.data.scopes);
    res.status(204).end();
  });
  control.delete('/domain-wide-delegation/:domain/:clientId', (req, res) => {
    serviceAccounts.revokeDelegation(String(req.params.domain), String(req.params.clientId));
    res.status(204).end();
  });
  control.post('/users/:email/expire-history', (req, res) => {
    mailboxes.expireHistory(String(req.params.email));
    res.status(204).end();
  });
  control.post('/users/:email/revoke', (req, res) => {
    oauth.revokeUser(String(req.params.email).toLowerCase());
    res.status(204).end();
  });
  control.post('/faults', (req, res) => {
    const p = faultsBody.safeParse(req.body);
    if (!p.success) return res.status(400).json({ error: 'invalid_body' });
    if (p.data.rateLimitNext !== undefined) faults.rateLimitNext = p.data.rateLimitNext;
    if (p.data.serverErrorNext !== undefined) faults.serverErrorNext = p.data.serverErrorNext;
    if (p.data.serverErrorStatus !== undefined) faults.serverErrorStatus = p.data.serverErrorStatus;
    if (p.data.latencyMs !== undefined) faults.latencyMs = p.data.latencyMs;
    if (p.data.dropNextPushes !== undefined) push.dropNextPushes(p.data.dropNextPushes);
    res.json(faults);
  });
  control.put('/push', (req, res) => {
    const p = pushBody.safeParse(req.body);
    if (!p.success) return res.status(400).json({ error: 'invalid_body' });
    push.configure(p.data);
    res.json(p.data);
  });
  control.put('/quota', (req, res) => {
    const p = quotaBody.safeParse(req.body);
    if (!p.success) return res.status(400).json({ error: 'invalid_body' });
    quota.config = mergeQuota(quota.config, p.data as GoogleSandboxOptions['quota']);
    res.json(quota.config);
  });
  // Inspection answers never include tokens or message bodies: sizes and ids only.
  control.get('/state', (_req, res) => {
    res.json({
      users: mailboxes.all().map((mb) => ({
        email: mb.email,
        messages: mb.messages.size,
        historyId: mb.historyId.toString(),
        historyHorizon: mb.historyHorizon.toString(),
      })),
      watches: [...watches.values()],
      sent: sent.map((s) => ({ email: s.email, id: s.id, threadId: s.threadId, requestedThreadId: s.requestedThreadId, size: s.raw.length, via: s.via })),
      revoked: oauth.revokedLog,
      domainWideDelegations: serviceAccounts.delegationsList(),
      quotaUsed: quota.usage(),
      pushes: push.attempts,
      faults,
    });
  });
  app.use('/_sandbox', control);
  app.use((_req, _res, next) => next(googleErrors.notFound()));
  app.use(gmailErrorHandler);

  const server: Server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;
  const endpoints: SandboxEndpoints = {
    oauth2AuthBaseUrl: baseUrl + OAUTH_PATHS.authorize,
    oauth2TokenUrl: baseUrl + OAUTH_PATHS.token,
    oauth2RevokeUrl: baseUrl + OAUTH_PATHS.revoke,
    oauth2FederatedSignonPemCertsUrl: baseUrl + OAUTH_PATHS.pemCerts,
    oauth2FederatedSignonJwkCertsUrl: baseUrl + OAUTH_PATHS.jwkCerts,
    tokenInfoUrl: baseUrl + OAUTH_PATHS.tokenInfo,
    userInfoUrl: baseUrl + OAUTH_PATHS.userInfo,
    gmailRootUrl: baseUrl + '/',
  };

  return {
    url: baseUrl,
    endpoints,
    async close() {
      push.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    createUser: (email) => mailboxes.ensure(email),
    deliver: (email, rawMime, opts = {}) => mailboxes.addMessage(email, rawMime, opts),
    modifyLabels: (email, id, add, remove) => {
      mailboxes.modifyLabels(email, id, add, remove);
    },
    deleteMessage: (email, id) => {
      mailboxes.deleteMessage(email, id);
    },
    mailbox: (email) => mailboxes.get(email),
    currentHistoryId: (email) => mailboxes.ensure(email).historyId.toString(),
    setSendAs: (email, alias) => mailboxes.setSendAs(email, { ...alias, displayName: alias.displayName ?? '' }),
    removeSendAs: (email, address) => mailboxes.removeSendAs(email, address),
    createServiceAccount: (opts) => serviceAccounts.create(opts),
    deleteServiceAccountKey: (email, keyId) => serviceAccounts.deleteKey(email, keyId),
    delegateDomainWide: (domain, clientId, scopes) => serviceAccounts.delegate(domain, clientId, scopes),
    revokeDomainWideDelegation: (domain, clientId) => serviceAccounts.revokeDelegation(domain, clientId),
    rateLimitNext: (n) => {
      faults.rateLimitNext = n;
    },
    serverErrorNext: (n, status = 503) => {
      faults.serverErrorNext = n;
      faults.serverErrorStatus = status;
    },
    setLatency: (ms) => {
      faults.latencyMs = ms;
    },
    expireHistory: (email, before) => mailboxes.expireHistory(email, before === undefined ? undefined : BigInt(before)),
    revokeUserGrants: (email, clientId) => oauth.revokeUser(email.toLowerCase(), clientId),
    dropNextPushes: (n) => push.dropNextPushes(n),
    configurePush: (config) => push.configure(config),
    setQuota: (config) => {
      quota.config = mergeQuota(quota.config, config);
    },
    sent: (email) => sent.filter((s) => !email || s.email === email.toLowerCase()),
    revokedTokens: () => [...oauth.revokedLog],
    watches: () => [...watches.values()],
    quotaUsed: (email) => quota.used(email.toLowerCase()),
    observeQuota: (fn) => quota.observe(fn),
    pushes: () => [...push.attempts],
  };
}

function mergeQuota(base: QuotaConfig, patch: GoogleSandboxOptions['quota']): QuotaConfig {
  const costs = { ...base.costs };
  for (const [k, v] of Object.entries(patch?.costs ?? {})) {
    if (k in costs && typeof v === 'number') costs[k as GmailMethod] = v;
  }
  return {
    unitsPerWindow: patch?.unitsPerWindow ?? base.unitsPerWindow,
    windowMs: patch?.windowMs ?? base.windowMs,
    overLimitResponse: patch?.overLimitResponse ?? base.overLimitResponse,
    costs,
  };
}

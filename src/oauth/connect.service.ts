import type { AuditService } from '../audit/audit.service.js';
import type { BlindIndex } from '../crypto/blind-index.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { syncPriority } from '../jobs/job-map.js';
import type { JobQueue } from '../jobs/job-queue.js';
import { MAILBOX_ADDRESS_AAD } from '../mailboxes/message-content.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import { isProviderError } from '../providers/provider-error.js';
import { newId } from '../storage/ids.js';
import type { MailboxRepository } from '../storage/mailbox.repository.js';
import type { TenantRepository } from '../storage/tenant.repository.js';
import type { ConnectResult, ConnectSessionRecord, ConnectSessionRepository } from '../storage/connect-session.repository.js';
import type { GoogleOAuthClient } from '../providers/google/google-oauth.client.js';
import type { MailboxCredential } from './mailbox-credential.js';
import type { MailboxEventSink } from './mailbox-event.port.js';
import type { MailboxGrantRepository } from '../storage/mailbox-grant.repository.js';
import type { MicrosoftOAuthClient } from '../providers/microsoft/microsoft-oauth.client.js';
import { hashState, newState, STATE_PATTERN } from './oauth-state.js';
import { missingScopes, scopesFor, type ScopeRequest } from './scope-policy.js';
import type { TokenVault } from './token-vault.service.js';

export interface ConnectServiceDeps {
  sessions: ConnectSessionRepository;
  grants: MailboxGrantRepository;
  tenants: Pick<TenantRepository, 'find'>;
  mailboxes: Pick<MailboxRepository, 'findForTenant'>;
  dataKeys: DataKeyService;
  blindIndex: BlindIndex;
  vault: TokenVault;
  events: MailboxEventSink;
  audit: Pick<AuditService, 'record'>;
  jobs: Pick<JobQueue, 'enqueue'>;
  logger: Logger;
  google: GoogleOAuthClient | undefined;
  microsoft: MicrosoftOAuthClient | undefined;
  publicUrl: string;
  sessionTtlMinutes: number;
  /** SANDBOX=1: grants come from stand-ins and are stored with the `sandbox` marker. */
  sandbox?: boolean;
  /** `mbc_connect_results_total{provider, result}` and `mbc_connect_rejected_total{reason}`. */
  metrics?: Pick<Metrics, 'counter'>;
  clock?: () => Date;
}

/** An input problem the API reports as a 4xx (the route maps `code` to the error body). */
export class ConnectRequestError extends Error {
  override readonly name = 'ConnectRequestError';
  constructor(
    readonly status: 400 | 404 | 409,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface CreatedSession {
  id: string;
  url: string;
  expiresAt: Date;
  provider: ProviderName | null;
  mailboxId: string | null;
}

export interface SessionStatus {
  id: string;
  url: string;
  provider: ProviderName | null;
  mailboxId: string | null;
  status: ConnectSessionRecord['status'];
  result: ConnectResult | null;
  resultMailboxId: string | null;
  missingScopes: string[];
  expiresAt: Date;
  createdAt: Date;
}

/** What the hosted page at `/connect/:id` shows. */
export type SessionView =
  | { kind: 'choose'; sessionId: string; tenantId: string; providers: Array<{ provider: ProviderName; scopes: readonly ScopeRequest[] }>; reconnect: boolean }
  /** `tenantId` when the session exists (its page carries the tenant's branding). */
  | { kind: 'closed'; reason: 'not_found' | 'expired' | 'used'; tenantId?: string };

/** The outcome of a provider callback. */
export type CallbackOutcome =
  /** The session is known and finished: send the customer back (returnUrl) or show the result. */
  | { kind: 'finished'; sessionId: string; tenantId: string; result: ConnectResult; mailboxId: string | null; missing: ScopeRequest[]; returnUrl: string | null; provider: ProviderName; detail: string | undefined; /** The connected address (result `connected` only), for the customer's own result page. */ address?: string }
  /** Nothing trustworthy to act on (forged/replayed state, other browser): a page, nothing changed. */
  | { kind: 'rejected'; reason: 'invalid_state' | 'already_used' | 'other_browser' | 'wrong_provider' };

const ADDRESS_MAX = 320;

/** Results after which the same session may be started again (until it expires): the customer declined or unticked a permission. */
export const RETRYABLE_RESULTS: readonly ConnectResult[] = ['denied', 'missing_scopes'];

/** True for a session that ended declined / with a missing permission: its page and /start work again until it expires. */
export function isRetryable(session: { status: string; result: string | null }): boolean {
  return session.status === 'failed' && session.result !== null && (RETRYABLE_RESULTS as readonly string[]).includes(session.result);
}
const SESSION_RETENTION_MS = 30 * 24 * 3600_000;

/**
 * The hosted connect flow: sessions created over the API, the customer's consent at the
 * provider, and the callback that turns a grant into an encrypted credential on a mailbox.
 * Bad input never creates anything and never touches an existing mailbox.
 */
export class ConnectService {
  readonly #d: ConnectServiceDeps;
  readonly #clock: () => Date;
  readonly #results: { inc(labels: { provider: string; result: string }): void } | undefined;
  readonly #rejected: { inc(labels: { reason: string }): void } | undefined;

  constructor(deps: ConnectServiceDeps) {
    this.#d = deps;
    this.#clock = deps.clock ?? (() => new Date());
    this.#results = deps.metrics?.counter('mbc_connect_results_total', 'Finished connect sessions by provider and result', ['provider', 'result']);
    this.#rejected = deps.metrics?.counter('mbc_connect_rejected_total', 'OAuth callbacks refused without acting (forged, replayed, other browser)', ['reason']);
  }

  configuredProviders(): ProviderName[] {
    return [...(this.#d.google ? (['google'] as const) : []), ...(this.#d.microsoft ? (['microsoft'] as const) : [])];
  }

  async createSession(tenantId: string, input: { provider?: ProviderName; returnUrl?: string; mailboxId?: string }, actor: { actorType: 'api_key' | 'ops'; actorId: string }): Promise<CreatedSession> {
    const tenant = await this.#d.tenants.find(tenantId);
    if (!tenant) throw new ConnectRequestError(404, 'not_found', 'tenant not found');
    const returnUrl = input.returnUrl === undefined ? null : checkReturnUrl(input.returnUrl, tenant.allowedReturnOrigins);
    let provider = input.provider ?? null;
    let mailboxId: string | null = null;
    if (input.mailboxId) {
      const mailbox = await this.#d.mailboxes.findForTenant(tenantId, input.mailboxId);
      if (!mailbox) throw new ConnectRequestError(404, 'not_found', 'mailbox not found');
      if (mailbox.status === 'disconnecting' || mailbox.status === 'purged') {
        throw new ConnectRequestError(409, 'mailbox_disconnecting', 'this mailbox is being disconnected and cannot be reconnected');
      }
      if (provider && provider !== mailbox.provider) throw new ConnectRequestError(400, 'provider_mismatch', `mailbox ${mailbox.id} is a ${mailbox.provider} mailbox`);
      provider = mailbox.provider;
      mailboxId = mailbox.id;
    }
    if (provider && !this.configuredProviders().includes(provider)) {
      throw new ConnectRequestError(400, 'provider_not_configured', `${provider} is not configured on this connector`);
    }
    if (this.configuredProviders().length === 0) throw new ConnectRequestError(400, 'provider_not_configured', 'no mail provider is configured on this connector');
    const now = this.#clock();
    // Cheap enough to do here, and no separate schedule is needed: abandoned sessions lose their
    // verifier once expired and disappear after 30 days.
    await this.#d.sessions.prune(now, new Date(now.getTime() - SESSION_RETENTION_MS)).catch((err: unknown) => this.#d.logger.warn({ err }, 'pruning connect sessions failed'));
    const expiresAt = new Date(now.getTime() + this.#d.sessionTtlMinutes * 60_000);
    const session = await this.#d.sessions.create({ tenantId, provider, mailboxId, returnUrl, expiresAt });
    await this.#d.audit.record({
      tenantId,
      ...actor,
      action: mailboxId ? 'connect_session.reconnect_created' : 'connect_session.created',
      targetType: 'connect_session',
      targetId: session.id,
      metadata: { provider, mailboxId },
    });
    return { id: session.id, url: this.hostedUrl(session.id), expiresAt, provider, mailboxId };
  }

  /** The session as the ticket service may poll it (tenant-scoped; never the state or verifier). */
  async describe(tenantId: string, sessionId: string): Promise<SessionStatus | null> {
    const s = await this.#d.sessions.findUnscoped(sessionId);
    if (!s || s.tenantId !== tenantId) return null;
    let status = s.status;
    if ((status === 'pending' || status === 'authorizing') && s.expiresAt.getTime() <= this.#clock().getTime()) status = 'expired';
    return {
      id: s.id,
      url: this.hostedUrl(s.id),
      provider: s.provider,
      mailboxId: s.mailboxId,
      status,
      result: s.result ?? (status === 'expired' ? 'expired' : null),
      resultMailboxId: s.resultMailboxId,
      missingScopes: s.missingScopes,
      expiresAt: s.expiresAt,
      createdAt: s.createdAt,
    };
  }

  hostedUrl(sessionId: string): string {
    return `${this.#d.publicUrl}/connect/${encodeURIComponent(sessionId)}`;
  }

  async view(sessionId: string): Promise<SessionView> {
    const session = await this.#d.sessions.findUnscoped(sessionId);
    const closed = await this.#closedReason(session);
    if (closed || !session) return { kind: 'closed', reason: closed ?? 'not_found', ...(session ? { tenantId: session.tenantId } : {}) };
    const providers = (session.provider ? [session.provider] : this.configuredProviders()).map((p) => ({ provider: p, scopes: scopesFor(p) }));
    return { kind: 'choose', sessionId: session.id, tenantId: session.tenantId, providers, reconnect: session.mailboxId !== null };
  }

  /**
   * Prepares the provider redirect: a fresh single-use state (only its hash stored) and a PKCE
   * verifier (encrypted with the tenant key), both bound to this session and dying with it.
   */
  async start(sessionId: string, requested: ProviderName | undefined): Promise<{ kind: 'redirect'; url: string; sessionId: string; expiresAt: Date } | { kind: 'closed'; reason: 'not_found' | 'expired' | 'used'; tenantId?: string } | { kind: 'choose_provider' }> {
    const session = await this.#d.sessions.findUnscoped(sessionId);
    const closed = await this.#closedReason(session);
    if (closed || !session) return { kind: 'closed', reason: closed ?? 'not_found', ...(session ? { tenantId: session.tenantId } : {}) };
    const provider = session.provider ?? requested;
    if (!provider || (session.provider && requested && requested !== session.provider) || !this.configuredProviders().includes(provider)) {
      return { kind: 'choose_provider' };
    }
    const { state, stateHash } = newState();
    const loginHint = session.mailboxId ? await this.#mailboxAddress(session.tenantId, session.mailboxId) : undefined;
    let url: string;
    let verifier: string;
    if (provider === 'google') {
      const pkce = await this.#google().pkce();
      verifier = pkce.codeVerifier;
      url = this.#google().authorizeUrl({ state, codeChallenge: pkce.codeChallenge, ...(loginHint ? { loginHint } : {}) });
    } else {
      const pkce = await this.#microsoft().pkce();
      verifier = pkce.verifier;
      url = await this.#microsoft().authorizeUrl({ state, codeChallenge: pkce.challenge, ...(loginHint ? { loginHint } : {}) });
    }
    const pkceVerifierEnc = await this.#d.dataKeys.encryptFor({ type: 'tenant', id: session.tenantId }, verifier, PKCE_AAD(session.id));
    const ok = await this.#d.sessions.beginAuthorization(session.id, { provider, stateHash, pkceVerifierEnc, now: this.#clock() });
    if (!ok) return { kind: 'closed', reason: 'used', tenantId: session.tenantId };
    return { kind: 'redirect', url, sessionId: session.id, expiresAt: session.expiresAt };
  }

  /**
   * The provider sent the customer back. `browserHasSession` says whether this browser started
   * the session (a cookie set by `start`): a callback carrying another browser's state — e.g. a
   * link crafted from someone else's session — is refused without consuming it.
   */
  async callback(provider: ProviderName, query: { state?: string | undefined; code?: string | undefined; error?: string | undefined }, browserHasSession: (sessionId: string) => boolean): Promise<CallbackOutcome> {
    const outcome = await this.#callback(provider, query, browserHasSession);
    if (outcome.kind === 'rejected') this.#rejected?.inc({ reason: outcome.reason });
    else this.#results?.inc({ provider: outcome.provider, result: outcome.result });
    return outcome;
  }

  async #callback(provider: ProviderName, query: { state?: string | undefined; code?: string | undefined; error?: string | undefined }, browserHasSession: (sessionId: string) => boolean): Promise<CallbackOutcome> {
    const state = query.state ?? '';
    if (!STATE_PATTERN.test(state)) return { kind: 'rejected', reason: 'invalid_state' };
    const session = await this.#d.sessions.findByStateHash(hashState(state));
    if (!session) return { kind: 'rejected', reason: 'invalid_state' };
    if (session.provider !== provider) return { kind: 'rejected', reason: 'wrong_provider' };
    if (!browserHasSession(session.id)) {
      this.#d.logger.warn({ sessionId: session.id }, 'connect callback from a browser that did not start the session; refused');
      return { kind: 'rejected', reason: 'other_browser' };
    }
    if (session.usedAt || session.status === 'completed' || session.status === 'failed') return { kind: 'rejected', reason: 'already_used' };
    const now = this.#clock();
    if (session.expiresAt.getTime() <= now.getTime() || session.status === 'expired') {
      await this.#d.sessions.markExpired(session.id);
      return this.#finished(session, provider, 'expired', null, [], undefined);
    }
    if (!(await this.#d.sessions.claimByStateHash(hashState(state), now))) return { kind: 'rejected', reason: 'already_used' };

    if (query.error) {
      const result: ConnectResult = query.error === 'access_denied' ? 'denied' : 'error';
      await this.#d.sessions.finish(session.id, { status: 'failed', result });
      return this.#finished(session, provider, result, null, [], result === 'error' ? 'The provider reported an error during sign-in.' : undefined);
    }
    if (!query.code || query.code.length > 4096) {
      await this.#d.sessions.finish(session.id, { status: 'failed', result: 'error' });
      return this.#finished(session, provider, 'error', null, [], 'The provider sent no authorization code.');
    }
    try {
      const verifier = (await this.#d.dataKeys.decryptFor({ type: 'tenant', id: session.tenantId }, session.pkceVerifierEnc ?? new Uint8Array(), PKCE_AAD(session.id))).toString('utf8');
      return provider === 'google' ? await this.#completeGoogle(session, query.code, verifier) : await this.#completeMicrosoft(session, query.code, verifier);
    } catch (err) {
      this.#d.logger.warn({ sessionId: session.id, provider, kind: isProviderError(err) ? err.kind : 'internal', reason: isProviderError(err) ? err.reason : undefined, err: isProviderError(err) ? undefined : err }, 'connect callback failed');
      await this.#d.sessions.finish(session.id, { status: 'failed', result: 'error' });
      return this.#finished(session, provider, 'error', null, [], 'The sign-in could not be completed (the link may have been used already). Please start again.');
    }
  }

  async #completeGoogle(session: ConnectSessionRecord, code: string, verifier: string): Promise<CallbackOutcome> {
    const google = this.#google();
    const grant = await google.exchange(code, verifier);
    const missing = missingScopes('google', grant.grantedScopes);
    if (missing.length > 0 || !grant.refreshToken) {
      // Keep nothing, and take back what was granted: a partial grant is useless to us and must
      // not linger in the customer's account.
      await google.revoke(grant.refreshToken ?? grant.accessToken).catch((err: unknown) => this.#d.logger.warn({ sessionId: session.id, kind: isProviderError(err) ? err.kind : 'internal' }, 'revoking a partial Google grant failed'));
      const result: ConnectResult = missing.length > 0 ? 'missing_scopes' : 'error';
      await this.#d.sessions.finish(session.id, { status: 'failed', result, missingScopes: missing.map((m) => m.scope) });
      return this.#finished(session, 'google', result, null, missing, missing.length ? undefined : 'Google did not issue offline access. Please start again.');
    }
    let address: string;
    try {
      address = await google.identify(grant);
    } catch (err) {
      // The grant exists at Google but is stored nowhere: take it back, or every retry by the
      // customer leaves one more live refresh token in their account (Google caps them per client).
      await google.revoke(grant.refreshToken).catch((revokeErr: unknown) => this.#d.logger.warn({ sessionId: session.id, err: revokeErr }, 'revoking the Google grant after a failed identification failed'));
      throw err;
    }
    const outcome = await this.#persist(session, 'google', address, { v: 1, provider: 'google', refreshToken: grant.refreshToken, ...this.#sandboxMarker() }, undefined, grant.grantedScopes);
    if (outcome.kind === 'wrong_account' || outcome.kind === 'disconnecting') {
      await google.revoke(grant.refreshToken).catch(() => undefined);
    } else {
      this.#d.vault.prime(outcome.mailboxId, grant.accessToken, grant.expiresAt);
    }
    return this.#afterPersist(session, 'google', outcome, address);
  }

  async #completeMicrosoft(session: ConnectSessionRecord, code: string, verifier: string): Promise<CallbackOutcome> {
    const ms = this.#microsoft();
    const grant = await ms.exchange(code, verifier);
    const missing = missingScopes('microsoft', grant.grantedScopes);
    if (missing.length > 0) {
      // Entra has no per-app revoke for delegated grants (provider-facts §5): keep nothing; the
      // failure page tells the customer how to remove the app from their account.
      await this.#d.sessions.finish(session.id, { status: 'failed', result: 'missing_scopes', missingScopes: missing.map((m) => m.scope) });
      return this.#finished(session, 'microsoft', 'missing_scopes', null, missing, undefined);
    }
    const address = await ms.identify(grant.accessToken);
    const outcome = await this.#persist(session, 'microsoft', address, { v: 1, provider: 'microsoft', msalCache: grant.serializedCache, ...this.#sandboxMarker() }, grant.homeAccountId, grant.grantedScopes);
    if (outcome.kind === 'ok') this.#d.vault.prime(outcome.mailboxId, grant.accessToken, grant.expiresAt);
    return this.#afterPersist(session, 'microsoft', outcome, address);
  }

  async #afterPersist(session: ConnectSessionRecord, provider: ProviderName, outcome: PersistOutcome, address: string): Promise<CallbackOutcome> {
    if (outcome.kind === 'ok') {
      await this.#d.sessions.finish(session.id, { status: 'completed', result: 'connected', resultMailboxId: outcome.mailboxId });
      return { kind: 'finished', sessionId: session.id, tenantId: session.tenantId, result: 'connected', mailboxId: outcome.mailboxId, missing: [], returnUrl: session.returnUrl, provider, detail: undefined, address };
    }
    await this.#d.sessions.finish(session.id, { status: 'failed', result: 'error' });
    const detail =
      outcome.kind === 'wrong_account'
        ? 'You signed in with a different account than the mailbox being reconnected. Please sign in with that mailbox’s account.'
        : 'This mailbox is being disconnected. Try again once that has finished.';
    return this.#finished(session, provider, 'error', session.mailboxId, [], detail);
  }

  /** Creates the mailbox or renews the grant of the existing one, with its event, audit entry and first sync. */
  async #persist(session: ConnectSessionRecord, provider: ProviderName, rawAddress: string, credential: MailboxCredential, homeAccountId: string | undefined, grantedScopes: string[]): Promise<PersistOutcome> {
    const address = rawAddress.trim();
    if (!address || address.length > ADDRESS_MAX) throw new Error('provider returned an unusable address');
    const addressIndex = this.#d.blindIndex.emailIndex(address);
    const existing = await this.#d.grants.findByAddress(session.tenantId, provider, addressIndex);
    if (session.mailboxId && existing?.id !== session.mailboxId) return { kind: 'wrong_account' };
    if (existing && (existing.status === 'disconnecting' || existing.status === 'purged')) return { kind: 'disconnecting' };
    const mailboxId = existing?.id ?? newId('mailbox');
    const sealed = await this.#d.vault.sealCredential(mailboxId, credential, homeAccountId);
    const addressEnc = existing ? null : await this.#d.dataKeys.encryptFor({ type: 'mailbox', id: mailboxId }, address, MAILBOX_ADDRESS_AAD(mailboxId));
    const actor = { actorType: 'system' as const, actorId: `connect_session:${session.id}` };
    let eventIds: string[];
    try {
      eventIds = await this.#d.grants.transaction(async (tx) => {
        let reconnected = false;
        if (existing) {
          const replaced = await this.#d.grants.replaceGrant(tx, mailboxId, { ...sealed, grantedScopes });
          if (!replaced) throw new DisconnectingError();
          reconnected = true;
        } else {
          await this.#d.grants.create(tx, { id: mailboxId, tenantId: session.tenantId, provider, addressEnc: addressEnc!, addressIndex, ...sealed, grantedScopes });
        }
        const eventId = await this.#d.events.append(tx, { tenantId: session.tenantId, mailboxId, type: 'mailbox.connected', data: { provider, reconnected } });
        await this.#d.audit.record(
          { tenantId: session.tenantId, ...actor, action: reconnected ? 'mailbox.reconnected' : 'mailbox.connected', targetType: 'mailbox', targetId: mailboxId, metadata: { provider, connectSessionId: session.id } },
          tx,
        );
        return [eventId];
      });
    } catch (err) {
      if (!existing) await this.#d.dataKeys.destroy({ type: 'mailbox', id: mailboxId }).catch(() => undefined);
      if (err instanceof DisconnectingError) return { kind: 'disconnecting' };
      throw err;
    }
    await this.#d.events.committed(eventIds);
    try {
      await this.#d.jobs.enqueue('sync.mailbox', { mailboxId, reason: 'connect' }, { singletonKey: mailboxId, priority: syncPriority('connect') });
    } catch (err) {
      // The poll schedule picks the mailbox up later; the connection itself succeeded.
      this.#d.logger.warn({ err, mailboxId }, 'enqueueing the first sync failed');
    }
    this.#d.logger.info({ mailboxId, provider, sessionId: session.id, reconnected: Boolean(existing) }, 'mailbox connected');
    return { kind: 'ok', mailboxId };
  }

  #sandboxMarker(): { sandbox?: true } {
    return this.#d.sandbox ? { sandbox: true } : {};
  }

  #finished(session: ConnectSessionRecord, provider: ProviderName, result: ConnectResult, mailboxId: string | null, missing: ScopeRequest[], detail: string | undefined): CallbackOutcome {
    return { kind: 'finished', sessionId: session.id, tenantId: session.tenantId, result, mailboxId: mailboxId ?? (result === 'connected' ? null : session.mailboxId), missing, returnUrl: session.returnUrl, provider, detail };
  }

  async #closedReason(session: ConnectSessionRecord | null): Promise<'not_found' | 'expired' | 'used' | undefined> {
    if (!session) return 'not_found';
    if (session.status === 'completed' || (session.status === 'failed' && !isRetryable(session)) || (session.usedAt && !isRetryable(session))) return 'used';
    if (session.status === 'expired') return 'expired';
    if (session.expiresAt.getTime() <= this.#clock().getTime()) {
      await this.#d.sessions.markExpired(session.id);
      return 'expired';
    }
    return undefined;
  }

  async #mailboxAddress(tenantId: string, mailboxId: string): Promise<string | undefined> {
    const mailbox = await this.#d.mailboxes.findForTenant(tenantId, mailboxId);
    if (!mailbox) return undefined;
    try {
      return (await this.#d.dataKeys.decryptFor({ type: 'mailbox', id: mailbox.id }, mailbox.addressEnc, MAILBOX_ADDRESS_AAD(mailbox.id))).toString('utf8');
    } catch {
      return undefined;
    }
  }

  #google(): GoogleOAuthClient {
    if (!this.#d.google) throw new ConnectRequestError(400, 'provider_not_configured', 'Google is not configured on this connector');
    return this.#d.google;
  }

  #microsoft(): MicrosoftOAuthClient {
    if (!this.#d.microsoft) throw new ConnectRequestError(400, 'provider_not_configured', 'Microsoft is not configured on this connector');
    return this.#d.microsoft;
  }
}

type PersistOutcome = { kind: 'ok'; mailboxId: string } | { kind: 'wrong_account' } | { kind: 'disconnecting' };

class DisconnectingError extends Error {}

/** AAD of `connect_sessions.pkceVerifierEnc` (tenant DEK). */
export const PKCE_AAD = (sessionId: string) => ({ table: 'connect_sessions', column: 'pkceVerifierEnc', rowId: sessionId }) as const;

/**
 * `returnUrl` must be an absolute http(s) URL whose origin is exactly one of the tenant's allowed
 * origins (scheme, host and port; no wildcard, no suffix match) — anything else would make the
 * connector an open redirect.
 */
export function checkReturnUrl(returnUrl: string, allowedOrigins: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(returnUrl);
  } catch {
    throw new ConnectRequestError(400, 'return_url_not_allowed', 'returnUrl must be an absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConnectRequestError(400, 'return_url_not_allowed', 'returnUrl must be http or https');
  if (url.username || url.password) throw new ConnectRequestError(400, 'return_url_not_allowed', 'returnUrl must not carry credentials');
  const allowed = new Set(
    allowedOrigins.flatMap((o) => {
      try {
        return [new URL(o).origin];
      } catch {
        return [];
      }
    }),
  );
  if (!allowed.has(url.origin)) {
    throw new ConnectRequestError(400, 'return_url_not_allowed', `returnUrl origin ${url.origin} is not in this tenant's allowed return origins`);
  }
  return url.toString();
}

/** returnUrl with `mailbox_id` and `status` appended (existing query parameters kept). */
export function resultRedirect(returnUrl: string, result: ConnectResult, mailboxId: string | null, sessionId: string): string {
  const url = new URL(returnUrl);
  url.searchParams.set('status', result);
  url.searchParams.set('connect_session_id', sessionId);
  if (mailboxId) url.searchParams.set('mailbox_id', mailboxId);
  return url.toString();
}

import type { AuditService } from '../audit/audit.service.js';
import type { BlindIndex } from '../crypto/blind-index.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { syncPriority } from '../jobs/job-map.js';
import type { JobQueue } from '../jobs/job-queue.js';
import { CONNECTED_BY_AAD, MAILBOX_ADDRESS_AAD } from '../mailboxes/message-content.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import { isProviderError } from '../providers/provider-error.js';
import { newId } from '../storage/ids.js';
import type { MailboxRepository } from '../storage/mailbox.repository.js';
import type { TenantRepository } from '../storage/tenant.repository.js';
import type { ConnectResult, ConnectSessionRecord, ConnectSessionRepository } from '../storage/connect-session.repository.js';
import type { ConsentPort, GrantCredential, GrantPort } from '../providers/grant-port.js';
import type { MailboxEventSink } from './mailbox-event.port.js';
import type { MailboxGrantRepository } from '../storage/mailbox-grant.repository.js';
import { hashState, newState, STATE_PATTERN } from '../crypto/oauth-state.js';
import { missingScopes, scopesFor, unrequestedSharedScopes, type ScopeRequest } from './scope-policy.js';
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
  /** Each provider's grant port; a provider whose `consent` is undefined is not offered. */
  grantPorts: Readonly<Record<ProviderName, GrantPort>>;
  /** Microsoft 365 shared mailboxes through a member's consent; undefined when Microsoft is not configured. */
  sharedMailboxes?: SharedMailboxConsent;
  publicUrl: string;
  sessionTtlMinutes: number;
  /** SANDBOX=1: grants come from stand-ins and are stored with the `sandbox` marker. */
  sandbox?: boolean;
  /** `mbc_connect_results_total{provider, result}` and `mbc_connect_rejected_total{reason}`. */
  metrics?: Pick<Metrics, 'counter'>;
  clock?: () => Date;
}

/**
 * The public codes a connect request is refused with. Each is a code of the API's error catalogue
 * (src/http/api-error.ts, which gives its status): the HTTP mapper passes `code` to `ApiError`, so
 * a code missing from the catalogue does not compile. Add a refusal here, not at the call site.
 */
export type ConnectRefusal = 'validation_error' | 'not_found' | 'mailbox_disconnecting' | 'provider_mismatch' | 'provider_not_configured' | 'return_url_not_allowed';

/** An input problem the API reports as a 4xx (the one HTTP mapper turns `code` into the error body). */
export class ConnectRequestError extends Error {
  override readonly name = 'ConnectRequestError';
  constructor(
    readonly code: ConnectRefusal,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A Microsoft 365 shared mailbox connected by one of its members (issue 15 item 1): a consent that
 * also asks for Mail.Read.Shared / Mail.Send.Shared (scope-policy.ts), and the check, with the
 * member's fresh token, that the member can read that mailbox.
 */
export interface SharedMailboxConsent {
  consent: ConsentPort;
  /** Throws `auth_revoked` (reason `shared_mailbox_access_denied`) or `not_found` (no such mailbox). */
  checkAccess(accessToken: string, sharedMailbox: string): Promise<void>;
}

/** AAD of `connect_sessions.mailboxAddressEnc` (tenant DEK). */
export const SESSION_MAILBOX_AAD = (sessionId: string) => ({ table: 'connect_sessions', column: 'mailboxAddressEnc', rowId: sessionId }) as const;

/** An email address as the API accepts it for `mailbox` (one @, no spaces or angle brackets; ≤ 254). */
const MAILBOX_ADDRESS = /^[^\s@<>()",;:]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function isMailboxAddress(value: string): boolean {
  return value.length <= 254 && MAILBOX_ADDRESS.test(value);
}

export interface CreatedSession {
  id: string;
  url: string;
  expiresAt: Date;
  provider: ProviderName | null;
  mailboxId: string | null;
  /** The shared mailbox the session connects; null = the signed-in person's own. */
  mailbox: string | null;
}

export interface SessionStatus {
  id: string;
  url: string;
  provider: ProviderName | null;
  mailboxId: string | null;
  mailbox: string | null;
  status: ConnectSessionRecord['status'];
  result: ConnectResult | null;
  resultMailboxId: string | null;
  missingScopes: string[];
  expiresAt: Date;
  createdAt: Date;
}

/** What the hosted page at `/connect/:id` shows. */
export type SessionView =
  | { kind: 'choose'; sessionId: string; tenantId: string; providers: Array<{ provider: ProviderName; scopes: readonly ScopeRequest[] }>; reconnect: boolean; /** The shared mailbox a member connects; absent = the person's own mailbox. */ sharedMailbox?: string }
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
export const RETRYABLE_RESULTS: readonly ConnectResult[] = ['denied', 'missing_scopes', 'mailbox_access_denied'];

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
    return (Object.values(this.#d.grantPorts) as GrantPort[]).filter((g) => g.consent !== undefined).map((g) => g.provider);
  }

  async createSession(tenantId: string, input: { provider?: ProviderName; returnUrl?: string; mailboxId?: string; mailbox?: string }, actor: { actorType: 'api_key' | 'ops'; actorId: string }): Promise<CreatedSession> {
    const tenant = await this.#d.tenants.find(tenantId);
    if (!tenant) throw new ConnectRequestError('not_found', 'tenant not found');
    const returnUrl = input.returnUrl === undefined ? null : checkReturnUrl(input.returnUrl, tenant.allowedReturnOrigins);
    let provider = input.provider ?? null;
    let mailboxId: string | null = null;
    let sharedAddress: string | undefined;
    if (input.mailbox !== undefined && input.mailboxId) throw new ConnectRequestError('validation_error', 'give either mailboxId (reconnect) or mailbox, not both');
    if (input.mailboxId) {
      const mailbox = await this.#d.mailboxes.findForTenant(tenantId, input.mailboxId);
      if (!mailbox) throw new ConnectRequestError('not_found', 'mailbox not found');
      if (mailbox.status === 'disconnecting' || mailbox.status === 'purged') {
        throw new ConnectRequestError('mailbox_disconnecting', 'this mailbox is being disconnected and cannot be reconnected');
      }
      if (provider && provider !== mailbox.provider) throw new ConnectRequestError('provider_mismatch', `mailbox ${mailbox.id} is a ${mailbox.provider} mailbox`);
      provider = mailbox.provider;
      mailboxId = mailbox.id;
      // Reconnecting a shared mailbox: a member signs in again for the same shared address.
      if (mailbox.access === 'shared_member') sharedAddress = await this.#mailboxAddress(tenantId, mailbox.id);
    }
    if (input.mailbox !== undefined) {
      // The route validates the shape; this is the rule for every caller (ops, CLI).
      if (provider !== 'microsoft') throw new ConnectRequestError('validation_error', 'mailbox (a shared mailbox) is supported for provider microsoft only');
      const address = input.mailbox.trim();
      if (!isMailboxAddress(address)) throw new ConnectRequestError('validation_error', 'mailbox must be an email address');
      sharedAddress = address;
    }
    if (sharedAddress !== undefined && !this.#d.sharedMailboxes) throw new ConnectRequestError('provider_not_configured', 'Microsoft is not configured on this connector');
    if (provider && !this.configuredProviders().includes(provider)) {
      throw new ConnectRequestError('provider_not_configured', `${provider} is not configured on this connector`);
    }
    if (this.configuredProviders().length === 0) throw new ConnectRequestError('provider_not_configured', 'no mail provider is configured on this connector');
    const now = this.#clock();
    // Cheap enough to do here, and no separate schedule is needed: abandoned sessions lose their
    // verifier once expired and disappear after 30 days.
    await this.#d.sessions.prune(now, new Date(now.getTime() - SESSION_RETENTION_MS)).catch((err: unknown) => this.#d.logger.warn({ err }, 'pruning connect sessions failed'));
    const expiresAt = new Date(now.getTime() + this.#d.sessionTtlMinutes * 60_000);
    const sessionId = newId('connectSession');
    const mailboxAddressEnc = sharedAddress === undefined ? null : await this.#d.dataKeys.encryptFor({ type: 'tenant', id: tenantId }, sharedAddress, SESSION_MAILBOX_AAD(sessionId));
    const session = await this.#d.sessions.create({ id: sessionId, tenantId, provider, mailboxId, mailboxAddressEnc, returnUrl, expiresAt });
    await this.#d.audit.record({
      tenantId,
      ...actor,
      action: mailboxId ? 'connect_session.reconnect_created' : 'connect_session.created',
      targetType: 'connect_session',
      targetId: session.id,
      // The shared address is personal data: the audit entry says only that one was named.
      metadata: { provider, mailboxId, ...(sharedAddress !== undefined ? { access: 'shared_member' } : {}) },
    });
    return { id: session.id, url: this.hostedUrl(session.id), expiresAt, provider, mailboxId, mailbox: sharedAddress ?? null };
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
      mailbox: (await this.#sessionMailbox(s)) ?? null,
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
    const sharedMailbox = await this.#sessionMailbox(session);
    const providers = (session.provider ? [session.provider] : this.configuredProviders()).map((p) => ({ provider: p, scopes: scopesFor(p, { sharedMailbox: sharedMailbox !== undefined }) }));
    return { kind: 'choose', sessionId: session.id, tenantId: session.tenantId, providers, reconnect: session.mailboxId !== null, ...(sharedMailbox !== undefined ? { sharedMailbox } : {}) };
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
    const shared = session.mailboxAddressEnc !== null;
    // A shared mailbox has no sign-in of its own: the member signs in as themselves, no hint.
    const loginHint = session.mailboxId && !shared ? await this.#mailboxAddress(session.tenantId, session.mailboxId) : undefined;
    const consent = shared ? this.#shared().consent : this.#consent(provider);
    const pkce = await consent.pkce();
    const url = await consent.authorizeUrl({ state, codeChallenge: pkce.challenge, ...(loginHint ? { loginHint } : {}) });
    const pkceVerifierEnc = await this.#d.dataKeys.encryptFor({ type: 'tenant', id: session.tenantId }, pkce.verifier, PKCE_AAD(session.id));
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
      return await this.#complete(session, provider, query.code, verifier);
    } catch (err) {
      this.#d.logger.warn({ sessionId: session.id, provider, kind: isProviderError(err) ? err.kind : 'internal', reason: isProviderError(err) ? err.reason : undefined, err: isProviderError(err) ? undefined : err }, 'connect callback failed');
      await this.#d.sessions.finish(session.id, { status: 'failed', result: 'error' });
      return this.#finished(session, provider, 'error', null, [], 'The sign-in could not be completed (the link may have been used already). Please start again.');
    }
  }

  /**
   * Code → grant through the provider's grant port, then: every permission granted and offline
   * access issued, the address identified, the credential stored. A grant that will not be kept
   * (a permission unticked, no offline access, identification failed, the wrong account) is
   * discarded at once — it must not linger in the customer's account (Google caps live refresh
   * tokens per client); where the provider has no per-app revoke (Microsoft delegated grants,
   * provider-facts §5) nothing is kept and the failure page says how to remove the app.
   */
  async #complete(session: ConnectSessionRecord, provider: ProviderName, code: string, verifier: string): Promise<CallbackOutcome> {
    const port = this.#d.grantPorts[provider];
    const sharedMailbox = await this.#sessionMailbox(session);
    const consent = sharedMailbox !== undefined ? this.#shared().consent : this.#consent(provider);
    const grant = await consent.exchange(code, verifier);
    const discard = (why: string) =>
      consent.discard(grant).catch((err: unknown) => this.#d.logger.warn({ sessionId: session.id, provider, kind: isProviderError(err) ? err.kind : 'internal' }, `discarding the ${why} grant failed`));
    const missing = missingScopes(provider, grant.grantedScopes, { sharedMailbox: sharedMailbox !== undefined });
    if (unrequestedSharedScopes(provider, grant.grantedScopes, { sharedMailbox: sharedMailbox !== undefined }).length > 0) {
      // A grant reaching other people's mailboxes on a connection that named none: not kept.
      await discard('over-broad');
      await this.#d.sessions.finish(session.id, { status: 'failed', result: 'error' });
      return this.#finished(session, provider, 'error', null, [], 'The sign-in granted access to shared mailboxes this connection did not ask for. Please start again.');
    }
    if (missing.length > 0 || !grant.credential) {
      await discard('partial');
      const result: ConnectResult = missing.length > 0 ? 'missing_scopes' : 'error';
      await this.#d.sessions.finish(session.id, { status: 'failed', result, missingScopes: missing.map((m) => m.scope) });
      return this.#finished(session, provider, result, null, missing, missing.length ? undefined : `${port.displayName} did not issue offline access. Please start again.`);
    }
    let address: string;
    try {
      address = await consent.identify(grant);
    } catch (err) {
      // The grant exists at the provider but is stored nowhere: take it back, or every retry by
      // the customer leaves one more live grant in their account.
      await discard('unidentified');
      throw err;
    }
    let member: string | undefined;
    if (sharedMailbox !== undefined) {
      // Before anything is stored: can the person who signed in read the shared mailbox?
      const refused = await this.#checkSharedAccess(session, grant.accessToken, sharedMailbox);
      if (refused) {
        await discard('shared-mailbox');
        return refused;
      }
      member = address;
      address = sharedMailbox;
    }
    const outcome = await this.#persist(session, provider, address, { ...grant.credential, ...this.#sandboxMarker() }, grant.accountId, grant.grantedScopes, member);
    if (outcome.kind === 'ok') this.#d.vault.prime(outcome.mailboxId, grant.accessToken, grant.expiresAt);
    else await discard('refused');
    return this.#afterPersist(session, provider, outcome, address);
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
        : outcome.kind === 'other_access'
          ? 'This mailbox is already connected in another way (as a person’s own mailbox or as a shared mailbox). Disconnect it first to connect it this way.'
          : 'This mailbox is being disconnected. Try again once that has finished.';
    return this.#finished(session, provider, 'error', session.mailboxId, [], detail);
  }

  /** Creates the mailbox or renews the grant of the existing one, with its event, audit entry and first sync. */
  /** `member`: the person whose grant reads the shared mailbox `rawAddress` (access `shared_member`). */
  async #persist(session: ConnectSessionRecord, provider: ProviderName, rawAddress: string, credential: GrantCredential, accountId: string | undefined, grantedScopes: string[], member?: string): Promise<PersistOutcome> {
    const address = rawAddress.trim();
    if (!address || address.length > ADDRESS_MAX) throw new Error('provider returned an unusable address');
    const addressIndex = this.#d.blindIndex.emailIndex(address);
    const existing = await this.#d.grants.findByAddress(session.tenantId, provider, addressIndex);
    if (session.mailboxId && existing?.id !== session.mailboxId) return { kind: 'wrong_account' };
    if (existing && (existing.status === 'disconnecting' || existing.status === 'purged')) return { kind: 'disconnecting' };
    const access = member === undefined ? 'delegated' : 'shared_member';
    // The same address in the same tenant is one mailbox record, reached one way.
    if (existing && existing.access !== access) return { kind: 'other_access' };
    const mailboxId = existing?.id ?? newId('mailbox');
    const sealed = await this.#d.vault.sealCredential(mailboxId, credential, accountId);
    const addressEnc = existing ? null : await this.#d.dataKeys.encryptFor({ type: 'mailbox', id: mailboxId }, address, MAILBOX_ADDRESS_AAD(mailboxId));
    const connectedByEnc = member === undefined ? undefined : await this.#d.dataKeys.encryptFor({ type: 'mailbox', id: mailboxId }, member.trim(), CONNECTED_BY_AAD(mailboxId));
    const actor = { actorType: 'system' as const, actorId: `connect_session:${session.id}` };
    let eventIds: string[];
    try {
      eventIds = await this.#d.grants.transaction(async (tx) => {
        let reconnected = false;
        if (existing) {
          const replaced = await this.#d.grants.replaceGrant(tx, mailboxId, { ...sealed, grantedScopes, ...(connectedByEnc ? { connectedByEnc } : {}) });
          if (!replaced) throw new DisconnectingError();
          reconnected = true;
        } else {
          await this.#d.grants.create(tx, { id: mailboxId, tenantId: session.tenantId, provider, addressEnc: addressEnc!, addressIndex, ...sealed, grantedScopes, access, connectedByEnc: connectedByEnc ?? null });
        }
        const eventId = await this.#d.events.append(tx, { tenantId: session.tenantId, mailboxId, type: 'mailbox.connected', data: { provider, reconnected } });
        await this.#d.audit.record(
          { tenantId: session.tenantId, ...actor, action: reconnected ? 'mailbox.reconnected' : 'mailbox.connected', targetType: 'mailbox', targetId: mailboxId, metadata: { provider, connectSessionId: session.id, access } },
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

  /**
   * The connect check of a shared mailbox with the member's fresh token: undefined when the member
   * can read it, else the finished (retryable) outcome — not a member / no such mailbox.
   */
  async #checkSharedAccess(session: ConnectSessionRecord, accessToken: string, sharedMailbox: string): Promise<CallbackOutcome | undefined> {
    try {
      await this.#shared().checkAccess(accessToken, sharedMailbox);
      return undefined;
    } catch (err) {
      const kind = isProviderError(err) ? err.kind : undefined;
      if (kind !== 'auth_revoked' && kind !== 'not_found') throw err;
      this.#d.logger.info({ sessionId: session.id, kind }, 'the member cannot read the shared mailbox; nothing stored');
      await this.#d.sessions.finish(session.id, { status: 'failed', result: 'mailbox_access_denied' });
      const detail =
        kind === 'not_found'
          ? `Microsoft 365 has no mailbox ${sharedMailbox} that this account can see. Check the address with your administrator.`
          : `The account you signed in with is not a member of the shared mailbox ${sharedMailbox} (or did not allow access to shared mailboxes). Sign in with an account that has Full Access to it.`;
      return this.#finished(session, 'microsoft', 'mailbox_access_denied', null, [], detail);
    }
  }

  /** The shared mailbox a session asks for (decrypted), or undefined for the person's own. */
  async #sessionMailbox(session: ConnectSessionRecord): Promise<string | undefined> {
    if (!session.mailboxAddressEnc) return undefined;
    return (await this.#d.dataKeys.decryptFor({ type: 'tenant', id: session.tenantId }, session.mailboxAddressEnc, SESSION_MAILBOX_AAD(session.id))).toString('utf8');
  }

  #shared(): SharedMailboxConsent {
    if (!this.#d.sharedMailboxes) throw new ConnectRequestError('provider_not_configured', 'Microsoft is not configured on this connector');
    return this.#d.sharedMailboxes;
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

  #consent(provider: ProviderName): ConsentPort {
    const consent = this.#d.grantPorts[provider].consent;
    if (!consent) throw new ConnectRequestError('provider_not_configured', `${this.#d.grantPorts[provider].displayName} is not configured on this connector`);
    return consent;
  }
}

type PersistOutcome = { kind: 'ok'; mailboxId: string } | { kind: 'wrong_account' } | { kind: 'disconnecting' } | { kind: 'other_access' };

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
    throw new ConnectRequestError('return_url_not_allowed', 'returnUrl must be an absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConnectRequestError('return_url_not_allowed', 'returnUrl must be http or https');
  if (url.username || url.password) throw new ConnectRequestError('return_url_not_allowed', 'returnUrl must not carry credentials');
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
    throw new ConnectRequestError('return_url_not_allowed', `returnUrl origin ${url.origin} is not in this tenant's allowed return origins`);
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

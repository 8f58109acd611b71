import type { AuditService } from '../audit/audit.service.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { MAILBOX_CREDENTIAL_AAD } from '../mailboxes/message-content.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { GrantNotConfiguredError, type AccessGrant, type GrantCredential, type GrantPort } from '../providers/grant-port.js';
import type { AccessTokenSource, ProviderName } from '../providers/mail-provider.port.js';
import { isProviderError, ProviderError } from '../providers/provider-error.js';
import { MAILBOX_ACCOUNT_ID_AAD } from './mailbox-credential.js';
import type { MailboxEventSink } from './mailbox-event.port.js';
import type { MailboxGrantRepository, StoredGrant } from '../storage/mailbox-grant.repository.js';
import { Backoff } from '../retry/backoff.js';

/** The decrypted grant (credential and the account id stored beside it). Never logged or persisted in plaintext. */
export interface VaultCredential {
  credential: GrantCredential;
  accountId: string | null;
}

export interface TokenVaultOptions {
  grants: MailboxGrantRepository;
  dataKeys: DataKeyService;
  events: MailboxEventSink;
  audit: Pick<AuditService, 'record'>;
  logger: Logger;
  /** Each provider's grant port: credential encode/decode, access tokens, revoke. */
  grantPorts: Readonly<Record<ProviderName, GrantPort>>;
  /** `mbc_token_refreshes_total{provider, outcome}` (ok, transient, auth_revoked, error). */
  metrics?: Pick<Metrics, 'counter'>;
  clock?: () => Date;
  /** Access tokens are re-fetched this long before they expire. Default 5 minutes. */
  renewBeforeMs?: number;
  /**
   * An access token not handed out for this long is dropped from memory (on a later refresh, at
   * most once a minute). Default 15 minutes: a mailbox polled hourly (healthy push) holds no token
   * between polls, and its next poll would have refreshed anyway (tokens live an hour).
   */
  dropUnusedAfterMs?: number;
  /** Attempts for a transient token-endpoint failure before giving up (status untouched). Default 4. */
  maxAttempts?: number;
  /** First backoff delay; doubles per attempt, with jitter. Default 500 ms. */
  baseDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

export class TokenVaultError extends Error {
  override readonly name = 'TokenVaultError';
  constructor(
    readonly code: 'mailbox_not_found' | 'provider_not_configured',
    message: string,
  ) {
    super(message);
  }
}

const MAX_BACKOFF_MS = 30_000;

/**
 * Access tokens for connected mailboxes.
 *
 *  - Credentials (refresh tokens, MSAL caches: whatever the provider's grant port encodes) exist in
 *    plaintext only in memory for the duration of a refresh; at rest they are AES-256-GCM under
 *    the mailbox DEK. The vault never looks inside one: the grant port of the mailbox's provider
 *    encodes, decodes and redeems it.
 *  - Access tokens are kept in memory until `renewBeforeMs` before they expire.
 *  - One refresh at a time per mailbox in this process: concurrent callers share the in-flight
 *    promise (Google caps live refresh tokens per client, and MSAL cache writes must not race).
 *  - A dead grant (invalid_grant, interaction_required, consent revoked) flips the mailbox to
 *    `reauth_required` once, emits one `mailbox.reauth_required`, and every caller gets
 *    `ProviderError('auth_revoked')`. Transient failures are retried with backoff and never
 *    change the status.
 */
export class TokenVault {
  readonly #o: Required<Omit<TokenVaultOptions, 'metrics'>>;
  readonly #refreshes: { inc(labels: { provider: string; outcome: string }): void } | undefined;
  readonly #tokens = new Map<string, { token: string; expiresAt: number; usedAt: number }>();
  readonly #inflight = new Map<string, Promise<string>>();
  readonly #forceRefresh = new Set<string>();
  // Bumped by forget(): a refresh that started before must not repopulate the memory cache.
  readonly #epoch = new Map<string, number>();
  #gate: Promise<void> | undefined;
  #prunedAt = 0;
  /**
   * Mailboxes whose grant this process sealed (connect): the only ones an in-process stand-in can
   * know. Kept only until the start-up check that asks (`stopTrackingSeals`), not one entry per
   * connect for the life of the process.
   */
  readonly #sealedHere = new Set<string>();
  #trackSeals = true;

  constructor(options: TokenVaultOptions) {
    this.#o = {
      clock: () => new Date(),
      renewBeforeMs: 5 * 60_000,
      dropUnusedAfterMs: 15 * 60_000,
      maxAttempts: 4,
      baseDelayMs: 500,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      ...options,
    };
    this.#refreshes = options.metrics?.counter('mbc_token_refreshes_total', 'Access-token refreshes at the provider, by outcome', ['provider', 'outcome']);
  }

  /** A currently valid access token for the mailbox. Throws ProviderError (`auth_revoked`, `transient`, …). */
  accessToken(mailboxId: string): Promise<string> {
    const cached = this.#tokens.get(mailboxId);
    const now = this.#o.clock().getTime();
    if (cached && cached.expiresAt - this.#o.renewBeforeMs > now) {
      cached.usedAt = now;
      return Promise.resolve(cached.token);
    }
    const pending = this.#inflight.get(mailboxId);
    if (pending) return pending;
    this.#pruneExpired();
    const flight = this.#refresh(mailboxId).finally(() => this.#inflight.delete(mailboxId));
    this.#inflight.set(mailboxId, flight);
    return flight;
  }

  /** Access tokens held in memory (observability and tests). */
  get cachedTokens(): number {
    return this.#tokens.size;
  }

  /**
   * Drops cached tokens too close to expiry to be handed out (they would be refreshed anyway) and
   * tokens not handed out for `dropUnusedAfterMs`, at most once a minute, on a refresh: an idle
   * mailbox holds no token in memory.
   */
  #pruneExpired(): void {
    const now = this.#o.clock().getTime();
    if (now - this.#prunedAt < 60_000) return;
    this.#prunedAt = now;
    for (const [id, t] of this.#tokens) if (t.expiresAt - this.#o.renewBeforeMs <= now || now - t.usedAt >= this.#o.dropUnusedAfterMs) this.#tokens.delete(id);
  }

  /**
   * Refreshes wait for `done` (settled either way) before reading a grant: the start-up check of
   * sandbox grants (SandboxStateService) must decide before a worker asks a stand-in about them.
   */
  holdRefreshesUntil(done: Promise<unknown>): void {
    const gate: Promise<void> = done.then(
      () => undefined,
      () => undefined,
    );
    this.#gate = gate;
    void gate.then(() => {
      if (this.#gate === gate) this.#gate = undefined;
    });
  }

  /** The port the provider adapters take. */
  tokenSource(mailboxId: string): AccessTokenSource {
    return () => this.accessToken(mailboxId);
  }

  /**
   * Drop the in-memory access token (the provider answered 401 to it). The next request goes to
   * the token endpoint even where MSAL still holds an unexpired copy.
   */
  invalidate(mailboxId: string): void {
    this.#tokens.delete(mailboxId);
    this.#forceRefresh.add(mailboxId);
  }

  /**
   * For callers that got `auth_revoked` from a provider call (a 401 or 403 with a token the vault
   * handed out): forces a refresh to learn whether the grant itself is gone. `'grant_valid'`
   * means a new token was obtained and the call can be retried; `'reauth_required'` means the
   * mailbox has been switched to `reauth_required` (with its one event). Other failures throw.
   */
  async confirmAuthFailure(mailboxId: string): Promise<'grant_valid' | 'reauth_required'> {
    this.invalidate(mailboxId);
    try {
      await this.accessToken(mailboxId);
      return 'grant_valid';
    } catch (err) {
      if (isProviderError(err, 'auth_revoked')) return 'reauth_required';
      throw err;
    }
  }

  /** A fresh token from the connect flow: no refresh needed right after consent. */
  prime(mailboxId: string, accessToken: string, expiresAt: Date): void {
    this.#tokens.set(mailboxId, { token: accessToken, expiresAt: expiresAt.getTime(), usedAt: this.#o.clock().getTime() });
  }

  /**
   * The decrypted grant, for revocation at disconnect. null when none is stored. Callers must
   * not log or persist it.
   */
  async credential(mailboxId: string): Promise<VaultCredential | null> {
    const grant = await this.#o.grants.findGrant(mailboxId);
    if (!grant?.credentialEnc) return null;
    return { credential: await this.#decrypt(grant), accountId: await this.#accountId(grant) };
  }

  /**
   * Forget the grant: drop cached access tokens and erase the stored refresh token / MSAL cache
   * and account id. Used after revocation on disconnect; the mailbox must be reconnected to work
   * again.
   */
  async forget(mailboxId: string): Promise<void> {
    this.#epoch.set(mailboxId, (this.#epoch.get(mailboxId) ?? 0) + 1);
    this.#tokens.delete(mailboxId);
    await this.#o.grants.clearCredential(mailboxId);
  }

  /** Encrypts a new grant for storage (the connect flow writes it in its transaction). */
  async sealCredential(mailboxId: string, credential: GrantCredential, accountId?: string): Promise<{ credentialEnc: Buffer; accountIdEnc: Buffer | null }> {
    if (this.#trackSeals) this.#sealedHere.add(mailboxId);
    const owner = { type: 'mailbox', id: mailboxId } as const;
    const plain = this.#o.grantPorts[credential.provider].encode(credential);
    try {
      return {
        credentialEnc: await this.#o.dataKeys.encryptFor(owner, plain, MAILBOX_CREDENTIAL_AAD(mailboxId)),
        accountIdEnc: accountId ? await this.#o.dataKeys.encryptFor(owner, accountId, MAILBOX_ACCOUNT_ID_AAD(mailboxId)) : null,
      };
    } finally {
      plain.fill(0);
    }
  }

  async #refresh(mailboxId: string): Promise<string> {
    if (this.#gate) await this.#gate;
    const epoch = this.#epoch.get(mailboxId) ?? 0;
    const grant = await this.#o.grants.findGrant(mailboxId);
    if (!grant) throw new TokenVaultError('mailbox_not_found', `mailbox ${mailboxId} does not exist`);
    if (grant.status === 'reauth_required') {
      throw new ProviderError(grant.provider, 'auth_revoked', 'the mailbox must be reconnected before it can be used', { reason: 'reauth_required' });
    }
    if (!grant.credentialEnc || grant.status === 'purged') {
      throw new ProviderError(grant.provider, 'auth_revoked', 'no stored grant for this mailbox', { reason: 'no_credential' });
    }
    const forceRefresh = this.#forceRefresh.delete(mailboxId);
    for (let attempt = 1; ; attempt++) {
      try {
        const { accessToken, expiresAt } = await this.#refreshOnce(grant, forceRefresh);
        if ((this.#epoch.get(mailboxId) ?? 0) === epoch) this.#tokens.set(mailboxId, { token: accessToken, expiresAt: expiresAt.getTime(), usedAt: this.#o.clock().getTime() });
        this.#refreshes?.inc({ provider: grant.provider, outcome: 'ok' });
        return accessToken;
      } catch (err) {
        if (err instanceof TokenVaultError) throw err;
        const e = isProviderError(err) ? err : new ProviderError(grant.provider, 'transient', 'token refresh failed', { cause: err });
        this.#refreshes?.inc({ provider: grant.provider, outcome: e.kind === 'auth_revoked' || e.kind === 'transient' ? e.kind : 'error' });
        if (e.kind === 'auth_revoked') {
          await this.#markReauthRequired(grant, e.reason ?? 'auth_revoked');
          throw e;
        }
        const retryable = e.kind === 'transient' || e.kind === 'rate_limited';
        if (!retryable || attempt >= this.#o.maxAttempts) {
          this.#o.logger.warn({ mailboxId, provider: grant.provider, kind: e.kind, reason: e.reason, attempts: attempt }, 'token refresh failed');
          throw e;
        }
        await this.#o.sleep(this.#backoff(attempt, e.retryAfterMs));
      }
    }
  }

  #backoff(attempt: number, retryAfterMs: number | undefined): number {
    const backoff = new Backoff({ baseMs: this.#o.baseDelayMs, capMs: Math.max(MAX_BACKOFF_MS, this.#o.baseDelayMs) });
    return Math.min(MAX_BACKOFF_MS, backoff.delayOrRetryAfterMs(attempt, retryAfterMs));
  }

  /**
   * One call to the grant port of the mailbox's provider. The port reads the credential fresh
   * (`reload`, e.g. at every MSAL cache access) and stores a rotated one (`store`: a new Google
   * refresh token, a rewritten MSAL cache) — encrypted here, in plaintext nowhere.
   */
  async #refreshOnce(grant: StoredGrant, forceRefresh: boolean): Promise<AccessGrant> {
    const port = this.#o.grantPorts[grant.provider];
    const mailboxId = grant.id;
    try {
      return await port.accessToken(
        {
          mailboxId,
          credential: await this.#decrypt(grant),
          accountId: await this.#accountId(grant),
          reload: async () => {
            const g = await this.#o.grants.findGrant(mailboxId);
            return g?.credentialEnc ? this.#decrypt(g) : null;
          },
          store: async (credential) => {
            const sealed = await this.sealCredential(mailboxId, credential);
            await this.#o.grants.updateCredential(mailboxId, sealed.credentialEnc);
          },
        },
        { forceRefresh },
      );
    } catch (err) {
      if (err instanceof GrantNotConfiguredError) throw new TokenVaultError('provider_not_configured', err.message);
      throw err;
    }
  }

  async #decrypt(grant: StoredGrant): Promise<GrantCredential> {
    const plain = await this.#o.dataKeys.decryptFor({ type: 'mailbox', id: grant.id }, grant.credentialEnc!, MAILBOX_CREDENTIAL_AAD(grant.id));
    try {
      const cred = this.#o.grantPorts[grant.provider].decode(plain);
      if (cred.provider !== grant.provider) throw new Error('credential provider mismatch');
      return cred;
    } finally {
      plain.fill(0);
    }
  }

  async #accountId(grant: StoredGrant): Promise<string | null> {
    if (!grant.accountIdEnc) return null;
    return (await this.#o.dataKeys.decryptFor({ type: 'mailbox', id: grant.id }, grant.accountIdEnc, MAILBOX_ACCOUNT_ID_AAD(grant.id))).toString('utf8');
  }

  /**
   * True when this process stored (or rotated) the mailbox's grant since it started. Answers only
   * until `stopTrackingSeals` (false afterwards).
   */
  sealedInThisProcess(mailboxId: string): boolean {
    return this.#sealedHere.has(mailboxId);
  }

  /** The start-up check no longer asks `sealedInThisProcess`: stop remembering seals. */
  stopTrackingSeals(): void {
    this.#trackSeals = false;
    this.#sealedHere.clear();
  }

  /** True when the stored grant was issued by a sandbox stand-in (see MailboxCredential `sandbox`). */
  async isSandboxGrant(mailboxId: string): Promise<boolean> {
    const grant = await this.#o.grants.findGrant(mailboxId);
    if (!grant?.credentialEnc) return false;
    return (await this.#decrypt(grant)).sandbox === true;
  }

  /**
   * `active` → `reauth_required` for a reason found outside a provider call (e.g. `sandbox_reset`),
   * with the same single event and audit entry. Returns false when the mailbox was not active.
   */
  async markReauthRequired(mailboxId: string, reason: string, statusReason: string): Promise<boolean> {
    const grant = await this.#o.grants.findGrant(mailboxId);
    if (!grant || grant.status !== 'active') return false;
    return this.#markReauthRequired(grant, reason, { statusReason, quiet: true });
  }

  async #markReauthRequired(grant: StoredGrant, reason: string, opts: { statusReason?: string; quiet?: boolean } = {}): Promise<boolean> {
    this.#tokens.delete(grant.id);
    const now = this.#o.clock();
    const provider: ProviderName = grant.provider;
    const eventIds = await this.#o.grants.transaction(async (tx) => {
      const flipped = await this.#o.grants.markReauthRequired(tx, grant.id, opts.statusReason ?? `${provider} refused the stored grant (${reason}); the mailbox must be reconnected`, now);
      if (!flipped) return [];
      const eventId = await this.#o.events.append(tx, { tenantId: grant.tenantId, mailboxId: grant.id, type: 'mailbox.reauth_required', data: { provider, reason } });
      await this.#o.audit.record(
        { tenantId: grant.tenantId, actorType: 'system', actorId: 'token-vault', action: 'mailbox.reauth_required', targetType: 'mailbox', targetId: grant.id, metadata: { provider, reason } },
        tx,
      );
      return [eventId];
    });
    if (eventIds.length) {
      if (!opts.quiet) this.#o.logger.warn({ mailboxId: grant.id, provider, reason }, 'mailbox needs reconnecting: grant refused by the provider');
      await this.#o.events.committed(eventIds);
    }
    return eventIds.length > 0;
  }
}

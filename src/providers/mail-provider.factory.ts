import type { AccessTokenSource, ChangePage, MailProvider, ProviderName, RawMessage, SendRequest, SendResult, SyncCursor, WindowPage } from './mail-provider.port.js';
import { isProviderError, ProviderError } from './provider-error.js';
import { GmailQuotaBudget } from './google/gmail-quota.js';
import { GmailWatchAdapter } from './google/gmail-watch.adapter.js';
import { GmailAdapter } from './google/gmail.adapter.js';
import type { GoogleEndpoints } from './google/google-endpoints.js';
import { ConcurrencyLimiter } from './microsoft/concurrency-limiter.js';
import { GraphSubscriptionsAdapter } from './microsoft/graph-subscriptions.adapter.js';
import { GraphAdapter, SHARED_MAILBOX_ACCESS_DENIED } from './microsoft/graph.adapter.js';
import type { MicrosoftEndpoints } from './microsoft/microsoft-endpoints.js';

/** The fields of a mailbox row the factory needs (a MailboxRecord satisfies it). */
export interface MailboxRef {
  id: string;
  provider: ProviderName;
  /** `shared_member`: a Microsoft 365 shared mailbox read through a member's grant (/users/{address}/…); absent = the signed-in person's own. */
  access?: string;
}

export interface MailProviderFactoryOptions {
  /** The vault's per-mailbox token source. */
  tokenSource: (mailboxId: string) => AccessTokenSource;
  google: GoogleEndpoints | undefined;
  microsoft: MicrosoftEndpoints | undefined;
  /** GMAIL_QUOTA_UNITS_PER_MINUTE (per user per project; provider-facts §1.6: treat as config). */
  gmailUnitsPerMinute: number;
  /**
   * Called when a provider call fails with `auth_revoked` although the vault handed out the
   * token (revoked server-side, or an access token cached past its revocation). The vault's
   * `confirmAuthFailure` forces a refresh: `grant_valid` → the call is retried once;
   * `reauth_required` → the mailbox was flagged and the error goes to the caller.
   */
  onAuthFailure?: (mailboxId: string) => Promise<'grant_valid' | 'reauth_required'>;
  /**
   * The grant is fine (a forced refresh worked) but the provider still refuses this mailbox to it
   * with a named reason — a shared mailbox whose member lost access (`shared_mailbox_access_denied`):
   * no refresh can fix that, the mailbox needs reconnecting by someone who has access.
   */
  onAccessDenied?: (mailboxId: string, reason: string) => Promise<void>;
  /**
   * The address of a shared mailbox (`access: shared_member`), decrypted from its record: its
   * Graph paths are /users/{address}/…. Without it such a mailbox cannot be built (fails closed).
   */
  sharedMailboxAddress?: (mailboxId: string) => Promise<string>;
  /** Most per-mailbox quota budgets / concurrency limiters kept in memory. */
  maxTrackedMailboxes?: number;
  /** How often budgets and limiters at rest are dropped (default 60 s). */
  sweepIntervalMs?: number;
}

/**
 * A mailbox of a provider this run has no configuration for (e.g. sandbox data under a plain
 * `npm start`). A ProviderError (`invalid_request`, reason `provider_not_configured`) so that
 * sync, send and purge treat it as a permanent, expected failure — one log line, no retries and
 * no stack traces — rather than an internal error.
 */
export class ProviderNotConfiguredError extends ProviderError {
  constructor(provider: ProviderName) {
    super(provider, 'invalid_request', `${provider === 'google' ? 'Google (GOOGLE_CLIENT_ID/GOOGLE_CLIENT_SECRET)' : 'Microsoft (MICROSOFT_CLIENT_ID/MICROSOFT_CLIENT_SECRET)'} is not configured`, {
      reason: 'provider_not_configured',
    });
  }
}

/**
 * Builds the provider adapters for one mailbox, bound to the token vault and to the configured
 * endpoints (real or sandbox). Per-mailbox limits are shared between every adapter of the same
 * mailbox in this process: the Gmail quota budget (per-user quota) and Outlook's four
 * concurrent requests per mailbox.
 */
export class MailProviderFactory {
  readonly #budgets = new Map<string, GmailQuotaBudget>();
  readonly #limiters = new Map<string, ConcurrencyLimiter>();
  readonly #max: number;
  readonly #sweepMs: number;
  #sweep: NodeJS.Timeout | undefined;

  constructor(private readonly o: MailProviderFactoryOptions) {
    this.#max = o.maxTrackedMailboxes ?? 5000;
    this.#sweepMs = o.sweepIntervalMs ?? 60_000;
  }

  /**
   * Drops budgets and limiters at rest (nothing in flight, nothing spent in the quota window, no
   * pause or penalty): idle mailboxes then cost no memory here, and a new one behaves the same.
   * Runs every `sweepIntervalMs` while anything is tracked (an unref'd timer, so it never keeps
   * the process alive and stops when both maps are empty).
   */
  /** Mailboxes with a budget or limiter in memory (observability and tests). */
  get tracked(): number {
    return new Set([...this.#budgets.keys(), ...this.#limiters.keys()]).size;
  }

  sweep(): void {
    for (const [id, b] of this.#budgets) if (b.atRest()) this.#budgets.delete(id);
    for (const [id, l] of this.#limiters) if (l.atRest()) this.#limiters.delete(id);
  }

  #armSweep(): void {
    if (this.#sweep) return;
    this.#sweep = setTimeout(() => {
      this.#sweep = undefined;
      this.sweep();
      if (this.#budgets.size + this.#limiters.size > 0) this.#armSweep();
    }, this.#sweepMs);
    this.#sweep.unref();
  }

  /** The MailProvider (sync, fetch, send) of `mailbox`. */
  forMailbox(mailbox: MailboxRef): MailProvider {
    const accessToken = this.o.tokenSource(mailbox.id);
    let adapter: MailProvider;
    if (mailbox.provider === 'google') {
      adapter = new GmailAdapter({ endpoints: this.#google(), accessToken, quota: this.#budget(mailbox.id) });
    } else if (mailbox.access === 'shared_member') {
      const endpoints = this.#microsoft();
      const limiter = this.#limiter(mailbox.id);
      const resolve = this.o.sharedMailboxAddress;
      adapter = new DeferredProvider('microsoft', async () => {
        if (!resolve) throw new ProviderError('microsoft', 'invalid_request', 'shared mailboxes are not configured in this process', { reason: 'provider_not_configured' });
        return new GraphAdapter({ endpoints, accessToken, limiter, sharedMailbox: await resolve(mailbox.id) });
      });
    } else {
      adapter = new GraphAdapter({ endpoints: this.#microsoft(), accessToken, limiter: this.#limiter(mailbox.id) });
    }
    const onAuthFailure = this.o.onAuthFailure;
    const onAccessDenied = this.o.onAccessDenied;
    return onAuthFailure ? new AuthRecoveringProvider(adapter, () => onAuthFailure(mailbox.id), onAccessDenied ? (reason) => onAccessDenied(mailbox.id, reason) : undefined) : adapter;
  }

  /** Gmail users.watch / users.stop for a Google mailbox. */
  gmailWatch(mailbox: MailboxRef): GmailWatchAdapter {
    if (mailbox.provider !== 'google') throw new TypeError('gmailWatch needs a Google mailbox');
    return new GmailWatchAdapter({ endpoints: this.#google(), accessToken: this.o.tokenSource(mailbox.id), quota: this.#budget(mailbox.id) });
  }

  /** Graph change-notification subscriptions for a Microsoft mailbox (never a shared one: delegated .Shared permissions have none). */
  graphSubscriptions(mailbox: MailboxRef): GraphSubscriptionsAdapter {
    if (mailbox.provider !== 'microsoft') throw new TypeError('graphSubscriptions needs a Microsoft mailbox');
    if (mailbox.access === 'shared_member') throw new TypeError('a shared mailbox has no change-notification subscription (it is polled)');
    return new GraphSubscriptionsAdapter({ endpoints: this.#microsoft(), accessToken: this.o.tokenSource(mailbox.id), limiter: this.#limiter(mailbox.id) });
  }

  /** Drop per-mailbox state (after a purge). */
  release(mailboxId: string): void {
    this.#budgets.delete(mailboxId);
    this.#limiters.delete(mailboxId);
  }

  #google(): GoogleEndpoints {
    if (!this.o.google) throw new ProviderNotConfiguredError('google');
    return this.o.google;
  }

  #microsoft(): MicrosoftEndpoints {
    if (!this.o.microsoft) throw new ProviderNotConfiguredError('microsoft');
    return this.o.microsoft;
  }

  #budget(mailboxId: string): GmailQuotaBudget {
    this.#armSweep();
    return remember(this.#budgets, mailboxId, this.#max, () => new GmailQuotaBudget({ unitsPerWindow: this.o.gmailUnitsPerMinute, windowMs: 60_000 }));
  }

  #limiter(mailboxId: string): ConcurrencyLimiter {
    this.#armSweep();
    return remember(this.#limiters, mailboxId, this.#max, () => new ConcurrencyLimiter(4));
  }
}

/** Map as a small LRU: re-inserting on use keeps recently used mailboxes, the oldest goes first. */
function remember<T>(map: Map<string, T>, key: string, max: number, make: () => T): T {
  const existing = map.get(key);
  if (existing !== undefined) {
    map.delete(key);
    map.set(key, existing);
    return existing;
  }
  const created = make();
  map.set(key, created);
  if (map.size > max) map.delete(map.keys().next().value as string);
  return created;
}

/** A provider built on first use (a shared mailbox's address is decrypted asynchronously); built once. */
class DeferredProvider implements MailProvider {
  #inner: Promise<MailProvider> | undefined;

  constructor(
    readonly name: ProviderName,
    private readonly make: () => Promise<MailProvider>,
  ) {}

  private inner(): Promise<MailProvider> {
    this.#inner ??= this.make();
    // A failed build (database briefly unreachable) is tried again by the next call.
    this.#inner.catch(() => (this.#inner = undefined));
    return this.#inner;
  }

  async getAddress(): Promise<string> {
    return (await this.inner()).getAddress();
  }
  async currentCursor(): Promise<SyncCursor> {
    return (await this.inner()).currentCursor();
  }
  async listChanges(cursor: SyncCursor): Promise<ChangePage> {
    return (await this.inner()).listChanges(cursor);
  }
  async listWindow(since: Date, pageToken?: string): Promise<WindowPage> {
    return (await this.inner()).listWindow(since, pageToken);
  }
  async fetchRaw(providerMessageId: string): Promise<RawMessage> {
    return (await this.inner()).fetchRaw(providerMessageId);
  }
  async findByInternetMessageId(internetMessageId: string): Promise<string | undefined> {
    return (await this.inner()).findByInternetMessageId(internetMessageId);
  }
  async send(req: SendRequest): Promise<SendResult> {
    return (await this.inner()).send(req);
  }
}

/**
 * Delegates to the adapter; an `auth_revoked` failure is checked with the vault once (forced
 * refresh) and the call retried when the grant turns out to be fine. Sends are retried too: a
 * request rejected as unauthorized was not performed.
 */
class AuthRecoveringProvider implements MailProvider {
  readonly name: ProviderName;

  constructor(
    private readonly inner: MailProvider,
    private readonly confirm: () => Promise<'grant_valid' | 'reauth_required'>,
    private readonly denied?: (reason: string) => Promise<void>,
  ) {
    this.name = inner.name;
  }

  private async run<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (!isProviderError(err, 'auth_revoked')) throw err;
      if ((await this.confirm()) === 'reauth_required') throw err;
      try {
        return await call();
      } catch (again) {
        // A fresh token from a valid grant refused for the same named reason: access to this
        // mailbox was withdrawn (a shared mailbox's member removed), not the grant.
        if (this.denied && isProviderError(again, 'auth_revoked') && again.reason === SHARED_MAILBOX_ACCESS_DENIED) await this.denied(again.reason);
        throw again;
      }
    }
  }

  getAddress(): Promise<string> {
    return this.run(() => this.inner.getAddress());
  }
  currentCursor(): Promise<SyncCursor> {
    return this.run(() => this.inner.currentCursor());
  }
  listChanges(cursor: SyncCursor): Promise<ChangePage> {
    return this.run(() => this.inner.listChanges(cursor));
  }
  listWindow(since: Date, pageToken?: string): Promise<WindowPage> {
    return this.run(() => this.inner.listWindow(since, pageToken));
  }
  fetchRaw(providerMessageId: string): Promise<RawMessage> {
    return this.run(() => this.inner.fetchRaw(providerMessageId));
  }
  findByInternetMessageId(internetMessageId: string): Promise<string | undefined> {
    return this.run(() => this.inner.findByInternetMessageId(internetMessageId));
  }
  send(req: SendRequest): Promise<SendResult> {
    return this.run(() => this.inner.send(req));
  }
}

import type { AccessTokenSource, MailProvider, ProviderName } from '../providers/mail-provider.port.js';
import { GmailQuotaBudget } from '../providers/google/gmail-quota.js';
import { GmailWatchAdapter } from '../providers/google/gmail-watch.adapter.js';
import { GmailAdapter } from '../providers/google/gmail.adapter.js';
import type { GoogleEndpoints } from '../providers/google/google-endpoints.js';
import { ConcurrencyLimiter } from '../providers/microsoft/concurrency-limiter.js';
import { GraphSubscriptionsAdapter } from '../providers/microsoft/graph-subscriptions.adapter.js';
import { GraphAdapter } from '../providers/microsoft/graph.adapter.js';
import type { MicrosoftEndpoints } from '../providers/microsoft/microsoft-endpoints.js';

/** The fields of a mailbox row the factory needs (a MailboxRecord satisfies it). */
export interface MailboxRef {
  id: string;
  provider: ProviderName;
}

export interface MailProviderFactoryOptions {
  /** The vault's per-mailbox token source. */
  tokenSource: (mailboxId: string) => AccessTokenSource;
  google: GoogleEndpoints | undefined;
  microsoft: MicrosoftEndpoints | undefined;
  /** GMAIL_QUOTA_UNITS_PER_MINUTE (per user per project; provider-facts §1.6: treat as config). */
  gmailUnitsPerMinute: number;
  /** Most per-mailbox quota budgets / concurrency limiters kept in memory. */
  maxTrackedMailboxes?: number;
}

export class ProviderNotConfiguredError extends Error {
  override readonly name = 'ProviderNotConfiguredError';
  constructor(readonly provider: ProviderName) {
    super(`${provider === 'google' ? 'Google (GOOGLE_CLIENT_ID)' : 'Microsoft (MICROSOFT_CLIENT_ID)'} is not configured`);
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

  constructor(private readonly o: MailProviderFactoryOptions) {
    this.#max = o.maxTrackedMailboxes ?? 5000;
  }

  /** The MailProvider (sync, fetch, send) of `mailbox`. */
  forMailbox(mailbox: MailboxRef): MailProvider {
    const accessToken = this.o.tokenSource(mailbox.id);
    if (mailbox.provider === 'google') {
      return new GmailAdapter({ endpoints: this.#google(), accessToken, quota: this.#budget(mailbox.id) });
    }
    return new GraphAdapter({ endpoints: this.#microsoft(), accessToken, limiter: this.#limiter(mailbox.id) });
  }

  /** Gmail users.watch / users.stop for a Google mailbox. */
  gmailWatch(mailbox: MailboxRef): GmailWatchAdapter {
    if (mailbox.provider !== 'google') throw new TypeError('gmailWatch needs a Google mailbox');
    return new GmailWatchAdapter({ endpoints: this.#google(), accessToken: this.o.tokenSource(mailbox.id), quota: this.#budget(mailbox.id) });
  }

  /** Graph change-notification subscriptions for a Microsoft mailbox. */
  graphSubscriptions(mailbox: MailboxRef): GraphSubscriptionsAdapter {
    if (mailbox.provider !== 'microsoft') throw new TypeError('graphSubscriptions needs a Microsoft mailbox');
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
    return remember(this.#budgets, mailboxId, this.#max, () => new GmailQuotaBudget({ unitsPerWindow: this.o.gmailUnitsPerMinute, windowMs: 60_000 }));
  }

  #limiter(mailboxId: string): ConcurrencyLimiter {
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

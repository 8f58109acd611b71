import type { Logger } from '../observability/logger.js';
import type { ProviderName, SendAsAddress } from '../providers/mail-provider.port.js';
import { isProviderError } from '../providers/provider-error.js';
import type { SendFromRefusalRepository } from '../storage/send-from-refusal.repository.js';
import type { MailProviderSource } from './mail-provider-source.port.js';

/**
 * Why a From address was refused: not one of the mailbox's addresses, an alias not verified yet,
 * refused by the provider at a recent send (Exchange ErrorSendAsDenied), a delegated From on a
 * provider without delegation (Gmail), or a connection without the permission it needs
 * (Microsoft Mail.Send.Shared).
 */
export type SendAsRefusal = 'not_an_alias' | 'alias_not_verified' | 'send_as_denied' | 'alias_rewritten' | 'delegation_not_supported' | 'shared_scope_missing';

export type SendAsVerdict =
  | { ok: true; address: string; displayName: string | undefined }
  | { ok: false; reason: SendAsRefusal };

/** The provider could not be asked (network, 5xx, rate limit, grant gone): the caller may retry. */
export class SendAsUnavailableError extends Error {
  override readonly name = 'SendAsUnavailableError';
}

export interface SendAsDirectoryOptions {
  /** A cached list answers for this long (default 10 minutes). */
  ttlMs?: number;
  /**
   * An address not found (or not verified) in a cached list refreshes it from the provider
   * ("refresh on miss"), at most once per this interval per mailbox (default 30 s), so a caller
   * repeating an unknown address does not turn every request into a provider call.
   */
  missRefreshMs?: number;
  /** Mailboxes kept (least recently fetched dropped first; default 10,000). */
  maxEntries?: number;
  /**
   * How long an answer of the shared refusal table (`refusals`) is reused in this process before
   * it is read again (default 5 s): a refusal another process recorded is seen within this.
   */
  refusalCacheMs?: number;
}

/**
 * Where refusals are shared between processes (table `send_from_refusals`), and the keyed blind
 * index that stands for the address there (`BlindIndex.emailIndex`; never the address itself).
 */
export interface SharedRefusals {
  store: Pick<SendFromRefusalRepository, 'remember' | 'find'>;
  index: (address: string) => string;
}

type Refusal = 'send_as_denied' | 'alias_rewritten';

interface Entry {
  list: SendAsAddress[];
  fetchedAt: number;
}

/**
 * Which addresses a mailbox may send from (issue 15 item 4): Gmail's send-as list
 * (`users.settings.sendAs.list`), cached per mailbox in this process. The list is personal
 * data: it is only held in memory, never logged or stored, and forgotten after `ttlMs`. Froms
 * the provider refused or rewrote at a send are shared between processes through `refusals`
 * (the address as a keyed blind index only, until it expires).
 */
export class SendAsDirectory {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  /** `mailboxId\n address (lower case)` → when and how the provider refused or rewrote that From (seen by this process). */
  private readonly denied = new Map<string, { at: number; reason: Refusal }>();
  /** Same key → the shared table's answer (a refusal or none) and when it was read. */
  private readonly shared = new Map<string, { reason: Refusal | undefined; until: number; readAt: number }>();
  private readonly ttlMs: number;
  private readonly missRefreshMs: number;
  private readonly maxEntries: number;
  private readonly refusalCacheMs: number;

  constructor(
    private readonly deps: { providers: MailProviderSource; clock: () => Date; logger: Pick<Logger, 'warn'>; refusals?: SharedRefusals },
    opts: SendAsDirectoryOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 10 * 60_000;
    this.missRefreshMs = opts.missRefreshMs ?? 30_000;
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.refusalCacheMs = opts.refusalCacheMs ?? 5_000;
  }

  /** May `mailbox` send with From = `address`? (Its own primary address needs no check: see SendRequestService.) */
  async check(mailbox: { id: string; provider: ProviderName }, address: string): Promise<SendAsVerdict> {
    const refused = await this.refusal(mailbox.id, address);
    if (refused) return { ok: false, reason: refused };
    const now = this.deps.clock().getTime();
    let entry = this.entries.get(mailbox.id);
    if (!entry || now - entry.fetchedAt >= this.ttlMs) entry = await this.refresh(mailbox);
    let verdict = decide(entry.list, address);
    if (!verdict.ok && now - entry.fetchedAt >= this.missRefreshMs) {
      entry = await this.refresh(mailbox);
      verdict = decide(entry.list, address);
    }
    return verdict;
  }

  /** Drops a mailbox's cached list and remembered refusals (e.g. after disconnect). */
  forget(mailboxId: string): void {
    this.entries.delete(mailboxId);
    for (const key of this.denied.keys()) if (key.startsWith(`${mailboxId}\n`)) this.denied.delete(key);
    for (const key of this.shared.keys()) if (key.startsWith(`${mailboxId}\n`)) this.shared.delete(key);
  }

  /**
   * The provider refused to send from `address` for this mailbox (Exchange ErrorSendAsDenied, at
   * the send job): for `ttlMs` a request naming it again is refused up front (`send_as_denied`)
   * instead of queueing a send that would fail the same way. A permission granted meanwhile works
   * after that. With `refusals`, every process sharing the database knows within
   * `refusalCacheMs`; the address is stored only as its blind index.
   */
  rememberDenied(mailboxId: string, address: string): Promise<void> {
    return this.remember(mailboxId, address, 'send_as_denied');
  }

  /**
   * The provider sent a message from another address than this alias (Exchange rewrites an alias
   * to the primary address while the organization's SendFromAliasEnabled is off): for `ttlMs` a
   * request naming the alias is refused up front (`alias_rewritten`) rather than sent from the
   * primary address again.
   */
  rememberRewritten(mailboxId: string, address: string): Promise<void> {
    return this.remember(mailboxId, address, 'alias_rewritten');
  }

  /** Did the provider refuse this From for this mailbox within `ttlMs` (this process, or another one through `refusals`)? */
  async deniedRecently(mailboxId: string, address: string): Promise<boolean> {
    return (await this.refusal(mailboxId, address)) === 'send_as_denied';
  }

  /** Never throws: a refusal that cannot be stored is still remembered here, and logged (without the address). */
  private async remember(mailboxId: string, address: string, reason: Refusal): Promise<void> {
    const key = `${mailboxId}\n${address.toLowerCase()}`;
    const now = this.deps.clock();
    this.denied.delete(key);
    this.denied.set(key, { at: now.getTime(), reason });
    while (this.denied.size > this.maxEntries) this.denied.delete(this.denied.keys().next().value!);
    this.shared.delete(key);
    const refusals = this.deps.refusals;
    if (!refusals) return;
    try {
      await refusals.store.remember({ mailboxId, addressIndex: refusals.index(address), reason, expiresAt: new Date(now.getTime() + this.ttlMs), now });
    } catch (err) {
      // E.g. the mailbox was purged meanwhile (foreign key). Kind only: the error could quote values.
      this.deps.logger.warn({ mailboxId, reason, err: err instanceof Error ? err.name : 'error' }, 'a refused From could not be stored for other processes');
    }
  }

  private async refusal(mailboxId: string, address: string): Promise<Refusal | undefined> {
    const key = `${mailboxId}\n${address.toLowerCase()}`;
    const now = this.deps.clock().getTime();
    const hit = this.denied.get(key);
    if (hit !== undefined) {
      if (now - hit.at < this.ttlMs) return hit.reason;
      this.denied.delete(key);
    }
    const refusals = this.deps.refusals;
    if (!refusals) return undefined;
    const cached = this.shared.get(key);
    if (cached && now - cached.readAt < this.refusalCacheMs) return cached.reason !== undefined && now < cached.until ? cached.reason : undefined;
    let found: { reason: Refusal; expiresAt: Date } | null;
    try {
      found = await refusals.store.find(mailboxId, refusals.index(address), new Date(now));
    } catch (err) {
      // The provider still refuses the send itself; a failed read only loses the early answer.
      this.deps.logger.warn({ mailboxId, err: err instanceof Error ? err.name : 'error' }, 'stored From refusals could not be read');
      return undefined;
    }
    this.shared.delete(key);
    this.shared.set(key, { reason: found?.reason, until: found ? found.expiresAt.getTime() : 0, readAt: now });
    while (this.shared.size > this.maxEntries) this.shared.delete(this.shared.keys().next().value!);
    return found?.reason;
  }

  private refresh(mailbox: { id: string; provider: ProviderName }): Promise<Entry> {
    const running = this.inflight.get(mailbox.id);
    if (running) return running;
    const p = this.fetch(mailbox).finally(() => this.inflight.delete(mailbox.id));
    this.inflight.set(mailbox.id, p);
    return p;
  }

  private async fetch(mailbox: { id: string; provider: ProviderName }): Promise<Entry> {
    let list: SendAsAddress[];
    try {
      const provider = await this.deps.providers(mailbox);
      // A provider without a send-as list allows only the mailbox's own address. Microsoft lists
      // a user mailbox's SMTP aliases; Exchange's SendAs/SendOnBehalf grants have no API and are
      // asked for per request (`from.delegated`, SendRequestService).
      list = provider.listSendAs ? await provider.listSendAs() : [];
    } catch (err) {
      // Kind and status only: the answer could name addresses.
      this.deps.logger.warn(
        { mailboxId: mailbox.id, provider: mailbox.provider, kind: isProviderError(err) ? err.kind : 'error', status: isProviderError(err) ? err.status : undefined },
        'send-as list could not be read',
      );
      throw new SendAsUnavailableError('the send-as list could not be read from the provider', { cause: err });
    }
    const entry = { list, fetchedAt: this.deps.clock().getTime() };
    this.entries.delete(mailbox.id);
    this.entries.set(mailbox.id, entry);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return entry;
  }
}

function decide(list: SendAsAddress[], address: string): SendAsVerdict {
  const wanted = address.toLowerCase();
  const hit = list.find((a) => a.address.toLowerCase() === wanted);
  if (!hit) return { ok: false, reason: 'not_an_alias' };
  if (!hit.verified) return { ok: false, reason: 'alias_not_verified' };
  return { ok: true, address: hit.address, displayName: hit.displayName };
}

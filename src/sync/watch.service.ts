import { randomBytes } from 'node:crypto';
import type { DataKeyService } from '../crypto/data-key.service.js';
import type { Logger } from '../observability/logger.js';
import { isProviderError } from '../providers/provider-error.js';
import type { MailboxSyncRecord, SyncStateRepository } from '../storage/sync-state.repository.js';
import type { SyncProviders } from './sync-providers.port.js';

const DAY = 86_400_000;

/** AAD of `mailboxes.clientStateEnc` (mailbox DEK). */
export const CLIENT_STATE_AAD = (mailboxId: string) => ({ table: 'mailboxes', column: 'clientStateEnc', rowId: mailboxId }) as const;

export interface WatchSettings {
  /** GOOGLE_PUBSUB_TOPIC; unset → no Gmail watch, polling only. */
  googleTopic: string | undefined;
  /** PUBLIC_URL: Graph notification URLs are built from it. */
  publicUrl: string;
  /** Graph subscription lifetime asked for (max 10,080 min for Outlook messages, provider-facts §4.2). */
  subscriptionLifetimeMs?: number;
  /** Renew a Graph subscription when less than this is left. */
  subscriptionRenewBeforeMs?: number;
  /** Re-call Gmail watch when less than this is left of its 7 days: "We recommend calling watch once per day". */
  gmailRenewBeforeMs?: number;
}

/**
 * Gmail watches and Graph subscriptions of one mailbox: started on first sync, renewed before
 * they lapse (daily for Gmail, a day before expiry for Graph), recreated when the provider
 * removed them. A failure here never fails a sync: push is an accelerator, polling is the floor.
 */
export class WatchService {
  readonly #lifetime: number;
  readonly #renewBefore: number;
  readonly #gmailRenewBefore: number;

  constructor(
    private readonly d: {
      providers: SyncProviders;
      state: SyncStateRepository;
      dataKeys: Pick<DataKeyService, 'encryptFor'>;
      clock: () => Date;
      logger: Pick<Logger, 'info' | 'warn'>;
      settings: WatchSettings;
    },
  ) {
    // 10,000 minutes: just under Graph's 10,080-minute cap, leaving room for clock skew.
    this.#lifetime = d.settings.subscriptionLifetimeMs ?? 10_000 * 60_000;
    this.#renewBefore = d.settings.subscriptionRenewBeforeMs ?? 2 * DAY;
    this.#gmailRenewBefore = d.settings.gmailRenewBeforeMs ?? 6 * DAY;
  }

  /** Starts or renews what is due. Rethrows auth_revoked (the mailbox needs reconnecting). */
  async ensure(mailbox: MailboxSyncRecord): Promise<void> {
    try {
      if (mailbox.provider === 'google') await this.#ensureGmail(mailbox);
      else await this.#ensureGraph(mailbox);
    } catch (err) {
      if (isProviderError(err, 'auth_revoked')) throw err;
      this.d.logger.warn({ err, mailboxId: mailbox.id }, 'watch/subscription setup failed; polling covers the mailbox until the next attempt');
    }
  }

  async #ensureGmail(m: MailboxSyncRecord): Promise<void> {
    const topic = this.d.settings.googleTopic;
    if (!topic) return;
    const now = this.d.clock().getTime();
    if (m.watchExpiresAt && m.watchExpiresAt.getTime() - now > this.#gmailRenewBefore) return;
    const info = await this.d.providers.gmailWatch(m).watch(topic);
    await this.d.state.saveWatch(m.id, info.expiresAt);
    this.d.logger.info({ mailboxId: m.id, expiresAt: info.expiresAt }, 'gmail watch started');
  }

  async #ensureGraph(m: MailboxSyncRecord): Promise<void> {
    const now = this.d.clock().getTime();
    if (m.subscriptionId && m.subscriptionExpiresAt && m.subscriptionExpiresAt.getTime() - now > this.#renewBefore) return;
    const subs = this.d.providers.graphSubscriptions(m);
    const expiresAt = new Date(now + this.#lifetime);
    if (m.subscriptionId) {
      try {
        // PATCH also answers reauthorizationRequired (provider-facts §4.2).
        const renewed = await subs.renew(m.subscriptionId, expiresAt);
        await this.d.state.saveSubscription(m.id, { subscriptionId: renewed.subscriptionId, expiresAt: renewed.expiresAt });
        return;
      } catch (err) {
        if (!isProviderError(err, 'not_found')) throw err;
        // Gone at Graph (expired, removed): fall through and create a new one.
      }
    }
    const base = this.d.settings.publicUrl.replace(/\/+$/, '');
    // A fresh random secret per subscription; Graph echoes it in every notification (≤128 chars).
    const clientState = randomBytes(32).toString('base64url');
    const clientStateEnc = await this.d.dataKeys.encryptFor({ type: 'mailbox', id: m.id }, clientState, CLIENT_STATE_AAD(m.id));
    // Store the secret first: Graph may deliver a notification before create() returns.
    await this.d.state.saveSubscription(m.id, { subscriptionId: m.subscriptionId, expiresAt: m.subscriptionExpiresAt, clientStateEnc });
    const created = await subs.create({
      notificationUrl: `${base}/push/microsoft`,
      lifecycleNotificationUrl: `${base}/push/microsoft/lifecycle`,
      clientState,
      expiresAt,
    });
    await this.d.state.saveSubscription(m.id, { subscriptionId: created.subscriptionId, expiresAt: created.expiresAt });
    this.d.logger.info({ mailboxId: m.id, expiresAt: created.expiresAt }, 'graph subscription created');
  }
}

import { randomBytes } from 'node:crypto';
import type { DataKeyService } from '../crypto/data-key.service.js';
import type { Logger } from '../observability/logger.js';
import { isProviderError } from '../providers/provider-error.js';
import type { MailboxSyncRecord, SyncStateRepository } from '../storage/sync-state.repository.js';
import type { SyncProviders } from './sync-providers.port.js';
import { renewalDue, renewalDueAt } from './watch-renewal.js';

/** AAD of `mailboxes.clientStateEnc` (mailbox DEK). */
export const CLIENT_STATE_AAD = (mailboxId: string) => ({ table: 'mailboxes', column: 'clientStateEnc', rowId: mailboxId }) as const;

export interface WatchSettings {
  /** GOOGLE_PUBSUB_TOPIC; unset → no Gmail watch, polling only. */
  googleTopic: string | undefined;
  /** PUBLIC_URL: Graph notification URLs are built from it. */
  publicUrl: string;
  /** Graph subscription lifetime asked for (max 10,080 min for Outlook messages, provider-facts §4.2). */
  subscriptionLifetimeMs?: number;
}

/**
 * Gmail watches and Graph subscriptions of one mailbox: started on first sync, renewed before
 * they lapse — at a time computed from the expiration the provider returned (watch-renewal.ts:
 * 70–80 % of the granted lifetime, Gmail at least daily) and stored as `pushRenewAt` —, recreated
 * when the provider removed them. A failure here never fails a sync: push is an accelerator,
 * polling is the floor.
 */
export class WatchService {
  readonly #lifetime: number;
  readonly #random: () => number;

  constructor(
    private readonly d: {
      providers: SyncProviders;
      state: SyncStateRepository;
      dataKeys: Pick<DataKeyService, 'encryptFor'>;
      clock: () => Date;
      logger: Pick<Logger, 'info' | 'warn'>;
      settings: WatchSettings;
      /** Uniform in [0, 1): renewal jitter (tests pin it). */
      random?: () => number;
    },
  ) {
    // 10,000 minutes: just under Graph's 10,080-minute cap, leaving room for clock skew.
    this.#lifetime = d.settings.subscriptionLifetimeMs ?? 10_000 * 60_000;
    this.#random = d.random ?? Math.random;
  }

  #renewAt(provider: 'google' | 'microsoft', expiresAt: Date): Date {
    return renewalDueAt({ provider, expiresAt, now: this.d.clock(), random: this.#random });
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
    if (!renewalDue(m.pushRenewAt, m.watchExpiresAt, this.d.clock())) return;
    const info = await this.d.providers.gmailWatch(m).watch(topic);
    const renewAt = this.#renewAt('google', info.expiresAt);
    await this.d.state.saveWatch(m.id, info.expiresAt, renewAt);
    this.d.logger.info({ mailboxId: m.id, expiresAt: info.expiresAt, renewAt }, 'gmail watch started');
  }

  async #ensureGraph(m: MailboxSyncRecord): Promise<void> {
    const now = this.d.clock().getTime();
    if (m.subscriptionId && !renewalDue(m.pushRenewAt, m.subscriptionExpiresAt, this.d.clock())) return;
    const subs = this.d.providers.graphSubscriptions(m);
    const expiresAt = new Date(now + this.#lifetime);
    if (m.subscriptionId) {
      try {
        // PATCH also answers reauthorizationRequired (provider-facts §4.2).
        const renewed = await subs.renew(m.subscriptionId, expiresAt);
        // Graph may grant less than asked (rich notifications: 1,440 min): plan from its answer.
        await this.d.state.saveSubscription(m.id, { subscriptionId: renewed.subscriptionId, expiresAt: renewed.expiresAt, renewAt: this.#renewAt('microsoft', renewed.expiresAt) });
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
    const renewAt = this.#renewAt('microsoft', created.expiresAt);
    await this.d.state.saveSubscription(m.id, { subscriptionId: created.subscriptionId, expiresAt: created.expiresAt, renewAt });
    this.d.logger.info({ mailboxId: m.id, expiresAt: created.expiresAt, renewAt }, 'graph subscription created');
  }
}

import { randomBytes } from 'node:crypto';
import type { DataKeyService } from '../crypto/data-key.service.js';
import type { Logger } from '../observability/logger.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import type { PushGrant } from '../providers/ports.js';
import { isProviderError } from '../providers/provider-error.js';
import { pushPortFor } from '../providers/push-ports.js';
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
 * 70–80 % of the granted lifetime, capped by the push port's maxRenewalIntervalMs: Gmail daily) and stored as `pushRenewAt` —, recreated
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
      /**
       * The token vault's rule for an `auth_revoked` answer to a token it handed out
       * (`TokenVault.confirmAuthFailure`): it forces a refresh; `grant_valid` → the call is tried
       * once more with the new token, `reauth_required` → the vault flagged the mailbox (one
       * `mailbox.reauth_required` event). Absent: the 401 is rethrown unchecked.
       */
      confirmAuthFailure?: (mailboxId: string) => Promise<'grant_valid' | 'reauth_required'>;
    },
  ) {
    // 10,000 minutes: just under Graph's 10,080-minute cap, leaving room for clock skew.
    this.#lifetime = d.settings.subscriptionLifetimeMs ?? 10_000 * 60_000;
    this.#random = d.random ?? Math.random;
  }

  /**
   * Starts or renews what is due. An `auth_revoked` answer (Gmail users.watch 401, Graph
   * subscription create/renew 401) is checked with the vault as the read calls are
   * (`confirmAuthFailure`: a forced refresh), so a revoked grant flags the mailbox now rather than
   * when its cached access token lapses: `reauth_required` → rethrown (the sync stops); grant
   * valid (the token had only expired) → tried once more with the fresh token, and a second
   * refusal is a push setup failure like any other (the sync's own reads still check the grant).
   */
  async ensure(mailbox: MailboxSyncRecord): Promise<void> {
    try {
      await this.#ensure(mailbox);
    } catch (err) {
      if (!isProviderError(err, 'auth_revoked')) return this.#setupFailed(mailbox, err);
      const confirm = this.d.confirmAuthFailure;
      if (!confirm) throw err;
      let verdict: 'grant_valid' | 'reauth_required';
      try {
        verdict = await confirm(mailbox.id);
      } catch (refreshErr) {
        // The token endpoint could not say (unreachable, rate limited): nothing is decided here.
        return this.#setupFailed(mailbox, refreshErr);
      }
      if (verdict === 'reauth_required') throw err;
      try {
        await this.#ensure(mailbox);
      } catch (again) {
        this.#setupFailed(mailbox, again);
      }
    }
  }

  #setupFailed(mailbox: MailboxSyncRecord, err: unknown): void {
    this.d.logger.warn({ err, mailboxId: mailbox.id }, 'watch/subscription setup failed; polling covers the mailbox until the next attempt');
  }

  async #ensure(m: MailboxSyncRecord): Promise<void> {
    // A Microsoft 365 shared mailbox read through a member's .Shared grant: Graph offers no change
    // notifications for it (issue 15), so none is attempted; it is polled (sync-scheduler.service.ts).
    if (m.access === 'shared_member') return;
    const push = pushPortFor(m.provider, {
      gmailWatch: () => this.d.providers.gmailWatch(m),
      graphSubscriptions: () => this.d.providers.graphSubscriptions(m),
      gmailTopic: this.d.settings.googleTopic,
    });
    if (!push) return;
    const columns = CHANNEL_COLUMNS[m.provider];
    const channel = columns.read(m);
    // A channel with an id that was never granted is started now, whatever the stored times say.
    if (!(push.identified && channel.id === null) && !renewalDue(m.pushRenewAt, channel.expiresAt, this.d.clock())) return;
    const expiresAt = new Date(this.d.clock().getTime() + this.#lifetime);
    let granted = push.identified && channel.id === null ? undefined : await push.renew(channel.id, expiresAt);
    const started = granted === undefined;
    if (granted === undefined) {
      const base = `${this.d.settings.publicUrl.replace(/\/+$/, '')}/push/${m.provider}`;
      let clientState: string | undefined;
      if (push.identified) {
        // A fresh random secret per channel; Graph echoes it in every notification (≤128 chars).
        clientState = randomBytes(32).toString('base64url');
        const clientStateEnc = await this.d.dataKeys.encryptFor({ type: 'mailbox', id: m.id }, clientState, CLIENT_STATE_AAD(m.id));
        // Store the secret first: a notification may arrive before start() returns.
        await this.d.state.saveSubscription(m.id, { subscriptionId: m.subscriptionId, expiresAt: m.subscriptionExpiresAt, clientStateEnc });
      }
      granted = await push.start({ notificationUrl: base, lifecycleNotificationUrl: `${base}/lifecycle`, clientState, expiresAt });
    }
    // The provider may grant less than asked (Graph rich notifications: 1,440 min): plan from its answer.
    const renewAt = renewalDueAt({ expiresAt: granted.expiresAt, now: this.d.clock(), random: this.#random, maxRenewalIntervalMs: push.maxRenewalIntervalMs });
    await columns.save(this.d.state, m.id, granted, renewAt);
    this.d.logger.info({ mailboxId: m.id, provider: m.provider, expiresAt: granted.expiresAt, renewAt }, started ? 'push channel started (Gmail watch / Graph subscription)' : 'push channel renewed');
  }
}

/**
 * Where a mailbox row keeps its push channel: data columns only (a Gmail watch has an expiry,
 * a Graph subscription an id and an expiry); `pushRenewAt` is shared.
 */
const CHANNEL_COLUMNS: Record<ProviderName, { read(m: MailboxSyncRecord): { id: string | null; expiresAt: Date | null }; save(state: SyncStateRepository, mailboxId: string, granted: PushGrant, renewAt: Date): Promise<void> }> = {
  google: {
    read: (m) => ({ id: null, expiresAt: m.watchExpiresAt }),
    save: (state, mailboxId, granted, renewAt) => state.saveWatch(mailboxId, granted.expiresAt, renewAt),
  },
  microsoft: {
    read: (m) => ({ id: m.subscriptionId, expiresAt: m.subscriptionExpiresAt }),
    save: (state, mailboxId, granted, renewAt) => state.saveSubscription(mailboxId, { subscriptionId: granted.id, expiresAt: granted.expiresAt, renewAt }),
  },
};

import type { BlindIndex } from '../crypto/blind-index.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { constantTimeEqual } from '../crypto/secret-compare.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { parseGmailNotification } from '../providers/google/gmail-notification.js';
import type { GooglePushVerifier } from '../providers/google/pubsub-push.verifier.js';
import { parseGraphNotification } from '../providers/microsoft/graph-notification.js';
import type { MailboxRecord } from '../storage/mailbox.repository.js';
import type { SyncStateRepository } from '../storage/sync-state.repository.js';
import { readSyncCursor } from './sync-cursor.js';
import { requestMailboxSync } from './sync-request.js';
import { CLIENT_STATE_AAD } from './watch.service.js';

export type GooglePushOutcome = { status: 'accepted'; mailboxes: number } | { status: 'unauthorized' } | { status: 'bad_request' };

export class PushIntakeService {
  readonly #pushes: ReturnType<Metrics['counter']>;

  constructor(
    private readonly d: {
      jobs: Pick<JobQueue, 'enqueue'>;
      state: SyncStateRepository;
      blindIndex: Pick<BlindIndex, 'emailIndex'>;
      dataKeys: Pick<DataKeyService, 'decryptFor'>;
      clock: () => Date;
      logger: Pick<Logger, 'info' | 'warn' | 'debug'>;
      metrics: Metrics;
      /** Pub/Sub push authentication (providers/google); the notification itself: parseGmailNotification. */
      google: Pick<GooglePushVerifier, 'authenticate'>;
    },
  ) {
    this.#pushes = d.metrics.counter('mbc_push_notifications_total', 'Push notifications received by provider and outcome', ['provider', 'outcome'] as const);
  }

  /**
   * `POST /push/google`. Authenticates the Pub/Sub OIDC JWT before reading anything else
   * (provider-facts §1.2: verify signature + aud, then `email` = push service account and
   * `email_verified`), then requests a sync of each mailbox with that address (coalesced per mailbox: one waiting sync
   * covers any number of notifications). An address we do not
   * know is acknowledged (a non-2xx would make Pub/Sub redeliver it for days) and counted.
   *
   * A notification whose historyId the mailbox's stored cursor already covers announces nothing
   * the connector has not stored (see {@link coveredByCursor}): it counts as a push (the channel
   * works) but requests no sync — e.g. the notification Gmail sends for a watch renewal that the
   * renewal's own sync has read past.
   */
  async receiveGoogle(authorization: string | undefined, body: unknown): Promise<GooglePushOutcome> {
    const auth = await this.d.google.authenticate(authorization);
    if (auth !== 'ok') {
      if (auth === 'rejected') this.d.logger.warn('google push rejected: push token failed verification');
      this.#pushes.inc({ provider: 'google', outcome: 'unauthorized' });
      return { status: 'unauthorized' };
    }
    const notification = parseGmailNotification(body);
    if (notification === undefined) {
      this.#pushes.inc({ provider: 'google', outcome: 'bad_request' });
      return { status: 'bad_request' };
    }
    // The push is recorded on every active mailbox with that address in the statement that finds them.
    const matches = await this.d.state.markPushByAddress('google', this.d.blindIndex.emailIndex(notification.emailAddress), this.d.clock());
    if (matches.length === 0) {
      this.#pushes.inc({ provider: 'google', outcome: 'unknown_mailbox' });
      return { status: 'accepted', mailboxes: 0 };
    }
    // The notification's historyId is NOT the cursor: sync reads from the last *stored* one.
    const toSync = matches.filter((m) => !coveredByCursor(m, notification.historyId));
    for (const m of toSync) await requestMailboxSync(this.d.jobs, m.id, 'push');
    this.#pushes.inc({ provider: 'google', outcome: toSync.length === 0 ? 'covered' : 'accepted' });
    return { status: 'accepted', mailboxes: matches.length };
  }

  /**
   * `POST /push/microsoft` and `/push/microsoft/lifecycle`. Each notification is matched to its
   * mailbox by subscription id and its clientState compared in constant time with the stored
   * secret; a mismatch is dropped and counted ("don't consider the change notification as valid").
   * Lifecycle events only adjust the mailbox's subscription fields and queue a sync, so the answer
   * stays well inside Graph's 3 s: reauthorizationRequired → renew at the start of that sync,
   * subscriptionRemoved → recreate then delta, missed → delta.
   */
  async receiveMicrosoft(notifications: readonly unknown[]): Promise<{ accepted: number; rejected: number }> {
    let accepted = 0;
    let rejected = 0;
    const queued = new Set<string>();
    for (const raw of notifications) {
      const n = parseGraphNotification(raw);
      if (!n) {
        rejected++;
        this.#pushes.inc({ provider: 'microsoft', outcome: 'bad_request' });
        continue;
      }
      const mailbox = await this.d.state.findBySubscriptionId(n.subscriptionId);
      if (!mailbox || !mailbox.clientStateEnc || mailbox.status !== 'active') {
        rejected++;
        this.#pushes.inc({ provider: 'microsoft', outcome: 'unknown_subscription' });
        continue;
      }
      const expected = (await this.d.dataKeys.decryptFor({ type: 'mailbox', id: mailbox.id }, mailbox.clientStateEnc, CLIENT_STATE_AAD(mailbox.id))).toString('utf8');
      if (!n.clientState || !constantTimeEqual(n.clientState, expected)) {
        rejected++;
        this.#pushes.inc({ provider: 'microsoft', outcome: 'client_state_mismatch' });
        continue;
      }
      accepted++;
      this.#pushes.inc({ provider: 'microsoft', outcome: n.lifecycleEvent ? `lifecycle_${n.lifecycleEvent}`.slice(0, 60) : 'accepted' });
      if (n.lifecycleEvent === 'reauthorizationRequired') {
        await this.d.state.saveSubscription(mailbox.id, { subscriptionId: mailbox.subscriptionId, expiresAt: this.d.clock() });
      } else if (n.lifecycleEvent === 'subscriptionRemoved') {
        await this.d.state.saveSubscription(mailbox.id, { subscriptionId: null, expiresAt: null });
      }
      if (queued.has(mailbox.id)) continue;
      queued.add(mailbox.id);
      await this.d.state.markPush([mailbox.id], this.d.clock());
      await requestMailboxSync(this.d.jobs, mailbox.id, n.lifecycleEvent ? 'lifecycle' : 'push');
    }
    return { accepted, rejected };
  }
}

/**
 * True when a Gmail notification announces nothing the mailbox's stored cursor does not already
 * cover, so the sync it would request has nothing to find for it. Why that is safe:
 * - a notification carries the mailbox's history id as of the change it announces, and Gmail
 *   history ids grow monotonically, so the announced change's record id is ≤ `historyId`;
 * - the sync it would request reads history from the stored cursor on (`startHistoryId` =
 *   cursor: only records with an id > cursor), so with `historyId` ≤ cursor that sync would not
 *   read the announced change at all — the cursor is only advanced after everything up to it was
 *   stored (mailbox-sync saves a page's `nextCursor` after the page's messages committed);
 * - any later change has a record id > cursor and comes with its own notification, whose
 *   historyId is ≥ that id > cursor, so it is never skipped.
 * Not while the backfill has not completed (its cursor is saved before the window is ingested),
 * nor without a readable Gmail cursor, nor for an id that is not a plain decimal: a sync is
 * requested then, as for any notification.
 */
export function coveredByCursor(mailbox: Pick<MailboxRecord, 'provider' | 'syncCursor' | 'backfillCompletedAt'>, historyId: string): boolean {
  if (mailbox.provider !== 'google' || mailbox.backfillCompletedAt === null) return false;
  if (!/^\d{1,30}$/.test(historyId)) return false;
  const cursor = readSyncCursor(mailbox.syncCursor, 'google');
  if (!cursor || cursor.provider !== 'google') return false;
  return BigInt(historyId) <= BigInt(cursor.historyId);
}

import type { MailboxRecord } from '../storage/mailbox.repository.js';

/**
 * Push (Gmail watch / Graph subscription) health of a mailbox, as the ops views show it:
 *  - `ok`: a watch or subscription is in place and does not expire within the hour;
 *  - `expiring`: it expires within the hour (its renewal, queued within a minute of its renewal
 *    time, should have renewed it);
 *  - `expired`: it expired — new mail arrives only with the periodic poll until it is renewed;
 *  - `failing`: in place, but a sync found mail that no notification announced and none arrived
 *    since: the mailbox is polled every POLL_INTERVAL_SECONDS until one does (docs/sync.md);
 *  - `none`: no watch or subscription (push not configured for this provider: polling only);
 *  - `inactive`: the mailbox is not active, nothing is expected.
 */
export type PushHealth = 'ok' | 'expiring' | 'expired' | 'failing' | 'none' | 'inactive';

export function pushHealth(m: Pick<MailboxRecord, 'status' | 'watchExpiresAt' | 'subscriptionExpiresAt' | 'lastPushAt' | 'pushMissedAt'>, now: Date): PushHealth {
  if (m.status !== 'active') return 'inactive';
  const expires = m.watchExpiresAt ?? m.subscriptionExpiresAt;
  if (!expires) return 'none';
  const left = expires.getTime() - now.getTime();
  if (left <= 0) return 'expired';
  if (m.pushMissedAt && !(m.lastPushAt && m.lastPushAt.getTime() > m.pushMissedAt.getTime())) return 'failing';
  return left < 3_600_000 ? 'expiring' : 'ok';
}

/** Seconds since the last completed sync of an active mailbox; null when it never synced or is not active. */
export function syncLagSeconds(m: Pick<MailboxRecord, 'status' | 'lastSyncedAt'>, now: Date): number | null {
  if (m.status !== 'active' || !m.lastSyncedAt) return null;
  return Math.max(0, Math.round((now.getTime() - m.lastSyncedAt.getTime()) / 1000));
}

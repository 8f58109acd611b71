import type { Prisma, PrismaClient } from './database.js';

export type SyncStateName = 'idle' | 'backfilling' | 'syncing' | 'error';

/** The sync columns of one mailbox (what the engine needs; no credentials). */
export interface MailboxSyncRecord {
  id: string;
  tenantId: string;
  provider: 'google' | 'microsoft';
  status: string;
  syncCursor: unknown;
  backfillCompletedAt: Date | null;
  lastSyncedAt: Date | null;
  lastPushAt: Date | null;
  watchExpiresAt: Date | null;
  subscriptionId: string | null;
  subscriptionExpiresAt: Date | null;
  /** When the watch / subscription is next renewed (sync/watch-renewal.ts). */
  pushRenewAt: Date | null;
  clientStateEnc: Uint8Array | null;
  /** When the mailbox was connected: mail the provider received before it is imported history (origin backfill). */
  createdAt: Date;
}

const SELECT = {
  id: true,
  tenantId: true,
  provider: true,
  status: true,
  syncCursor: true,
  backfillCompletedAt: true,
  lastSyncedAt: true,
  lastPushAt: true,
  watchExpiresAt: true,
  subscriptionId: true,
  subscriptionExpiresAt: true,
  pushRenewAt: true,
  clientStateEnc: true,
  createdAt: true,
} as const satisfies Prisma.MailboxSelect;

/**
 * Sync bookkeeping on `mailboxes`: the stored cursor (written only after the messages before it
 * committed), sync state, push/watch/subscription fields. Worker-side: every method is unscoped
 * by tenant because jobs carry only the mailbox id.
 */
export class SyncStateRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async find(mailboxId: string): Promise<MailboxSyncRecord | null> {
    return (await this.prisma.mailbox.findUnique({ where: { id: mailboxId }, select: SELECT })) as MailboxSyncRecord | null;
  }

  async findBySubscriptionId(subscriptionId: string): Promise<MailboxSyncRecord | null> {
    return (await this.prisma.mailbox.findFirst({ where: { subscriptionId, provider: 'microsoft' }, select: SELECT })) as MailboxSyncRecord | null;
  }

  async saveCursor(mailboxId: string, cursor: Prisma.InputJsonValue | null): Promise<void> {
    await this.prisma.mailbox.update({ where: { id: mailboxId }, data: { syncCursor: cursor ?? (null as unknown as Prisma.InputJsonValue) } });
  }

  async setState(mailboxId: string, state: SyncStateName, error: string | null = null): Promise<void> {
    await this.prisma.mailbox.updateMany({ where: { id: mailboxId }, data: { syncState: state, syncError: error } });
  }

  async markBackfillCompleted(mailboxId: string, at: Date): Promise<void> {
    await this.prisma.mailbox.update({ where: { id: mailboxId }, data: { backfillCompletedAt: at } });
  }

  async markSynced(mailboxId: string, at: Date): Promise<void> {
    await this.prisma.mailbox.updateMany({ where: { id: mailboxId }, data: { lastSyncedAt: at, syncState: 'idle', syncError: null } });
  }

  async markPush(mailboxIds: readonly string[], at: Date): Promise<void> {
    if (mailboxIds.length === 0) return;
    await this.prisma.mailbox.updateMany({ where: { id: { in: [...mailboxIds] } }, data: { lastPushAt: at } });
  }

  /** `renewAt` defaults to `expiresAt` (renew when it lapses; null → due now). */
  async saveWatch(mailboxId: string, expiresAt: Date | null, renewAt: Date | null = expiresAt): Promise<void> {
    await this.prisma.mailbox.update({ where: { id: mailboxId }, data: { watchExpiresAt: expiresAt, pushRenewAt: renewAt } });
  }

  /** `renewAt` defaults to `expiresAt` (renew when it lapses; null → due now). */
  async saveSubscription(
    mailboxId: string,
    s: { subscriptionId: string | null; expiresAt: Date | null; renewAt?: Date | null; clientStateEnc?: Uint8Array | null },
  ): Promise<void> {
    await this.prisma.mailbox.update({
      where: { id: mailboxId },
      data: {
        subscriptionId: s.subscriptionId,
        subscriptionExpiresAt: s.expiresAt,
        pushRenewAt: s.renewAt !== undefined ? s.renewAt : s.expiresAt,
        ...(s.clientStateEnc !== undefined ? { clientStateEnc: s.clientStateEnc ? new Uint8Array(s.clientStateEnc) : null } : {}),
      },
    });
  }

  /** Active mailboxes whose last sync, push and sync attempt are all older than `before` (poll fallback). */
  async listPollDue(before: Date, limit: number): Promise<string[]> {
    const rows = await this.prisma.mailbox.findMany({
      where: {
        status: 'active',
        // updatedAt: a mailbox whose last attempt failed (syncState/syncError written) waits a
        // full interval too, instead of being queued again every minute.
        updatedAt: { lt: before },
        AND: [{ OR: [{ lastSyncedAt: null }, { lastSyncedAt: { lt: before } }] }, { OR: [{ lastPushAt: null }, { lastPushAt: { lt: before } }] }],
      },
      orderBy: { lastSyncedAt: { sort: 'asc', nulls: 'first' } },
      take: limit,
      select: { id: true },
    });
    return rows.map((r) => r.id);
  }

  /**
   * Poll candidates split by push health. Push is healthy for a Gmail mailbox with a live watch
   * (when a Pub/Sub topic is configured) and a Graph mailbox with a live subscription; those are
   * polled only as a safety net for dropped notifications (`healthyBefore`, long). The others have
   * no working push and are polled every interval (`before`). Either way a recent sync, push or
   * failed attempt (updatedAt) resets the clock.
   */
  async listPollDueByPushHealth(opts: { now: Date; before: Date; healthyBefore: Date; googleWatchEnabled: boolean }, limit: number): Promise<string[]> {
    const healthy = [
      ...(opts.googleWatchEnabled ? [{ provider: 'google', watchExpiresAt: { gt: opts.now } }] : []),
      { provider: 'microsoft', subscriptionId: { not: null }, subscriptionExpiresAt: { gt: opts.now } },
    ];
    // Spelled out (not NOT(healthy)): NOT over a NULL expiry would be NULL in SQL and drop the row.
    const unhealthy = [
      opts.googleWatchEnabled ? { provider: 'google', OR: [{ watchExpiresAt: null }, { watchExpiresAt: { lte: opts.now } }] } : { provider: 'google' },
      { provider: 'microsoft', OR: [{ subscriptionId: null }, { subscriptionExpiresAt: null }, { subscriptionExpiresAt: { lte: opts.now } }] },
    ];
    const quietSince = (t: Date) => [{ OR: [{ lastSyncedAt: null }, { lastSyncedAt: { lt: t } }] }, { OR: [{ lastPushAt: null }, { lastPushAt: { lt: t } }] }];
    const rows = await this.prisma.mailbox.findMany({
      where: {
        status: 'active',
        updatedAt: { lt: opts.before },
        OR: [
          { AND: [{ OR: unhealthy }, ...quietSince(opts.before)] },
          { AND: [{ OR: healthy }, { updatedAt: { lt: opts.healthyBefore } }, ...quietSince(opts.healthyBefore)] },
        ],
      },
      orderBy: { lastSyncedAt: { sort: 'asc', nulls: 'first' } },
      take: limit,
      select: { id: true },
    });
    return rows.map((r) => r.id);
  }

  /**
   * Active, backfilled mailboxes whose Gmail watch / Graph subscription is due: never started,
   * lapsed, or past its renewal time (`pushRenewAt`, computed from the provider's expiration).
   */
  async listRenewalDue(due: { now: Date; google: boolean }, afterId: string | undefined, limit: number): Promise<MailboxSyncRecord[]> {
    const dueAt = { OR: [{ pushRenewAt: null }, { pushRenewAt: { lte: due.now } }] };
    return (await this.prisma.mailbox.findMany({
      where: {
        status: 'active',
        backfillCompletedAt: { not: null },
        ...(afterId ? { id: { gt: afterId } } : {}),
        OR: [
          ...(due.google ? [{ provider: 'google', OR: [{ watchExpiresAt: null }, { watchExpiresAt: { lte: due.now } }, dueAt] }] : []),
          { provider: 'microsoft', OR: [{ subscriptionId: null }, { subscriptionExpiresAt: null }, { subscriptionExpiresAt: { lte: due.now } }, dueAt] },
        ],
      },
      orderBy: { id: 'asc' },
      take: limit,
      select: SELECT,
    })) as MailboxSyncRecord[];
  }
}

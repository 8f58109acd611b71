import { Prisma, type PrismaClient } from './database.js';

export type SyncStateName = 'idle' | 'backfilling' | 'syncing' | 'error';

/** The sync columns of one mailbox (what the engine needs; no credentials). */
export interface MailboxSyncRecord {
  id: string;
  tenantId: string;
  provider: 'google' | 'microsoft';
  /** `shared_member`: a shared mailbox (polled, never a push channel). */
  access?: string;
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
  /** A sync found mail no notification announced while push was live (push failing); see markSynced. */
  pushMissedAt: Date | null;
  clientStateEnc: Uint8Array | null;
  /** When the mailbox was connected: mail the provider received before it is imported history (origin backfill). */
  createdAt: Date;
}

/** A mailbox a push was recorded on (markPushByAddress). */
export type PushedMailbox = Pick<MailboxSyncRecord, 'id' | 'provider' | 'syncCursor' | 'backfillCompletedAt'>;

const SELECT = {
  id: true,
  tenantId: true,
  provider: true,
  access: true,
  status: true,
  syncCursor: true,
  backfillCompletedAt: true,
  lastSyncedAt: true,
  lastPushAt: true,
  watchExpiresAt: true,
  subscriptionId: true,
  subscriptionExpiresAt: true,
  pushRenewAt: true,
  pushMissedAt: true,
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

  /**
   * Stores the cursor and answers the mailbox's sync columns as that statement left them (one
   * `UPDATE … RETURNING`): the sync's next look at the row (status, a push that came meanwhile)
   * needs no read of its own.
   */
  async saveCursor(mailboxId: string, cursor: Prisma.InputJsonValue | null): Promise<MailboxSyncRecord> {
    return (await this.prisma.mailbox.update({ where: { id: mailboxId }, data: { syncCursor: cursor ?? (null as unknown as Prisma.InputJsonValue) }, select: SELECT })) as MailboxSyncRecord;
  }

  /**
   * A sync run starts (under its lock): marks an active mailbox `syncing` (clearing the last error)
   * and answers its sync columns as that statement left them — one `UPDATE … RETURNING` for the
   * run's read and its state. Null, with nothing written, when the mailbox is gone or not active.
   */
  async startSync(mailboxId: string): Promise<MailboxSyncRecord | null> {
    const [row] = await this.prisma.mailbox.updateManyAndReturn({ where: { id: mailboxId, status: 'active' }, data: { syncState: 'syncing', syncError: null }, select: SELECT });
    return (row as MailboxSyncRecord | undefined) ?? null;
  }

  async setState(mailboxId: string, state: SyncStateName, error: string | null = null): Promise<void> {
    await this.prisma.mailbox.updateMany({ where: { id: mailboxId }, data: { syncState: state, syncError: error } });
  }

  async markBackfillCompleted(mailboxId: string, at: Date): Promise<void> {
    await this.prisma.mailbox.update({ where: { id: mailboxId }, data: { backfillCompletedAt: at } });
  }

  /**
   * A sync finished. `pushMissed`: it found mail that no notification announced while the watch /
   * subscription was live — push is failing: the mailbox is polled like one without push until a
   * notification arrives after `at` (listPollDueByPushHealth). The first miss of an episode (none
   * recorded, or a push came since the last one) also makes the watch/subscription due for
   * renewal, so the next sync (the next poll) renews or recreates it.
   */
  async markSynced(mailboxId: string, at: Date, opts: { pushMissed?: boolean } = {}): Promise<void> {
    if (!opts.pushMissed) {
      await this.prisma.mailbox.updateMany({ where: { id: mailboxId }, data: { lastSyncedAt: at, syncState: 'idle', syncError: null } });
      return;
    }
    await this.prisma.$executeRaw`
      UPDATE "mailboxes" SET "lastSyncedAt" = ${at}, "syncState" = 'idle', "syncError" = NULL, "updatedAt" = ${at},
        "pushRenewAt" = CASE WHEN "pushMissedAt" IS NULL OR ("lastPushAt" IS NOT NULL AND "lastPushAt" > "pushMissedAt") THEN ${at} ELSE "pushRenewAt" END,
        "pushMissedAt" = ${at}
       WHERE "id" = ${mailboxId}`;
  }

  /**
   * A Gmail notification for the address with this blind index: records the push on every active
   * mailbox of that provider and address (one `UPDATE … RETURNING`) and answers them, with what
   * the intake needs to tell whether their stored cursor already covers the notification.
   */
  async markPushByAddress(provider: 'google' | 'microsoft', addressIndex: string, at: Date): Promise<PushedMailbox[]> {
    return (await this.prisma.mailbox.updateManyAndReturn({
      where: { provider, addressIndex, status: 'active' },
      data: { lastPushAt: at },
      select: { id: true, provider: true, syncCursor: true, backfillCompletedAt: true },
    })) as PushedMailbox[];
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

  /**
   * `sync.poll`'s selection: active mailboxes due for a poll by their push health, oldest sync first.
   * Push is healthy for a Gmail mailbox with a live watch (only when a Pub/Sub topic is
   * configured) or a Graph mailbox with a live subscription, unless a sync found mail no
   * notification announced and no notification came since (`pushMissedAt` ≥ `lastPushAt`).
   *  - healthy: due when the last sync, push and attempt (`updatedAt`) are all older than
   *    `reconcileMs` less up to `reconcileJitter` of it (the rare reconciliation);
   *  - a Microsoft 365 shared mailbox (`access` shared_member, never push): against
   *    `sharedIntervalMs` less up to `intervalJitter` of it;
   *  - otherwise: the same against `intervalMs` less up to `intervalJitter` of it (the poll).
   * The jitter is drawn per row and run (`random()`), so mailboxes that became due together
   * (connected together, their push failed together) drift apart instead of polling in step.
   */
  async listPollDueByPushHealth(
    opts: { now: Date; intervalMs: number; /** Shared mailboxes (no push): their own poll interval. */ sharedIntervalMs?: number; intervalJitter: number; reconcileMs: number; reconcileJitter: number; googleWatchEnabled: boolean },
    limit: number,
  ): Promise<string[]> {
    const now = Prisma.sql`${opts.now}::timestamp(3)`;
    const rows = await this.prisma.$queryRaw<{ id: string }[]>`
      SELECT "id" FROM "mailboxes"
       WHERE "status" = 'active'
         AND GREATEST("lastSyncedAt", "lastPushAt", "updatedAt") < ${now} - make_interval(secs => (CASE
               WHEN "access" = 'shared_member' THEN ${(opts.sharedIntervalMs ?? opts.intervalMs) / 1000} * (1 - ${opts.intervalJitter} * random())
               WHEN ((${opts.googleWatchEnabled} AND "provider" = 'google' AND "watchExpiresAt" > ${now})
                     OR ("provider" = 'microsoft' AND "subscriptionId" IS NOT NULL AND "subscriptionExpiresAt" > ${now}))
                    AND ("pushMissedAt" IS NULL OR ("lastPushAt" IS NOT NULL AND "lastPushAt" > "pushMissedAt"))
               THEN ${opts.reconcileMs / 1000} * (1 - ${opts.reconcileJitter} * random())
               ELSE ${opts.intervalMs / 1000} * (1 - ${opts.intervalJitter} * random())
             END)::double precision)
       ORDER BY "lastSyncedAt" ASC NULLS FIRST
       LIMIT ${limit}`;
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
          // A shared mailbox has no subscription to renew (delegated .Shared permissions support none).
          { provider: 'microsoft', access: { not: 'shared_member' }, OR: [{ subscriptionId: null }, { subscriptionExpiresAt: null }, { subscriptionExpiresAt: { lte: due.now } }, dueAt] },
        ],
      },
      orderBy: { id: 'asc' },
      take: limit,
      select: SELECT,
    })) as MailboxSyncRecord[];
  }
}

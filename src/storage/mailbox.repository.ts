import type { Prisma, PrismaClient } from './database.js';

export type MailboxStatus = 'active' | 'reauth_required' | 'disconnecting' | 'purged';
export type ProviderName = 'google' | 'microsoft';
/**
 * On whose authority the connector reads a mailbox: `delegated` — the person who signed in, their
 * own mailbox; `shared_member` — a Microsoft 365 shared mailbox read through a member's delegated
 * Mail.Read.Shared / Mail.Send.Shared grant (polled, no push); `organization` — an organization
 * install (admin consent, app-only tokens).
 */
export type MailboxAccess = 'delegated' | 'shared_member' | 'organization';
export const MAILBOX_ACCESS: readonly MailboxAccess[] = ['delegated', 'shared_member', 'organization'];

/** A mailbox row without credentials (those are read only by the token vault). */
export interface MailboxRecord {
  id: string;
  tenantId: string;
  provider: ProviderName;
  addressEnc: Uint8Array;
  access: MailboxAccess;
  /** The member whose grant reads a shared mailbox (address, mailbox DEK, CONNECTED_BY_AAD); null when delegated. */
  connectedByEnc: Uint8Array | null;
  status: MailboxStatus;
  statusReason: string | null;
  grantedScopes: string[];
  syncCursor: unknown;
  syncState: string;
  syncError: string | null;
  backfillCompletedAt: Date | null;
  lastSyncedAt: Date | null;
  lastPushAt: Date | null;
  /** A sync found mail no notification announced (push failing; sync-state.repository markSynced). */
  pushMissedAt: Date | null;
  watchExpiresAt: Date | null;
  subscriptionId: string | null;
  subscriptionExpiresAt: Date | null;
  reauthRequiredAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export const MAILBOX_SELECT = {
  id: true,
  tenantId: true,
  provider: true,
  addressEnc: true,
  access: true,
  connectedByEnc: true,
  status: true,
  statusReason: true,
  grantedScopes: true,
  syncCursor: true,
  syncState: true,
  syncError: true,
  backfillCompletedAt: true,
  lastSyncedAt: true,
  lastPushAt: true,
  pushMissedAt: true,
  watchExpiresAt: true,
  subscriptionId: true,
  subscriptionExpiresAt: true,
  reauthRequiredAt: true,
  createdAt: true,
  updatedAt: true,
} as const satisfies Prisma.MailboxSelect;

/**
 * Tenant-scoped reads take the tenant id first, so forgetting the filter is a type error, not a
 * leak. Cross-tenant lookups (push notifications, workers) are named as such.
 */
export class MailboxRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async findForTenant(tenantId: string, mailboxId: string): Promise<MailboxRecord | null> {
    const row = await this.prisma.mailbox.findFirst({ where: { id: mailboxId, tenantId }, select: MAILBOX_SELECT });
    return row as MailboxRecord | null;
  }

  async listForTenant(tenantId: string, opts: { afterId?: string; limit: number; status?: MailboxStatus }): Promise<MailboxRecord[]> {
    const rows = await this.prisma.mailbox.findMany({
      where: { tenantId, ...(opts.status ? { status: opts.status } : {}), ...(opts.afterId ? { id: { gt: opts.afterId } } : {}) },
      orderBy: { id: 'asc' },
      take: opts.limit,
      select: MAILBOX_SELECT,
    });
    return rows as MailboxRecord[];
  }

  /** Worker/ops access by id alone (jobs carry only the mailbox id). */
  async findByIdUnscoped(mailboxId: string): Promise<MailboxRecord | null> {
    const row = await this.prisma.mailbox.findUnique({ where: { id: mailboxId }, select: MAILBOX_SELECT });
    return row as MailboxRecord | null;
  }

  /** Several mailboxes by id in one query (webhook payloads built for a batch of events). */
  async findManyByIdsUnscoped(mailboxIds: readonly string[]): Promise<MailboxRecord[]> {
    if (mailboxIds.length === 0) return [];
    const rows = await this.prisma.mailbox.findMany({ where: { id: { in: [...mailboxIds] } }, select: MAILBOX_SELECT });
    return rows as MailboxRecord[];
  }

  async listAllUnscoped(opts: { afterId?: string; limit: number; status?: MailboxStatus[] }): Promise<MailboxRecord[]> {
    const rows = await this.prisma.mailbox.findMany({
      where: { ...(opts.status ? { status: { in: opts.status } } : {}), ...(opts.afterId ? { id: { gt: opts.afterId } } : {}) },
      orderBy: { id: 'asc' },
      take: opts.limit,
      select: MAILBOX_SELECT,
    });
    return rows as MailboxRecord[];
  }
}

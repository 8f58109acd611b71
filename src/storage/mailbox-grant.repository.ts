import type { Prisma, PrismaClient } from './database.js';
import type { MailboxAccess, MailboxStatus, ProviderName } from './mailbox.repository.js';

/** The credential columns of one mailbox, still encrypted. Only the token vault reads them. */
export interface StoredGrant {
  id: string;
  tenantId: string;
  provider: ProviderName;
  status: MailboxStatus;
  credentialEnc: Uint8Array | null;
  accountIdEnc: Uint8Array | null;
}

export interface ExistingMailbox {
  id: string;
  status: MailboxStatus;
  access: MailboxAccess;
}

/**
 * Writes and reads of `mailboxes` that concern the OAuth grant: credentials, connect/re-consent
 * and the switch to `reauth_required`. Kept apart from MailboxRepository (whose reads never
 * select credentials) so the only code that can load a credential is the vault's.
 */
export class MailboxGrantRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async findGrant(mailboxId: string): Promise<StoredGrant | null> {
    const row = await this.prisma.mailbox.findUnique({
      where: { id: mailboxId },
      select: { id: true, tenantId: true, provider: true, status: true, credentialEnc: true, accountIdEnc: true },
    });
    return row as StoredGrant | null;
  }

  async findByAddress(tenantId: string, provider: ProviderName, addressIndex: string, tx?: Prisma.TransactionClient): Promise<ExistingMailbox | null> {
    const row = await (tx ?? this.prisma).mailbox.findUnique({
      where: { tenantId_provider_addressIndex: { tenantId, provider, addressIndex } },
      select: { id: true, status: true, access: true },
    });
    return row as ExistingMailbox | null;
  }

  async create(
    tx: Prisma.TransactionClient,
    input: {
      id: string;
      tenantId: string;
      provider: ProviderName;
      addressEnc: Uint8Array;
      addressIndex: string;
      credentialEnc: Uint8Array;
      accountIdEnc: Uint8Array | null;
      grantedScopes: string[];
      /** Default `delegated`. */
      access?: MailboxAccess;
      /** The member of a shared mailbox (encrypted address). */
      connectedByEnc?: Uint8Array | null;
    },
  ): Promise<void> {
    await tx.mailbox.create({
      data: {
        ...input,
        access: input.access ?? 'delegated',
        connectedByEnc: input.connectedByEnc ? Buffer.from(input.connectedByEnc) : null,
        addressEnc: Buffer.from(input.addressEnc),
        credentialEnc: Buffer.from(input.credentialEnc),
        accountIdEnc: input.accountIdEnc ? Buffer.from(input.accountIdEnc) : null,
        status: 'active',
      },
    });
  }

  /**
   * Re-consent: the same record, a new grant, back to `active`. Sync state and stored mail are
   * left alone ("data kept"). Refuses a mailbox that is being disconnected.
   */
  async replaceGrant(
    tx: Prisma.TransactionClient,
    mailboxId: string,
    input: { credentialEnc: Uint8Array; accountIdEnc: Uint8Array | null; grantedScopes: string[]; /** A shared mailbox reconnected (perhaps by another member): who it is now. */ connectedByEnc?: Uint8Array },
  ): Promise<{ previousStatus: MailboxStatus } | null> {
    const before = await tx.mailbox.findUnique({ where: { id: mailboxId }, select: { status: true } });
    if (!before || before.status === 'disconnecting' || before.status === 'purged') return null;
    await tx.mailbox.update({
      where: { id: mailboxId },
      data: {
        credentialEnc: Buffer.from(input.credentialEnc),
        accountIdEnc: input.accountIdEnc ? Buffer.from(input.accountIdEnc) : null,
        grantedScopes: input.grantedScopes,
        ...(input.connectedByEnc ? { connectedByEnc: Buffer.from(input.connectedByEnc) } : {}),
        status: 'active',
        statusReason: null,
        reauthRequiredAt: null,
      },
    });
    return { previousStatus: before.status as MailboxStatus };
  }

  /** Refresh rotated the credential (Google may issue a new refresh token; MSAL rewrites its cache). */
  async updateCredential(mailboxId: string, credentialEnc: Uint8Array): Promise<void> {
    // Only while the grant is in use: a purge in progress must not get a credential back.
    await this.prisma.mailbox.updateMany({
      where: { id: mailboxId, status: { in: ['active', 'disconnecting'] } },
      data: { credentialEnc: Buffer.from(credentialEnc) },
    });
  }

  async clearCredential(mailboxId: string): Promise<void> {
    await this.prisma.mailbox.updateMany({ where: { id: mailboxId }, data: { credentialEnc: null, accountIdEnc: null } });
  }

  /**
   * `active` → `reauth_required`, at most once: the conditional update is what makes the
   * `mailbox.reauth_required` event single even when several workers hit the dead grant at once.
   */
  async markReauthRequired(tx: Prisma.TransactionClient, mailboxId: string, reason: string, at: Date): Promise<boolean> {
    const res = await tx.mailbox.updateMany({
      where: { id: mailboxId, status: 'active' },
      data: { status: 'reauth_required', statusReason: reason, reauthRequiredAt: at },
    });
    return res.count === 1;
  }

  /** Ids of `active` mailboxes of one provider, in id order (paged by `afterId`). */
  async listActiveIds(provider: ProviderName, afterId: string | undefined, limit: number): Promise<string[]> {
    const rows = await this.prisma.mailbox.findMany({
      where: { provider, status: 'active', ...(afterId ? { id: { gt: afterId } } : {}) },
      orderBy: { id: 'asc' },
      take: limit,
      select: { id: true },
    });
    return rows.map((r) => r.id);
  }

  /** Records why the mailbox cannot sync (shown as `syncState: error` with this code). */
  async setSyncError(mailboxId: string, code: string): Promise<void> {
    await this.prisma.mailbox.updateMany({ where: { id: mailboxId, status: 'active' }, data: { syncState: 'error', syncError: code } });
  }

  transaction<T>(fn: (tx: Prisma.TransactionClient) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(fn);
  }
}

import { isUniqueViolation, type DbTransaction, type PrismaClient } from './database.js';
import type { MailboxStatus, ProviderName } from './mailbox.repository.js';

export type OrganizationInstallStatus = 'pending' | 'active' | 'failed' | 'uninstalled';
export type AccessCheck = 'unknown' | 'restricted' | 'unrestricted' | 'failed';

export interface OrganizationInstallRecord {
  id: string;
  tenantId: string;
  provider: ProviderName;
  status: OrganizationInstallStatus;
  statusReason: string | null;
  returnUrl: string | null;
  consentExpiresAt: Date | null;
  directoryId: string | null;
  grantedPermissions: string[];
  probeAddressEnc: Uint8Array | null;
  accessCheck: AccessCheck;
  accessCheckedAt: Date | null;
  installedAt: Date | null;
  uninstalledAt: Date | null;
  createdAt: Date;
}

const SELECT = {
  id: true,
  tenantId: true,
  provider: true,
  status: true,
  statusReason: true,
  returnUrl: true,
  consentExpiresAt: true,
  directoryId: true,
  grantedPermissions: true,
  probeAddressEnc: true,
  accessCheck: true,
  accessCheckedAt: true,
  installedAt: true,
  uninstalledAt: true,
  createdAt: true,
} as const;

export interface OrganizationMailboxRow {
  id: string;
  tenantId: string;
  status: MailboxStatus;
  addressEnc: Uint8Array;
  organizationInstallId: string | null;
  access: string;
}

/** `organization_installs` and the mailboxes added to them (mailboxes.organizationInstallId). */
export class OrganizationInstallRepository {
  constructor(private readonly prisma: PrismaClient) {}

  transaction<T>(fn: (tx: DbTransaction) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(fn);
  }

  /** `directoryId`: a Google install's domain when the helpdesk named it (the hosted upload must match it). */
  async createPending(input: { id: string; tenantId: string; provider: ProviderName; stateHash: string; returnUrl: string | null; consentExpiresAt: Date; probeAddressEnc: Uint8Array | null; directoryId?: string | null }): Promise<void> {
    await this.prisma.organizationInstall.create({
      data: { ...input, probeAddressEnc: input.probeAddressEnc ? Buffer.from(input.probeAddressEnc) : null },
    });
  }

  async findByStateHash(stateHash: string): Promise<OrganizationInstallRecord | null> {
    return (await this.prisma.organizationInstall.findUnique({ where: { stateHash }, select: SELECT })) as OrganizationInstallRecord | null;
  }

  async findForTenant(tenantId: string, id: string): Promise<OrganizationInstallRecord | null> {
    return (await this.prisma.organizationInstall.findFirst({ where: { id, tenantId }, select: SELECT })) as OrganizationInstallRecord | null;
  }

  async findByIdUnscoped(id: string): Promise<OrganizationInstallRecord | null> {
    return (await this.prisma.organizationInstall.findUnique({ where: { id }, select: SELECT })) as OrganizationInstallRecord | null;
  }

  async listForTenant(tenantId: string, limit: number): Promise<OrganizationInstallRecord[]> {
    return (await this.prisma.organizationInstall.findMany({ where: { tenantId }, select: SELECT, orderBy: { id: 'desc' }, take: limit })) as OrganizationInstallRecord[];
  }

  /**
   * pending → active with the consent's directory and permissions; the state is spent. Returns
   * `duplicate` when the tenant already has an active install for that directory, `not_pending`
   * when the consent was already used.
   */
  async activate(tx: DbTransaction, id: string, input: { directoryId: string; grantedPermissions: string[]; at: Date }): Promise<'ok' | 'duplicate' | 'not_pending'> {
    try {
      const r = await tx.organizationInstall.updateMany({
        where: { id, status: 'pending' },
        data: { status: 'active', stateHash: null, directoryId: input.directoryId, grantedPermissions: input.grantedPermissions, installedAt: input.at, statusReason: null },
      });
      return r.count === 1 ? 'ok' : 'not_pending';
    } catch (err) {
      if (isUniqueViolation(err)) return 'duplicate';
      throw err;
    }
  }

  /** Active installs with a probe address (the daily restriction probe), oldest first. */
  async activeWithProbe(limit: number): Promise<OrganizationInstallRecord[]> {
    return (await this.prisma.organizationInstall.findMany({ where: { status: 'active', probeAddressEnc: { not: null } }, select: SELECT, orderBy: { id: 'asc' }, take: limit })) as OrganizationInstallRecord[];
  }

  /** True when another tenant of the connector has an active install for this directory. */
  async activeElsewhere(provider: ProviderName, directoryId: string, tenantId: string): Promise<boolean> {
    return (await this.prisma.organizationInstall.count({ where: { provider, directoryId, status: 'active', tenantId: { not: tenantId } } })) > 0;
  }

  async fail(id: string, reason: string): Promise<boolean> {
    const r = await this.prisma.organizationInstall.updateMany({ where: { id, status: 'pending' }, data: { status: 'failed', stateHash: null, statusReason: reason } });
    return r.count === 1;
  }

  async markUninstalled(tx: DbTransaction, id: string, at: Date): Promise<boolean> {
    const r = await tx.organizationInstall.updateMany({ where: { id, status: { in: ['active', 'pending', 'failed'] } }, data: { status: 'uninstalled', stateHash: null, uninstalledAt: at } });
    return r.count === 1;
  }

  async setAccessCheck(id: string, verdict: AccessCheck, at: Date, tx?: DbTransaction): Promise<void> {
    await (tx ?? this.prisma).organizationInstall.update({ where: { id }, data: { accessCheck: verdict, accessCheckedAt: at } });
  }

  async setProbeAddress(id: string, probeAddressEnc: Uint8Array | null): Promise<void> {
    await this.prisma.organizationInstall.update({ where: { id }, data: { probeAddressEnc: probeAddressEnc ? Buffer.from(probeAddressEnc) : null, accessCheck: 'unknown', accessCheckedAt: null } });
  }

  /** Inserts a mailbox added to the install (access `organization`). false when the address is already a mailbox of the tenant. */
  async addMailbox(
    tx: DbTransaction,
    input: { id: string; tenantId: string; provider: ProviderName; installId: string; addressEnc: Uint8Array; addressIndex: string; credentialEnc: Uint8Array; grantedScopes: string[] },
  ): Promise<boolean> {
    try {
      await tx.mailbox.create({
        data: {
          id: input.id,
          tenantId: input.tenantId,
          provider: input.provider,
          addressEnc: Buffer.from(input.addressEnc),
          addressIndex: input.addressIndex,
          credentialEnc: Buffer.from(input.credentialEnc),
          grantedScopes: input.grantedScopes,
          access: 'organization',
          organizationInstallId: input.installId,
        },
      });
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  /** The mailbox of the tenant with this address (any access kind), if any. */
  async findByAddress(tenantId: string, provider: ProviderName, addressIndex: string): Promise<{ id: string; status: MailboxStatus; organizationInstallId: string | null } | null> {
    return (await this.prisma.mailbox.findUnique({
      where: { tenantId_provider_addressIndex: { tenantId, provider, addressIndex } },
      select: { id: true, status: true, organizationInstallId: true },
    })) as { id: string; status: MailboxStatus; organizationInstallId: string | null } | null;
  }

  /** An organization mailbox of the install back from `reauth_required` (the organization let the app in again). */
  async reactivateMailbox(tx: DbTransaction, mailboxId: string, installId: string, credentialEnc: Uint8Array): Promise<boolean> {
    const r = await tx.mailbox.updateMany({
      where: { id: mailboxId, organizationInstallId: installId, status: 'reauth_required' },
      data: { status: 'active', statusReason: null, reauthRequiredAt: null, credentialEnc: Buffer.from(credentialEnc) },
    });
    return r.count === 1;
  }

  /** The install's mailboxes that are not purged yet (oldest first). */
  async liveMailboxes(installId: string): Promise<Array<{ id: string; status: MailboxStatus }>> {
    return (await this.prisma.mailbox.findMany({ where: { organizationInstallId: installId, status: { not: 'purged' } }, select: { id: true, status: true }, orderBy: { id: 'asc' } })) as Array<{ id: string; status: MailboxStatus }>;
  }

  async countMailboxes(installId: string): Promise<number> {
    return this.prisma.mailbox.count({ where: { organizationInstallId: installId, status: { not: 'purged' } } });
  }

  async mailboxUnscoped(mailboxId: string): Promise<OrganizationMailboxRow | null> {
    return (await this.prisma.mailbox.findUnique({ where: { id: mailboxId }, select: { id: true, tenantId: true, status: true, addressEnc: true, organizationInstallId: true, access: true } })) as OrganizationMailboxRow | null;
  }
}

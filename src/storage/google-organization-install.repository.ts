import { isUniqueViolation, type DbTransaction, type PrismaClient } from './database.js';

/**
 * The Google side of `organization_installs`: an install is created active once the connector
 * proved the delegation (there is no consent redirect), and it holds the service-account key
 * (credentialEnc, tenant DEK) — the only install kind with a secret of the customer's.
 */
export class GoogleOrganizationInstallRepository {
  constructor(private readonly prisma: PrismaClient) {}

  transaction<T>(fn: (tx: DbTransaction) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(fn);
  }

  /** Inserts an active Google install; `duplicate` when the tenant already has an active install for the domain. */
  async createActive(
    tx: DbTransaction,
    input: { id: string; tenantId: string; domain: string; grantedPermissions: string[]; credentialEnc: Uint8Array; at: Date },
  ): Promise<'ok' | 'duplicate'> {
    try {
      await tx.organizationInstall.create({ data: { id: input.id, tenantId: input.tenantId, provider: 'google', ...activeColumns(input) } });
      return 'ok';
    } catch (err) {
      // The caller's transaction is spent after this: it must do nothing more on `duplicate`.
      if (isUniqueViolation(err)) return 'duplicate';
      throw err;
    }
  }

  /**
   * The hosted page's upload: the pending Google install becomes active with its key (the link's
   * state is spent). `not_pending` when it was used meanwhile; `duplicate` when the tenant already
   * has an active install for the domain.
   */
  async activatePending(
    tx: DbTransaction,
    input: { id: string; domain: string; grantedPermissions: string[]; credentialEnc: Uint8Array; at: Date },
  ): Promise<'ok' | 'not_pending' | 'duplicate'> {
    try {
      const r = await tx.organizationInstall.updateMany({
        where: { id: input.id, provider: 'google', status: 'pending' },
        data: { stateHash: null, statusReason: null, ...activeColumns(input) },
      });
      return r.count === 1 ? 'ok' : 'not_pending';
    } catch (err) {
      if (isUniqueViolation(err)) return 'duplicate';
      throw err;
    }
  }

  /** The stored key of an install (ciphertext) with what decides whether it may be used. */
  async credential(installId: string): Promise<{ tenantId: string; provider: string; status: string; credentialEnc: Uint8Array | null } | null> {
    return this.prisma.organizationInstall.findUnique({ where: { id: installId }, select: { tenantId: true, provider: true, status: true, credentialEnc: true } });
  }

  /** Replaces the key of an active install (rotation). */
  async replaceCredential(installId: string, credentialEnc: Uint8Array, grantedPermissions: string[]): Promise<boolean> {
    const r = await this.prisma.organizationInstall.updateMany({ where: { id: installId, provider: 'google', status: 'active' }, data: { credentialEnc: Buffer.from(credentialEnc), grantedPermissions } });
    return r.count === 1;
  }

  /** The install's mailboxes not purged yet, with their address ciphertext (mailbox DEK). */
  async liveMailboxes(installId: string): Promise<Array<{ id: string; addressEnc: Uint8Array }>> {
    return this.prisma.mailbox.findMany({ where: { organizationInstallId: installId, status: { not: 'purged' } }, select: { id: true, addressEnc: true }, orderBy: { id: 'asc' } });
  }

  /** Deletes the stored key (uninstall): nothing can sign a token for the install's mailboxes any more. */
  async forgetCredential(installId: string): Promise<void> {
    await this.prisma.organizationInstall.updateMany({ where: { id: installId, provider: 'google' }, data: { credentialEnc: null } });
  }
}

/** The columns of an active Google install, whether created active (API) or activated from pending (hosted page). */
function activeColumns(input: { domain: string; grantedPermissions: string[]; credentialEnc: Uint8Array; at: Date }) {
  return {
    status: 'active',
    directoryId: input.domain,
    grantedPermissions: input.grantedPermissions,
    credentialEnc: Buffer.from(input.credentialEnc),
    accessCheck: 'unrestricted',
    accessCheckedAt: input.at,
    installedAt: input.at,
  } as const;
}

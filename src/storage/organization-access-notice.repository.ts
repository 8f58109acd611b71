import type { DbTransaction, PrismaClient } from './database.js';

export type AnnouncedAccess = 'unrestricted' | 'restricted';

/**
 * `organization_installs.accessNotified` (migration 20261206110000_organization_install_access_notified):
 * the restriction verdict last announced to the tenant by webhook.
 */
export class OrganizationAccessNoticeRepository {
  constructor(private readonly prisma: PrismaClient) {}

  transaction<T>(fn: (tx: DbTransaction) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(fn);
  }

  async announced(installId: string): Promise<AnnouncedAccess | null> {
    const row = await this.prisma.organizationInstall.findUnique({ where: { id: installId }, select: { accessNotified: true } });
    return row?.accessNotified === 'unrestricted' || row?.accessNotified === 'restricted' ? row.accessNotified : null;
  }

  /** Compare-and-swap: true when this caller moved the announced verdict from `from` to `to` (no one else did first). */
  async claim(tx: DbTransaction, installId: string, from: AnnouncedAccess | null, to: AnnouncedAccess): Promise<boolean> {
    const r = await tx.organizationInstall.updateMany({ where: { id: installId, accessNotified: from }, data: { accessNotified: to } });
    return r.count === 1;
  }
}

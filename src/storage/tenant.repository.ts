import type { PrismaClient } from './database.js';
import { newId } from './ids.js';

export interface TenantRecord {
  id: string;
  name: string;
  allowedReturnOrigins: string[];
  retentionDays: number | null;
  /** Serve `safeHtml` with remote images turned off (tracking pixels). */
  blockRemoteImages: boolean;
  /** Hosted-page branding (src/tenancy/tenant-branding.ts validates it); null = not set. */
  displayName: string | null;
  logoUrl: string | null;
  supportUrl: string | null;
  createdAt: Date;
}

/** The hosted-page branding columns (null = not set). */
export interface TenantBrandingColumns {
  displayName: string | null;
  logoUrl: string | null;
  supportUrl: string | null;
}

export class TenantRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async create(input: { name: string; allowedReturnOrigins?: string[]; retentionDays?: number | null; blockRemoteImages?: boolean } & Partial<TenantBrandingColumns>): Promise<TenantRecord> {
    return this.prisma.tenant.create({
      data: {
        id: newId('tenant'),
        name: input.name,
        allowedReturnOrigins: input.allowedReturnOrigins ?? [],
        retentionDays: input.retentionDays ?? null,
        blockRemoteImages: input.blockRemoteImages ?? false,
        displayName: input.displayName ?? null,
        logoUrl: input.logoUrl ?? null,
        supportUrl: input.supportUrl ?? null,
      },
      select: SELECT,
    });
  }

  async find(tenantId: string): Promise<TenantRecord | null> {
    return this.prisma.tenant.findUnique({ where: { id: tenantId }, select: SELECT });
  }

  async list(): Promise<TenantRecord[]> {
    return this.prisma.tenant.findMany({ orderBy: { id: 'asc' }, select: SELECT });
  }

  async update(
    tenantId: string,
    patch: { name?: string; allowedReturnOrigins?: string[]; retentionDays?: number | null; blockRemoteImages?: boolean } & Partial<TenantBrandingColumns>,
  ): Promise<TenantRecord | null> {
    const res = await this.prisma.tenant.updateMany({ where: { id: tenantId }, data: patch });
    return res.count ? this.find(tenantId) : null;
  }
}

const SELECT = { id: true, name: true, allowedReturnOrigins: true, retentionDays: true, blockRemoteImages: true, displayName: true, logoUrl: true, supportUrl: true, createdAt: true } as const;

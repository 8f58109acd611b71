import type { PrismaClient } from './database.js';
import { newId } from './ids.js';

export interface ApiKeyRecord {
  id: string;
  tenantId: string | null;
  name: string;
  scope: 'tenant' | 'admin';
  prefix: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export class ApiKeyRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async create(input: { tenantId: string | null; name: string; scope: 'tenant' | 'admin'; prefix: string; keyHash: string }): Promise<ApiKeyRecord> {
    const row = await this.prisma.apiKey.create({ data: { id: newId('apiKey'), ...input }, select: SELECT });
    return toRecord(row);
  }

  /** Lookup by the key's SHA-256 (unique index); the caller compares again in constant time. */
  async findActiveByHash(keyHash: string): Promise<(ApiKeyRecord & { keyHash: string }) | null> {
    const row = await this.prisma.apiKey.findUnique({ where: { keyHash }, select: { ...SELECT, keyHash: true } });
    if (!row || row.revokedAt) return null;
    return { ...toRecord(row), keyHash: row.keyHash };
  }

  async listForTenant(tenantId: string): Promise<ApiKeyRecord[]> {
    const rows = await this.prisma.apiKey.findMany({ where: { tenantId }, orderBy: { id: 'asc' }, select: SELECT });
    return rows.map(toRecord);
  }

  async listAdmin(): Promise<ApiKeyRecord[]> {
    const rows = await this.prisma.apiKey.findMany({ where: { scope: 'admin' }, orderBy: { id: 'asc' }, select: SELECT });
    return rows.map(toRecord);
  }

  async find(id: string): Promise<ApiKeyRecord | null> {
    const row = await this.prisma.apiKey.findUnique({ where: { id }, select: SELECT });
    return row ? toRecord(row) : null;
  }

  /** Revokes a key; `tenantId` scopes it (null = admin keys). Returns false when there was none. */
  async revoke(id: string, tenantId: string | null | 'any'): Promise<boolean> {
    const where = tenantId === 'any' ? { id, revokedAt: null } : { id, tenantId, revokedAt: null };
    const res = await this.prisma.apiKey.updateMany({ where, data: { revokedAt: new Date() } });
    return res.count === 1;
  }

  /** Unrevoked keys whose public prefix starts with `keyPrefix` (e.g. sandbox keys in a production database). */
  async countActiveWithPrefix(keyPrefix: string): Promise<number> {
    return this.prisma.apiKey.count({ where: { revokedAt: null, prefix: { startsWith: keyPrefix } } });
  }

  /** Best effort, at most once per LAST_USED_RESOLUTION_MS per key, so authentication does not write on every request. */
  async touch(id: string, now: Date): Promise<void> {
    await this.prisma.apiKey.updateMany({
      where: { id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: new Date(now.getTime() - LAST_USED_RESOLUTION_MS) } }] },
      data: { lastUsedAt: now },
    });
  }
}

/** How stale an API key's `lastUsedAt` may be: it is written at most this often per key. */
export const LAST_USED_RESOLUTION_MS = 60_000;

/** Whether a key's `lastUsedAt` is due for a write at `now`: touch's WHERE, for a row already read. */
export function lastUsedDue(lastUsedAt: Date | null, now: Date): boolean {
  return lastUsedAt === null || lastUsedAt.getTime() < now.getTime() - LAST_USED_RESOLUTION_MS;
}

const SELECT = { id: true, tenantId: true, name: true, scope: true, prefix: true, createdAt: true, lastUsedAt: true, revokedAt: true } as const;

function toRecord(row: { id: string; tenantId: string | null; name: string; scope: string; prefix: string; createdAt: Date; lastUsedAt: Date | null; revokedAt: Date | null }): ApiKeyRecord {
  return { ...row, scope: row.scope === 'admin' ? 'admin' : 'tenant' };
}

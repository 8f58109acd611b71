import type { DataKeyStore, DataKeyWrapping, DekOwner, DekOwnerType, NewDataKey, StoredDataKey } from '../crypto/data-key.port.js';
import type { Prisma, PrismaClient } from './database.js';
import { newId } from './ids.js';

/**
 * Prisma implementation of the crypto room's DataKeyStore (table data_keys). Built on a
 * transaction client, it reads and creates keys inside that transaction (`DataKeyService.within`).
 */
export class DataKeyRepository implements DataKeyStore {
  constructor(private readonly prisma: PrismaClient | Prisma.TransactionClient) {}

  async find(owner: DekOwner): Promise<StoredDataKey | null> {
    const row = await this.prisma.dataKey.findUnique({ where: { ownerType_ownerId: { ownerType: owner.type, ownerId: owner.id } } });
    return row ? toStored(row) : null;
  }

  async create(owner: DekOwner, key: NewDataKey): Promise<StoredDataKey> {
    // ON CONFLICT DO NOTHING, then read: a concurrent creator's row wins and both use it.
    await this.prisma.$executeRaw`
      INSERT INTO "data_keys" ("id", "ownerType", "ownerId", "dekVersion", "kekVersion", "wrappedKey")
      VALUES (${newId('dataKey')}, ${owner.type}, ${owner.id}, ${key.dekVersion}, ${key.kekVersion}, ${Buffer.from(key.wrappedKey)})
      ON CONFLICT ("ownerType", "ownerId") DO NOTHING`;
    const row = await this.find(owner);
    if (!row) throw new Error('data key insert did not persist');
    return row;
  }

  async *listAll(batchSize: number): AsyncIterable<StoredDataKey> {
    let cursor: string | undefined;
    for (;;) {
      const rows = await this.prisma.dataKey.findMany({
        where: cursor ? { id: { gt: cursor } } : {},
        orderBy: { id: 'asc' },
        take: batchSize,
      });
      for (const row of rows) yield toStored(row);
      if (rows.length < batchSize) return;
      cursor = rows[rows.length - 1]!.id;
    }
  }

  async updateWrapping(id: string, next: DataKeyWrapping, expectedKekVersion: number): Promise<boolean> {
    const res = await this.prisma.dataKey.updateMany({
      where: { id, kekVersion: expectedKekVersion },
      data: { kekVersion: next.kekVersion, wrappedKey: Buffer.from(next.wrappedKey), rotatedAt: new Date() },
    });
    return res.count === 1;
  }

  async destroy(owner: DekOwner): Promise<boolean> {
    const res = await this.prisma.dataKey.deleteMany({ where: { ownerType: owner.type, ownerId: owner.id } });
    return res.count > 0;
  }
}

function toStored(row: {
  id: string;
  ownerType: string;
  ownerId: string;
  dekVersion: number;
  kekVersion: number;
  wrappedKey: Uint8Array;
  createdAt: Date;
  rotatedAt: Date | null;
}): StoredDataKey {
  return {
    id: row.id,
    owner: { type: row.ownerType as DekOwnerType, id: row.ownerId },
    dekVersion: row.dekVersion,
    kekVersion: row.kekVersion,
    wrappedKey: new Uint8Array(row.wrappedKey),
    createdAt: row.createdAt,
    rotatedAt: row.rotatedAt,
  };
}

import { KeyDestroyedError } from '../crypto/crypto-error.js';
import type { DataKeyStore, DataKeyWrapping, DekOwner, DekOwnerType, NewDataKey, StoredDataKey } from '../crypto/data-key.port.js';
import { newId } from './ids.js';
import type { KeystoreDatabase } from './keystore.js';
import type { SqlExecutor } from './sql-executor.port.js';

export interface ShredLedgerEntry {
  ownerType: DekOwnerType;
  ownerId: string;
  shreddedAt: Date;
}

// Timestamps are UTC `timestamp(3)` (as Prisma writes them); read as epoch ms so the driver's
// local-time parsing never shifts them.
/** The columns of a `data_keys` row as `KeyRow` reads them (also the legacy table in the data database). */
export const KEY_COLUMNS = `"id", "ownerType", "ownerId", "dekVersion", "kekVersion", "wrappedKey",
  (extract(epoch from "createdAt") * 1000)::float8 AS "createdAtMs", (extract(epoch from "rotatedAt") * 1000)::float8 AS "rotatedAtMs"`;
const NOW_UTC = `(now() AT TIME ZONE 'UTC')`;

export interface KeyRow {
  id: string;
  ownerType: string;
  ownerId: string;
  dekVersion: number;
  kekVersion: number;
  wrappedKey: Uint8Array;
  createdAtMs: number;
  rotatedAtMs: number | null;
}

/**
 * The crypto room's DataKeyStore on the key store database (tables data_keys and shred_ledger),
 * which is not the mail data's database (docs/security.md).
 *
 * Destroying a key records its owner in the shred ledger in the same transaction, and a key is
 * never created for an owner in the ledger: a purged mailbox cannot get a fresh key from a sync
 * that raced the purge, and a restore can destroy again every key the ledger names.
 */
export class DataKeyRepository implements DataKeyStore {
  constructor(private readonly keystore: KeystoreDatabase) {}

  async find(owner: DekOwner): Promise<StoredDataKey | null> {
    return findIn(this.keystore.sql, owner);
  }

  async create(owner: DekOwner, key: NewDataKey): Promise<StoredDataKey> {
    // ON CONFLICT DO NOTHING, then read: a concurrent creator's row wins and both use it.
    await this.keystore.sql.query(
      `INSERT INTO "data_keys" ("id", "ownerType", "ownerId", "dekVersion", "kekVersion", "wrappedKey", "createdAt")
       SELECT $1, $2, $3, $4, $5, $6, ${NOW_UTC}
        WHERE NOT EXISTS (SELECT 1 FROM "shred_ledger" l WHERE l."ownerType" = $2 AND l."ownerId" = $3)
       ON CONFLICT ("ownerType", "ownerId") DO NOTHING`,
      [newId('dataKey'), owner.type, owner.id, key.dekVersion, key.kekVersion, Buffer.from(key.wrappedKey)],
    );
    const row = await this.find(owner);
    if (row) return row;
    if (await this.isShredded(owner)) throw new KeyDestroyedError(owner.type, owner.id);
    throw new Error('data key insert did not persist');
  }

  async *listAll(batchSize: number): AsyncIterable<StoredDataKey> {
    let cursor = '';
    for (;;) {
      const { rows } = await this.keystore.sql.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM "data_keys" WHERE "id" > $1 ORDER BY "id" LIMIT $2`, [cursor, batchSize]);
      for (const row of rows) yield toStored(row);
      if (rows.length < batchSize) return;
      cursor = rows[rows.length - 1]!.id;
    }
  }

  async updateWrapping(id: string, next: DataKeyWrapping, expectedKekVersion: number): Promise<boolean> {
    const { rows } = await this.keystore.sql.query(
      `UPDATE "data_keys" SET "kekVersion" = $2, "wrappedKey" = $3, "rotatedAt" = ${NOW_UTC} WHERE "id" = $1 AND "kekVersion" = $4 RETURNING 1`,
      [id, next.kekVersion, Buffer.from(next.wrappedKey), expectedKekVersion],
    );
    return rows.length === 1;
  }

  /** Deletes the owner's key and records the owner in the shred ledger, in one transaction. */
  async destroy(owner: DekOwner): Promise<boolean> {
    return this.keystore.transaction(async (tx) => {
      const { rows } = await tx.query(`DELETE FROM "data_keys" WHERE "ownerType" = $1 AND "ownerId" = $2 RETURNING 1`, [owner.type, owner.id]);
      await tx.query(`INSERT INTO "shred_ledger" ("ownerType", "ownerId", "shreddedAt") VALUES ($1, $2, ${NOW_UTC}) ON CONFLICT DO NOTHING`, [owner.type, owner.id]);
      return rows.length > 0;
    });
  }

  async isShredded(owner: DekOwner): Promise<boolean> {
    const { rows } = await this.keystore.sql.query(`SELECT 1 FROM "shred_ledger" WHERE "ownerType" = $1 AND "ownerId" = $2`, [owner.type, owner.id]);
    return rows.length > 0;
  }

  /** Which of `ids` (owners of `type`) have a key. */
  async ownersWithKeys(type: DekOwnerType, ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const { rows } = await this.keystore.sql.query<{ ownerId: string }>(
      `SELECT "ownerId" FROM "data_keys" WHERE "ownerType" = $1 AND "ownerId" = ANY($2::text[])`,
      [type, [...ids]],
    );
    return new Set(rows.map((r) => r.ownerId));
  }

  /** Owners of `type` whose key is older than `createdBefore`, keyset by owner id. */
  async ownerIdsCreatedBefore(type: DekOwnerType, createdBefore: Date, afterId: string, limit: number): Promise<string[]> {
    const { rows } = await this.keystore.sql.query<{ ownerId: string }>(
      `SELECT "ownerId" FROM "data_keys" WHERE "ownerType" = $1 AND "createdAt" < $2::timestamp AND "ownerId" > $3 ORDER BY "ownerId" LIMIT $4`,
      [type, createdBefore.toISOString().replace('Z', ''), afterId, limit],
    );
    return rows.map((r) => r.ownerId);
  }

  async countKeys(): Promise<number> {
    const { rows } = await this.keystore.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM "data_keys"`);
    return rows[0]?.n ?? 0;
  }

  async ledger(): Promise<ShredLedgerEntry[]> {
    const { rows } = await this.keystore.sql.query<{ ownerType: DekOwnerType; ownerId: string; ms: number }>(
      `SELECT "ownerType", "ownerId", (extract(epoch from "shreddedAt") * 1000)::float8 AS ms FROM "shred_ledger" ORDER BY "shreddedAt", "ownerType", "ownerId"`,
    );
    return rows.map((r) => ({ ownerType: r.ownerType, ownerId: r.ownerId, shreddedAt: new Date(Number(r.ms)) }));
  }

  /**
   * Merges `entries` into the ledger and destroys the key of every owner the ledger names, in one
   * transaction. Returns how many keys it destroyed (after a restore: keys that came back).
   */
  async applyLedger(entries: readonly ShredLedgerEntry[]): Promise<number> {
    return this.keystore.transaction(async (tx) => {
      if (entries.length > 0) {
        await tx.query(
          `INSERT INTO "shred_ledger" ("ownerType", "ownerId", "shreddedAt")
           SELECT t, i, s::timestamp FROM unnest($1::text[], $2::text[], $3::text[]) AS e(t, i, s)
           ON CONFLICT DO NOTHING`,
          [entries.map((e) => e.ownerType), entries.map((e) => e.ownerId), entries.map((e) => e.shreddedAt.toISOString().replace('Z', ''))],
        );
      }
      const { rows } = await tx.query(
        `DELETE FROM "data_keys" d USING "shred_ledger" l WHERE d."ownerType" = l."ownerType" AND d."ownerId" = l."ownerId" AND d."ownerType" <> 'system' RETURNING 1`,
      );
      return rows.length;
    });
  }

  /** Copies keys from an install that kept them in the data database (`keystore migrate`). */
  async importKeys(rows: ReadonlyArray<StoredDataKey>): Promise<number> {
    return this.keystore.transaction(async (tx) => {
      let inserted = 0;
      for (const r of rows) {
        const res = await tx.query(
          `INSERT INTO "data_keys" ("id", "ownerType", "ownerId", "dekVersion", "kekVersion", "wrappedKey", "createdAt", "rotatedAt")
           SELECT $1, $2, $3, $4, $5, $6, $7::timestamp, $8::timestamp
            WHERE NOT EXISTS (SELECT 1 FROM "shred_ledger" l WHERE l."ownerType" = $2 AND l."ownerId" = $3)
           ON CONFLICT DO NOTHING RETURNING 1`,
          [r.id, r.owner.type, r.owner.id, r.dekVersion, r.kekVersion, Buffer.from(r.wrappedKey), utc(r.createdAt), r.rotatedAt ? utc(r.rotatedAt) : null],
        );
        inserted += res.rows.length;
      }
      return inserted;
    });
  }
}

function utc(d: Date): string {
  return d.toISOString().replace('Z', '');
}

async function findIn(sql: SqlExecutor, owner: DekOwner): Promise<StoredDataKey | null> {
  const { rows } = await sql.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM "data_keys" WHERE "ownerType" = $1 AND "ownerId" = $2`, [owner.type, owner.id]);
  return rows[0] ? toStored(rows[0]) : null;
}

export function toStored(row: KeyRow): StoredDataKey {
  return {
    id: row.id,
    owner: { type: row.ownerType as DekOwnerType, id: row.ownerId },
    dekVersion: Number(row.dekVersion),
    kekVersion: Number(row.kekVersion),
    wrappedKey: new Uint8Array(row.wrappedKey),
    createdAt: new Date(Number(row.createdAtMs)),
    rotatedAt: row.rotatedAtMs === null || row.rotatedAtMs === undefined ? null : new Date(Number(row.rotatedAtMs)),
  };
}

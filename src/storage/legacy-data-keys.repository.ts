import pg from 'pg';
import type { DekOwnerType, StoredDataKey } from '../crypto/data-key.port.js';
import type { SqlExecutor } from './sql-executor.port.js';

/**
 * The `data_keys` table of an install from before the key store (it lived in the data database).
 * Migration 20261205080100 drops it when empty; one that still holds keys is moved by
 * `mailbox-connector keystore migrate` and then dropped here.
 */
export class LegacyDataKeysRepository {
  constructor(private readonly sql: SqlExecutor) {}

  /** Keys still in the data database; 0 when the table is gone. */
  async count(): Promise<number> {
    const { rows } = await this.sql.query<{ t: string | null }>(`SELECT to_regclass('public.data_keys')::text AS t`);
    if (!rows[0]?.t) return 0;
    const n = await this.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM "data_keys"`);
    return n.rows[0]?.n ?? 0;
  }

  async readAll(): Promise<StoredDataKey[]> {
    const { rows } = await this.sql.query<{
      id: string;
      ownerType: DekOwnerType;
      ownerId: string;
      dekVersion: number;
      kekVersion: number;
      wrappedKey: Uint8Array;
      createdAtMs: number;
      rotatedAtMs: number | null;
    }>(
      `SELECT "id", "ownerType", "ownerId", "dekVersion", "kekVersion", "wrappedKey",
              (extract(epoch from "createdAt") * 1000)::float8 AS "createdAtMs", (extract(epoch from "rotatedAt") * 1000)::float8 AS "rotatedAtMs"
         FROM "data_keys" ORDER BY "id"`,
    );
    return rows.map((r) => ({
      id: r.id,
      owner: { type: r.ownerType, id: r.ownerId },
      dekVersion: Number(r.dekVersion),
      kekVersion: Number(r.kekVersion),
      wrappedKey: new Uint8Array(r.wrappedKey),
      createdAt: new Date(Number(r.createdAtMs)),
      rotatedAt: r.rotatedAtMs === null ? null : new Date(Number(r.rotatedAtMs)),
    }));
  }

  async drop(): Promise<void> {
    await this.sql.exec('DROP TABLE IF EXISTS "data_keys"');
  }
}

/** Keys still in the data database at `url`, over a short-lived connection of its own. */
export async function countLegacyDataKeys(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await new LegacyDataKeysRepository({
      query: async (text, values) => ({ rows: (await client.query(text, values as unknown[] | undefined)).rows }),
      exec: async (script) => {
        await client.query(script);
      },
    }).count();
  } finally {
    await client.end().catch(() => undefined);
  }
}

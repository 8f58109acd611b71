import pg from 'pg';
import type { StoredDataKey } from '../crypto/data-key.port.js';
import { KEY_COLUMNS, toStored, type KeyRow } from './data-key.repository.js';
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
    const { rows } = await this.sql.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM "data_keys" ORDER BY "id"`);
    return rows.map(toStored);
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

// Migration 20261205050000 (issue 13 item 9): messages stored before `origin` existed are
// classified once by the time rule — received before their mailbox was connected → backfill.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, readMigrations, type MigrationFile } from '../../src/storage/migrator.js';
import { adapters, type OpenedDatabase } from '../helpers/adapters.js';

const ORIGIN_MIGRATION = '20261205050000_message_origin';

describe.each(adapters)('message origin migration on $name', (adapter) => {
  let opened: OpenedDatabase;
  let all: MigrationFile[];
  beforeAll(async () => {
    opened = await adapter.open();
    all = await readMigrations();
  }, 120_000);
  afterAll(async () => {
    await opened?.cleanup();
  });

  async function run(migrations: MigrationFile[]): Promise<void> {
    const session = await opened.db.session();
    try {
      await migrate(session, migrations);
    } finally {
      await session.release();
    }
  }

  it('marks rows received before the mailbox was connected as backfill, the rest live; new rows default to live', async () => {
    expect(all.map((m) => m.name)).toContain(ORIGIN_MIGRATION);
    await run(all.filter((m) => m.name < ORIGIN_MIGRATION));
    const sql = opened.db.sql;
    await sql.query(`INSERT INTO tenants (id, name, "updatedAt") VALUES ('ten_o', 'T', now())`);
    await sql.query(
      `INSERT INTO mailboxes (id, "tenantId", provider, "addressEnc", "addressIndex", "createdAt", "updatedAt")
       VALUES ('mbx_o', 'ten_o', 'google', '\\x00', 'idx', '2026-12-01T10:00:00Z', now())`,
    );
    for (const [id, receivedAt] of [
      ['msg_history', '2026-11-20T08:00:00Z'],
      ['msg_after', '2026-12-01T10:00:05Z'],
    ]) {
      await sql.query(
        `INSERT INTO messages (id, "tenantId", "mailboxId", "providerMessageId", "threadKey", "receivedAt", "contentEnc")
         VALUES ($1, 'ten_o', 'mbx_o', $1, 'gm:t', $2, '\\x00')`,
        [id, receivedAt],
      );
    }
    await run(all);
    const rows = await sql.query<{ id: string; origin: string }>(`SELECT id, origin FROM messages ORDER BY id`);
    expect(rows.rows).toEqual([
      { id: 'msg_after', origin: 'live' },
      { id: 'msg_history', origin: 'backfill' },
    ]);
    await sql.query(
      `INSERT INTO messages (id, "tenantId", "mailboxId", "providerMessageId", "threadKey", "receivedAt", "contentEnc")
       VALUES ('msg_new', 'ten_o', 'mbx_o', 'msg_new', 'gm:t', now(), '\\x00')`,
    );
    expect((await sql.query<{ origin: string }>(`SELECT origin FROM messages WHERE id = 'msg_new'`)).rows[0]!.origin).toBe('live');
    await expect(sql.query(`UPDATE messages SET origin = 'imported' WHERE id = 'msg_new'`)).rejects.toThrow(/messages_origin_check/);
  });
});

import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMigrate } from '../../src/cli/server-runner.js';
import { loadConfig } from '../../src/config/config.js';
import { openDatabase } from '../../src/storage/database.js';
import { KEYSTORE_MIGRATIONS_DIR, openKeystore } from '../../src/storage/keystore.js';
import { DEFAULT_MIGRATIONS_DIR, migrate, MigrationError, readMigrations } from '../../src/storage/migrator.js';
import { adapters, postgresUnavailableReason, type OpenedDatabase } from '../helpers/adapters.js';
import { missing } from '../helpers/requirements.js';
import { createTestDatabase } from '../helpers/postgres.js';

describe.each(adapters)('migrator on $name', (adapter) => {
  let opened: OpenedDatabase;
  let dir: string;
  beforeAll(async () => {
    opened = await adapter.open();
    dir = mkdtempSync(path.join(tmpdir(), 'mbc-migrations-'));
    cpSync(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  }, 120_000);
  afterAll(async () => {
    await opened?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(migrationsDir = dir) {
    const session = await opened.db.session();
    try {
      return await migrate(session, await readMigrations(migrationsDir));
    } finally {
      await session.release();
    }
  }

  it('applies every migration to an empty database, then nothing the second time', async () => {
    const first = await run();
    expect(first.applied).toEqual((await readMigrations(dir)).map((m) => m.name));
    expect(first.applied.length).toBeGreaterThan(0);
    const tables = await opened.db.sql.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`,
    );
    expect(tables.rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(['tenants', 'mailboxes', 'messages', 'audit_log', '_migrations']));
    const second = await run();
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toBe(first.applied.length);
  });

  it('applies a new migration in its own transaction and rolls back a failing one', async () => {
    mkdirSync(path.join(dir, '29990101000000_add_probe'));
    writeFileSync(path.join(dir, '29990101000000_add_probe', 'migration.sql'), 'CREATE TABLE "probe" ("id" TEXT PRIMARY KEY);');
    expect((await run()).applied).toEqual(['29990101000000_add_probe']);
    mkdirSync(path.join(dir, '29990102000000_broken'));
    writeFileSync(path.join(dir, '29990102000000_broken', 'migration.sql'), 'CREATE TABLE "probe2" ("id" TEXT); SELECT no_such_function();');
    await expect(run()).rejects.toMatchObject({ code: 'migration_failed' });
    const probe2 = await opened.db.sql.query(`SELECT 1 FROM information_schema.tables WHERE table_name = 'probe2'`);
    expect(probe2.rows).toHaveLength(0);
    rmSync(path.join(dir, '29990102000000_broken'), { recursive: true });
  });

  it('refuses to run when an applied migration file has changed', async () => {
    writeFileSync(path.join(dir, '29990101000000_add_probe', 'migration.sql'), 'CREATE TABLE "probe" ("id" TEXT PRIMARY KEY, "x" INT);');
    const err = await run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).code).toBe('checksum_mismatch');
    expect((err as Error).message).toContain('29990101000000_add_probe');
  });

  it('refuses to run when the database has a migration this release does not know', async () => {
    rmSync(path.join(dir, '29990101000000_add_probe'), { recursive: true });
    await expect(run()).rejects.toMatchObject({ code: 'unknown_applied_migration' });
  });
});

describe.skipIf(missing('Postgres', postgresUnavailableReason))('migrator concurrency on postgres', () => {
  it('two processes starting together migrate once', async () => {
    const t = await createTestDatabase();
    const a = await openDatabase({ databaseUrl: t.url, dataDir: '' });
    const b = await openDatabase({ databaseUrl: t.url, dataDir: '' });
    try {
      const migrations = await readMigrations();
      const [sa, sb] = await Promise.all([a.session(), b.session()]);
      const [ra, rb] = await Promise.all([migrate(sa, migrations), migrate(sb, migrations)]);
      await Promise.all([sa.release(), sb.release()]);
      expect([...ra.applied, ...rb.applied].sort()).toEqual(migrations.map((m) => m.name).sort());
      const rows = await a.sql.query<{ n: string }>('SELECT count(*)::text AS n FROM "_migrations"');
      expect(rows.rows[0]!.n).toBe(String(migrations.length));
    } finally {
      await a.close();
      await b.close();
      await t.drop();
    }
  });
});

describe.skipIf(missing('Postgres', postgresUnavailableReason))('mailbox-connector migrate on postgres', () => {
  it('applies the key store’s migrations as well as the data database’s, as every start does (one migrateAll)', async () => {
    const t = await createTestDatabase();
    try {
      const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: t.url, ENCRYPTION_KEYS: `1:${randomBytes(32).toString('base64')}` });
      const first = await runMigrate(config);
      expect(first.applied).toEqual((await readMigrations()).map((m) => m.name));
      expect(first.keystore.applied).toEqual((await readMigrations(KEYSTORE_MIGRATIONS_DIR)).map((m) => m.name));
      expect(first.keystore.applied.length).toBeGreaterThan(0);
      // The derived key store (<db>_keystore) now holds its tables; a second run applies nothing.
      const keystore = await openKeystore({ url: config.keystore.url, dataDir: '' });
      try {
        const { rows } = await keystore.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM "_migrations"');
        expect(rows[0]!.n).toBe(first.keystore.applied.length);
      } finally {
        await keystore.close();
      }
      const second = await runMigrate(config);
      expect({ data: second.applied, keystore: second.keystore.applied }).toEqual({ data: [], keystore: [] });
    } finally {
      await t.drop();
    }
  }, 120_000);
});

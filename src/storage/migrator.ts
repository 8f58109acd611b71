import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KEYSTORE_MIGRATIONS_DIR } from './keystore.js';
import type { SqlSession } from './sql-executor.port.js';

/** Migrations live in Prisma's folder layout: prisma/migrations/<timestamp>_<name>/migration.sql. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations/', import.meta.url));

// Any constant works; it only has to be the same in every process of this service.
const MIGRATION_LOCK_KEY = 727_384_615;

export interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
}

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  constructor(
    readonly code: 'checksum_mismatch' | 'unknown_applied_migration' | 'migration_failed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export async function readMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const files: MigrationFile[] = [];
  for (const name of names) {
    const sql = await readFile(path.join(dir, name, 'migration.sql'), 'utf8');
    files.push({ name, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return files;
}

/**
 * Applies pending migrations, each in its own transaction, recording name and checksum.
 * A session-level advisory lock serialises processes that start together: the second waits,
 * then finds everything applied. A migration that was applied and has since been edited stops
 * the start, because the database no longer matches what the file says it is.
 */
export async function migrate(session: SqlSession, migrations: MigrationFile[]): Promise<MigrationResult> {
  await session.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
  try {
    await session.exec(`CREATE TABLE IF NOT EXISTS "_migrations" (
      "name" TEXT PRIMARY KEY,
      "checksum" TEXT NOT NULL,
      "appliedAt" TIMESTAMPTZ NOT NULL DEFAULT now()
    )`);
    const { rows } = await session.query<{ name: string; checksum: string }>(
      'SELECT "name", "checksum" FROM "_migrations" ORDER BY "name"',
    );
    const known = new Map(migrations.map((m) => [m.name, m]));
    for (const row of rows) {
      const file = known.get(row.name);
      if (!file) {
        throw new MigrationError(
          'unknown_applied_migration',
          `migration ${row.name} is applied in the database but missing from this release; refusing to start`,
        );
      }
      if (file.checksum !== row.checksum) {
        throw new MigrationError(
          'checksum_mismatch',
          `migration ${row.name} was changed after it was applied (checksum differs); refusing to run`,
        );
      }
    }
    const applied = new Set(rows.map((r) => r.name));
    const done: string[] = [];
    for (const m of migrations) {
      if (applied.has(m.name)) continue;
      await session.exec('BEGIN');
      try {
        await session.exec(m.sql);
        await session.query('INSERT INTO "_migrations" ("name", "checksum") VALUES ($1, $2)', [m.name, m.checksum]);
        await session.exec('COMMIT');
      } catch (err) {
        await session.exec('ROLLBACK');
        throw new MigrationError('migration_failed', `migration ${m.name} failed and was rolled back`, { cause: err });
      }
      done.push(m.name);
    }
    return { applied: done, alreadyApplied: rows.length };
  } finally {
    await session.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
  }
}

/** A database the migrator can take an exclusive connection of (the data database, the key store). */
export interface MigrationTarget {
  session(): Promise<SqlSession>;
}

/**
 * The one migration sequence of the service: the data database (prisma/migrations), then the key
 * store (prisma/keystore-migrations), each under the migrator's lock and checksum checks. Every
 * start (`createCore`), `mailbox-connector migrate`, `keystore migrate` and the test templates run
 * this, so none of them can skip a step the others take.
 */
export async function migrateAll(targets: { data: MigrationTarget; keystore: MigrationTarget }): Promise<{ data: MigrationResult; keystore: MigrationResult }> {
  const data = await migrateTarget(targets.data, await readMigrations());
  const keystore = await migrateTarget(targets.keystore, await readMigrations(KEYSTORE_MIGRATIONS_DIR));
  return { data, keystore };
}

async function migrateTarget(target: MigrationTarget, migrations: MigrationFile[]): Promise<MigrationResult> {
  const session = await target.session();
  try {
    return await migrate(session, migrations);
  } finally {
    await session.release();
  }
}

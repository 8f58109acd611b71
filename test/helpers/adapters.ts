// Both storage adapters, for tests that must prove the same behaviour on each: Postgres (a fresh
// database on the local server) and the embedded PGlite (a fresh temp folder).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase, type Database } from '../../src/storage/database.js';
import { adminDatabaseUrl, createTestDatabase, hasPostgres } from './postgres.js';
import { inCi, missing } from './requirements.js';

export interface OpenedDatabase {
  db: Database;
  /** DATABASE_URL for Postgres, DATA_DIR for the embedded database. */
  location: { databaseUrl?: string; dataDir?: string };
  cleanup(): Promise<void>;
}

export interface AdapterFactory {
  name: 'postgres' | 'embedded';
  open(): Promise<OpenedDatabase>;
}

export const postgresAdapter: AdapterFactory = {
  name: 'postgres',
  async open() {
    const t = await createTestDatabase();
    const db = await openDatabase({ databaseUrl: t.url, dataDir: '' });
    return {
      db,
      location: { databaseUrl: t.url },
      async cleanup() {
        await db.close();
        await t.drop();
      },
    };
  },
};

export const embeddedAdapter: AdapterFactory = {
  name: 'embedded',
  async open() {
    const dir = mkdtempSync(path.join(tmpdir(), 'mbc-pglite-'));
    const db = await openDatabase({ databaseUrl: undefined, dataDir: dir });
    return {
      db,
      location: { dataDir: dir },
      async cleanup() {
        await db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

export const postgresAvailable = await hasPostgres();
/** Why the Postgres half of a both-adapters test cannot run, or null. */
export const postgresUnavailableReason = postgresAvailable ? null : `no Postgres answers at ${adminDatabaseUrl()} (set TEST_ADMIN_DATABASE_URL)`;
/**
 * Postgres is left out locally when no server answers; in CI it stays in, so its tests fail.
 * Call {@link reportMissingPostgres} in a file using `adapters` so the omission is visible.
 */
export const adapters: AdapterFactory[] = [...(postgresAvailable || inCi() ? [postgresAdapter] : []), embeddedAdapter];

/** Registers the skipped/failing entry that says why the Postgres half did not run. */
export function reportMissingPostgres(): void {
  missing('Postgres', postgresUnavailableReason);
}

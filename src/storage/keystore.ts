import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { checkOut } from './checked-out-client.js';
import { openPGliteFolder } from './pglite-folder.js';
import { checkedOutSession, pgExecutor, pgliteExecutor } from './sql-executors.js';
import type { SqlExecutor, SqlSession } from './sql-executor.port.js';

/** The key store's own migrations (hand-written SQL, Prisma's folder layout, the same migrator). */
export const KEYSTORE_MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/keystore-migrations/', import.meta.url));

/** The embedded key store's folder, beside (not inside) the data's `pgdata`. */
export function embeddedKeystoreDir(dataDir: string): string {
  return path.resolve(dataDir, 'keystore');
}

/**
 * The key store's database: the wrapped data keys and the shred ledger, apart from the mail data
 * (docs/security.md). On Postgres a small pool of its own; embedded, a PGlite of its own.
 */
export interface KeystoreDatabase {
  readonly kind: 'postgres' | 'embedded';
  readonly sql: SqlExecutor;
  /** An exclusive connection (the migrator's advisory lock, explicit transactions). */
  session(): Promise<SqlSession>;
  /** Runs `fn` in one transaction on one connection. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface KeystoreOptions {
  /** Postgres URL; undefined = embedded in `DATA_DIR/keystore`. */
  url: string | undefined;
  dataDir: string;
  /** Create the database when it does not exist (the derived `<db>_keystore`), through this URL. */
  createThrough?: string | undefined;
  /** Embedded key store: told when an unusable folder was moved aside (pglite-folder.ts). */
  warn?: (message: string) => void;
}

export class KeystoreUnavailableError extends Error {
  override readonly name = 'KeystoreUnavailableError';
}

export async function openKeystore(opts: KeystoreOptions): Promise<KeystoreDatabase> {
  if (!opts.url) return openEmbeddedKeystore(embeddedKeystoreDir(opts.dataDir), opts.warn);
  if (opts.createThrough) await ensureDatabase(opts.url, opts.createThrough);
  return openPostgresKeystore(opts.url);
}

/** Creates the key store database on the data database's server when it is missing. */
export async function ensureDatabase(url: string, through: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  const client = new pg.Client({ connectionString: through, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rows.length > 0) return;
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '42P04') return; // created meanwhile by another process
      throw new KeystoreUnavailableError(
        `the key store database "${name}" does not exist and cannot be created (${code ?? 'error'}): create it, or set KEYSTORE_URL to a database of its own`,
        { cause: err },
      );
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

function openPostgresKeystore(url: string): KeystoreDatabase {
  const pool = new pg.Pool({
    connectionString: url,
    max: 4,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: 'mailbox-connector-keystore',
  });
  pool.on('error', () => undefined);
  const sql = pgExecutor((text, values) => pool.query(text, values));
  const session = async (): Promise<SqlSession> => checkedOutSession(await checkOut(pool));
  return {
    kind: 'postgres',
    sql,
    session,
    async transaction(fn) {
      const s = await session();
      try {
        await s.exec('BEGIN');
        try {
          const out = await fn(s);
          await s.exec('COMMIT');
          return out;
        } catch (err) {
          await s.exec('ROLLBACK').catch(() => undefined);
          throw err;
        }
      } finally {
        await s.release();
      }
    },
    async close() {
      await pool.end();
    },
  };
}

async function openEmbeddedKeystore(dir: string, warn: ((message: string) => void) | undefined): Promise<KeystoreDatabase> {
  return embeddedKeystore(await openPGliteFolder(dir, warn));
}

/** A key store over an open PGlite (also used by restore, which loads one from a dump). */
export function embeddedKeystore(lite: PGlite): KeystoreDatabase {
  const sql = pgliteExecutor(lite);
  return {
    kind: 'embedded',
    sql,
    async session() {
      return { ...sql, async release() {} };
    },
    async transaction(fn) {
      // PGlite's transaction() holds its one connection for the callback: no interleaving.
      return lite.transaction(async (tx) => fn(pgliteExecutor(tx)));
    },
    async close() {
      await lite.close();
    },
  };
}

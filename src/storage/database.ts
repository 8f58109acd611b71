import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { Prisma, PrismaClient } from '../generated/prisma/client.js';
import { checkOut } from './checked-out-client.js';
import { forPrismaAdapter } from './pglite-bytea.js';
import { openPGliteFolder } from './pglite-folder.js';
import { checkedOutSession, pgExecutor, pgliteExecutor } from './sql-executors.js';
import type { SqlExecutor, SqlSession, SqlTransaction } from './sql-executor.port.js';
import { TransactionGuard, transactionGuardEnabled } from './transaction-guard.js';

export type { PrismaClient } from '../generated/prisma/client.js';
export { Prisma } from '../generated/prisma/client.js';

/**
 * An open database transaction, as handed to repositories. Rooms outside storage pass it through
 * by this name and never name Prisma (scripts/import-rules.mjs enforces it).
 */
export type DbTransaction = Prisma.TransactionClient;

/** A Prisma write refused by a unique constraint (P2002): the row (or what the index guards) exists already. */
export function isUniqueViolation(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002';
}

export type DatabaseKind = 'postgres' | 'embedded';

export interface Database {
  readonly kind: DatabaseKind;
  readonly prisma: PrismaClient;
  readonly sql: SqlExecutor;
  /** An exclusive connection (the embedded database has only one, shared). */
  session(): Promise<SqlSession>;
  /**
   * `fn`'s statements in one transaction through the driver, without Prisma's query path (hot
   * multi-row writes: ingest pages): a pooled pg connection between BEGIN and COMMIT on Postgres,
   * PGlite's transaction on the embedded database (other queries wait for it, as for Prisma's).
   */
  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  /** For pg-boss: `{connectionString}` on Postgres, `{db}` on the embedded database. */
  readonly jobQueueConnection: { connectionString: string; connectionTimeoutMillis?: number; keepAlive?: boolean; keepAliveInitialDelayMillis?: number } | { db: { executeSql(text: string, values: unknown[]): Promise<{ rows: unknown[] }> } };
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  /** Pool size per process on Postgres. */
  poolSize?: number;
  /** Fail fast on a query outside an open transaction from inside it (default: on under vitest). */
  guardTransactions?: boolean;
  /** Embedded database: told when an unusable folder was moved aside (pglite-folder.ts). */
  warn?: (message: string) => void;
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  const db = opts.databaseUrl ? openPostgres(opts.databaseUrl, opts.poolSize ?? 10) : await openEmbedded(opts.dataDir, opts.warn);
  return (opts.guardTransactions ?? transactionGuardEnabled()) ? guarded(db) : db;
}

/**
 * Refuses, with a clear error, a query on the main client / raw executor / job queue from inside
 * an open transaction (it would wait for ever on the embedded database's one connection).
 */
function guarded(db: Database): Database {
  const guard = new TransactionGuard();
  const conn = db.jobQueueConnection;
  return {
    ...db,
    prisma: guard.prisma(db.prisma),
    sql: guard.sql(db.sql),
    session: async () => guard.session(await db.session()),
    transaction: (fn) => guard.transaction((inner) => db.transaction(inner), fn),
    jobQueueConnection: 'db' in conn ? { db: { executeSql: guard.executeSql(conn.db.executeSql.bind(conn.db)) } } : conn,
  };
}

/**
 * Connection settings for every Postgres pool of the process (ours and pg-boss's): a connection
 * attempt gives up instead of waiting for ever while the server is down (the caller retries), and
 * TCP keepalive notices a peer that vanished without closing the connection.
 */
const CONNECTION_OPTIONS = { connectionTimeoutMillis: 10_000, keepAlive: true, keepAliveInitialDelayMillis: 10_000 } as const;

function openPostgres(url: string, poolSize: number): Database {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, ...CONNECTION_OPTIONS, application_name: 'mailbox-connector' });
  // An idle client erroring (e.g. the server restarting) must not crash the process; the pool
  // drops it and the next query opens a new connection.
  pool.on('error', () => undefined);
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const sql = pgExecutor((text, values) => pool.query(text, values));
  return {
    kind: 'postgres',
    prisma,
    sql,
    async session() {
      return checkedOutSession(await checkOut(pool));
    },
    async transaction(fn) {
      // As session(): a connection that failed (or whose transaction could not be closed) is
      // discarded on release, never handed out again mid-transaction.
      const c = await checkOut(pool);
      let open = false;
      try {
        await c.run('BEGIN');
        open = true;
        const result = await fn(pgExecutor((text, values) => c.client.query(text, values)));
        open = false;
        await c.run('COMMIT');
        return result;
      } finally {
        if (open) await c.run('ROLLBACK').catch(() => undefined);
        c.release();
      }
    },
    jobQueueConnection: { connectionString: url, ...CONNECTION_OPTIONS },
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function openEmbedded(dataDir: string, warn: ((message: string) => void) | undefined): Promise<Database> {
  const lite = await openPGliteFolder(path.resolve(dataDir, 'pgdata'), warn);
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(forPrismaAdapter(lite)) });
  const sql = pgliteExecutor(lite);
  return {
    kind: 'embedded',
    prisma,
    sql,
    // PGlite is one connection in this process; callers that need exclusivity (the migrator at
    // start-up) run before anything else uses it.
    async session() {
      return { ...sql, async release() {} };
    },
    transaction(fn) {
      return lite.transaction((tx) => fn(pgliteExecutor(tx)));
    },
    jobQueueConnection: {
      db: {
        // pg-boss sends parameterless multi-statement scripts (its schema install) and
        // parameterised single statements; PGlite runs the former only through exec().
        async executeSql(text, values) {
          if (values && values.length > 0) {
            const res = await lite.query(text, values);
            return { rows: res.rows };
          }
          const results = await lite.exec(text);
          return { rows: results.at(-1)?.rows ?? [] };
        },
      },
    },
    async close() {
      await prisma.$disconnect();
      await lite.close();
    },
  };
}

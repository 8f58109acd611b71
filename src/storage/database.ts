import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from '../generated/prisma/client.js';
import type { SqlExecutor, SqlSession } from './sql-executor.port.js';
import { TransactionGuard, transactionGuardEnabled } from './transaction-guard.js';

export type { PrismaClient } from '../generated/prisma/client.js';
export { Prisma } from '../generated/prisma/client.js';

export type DatabaseKind = 'postgres' | 'embedded';

export interface Database {
  readonly kind: DatabaseKind;
  readonly prisma: PrismaClient;
  readonly sql: SqlExecutor;
  /** An exclusive connection (the embedded database has only one, shared). */
  session(): Promise<SqlSession>;
  /** For pg-boss: `{connectionString}` on Postgres, `{db}` on the embedded database. */
  readonly jobQueueConnection: { connectionString: string } | { db: { executeSql(text: string, values: unknown[]): Promise<{ rows: unknown[] }> } };
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  /** Pool size per process on Postgres. */
  poolSize?: number;
  /** Fail fast on a query outside an open transaction from inside it (default: on under vitest). */
  guardTransactions?: boolean;
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  const db = opts.databaseUrl ? openPostgres(opts.databaseUrl, opts.poolSize ?? 10) : await openEmbedded(opts.dataDir);
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
    jobQueueConnection: 'db' in conn ? { db: { executeSql: guard.executeSql(conn.db.executeSql.bind(conn.db)) } } : conn,
  };
}

function openPostgres(url: string, poolSize: number): Database {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // An idle client erroring (e.g. the server restarting) must not crash the process; the next
  // query reconnects.
  pool.on('error', () => undefined);
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const sql: SqlExecutor = {
    async query(text, values) {
      const res = await pool.query(text, values as unknown[] | undefined);
      return { rows: res.rows };
    },
    async exec(script) {
      await pool.query(script);
    },
  };
  return {
    kind: 'postgres',
    prisma,
    sql,
    async session() {
      const client = await pool.connect();
      return {
        async query(text, values) {
          const res = await client.query(text, values as unknown[] | undefined);
          return { rows: res.rows };
        },
        async exec(script) {
          await client.query(script);
        },
        async release() {
          client.release();
        },
      };
    },
    jobQueueConnection: { connectionString: url },
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function openEmbedded(dataDir: string): Promise<Database> {
  const dir = path.resolve(dataDir, 'pgdata');
  mkdirSync(dir, { recursive: true });
  const lite = await PGlite.create(dir);
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(lite) });
  const sql: SqlExecutor = {
    async query(text, values) {
      const res = await lite.query(text, values as unknown[] | undefined);
      return { rows: res.rows as never[] };
    },
    async exec(script) {
      await lite.exec(script);
    },
  };
  return {
    kind: 'embedded',
    prisma,
    sql,
    // PGlite is one connection in this process; callers that need exclusivity (the migrator at
    // start-up) run before anything else uses it.
    async session() {
      return { ...sql, async release() {} };
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

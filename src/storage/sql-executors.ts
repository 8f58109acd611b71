import type { Transaction } from '@electric-sql/pglite';
import type { CheckedOutClient } from './checked-out-client.js';
import type { SqlExecutor, SqlSession } from './sql-executor.port.js';

/**
 * The raw-SQL executors of the data database and the key store (database.ts, keystore.ts), one
 * per driver shape, so each database only says which connection a statement goes through.
 */

/** Over pg (a pool, a checked-out client): a script is one simple query (several statements, no parameters). */
export function pgExecutor(run: (text: string, values?: unknown[]) => Promise<{ rows: unknown[] }>): SqlExecutor {
  return {
    async query<R>(text: string, values?: unknown[]) {
      return { rows: (await run(text, values)).rows as R[] };
    },
    async exec(script: string) {
      await run(script);
    },
  };
}

/** Over PGlite or one of its transactions (its own `exec` runs a script of several statements). */
export function pgliteExecutor(lite: Pick<Transaction, 'query' | 'exec'>): SqlExecutor {
  return {
    async query<R>(text: string, values?: unknown[]) {
      return { rows: (await lite.query<R>(text, values)).rows };
    },
    async exec(script: string) {
      await lite.exec(script);
    },
  };
}

/** An exclusive pg connection as a session: release returns it to the pool, or discards it when it failed. */
export function checkedOutSession(c: CheckedOutClient): SqlSession {
  return {
    ...pgExecutor((text, values) => c.run(text, values)),
    async release() {
      c.release();
    },
  };
}

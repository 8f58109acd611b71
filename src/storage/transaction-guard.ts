import { AsyncLocalStorage } from 'node:async_hooks';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { SqlExecutor, SqlSession } from './sql-executor.port.js';

/**
 * The embedded database is ONE connection: while an interactive transaction is open, a query on
 * the main client (or the raw executor, or pg-boss) from inside that transaction's callback waits
 * for the connection the transaction itself holds, until Prisma's timeout expires ("A query cannot
 * be executed on an expired transaction"). On Postgres the same code "works" but reads outside
 * the transaction's snapshot. This guard turns that mistake into an immediate, named error.
 *
 * It tracks the open transaction with AsyncLocalStorage, so only work started from inside the
 * transaction callback is refused; other requests querying meanwhile are untouched (on the
 * embedded database they simply wait their turn).
 */
export class QueryOutsideTransactionError extends Error {
  override readonly name = 'QueryOutsideTransactionError';
}

interface Scope {
  open: boolean;
}

/** Raw-query and transaction entry points of the Prisma client (model delegates are detected by shape). */
const GUARDED_METHODS = new Set(['$queryRaw', '$queryRawUnsafe', '$executeRaw', '$executeRawUnsafe', '$queryRawTyped', '$runCommandRaw']);

export class TransactionGuard {
  readonly #scope = new AsyncLocalStorage<Scope>();

  /** Throws when called from inside an open transaction's callback. */
  assertOutside(what: string): void {
    if (this.#scope.getStore()?.open) {
      throw new QueryOutsideTransactionError(
        `${what} was called inside an open transaction: use the transaction client (tx) passed to the callback, ` +
          'or move the call after the transaction commits (the embedded database has one connection; this query would wait for ever)',
      );
    }
  }

  /** The Prisma client with every query entry point checked, and `$transaction` opening a scope. */
  prisma(client: PrismaClient): PrismaClient {
    const wrapTransaction = (...args: unknown[]): unknown => {
      this.assertOutside('prisma.$transaction');
      const scope: Scope = { open: true };
      const close = (): void => {
        scope.open = false;
      };
      const run = (client.$transaction as (...a: unknown[]) => Promise<unknown>).bind(client);
      // Array form: the queries were built before; nothing of ours runs inside, but nested use is
      // still refused above.
      const result = this.#scope.run(scope, () => run(...args));
      return result.then(
        (value) => {
          close();
          return value;
        },
        (err: unknown) => {
          close();
          throw err;
        },
      );
    };
    return new Proxy(client, {
      get: (target, prop) => {
        if (prop === '$transaction') return wrapTransaction;
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof prop === 'string' && (GUARDED_METHODS.has(prop) || isModelDelegate(value))) this.assertOutside(`prisma.${prop}`);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  sql<T extends SqlExecutor>(executor: T, name = 'sql'): T {
    return {
      ...executor,
      query: (text: string, values?: unknown[]) => {
        this.assertOutside(`${name}.query`);
        return executor.query(text, values);
      },
      exec: (script: string) => {
        this.assertOutside(`${name}.exec`);
        return executor.exec(script);
      },
    } as T;
  }

  /** Database.transaction, opening a scope like prisma.$transaction (its own `tx` is not checked). */
  transaction<T, Tx>(run: (fn: (tx: Tx) => Promise<T>) => Promise<T>, fn: (tx: Tx) => Promise<T>): Promise<T> {
    this.assertOutside('db.transaction');
    const scope: Scope = { open: true };
    return this.#scope.run(scope, () => run(fn)).finally(() => {
      scope.open = false;
    });
  }

  session(session: SqlSession): SqlSession {
    return { ...this.sql(session, 'session'), release: () => session.release() };
  }

  executeSql<F extends (text: string, values: unknown[]) => Promise<{ rows: unknown[] }>>(fn: F): F {
    return ((text: string, values: unknown[]) => {
      this.assertOutside('job queue (pg-boss) query');
      return fn(text, values);
    }) as F;
  }
}

function isModelDelegate(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { findFirst?: unknown }).findFirst === 'function';
}

/**
 * On under vitest (both databases, so the Postgres CI run catches what would hang the embedded
 * one), off in production: AsyncLocalStorage costs a little on every promise on Node 20.
 */
export function transactionGuardEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.VITEST === 'true';
}

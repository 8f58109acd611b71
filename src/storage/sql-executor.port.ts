/** Minimal raw-SQL access shared by the migrator, pg-boss and the few queries Prisma cannot express. */
export interface SqlExecutor {
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
  /** Runs a script of several statements (no parameters). */
  exec(script: string): Promise<void>;
}

/** A connection held exclusively (advisory locks and explicit transactions need one). */
export interface SqlSession extends SqlExecutor {
  release(): Promise<void>;
}

/**
 * The statements of one open transaction (Database.transaction), straight through the driver:
 * pg on Postgres (Buffers travel as binary parameters), PGlite's own API on the embedded
 * database. Committed when the callback resolves, rolled back when it throws.
 */
export type SqlTransaction = Pick<SqlExecutor, 'query'>;

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

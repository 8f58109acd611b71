import type pg from 'pg';

/**
 * A client checked out of a pg pool for a session or a transaction.
 *
 * A checked-out client has no pool listener: without ours, the server ending the connection
 * (restart, pg_terminate_backend, network) is an unhandled 'error' that kills the process. A
 * client whose connection failed, or a statement sent through `run` failed, is discarded on
 * release rather than returned to the pool (it may be dead, or still hold a session-level
 * advisory lock or an open transaction).
 */
export interface CheckedOutClient {
  /** The client itself: a failing statement sent here does not mark it broken. */
  readonly client: pg.PoolClient;
  /** Sends a statement; a failure marks the client broken (discarded on release). */
  run(text: string, values?: unknown[]): Promise<pg.QueryResult>;
  /** Returns the client to the pool, or discards it when broken. Safe to call twice. */
  release(): void;
}

export async function checkOut(pool: pg.Pool): Promise<CheckedOutClient> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken ??= err;
  };
  client.on('error', onError);
  let released = false;
  return {
    client,
    async run(text, values) {
      try {
        return await client.query(text, values);
      } catch (err) {
        broken ??= err instanceof Error ? err : new Error(String(err));
        throw err;
      }
    },
    release() {
      if (released) return;
      released = true;
      // The pool's own idle listener takes over from ours (pg-pool adds it in release()).
      client.release(broken);
      client.removeListener('error', onError);
    },
  };
}

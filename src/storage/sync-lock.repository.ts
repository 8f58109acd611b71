import type { Database } from './database.js';

/** Namespace of sync locks (first key of the two-key advisory lock), so other locks never collide. */
const SYNC_LOCK_NAMESPACE = 431_907_223;

/** Mailboxes locked by this process, per database: shared by every repository instance (sync and purge). */
const localLocks = new WeakMap<object, Set<string>>();

export interface HeldLock {
  release(): Promise<void>;
}

/**
 * One sync per mailbox across every worker process: a session-level Postgres advisory lock on a
 * dedicated connection, held for the whole run (pg-boss's singletonKey only dedupes *queued*
 * jobs; a retried job and a fresh one can still run at once). A process-local set covers the
 * embedded database, where every caller shares one session and advisory locks are re-entrant;
 * it is shared by every instance on the same database, so the purge's drain sees the sync's lock.
 *
 * The lock's connection can drop mid-sync (Postgres restart, `pg_terminate_backend`): the session
 * handles the error (no crash), the lock is gone server-side, and release() never throws. A sync
 * whose own queries failed too is retried by the job queue; one that carries on unlocked is safe
 * because writes are idempotent (one row per mailbox and provider message id).
 */
export class SyncLockRepository {
  readonly #local: Set<string>;

  constructor(private readonly db: Pick<Database, 'session'>) {
    let set = localLocks.get(db);
    if (!set) {
      set = new Set();
      localLocks.set(db, set);
    }
    this.#local = set;
  }

  async tryAcquire(mailboxId: string): Promise<HeldLock | null> {
    if (this.#local.has(mailboxId)) return null;
    this.#local.add(mailboxId);
    let session: Awaited<ReturnType<Database['session']>> | undefined;
    try {
      session = await this.db.session();
      const res = await session.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::int4, hashtext($2)) AS locked', [SYNC_LOCK_NAMESPACE, mailboxId]);
      if (res.rows[0]?.locked !== true) {
        await session.release();
        this.#local.delete(mailboxId);
        return null;
      }
    } catch (err) {
      await session?.release().catch(() => undefined);
      this.#local.delete(mailboxId);
      throw err;
    }
    const held = session;
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        try {
          await held.query('SELECT pg_advisory_unlock($1::int4, hashtext($2))', [SYNC_LOCK_NAMESPACE, mailboxId]);
        } catch {
          // The connection is gone (server restart, terminated backend): the lock went with it.
          // A failed unlock on a live connection is handled by release(), which then discards
          // the connection instead of pooling it with the lock still held.
        } finally {
          await held.release().catch(() => undefined);
          this.#local.delete(mailboxId);
        }
      },
    };
  }
}

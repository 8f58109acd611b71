import { describe, expect, it } from 'vitest';
import { SyncLockRepository } from './sync-lock.repository.js';

/** The embedded database's session: one shared connection where advisory locks are re-entrant. */
function reentrantDb() {
  const held = new Map<string, number>();
  const session = {
    async query(text: string, values?: unknown[]) {
      const key = String(values?.[1]);
      if (text.includes('pg_try_advisory_lock')) {
        held.set(key, (held.get(key) ?? 0) + 1);
        return { rows: [{ locked: true }] as never[] };
      }
      held.set(key, (held.get(key) ?? 1) - 1);
      return { rows: [] as never[] };
    },
    async exec() {},
    async release() {},
  };
  return { db: { session: async () => session }, held };
}

describe('SyncLockRepository', () => {
  it('excludes a second holder in the same process even where the database lock is re-entrant', async () => {
    const { db } = reentrantDb();
    const sync = new SyncLockRepository(db);
    const purge = new SyncLockRepository(db); // another room's instance on the same database
    const a = await sync.tryAcquire('mbx_1');
    expect(a).not.toBeNull();
    expect(await purge.tryAcquire('mbx_1')).toBeNull();
    expect(await sync.tryAcquire('mbx_1')).toBeNull();
    expect(await purge.tryAcquire('mbx_2')).not.toBeNull();
    await a!.release();
    const b = await purge.tryAcquire('mbx_1');
    expect(b).not.toBeNull();
    await b!.release();
  });

  it('a lock refused by Postgres (another process holds it) is not kept locally', async () => {
    let otherProcessHolds = true;
    const session = { query: async () => ({ rows: [{ locked: !otherProcessHolds }] as never[] }), exec: async () => {}, release: async () => {} };
    const locks = new SyncLockRepository({ session: async () => session });
    expect(await locks.tryAcquire('mbx_1')).toBeNull();
    otherProcessHolds = false;
    expect(await locks.tryAcquire('mbx_1')).not.toBeNull();
  });
});

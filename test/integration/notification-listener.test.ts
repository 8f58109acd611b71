// Wake-up notifications on Postgres (NotificationListener, WakeChannel): a process hears the
// NOTIFY of every other process, but not its own — it woke itself in-process already, and hearing
// its own echo cost a second job fetch or webhook claim cycle per job and per committed event.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { NotificationListener } from '../../src/storage/notification-listener.js';
import { WakeChannel } from '../../src/storage/wake-listener.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { embeddedRun } from '../helpers/requirements.js';

const logger = createLogger({ level: 'silent' });
const CHANNEL = 'mbc_test_wake';
const APP = 'mbc-test-listener';

describe.skipIf(embeddedRun('NOTIFY between processes'))('wake-up notifications (Postgres)', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  const stops: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
  });
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  /** Both listeners' connections have issued their LISTEN. */
  async function listening(n: number): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const r = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() AND query ILIKE 'LISTEN %'`, [APP]);
      if (r.rows[0]!.n >= n) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('listeners did not connect');
  }

  function listener(heard: string[]): NotificationListener {
    const l = new NotificationListener(db.url, CHANNEL, logger, (payload) => heard.push(payload), () => undefined, APP);
    l.start();
    stops.push(() => l.stop());
    return l;
  }

  /** Long enough for a NOTIFY to arrive on a local server, many times over. */
  const settle = () => new Promise((r) => setTimeout(r, 400));

  it("a listener's own notification reaches the other processes, not itself; one sent any other way reaches both", async () => {
    const heardA: string[] = [];
    const heardB: string[] = [];
    const a = listener(heardA);
    listener(heardB);
    await listening(2);

    expect(await a.notify('from-a')).toBe(true);
    await settle();
    expect(heardB).toEqual(['from-a']);
    expect(heardA).toEqual([]);

    // A process without a listener (an API-only `serve`, the CLI) sends through its pool: heard by all.
    await pool.query('SELECT pg_notify($1, $2)', [CHANNEL, 'from-pool']);
    await settle();
    expect(heardB).toEqual(['from-a', 'from-pool']);
    expect(heardA).toEqual(['from-pool']);
  });

  it('notify answers false while the connection is down or when the send fails on it, so the caller sends it another way', async () => {
    const idle = new NotificationListener(db.url, CHANNEL, logger, () => undefined, () => undefined, APP);
    stops.push(() => idle.stop());
    expect(await idle.notify('x')).toBe(false); // never started

    const heard: string[] = [];
    const l = listener([]);
    listener(heard);
    await listening(2);
    // A payload Postgres refuses (NOTIFY payloads are limited to 8000 bytes): the send fails on
    // the listener's connection, and the caller is told so instead of an exception.
    expect(await l.notify('x'.repeat(9000))).toBe(false);
    expect(await l.notify('after')).toBe(true);
    await settle();
    expect(heard).toEqual(['after']);
  });

  it('WakeChannel: a process is not woken by its own notify(), every other listening process is', async () => {
    const channel = () => {
      const c = new WakeChannel({ connectionString: db.url, channel: CHANNEL, query: (text, values) => pool.query(text, values), logger, applicationName: APP });
      stops.push(() => c.stop());
      return c;
    };
    const wakes = { a: 0, b: 0 };
    const a = channel();
    const b = channel();
    a.listen(() => wakes.a++);
    b.listen(() => wakes.b++);
    await listening(2);

    a.notify();
    await settle();
    expect(wakes).toEqual({ a: 0, b: 1 });
    b.notify();
    b.notify(); // one NOTIFY per turn of the event loop
    await settle();
    expect(wakes).toEqual({ a: 1, b: 1 });
  });
});

// The job queue on a real database (Postgres when DATABASE_URL is set, else the embedded PGlite):
// per-mailbox coalescing of sync requests, push before polls, provider backoff not bypassed by new
// notifications, purge cancellation, wake-on-enqueue instead of polling, heartbeats for long jobs,
// and (Postgres) cross-process wake-ups through LISTEN/NOTIFY.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobOutcome } from '../../src/jobs/job-map.js';
import { createJobQueue, deadWorkerRecoverySeconds, DEFAULT_JOB_TIMINGS, type JobQueue } from '../../src/jobs/job-queue.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { DEFAULT_SEND_LEASE_MS, sendRecoveryBoundMs } from '../../src/send/outbound-sender.service.js';
import { openDatabase, type Database } from '../../src/storage/database.js';
import { requestMailboxSync } from '../../src/sync/sync-request.js';
import { seedFromPgliteTemplate } from '../helpers/pglite-template.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { postgresTemplateName } from '../helpers/postgres-template.js';
import { embeddedRun } from '../helpers/requirements.js';
import { jobsSettled } from '../helpers/settled.js';

const usesPostgres = Boolean(process.env.DATABASE_URL);
/** Far longer than any wait below: a job that starts in time was woken, not polled. */
const SLOW_POLL_SECONDS = 60;

let pgdb: TestDatabase | undefined;
let dataDir: string | undefined;
let db: Database;
const queues: JobQueue[] = [];
const logger = createLogger({ level: 'silent' });

interface Run {
  mailboxId: string;
  reason: string;
  start: number;
  end?: number;
}

async function newQueue(timings: { expireSeconds?: number; expireCheckSeconds?: number; pollingIntervalSeconds?: number } = {}): Promise<JobQueue> {
  const q = await createJobQueue({
    connection: db.jobQueueConnection,
    logger,
    metrics: createMetrics(),
    timings: { pollingIntervalSeconds: SLOW_POLL_SECONDS, ...timings },
  });
  queues.push(q);
  return q;
}

function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function queuedFor(mailboxId: string): Promise<number> {
  const res = await db.session();
  try {
    const r = await res.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'sync.mailbox' AND singleton_key = $1 AND state < 'active'`, [mailboxId]);
    return r.rows[0]!.n;
  } finally {
    await res.release();
  }
}

/** The job queue's wake-up connection is connected and has issued its LISTEN (its last statement). */
async function listening(): Promise<boolean> {
  const s = await db.session();
  try {
    const r = await s.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'mbc-job-listener' AND datname = current_database() AND query ILIKE 'LISTEN %'`,
      [],
    );
    return r.rows[0]!.n >= 1;
  } finally {
    await s.release();
  }
}

beforeAll(async () => {
  // A copy of the suite's migrated template (pg-boss's schema included), not a fresh database.
  if (usesPostgres) pgdb = await createTestDatabase({ template: postgresTemplateName() });
  else {
    dataDir = mkdtempSync(path.join(tmpdir(), 'mbc-jobq-'));
    seedFromPgliteTemplate(dataDir);
  }
  db = await openDatabase({ databaseUrl: pgdb?.url, dataDir: dataDir ?? '' });
});

afterEach(async () => {
  for (const q of queues.splice(0)) await q.stop(2_000);
  const s = await db.session();
  try {
    await s.query(`DELETE FROM pgboss.job`, []);
  } finally {
    await s.release();
  }
});

afterAll(async () => {
  await db?.close();
  await pgdb?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('sync.mailbox coalescing', () => {
  it('1,000 notifications for a mailbox whose sync is running queue one sync; other mailboxes sync meanwhile, without waiting for a poll', async () => {
    const q = await newQueue();
    const runs: Run[] = [];
    const held = gate();
    q.register(
      'sync.mailbox',
      async (p) => {
        const run: Run = { mailboxId: p.mailboxId, reason: p.reason, start: Date.now() };
        runs.push(run);
        if (p.mailboxId === 'busy' && runs.filter((r) => r.mailboxId === 'busy').length === 1) await held.wait;
        run.end = Date.now();
        return { status: 'done' };
      },
      { concurrency: 2 },
    );
    await q.startWorkers();

    await requestMailboxSync(q, 'busy', 'push');
    await until('the busy mailbox sync started', () => runs.length === 1);
    const requestedAt = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      await requestMailboxSync(q, 'busy', 'push');
      if (i % 100 === 50) {
        const other = `other-${i}`;
        requestedAt.set(other, Date.now());
        await requestMailboxSync(q, other, 'push');
      }
    }
    // Every other mailbox synced while the busy one was still running (its sync is held).
    await until('other mailboxes synced', () => [...requestedAt.keys()].every((id) => runs.some((r) => r.mailboxId === id && r.end !== undefined)));
    expect(runs.filter((r) => r.mailboxId === 'busy')).toHaveLength(1);
    expect(await queuedFor('busy')).toBe(1);
    for (const [id, at] of requestedAt) {
      const run = runs.find((r) => r.mailboxId === id)!;
      // Woken by the enqueue: far sooner than the 60 s polling interval.
      expect(run.start - at).toBeLessThan(10_000);
    }

    held.open();
    await until('the coalesced sync ran', () => runs.filter((r) => r.mailboxId === 'busy' && r.end !== undefined).length === 2);
    // Nothing else was left queued for it: 1,001 notifications, 2 syncs.
    expect(await queuedFor('busy')).toBe(0);
    await jobsSettled(db);
    expect(runs.filter((r) => r.mailboxId === 'busy')).toHaveLength(2);
    expect(runs).toHaveLength(2 + requestedAt.size);
  }, 120_000);

  it('a provider backoff defers the mailbox: notifications arriving during and after it do not hit the provider early', async () => {
    const q = await newQueue({ pollingIntervalSeconds: 0.2 });
    const runs: Run[] = [];
    const held = gate();
    const BACKOFF_MS = 3_000;
    q.register('sync.mailbox', async (p): Promise<JobOutcome> => {
      const run: Run = { mailboxId: p.mailboxId, reason: p.reason, start: Date.now() };
      runs.push(run);
      if (runs.length === 1) {
        await held.wait;
        run.end = Date.now();
        return { status: 'retry', reason: 'provider rate limit', afterMs: BACKOFF_MS };
      }
      run.end = Date.now();
      return { status: 'done' };
    }, { concurrency: 2 });
    await q.startWorkers();

    await requestMailboxSync(q, 'limited', 'push');
    await until('first sync running', () => runs.length === 1);
    for (let i = 0; i < 20; i++) await requestMailboxSync(q, 'limited', 'push'); // queued while it runs
    held.open();
    await until('first sync finished', () => runs[0]!.end !== undefined);
    for (let i = 0; i < 20; i++) await requestMailboxSync(q, 'limited', 'push'); // during the backoff
    await until('the retry ran', () => runs.length >= 2 && runs[1]!.end !== undefined, 30_000);
    expect(runs[1]!.start - runs[0]!.end!).toBeGreaterThanOrEqual(BACKOFF_MS - 100);
    // Nothing of the mailbox is left, not even deferred: the notifications were all covered.
    await jobsSettled(db, { key: 'limited', deferred: true });
    expect(runs).toHaveLength(2);
  }, 60_000);

  it('cancelByKey (purge) cancels the mailbox’s waiting sync', async () => {
    const q = await newQueue({ pollingIntervalSeconds: 0.2 });
    const runs: Run[] = [];
    const held = gate();
    q.register('sync.mailbox', async (p) => {
      runs.push({ mailboxId: p.mailboxId, reason: p.reason, start: Date.now() });
      if (runs.length === 1) await held.wait;
      return { status: 'done' };
    });
    await q.startWorkers();
    await requestMailboxSync(q, 'purged', 'push');
    await until('sync running', () => runs.length === 1);
    await requestMailboxSync(q, 'purged', 'poll');
    expect(await q.cancelByKey('sync.mailbox', 'purged')).toBe(1);
    held.open();
    await jobsSettled(db, { key: 'purged', deferred: true });
    expect(runs).toHaveLength(1);
  });

  it('push syncs run before queued polls, and a push raises the priority of a poll already queued for its mailbox', async () => {
    const q = await newQueue({ pollingIntervalSeconds: 0.2 });
    const order: string[] = [];
    const held = gate();
    q.register('sync.mailbox', async (p) => {
      order.push(`${p.mailboxId}`);
      if (order.length === 1) await held.wait;
      return { status: 'done' };
    }, { concurrency: 1 });
    await q.startWorkers();
    await requestMailboxSync(q, 'first', 'push');
    await until('first running', () => order.length === 1);
    for (let i = 0; i < 20; i++) await requestMailboxSync(q, `poll-${i}`, 'poll');
    await requestMailboxSync(q, 'poll-7', 'push'); // already queued by the poll: raised, not duplicated
    await requestMailboxSync(q, 'pushed', 'push');
    held.open();
    await until('all ran', () => order.length === 22);
    expect(order.slice(1, 3).sort()).toEqual(['poll-7', 'pushed']);
    expect(order.filter((m) => m === 'poll-7')).toHaveLength(1);
  });
});

describe('expiry and heartbeats', () => {
  it('an idle process polls every queue with one statement per interval, and that poll still finds a job nobody announced', async () => {
    // Count the statements the queue sends (pg-boss takes any executor; on Postgres a pool of our own).
    const conn = db.jobQueueConnection;
    const pool = 'db' in conn ? undefined : new pg.Pool({ connectionString: conn.connectionString, max: 4 });
    const inner = 'db' in conn ? conn.db : { executeSql: (text: string, values: unknown[]) => pool!.query(text, values) };
    const statements: string[] = [];
    const counted = { db: { executeSql: (text: string, values: unknown[]) => (statements.push(text), inner.executeSql(text, values)) } };
    try {
      const q = await createJobQueue({ connection: counted, logger, metrics: createMetrics(), timings: { pollingIntervalSeconds: 0.1 } });
      queues.push(q);
      const ran: string[] = [];
      const names = ['sync.poll', 'sync.renew-watches', 'webhooks.sweep', 'retention.run', 'lifecycle.reauth-expiry'] as const;
      for (const name of names) q.register(name, async () => (ran.push(name), { status: 'done' }));
      await q.startWorkers();
      // Every loop's first fetch (at start) is done, and a poll came after them.
      const isFetch = (t: string) => t.includes('UPDATE pgboss.job j SET');
      await until('the first fetches', () => statements.filter(isFetch).length >= names.length);
      await until('a poll after them', () => statements.slice(statements.findLastIndex(isFetch)).some((t) => t.includes('SELECT DISTINCT name')));
      statements.length = 0;
      await new Promise((r) => setTimeout(r, 1_500));
      const fetches = statements.filter(isFetch).length;
      const polls = statements.filter((t) => t.includes('SELECT DISTINCT name FROM pgboss.job')).length;
      // 15 intervals: about one poll each (timers slip under load), and (almost) no fetch — it was one fetch per name per interval (75).
      expect(polls).toBeGreaterThanOrEqual(5);
      expect(polls).toBeLessThanOrEqual(16);
      expect(fetches).toBeLessThanOrEqual(2); // on the embedded database a slow first round can spill into the window
      // Queued by another process that sends no NOTIFY (no LISTEN connection here): only the poll can find it.
      const other = await createJobQueue({ connection: { db: inner }, logger, metrics: createMetrics(), timings: { pollingIntervalSeconds: SLOW_POLL_SECONDS } });
      queues.push(other);
      await other.enqueue('webhooks.sweep', {});
      await until('the poll found the job', () => ran.includes('webhooks.sweep'), 10_000);
      expect(ran).toEqual(['webhooks.sweep']);
    } finally {
      for (const q of queues.splice(0)) await q.stop(2_000);
      await pool?.end();
    }
  }, 60_000);

  it('a job running far longer than the expiry is not expired while its worker lives (heartbeat)', async () => {
    const q = await newQueue({ expireSeconds: 3, expireCheckSeconds: 1, pollingIntervalSeconds: 0.2 });
    let runs = 0;
    let finished = false;
    q.register('sync.mailbox', async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 8_000));
      finished = true;
      return { status: 'done' };
    });
    await q.startWorkers();
    await requestMailboxSync(q, 'long', 'push');
    await until('long job finished', () => finished, 20_000);
    // Completed, and no retry waiting (an expired job would be retried after its backoff).
    await jobsSettled(db, { key: 'long', deferred: true });
    expect(runs).toBe(1);
  }, 30_000);

  it('the default timings recover a dead worker’s job and send within 2 minutes', () => {
    // 45 s without a heartbeat + ≤10 s to the next expiry check + ≤10 s first retry delay + 2 s poll.
    expect(deadWorkerRecoverySeconds(DEFAULT_JOB_TIMINGS)).toBe(67);
    expect(deadWorkerRecoverySeconds()).toBeLessThanOrEqual(120);
    // A `sending` record: taken over 90 s after its last heartbeat at the latest, or when its job
    // is retried, whichever is later (the retry waits for the lease).
    expect(DEFAULT_SEND_LEASE_MS).toBe(90_000);
    expect(sendRecoveryBoundMs()).toBeLessThanOrEqual(120_000);
  });
});

describe.skipIf(embeddedRun('job queue across processes'))('across processes (Postgres LISTEN/NOTIFY)', () => {
  it('a job queued by another process starts at once, not at the next poll', async () => {
    const producer = await newQueue();
    const consumer = await newQueue();
    let startedAt = 0;
    consumer.register('sync.mailbox', async () => {
      startedAt = Date.now();
      return { status: 'done' };
    });
    await consumer.startWorkers();
    await until('the LISTEN connection is up', listening);
    // The consumer's first fetch found nothing; it now sleeps for SLOW_POLL_SECONDS unless woken.
    const at = Date.now();
    await requestMailboxSync(producer, 'remote', 'push');
    await until('consumer ran the job', () => startedAt > 0, 15_000);
    expect(startedAt - at).toBeLessThan(10_000);
  }, 30_000);

  it('the wake-up connection comes back after the server drops it, and wakes workers again', async () => {
    const producer = await newQueue();
    const consumer = await newQueue();
    const started: number[] = [];
    consumer.register('sync.mailbox', async () => {
      started.push(Date.now());
      return { status: 'done' };
    });
    await consumer.startWorkers();
    await until('the LISTEN connection is up', listening);
    const s = await db.session();
    try {
      const killed = await s.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = 'mbc-job-listener' AND datname = current_database()`,
        [],
      );
      expect(killed.rows[0]!.n).toBeGreaterThanOrEqual(1);
      await until('listener reconnected', async () => {
        const r = await s.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'mbc-job-listener' AND datname = current_database()`, []);
        return r.rows[0]!.n >= 1;
      });
    } finally {
      await s.release();
    }
    await until('LISTEN issued after the reconnect', listening);
    const at = Date.now();
    await requestMailboxSync(producer, 'after-drop', 'push');
    await until('consumer ran the job', () => started.length === 1, 15_000);
    expect(started[0]! - at).toBeLessThan(10_000);
  }, 30_000);
});

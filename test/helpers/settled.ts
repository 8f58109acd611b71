// Signals that the service has nothing left to do, for tests that assert "nothing more happens"
// (no duplicate, no sync, no delivery): wait for the work to run out instead of sleeping a fixed
// time and hoping it was long enough. They read what the service itself reads — the job queue's
// table and the webhook tables — so they work with startTestService() and startTestCore(), on
// Postgres and on the embedded database.
//
//   await jobsSettled(svc.core, { names: ['sync.mailbox'] });   // every sync that was due has run
//   expect(await stored(mailboxId)).toHaveLength(6);             // and stored nothing twice
import type { Core } from '../../src/bootstrap/core.js';
import type { JobName } from '../../src/jobs/job-map.js';
import { waitUntil } from './wait.js';

type Db = Pick<Core, 'prisma'>;

export interface JobFilter {
  names?: JobName[];
  /** Only jobs with this singleton key (e.g. a mailbox id). */
  key?: string;
  /** Count jobs deferred to a later time (a backoff, a retry) too. */
  deferred?: boolean;
}

/**
 * Jobs that are running, or queued and due now (pg-boss states created/retry/active with
 * start_after passed), of the named queues (all when none is named) and of one singleton key
 * when given. Jobs deferred to a later time (backoff, retry, cron) count only with `deferred`.
 */
export async function busyJobs(core: Db, opts: JobFilter = {}): Promise<number> {
  const rows = await core.prisma.$queryRawUnsafe<Array<{ n: number }>>(
    `SELECT count(*)::int AS n FROM pgboss.job
      WHERE state IN ('created', 'retry', 'active') AND ($3::boolean OR start_after <= now())
        AND ($1::text[] IS NULL OR name = ANY($1::text[]))
        AND ($2::text IS NULL OR singleton_key = $2::text)`,
    opts.names ?? null,
    opts.key ?? null,
    opts.deferred ?? false,
  );
  return rows[0]?.n ?? 0;
}

/**
 * Waits until the job queue is drained: no job of the named queues (all when none is named) is
 * running or due. A handler's follow-up jobs are queued before it completes, so once this holds
 * the work that was started has finished, follow-ups included.
 */
export async function jobsSettled(core: Db, opts: JobFilter & { timeoutMs?: number } = {}): Promise<void> {
  const what = `the job queue to drain${opts.names ? ` (${opts.names.join(', ')})` : ''}${opts.key ? ` for ${opts.key}` : ''}`;
  await waitUntil(what, async () => (await busyJobs(core, opts)) === 0, { timeoutMs: opts.timeoutMs ?? 20_000 });
}

/**
 * Webhook work the pump still has: committed events not fanned out yet, and deliveries being
 * attempted or due (pending, or failed with its retry time passed). Retries scheduled for later
 * do not count.
 */
export async function webhookWorkLeft(core: Db, opts: { tenantId?: string } = {}): Promise<number> {
  const tenant = opts.tenantId ? { tenantId: opts.tenantId } : {};
  const now = new Date();
  const [undispatched, due] = await Promise.all([
    core.prisma.outboxEvent.count({ where: { ...tenant, dispatchedAt: null } }),
    core.prisma.webhookDelivery.count({
      where: { ...tenant, OR: [{ status: 'delivering' }, { status: { in: ['pending', 'failed'] }, OR: [{ nextAttemptAt: null }, { nextAttemptAt: { lte: now } }] }] },
    }),
  ]);
  return undispatched + due;
}

/** Waits until the webhook pump is idle: every committed event fanned out, no delivery running or due. */
export async function webhooksSettled(core: Db, opts: { tenantId?: string; timeoutMs?: number } = {}): Promise<void> {
  await waitUntil('the webhook pump to be idle', async () => (await webhookWorkLeft(core, opts)) === 0, { timeoutMs: opts.timeoutMs ?? 15_000 });
}

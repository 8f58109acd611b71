import PgBoss from 'pg-boss';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { NotificationListener, notifyOtherProcesses } from '../storage/notification-listener.js';
import { JOB_KINDS, type EnqueueOptions, type JobHandler, type JobMap, type JobName, type JobOutcome } from './job-map.js';
import { Backoff } from '../retry/backoff.js';

/** 1 s, 2 s … 30 s between failed fetches of one queue; no jitter (one loop per queue per process). */
const FETCH_RETRY_BACKOFF = new Backoff({ baseMs: 500, capMs: 30_000, jitter: 'none' });

type Boss = PgBoss;

export interface JobQueue {
  /**
   * Queue a job. Returns its id, or null when a keyed job of a coalescing queue (`stately`, e.g.
   * `sync.mailbox`) is already waiting: that job covers this request (its priority is raised to
   * this one's unless it is deferred by a backoff).
   */
  enqueue<N extends JobName>(name: N, payload: JobMap[N], opts?: EnqueueOptions): Promise<string | null>;
  /** Register the handler for a job name (once per process). */
  register<N extends JobName>(name: N, handler: JobHandler<N>, opts?: { concurrency?: number }): void;
  schedule(name: JobName, cron: string): Promise<void>;
  /** Cancel queued jobs of `name` whose singletonKey matches (e.g. a purged mailbox's syncs). */
  cancelByKey(name: JobName, singletonKey: string): Promise<number>;
  /** Start processing registered handlers. */
  startWorkers(): Promise<void>;
  /** Fetch now instead of at the next poll (work queued by something that bypassed `enqueue`). */
  wake(name: JobName): void;
  ping(): Promise<boolean>;
  /**
   * Queues whose worker loop has not come round for `olderThanMs` (healthy loops do at least every
   * 30 s, even while the database is down): a fetch that never returned. Empty before startWorkers.
   */
  stalledQueues(olderThanMs: number): JobName[];
  /** Finish active jobs (up to timeoutMs), then stop. Unfinished jobs go back to the queue. */
  stop(timeoutMs?: number): Promise<void>;
}

export const ALL_JOB_NAMES = Object.keys(JOB_KINDS) as JobName[];

const DEFAULT_RETRY: Required<Pick<EnqueueOptions, 'retryLimit' | 'retryDelaySeconds' | 'retryBackoff'>> = {
  retryLimit: 8,
  retryDelaySeconds: 5,
  retryBackoff: true,
};

/** Timings of dead-worker recovery. Production uses the defaults; tests shorten them. */
export interface JobTimings {
  /**
   * A running job not heard from for this long is expired by the queue (its worker died) and
   * retried. Live workers extend it every `expireSeconds / 3` (heartbeat), so a long sync or a
   * large send never expires while its process is alive.
   */
  expireSeconds: number;
  /** How often each worker process runs pg-boss's expiry (pg-boss's own maintenance runs every 2+ min). */
  expireCheckSeconds: number;
  /** Poll for due jobs this often when nothing woke the worker (delayed jobs, retries, cron). */
  pollingIntervalSeconds: number;
}

export const DEFAULT_JOB_TIMINGS: JobTimings = { expireSeconds: 45, expireCheckSeconds: 10, pollingIntervalSeconds: 2 };

/**
 * Worst case from a worker's death to another worker starting its job: the job is at most
 * `expireSeconds` past its last heartbeat, the expiry check runs within `expireCheckSeconds`, the
 * first retry waits at most 2 × retryDelay (pg-boss's jittered backoff: delay × 2^1 / 2 × (1 + random)),
 * and the next poll picks it up.
 */
export function deadWorkerRecoverySeconds(t: JobTimings = DEFAULT_JOB_TIMINGS, retryDelaySeconds = DEFAULT_RETRY.retryDelaySeconds): number {
  return t.expireSeconds + t.expireCheckSeconds + 2 * retryDelaySeconds + t.pollingIntervalSeconds;
}

/** Pauses between tries to record a job's end while the database is unreachable (≈ 15 s in all). */
const RECORD_RETRY_MS = [500, 1_000, 2_000, 4_000, 8_000];

/**
 * What the queue keeps of a finished job's outcome (pg-boss `output`, plaintext, 7 days): its
 * status, the handler's fixed reason text and the numeric or code-like fields of its detail
 * (counts, a mode) — the ops console's sync history reads it. Any other value is dropped, so a
 * handler cannot put content there by accident.
 */
export function outcomeOutput(outcome: JobOutcome): Record<string, unknown> {
  const out: Record<string, unknown> = { outcome: outcome.status };
  if (outcome.status !== 'done') out.reason = outcome.reason.slice(0, 200);
  else if (outcome.detail) {
    const detail: Record<string, number | string> = {};
    for (const [k, v] of Object.entries(outcome.detail)) {
      if (typeof v === 'number' && Number.isFinite(v)) detail[k] = v;
      else if (typeof v === 'string' && /^[a-z][a-z0-9_.-]{0,31}$/.test(v)) detail[k] = v;
    }
    out.detail = detail;
  }
  return out;
}

export class RetryableJobError extends Error {
  override readonly name = 'RetryableJobError';
}

interface FetchedJob {
  id: string;
  name: string;
  data: unknown;
  retryCount: number;
  singletonKey: string | null;
  priority: number;
}

/** NOTIFY channel that tells every worker process a job was queued (payload: the queue name). */
const CHANNEL = 'mbc_jobs';

/**
 * Fetch for coalescing (stately) queues: skips keys that already have a running job, so one busy
 * mailbox never holds the queue head (pg-boss's own fetch would try to start the mailbox's queued
 * job, hit the one-active-per-key index and fetch nothing for anyone), and takes one job per key.
 */
const FETCH_STATELY = `
  WITH next AS (
    SELECT j.id, j.singleton_key, j.priority, j.created_on
      FROM pgboss.job j
     WHERE j.name = $1 AND j.state < 'active' AND j.start_after < now()
       AND NOT EXISTS (
         SELECT 1 FROM pgboss.job a
          WHERE a.name = $1 AND a.state = 'active' AND COALESCE(a.singleton_key, '') = COALESCE(j.singleton_key, ''))
     ORDER BY j.priority DESC, j.created_on, j.id
     LIMIT $2
     FOR UPDATE SKIP LOCKED
  ), one_per_key AS (
    SELECT id, row_number() OVER (PARTITION BY COALESCE(singleton_key, '') ORDER BY priority DESC, created_on, id) AS rn FROM next
  )
  UPDATE pgboss.job j SET
    state = 'active',
    started_on = now(),
    retry_count = CASE WHEN j.started_on IS NOT NULL THEN j.retry_count + 1 ELSE j.retry_count END
  FROM one_per_key o
  WHERE j.name = $1 AND j.id = o.id AND o.rn = 1
  RETURNING j.id, j.name, j.data, j.retry_count AS "retryCount", j.singleton_key AS "singletonKey", j.priority`;

const FETCH_STANDARD = `
  WITH next AS (
    SELECT id FROM pgboss.job
     WHERE name = $1 AND state < 'active' AND start_after < now()
     ORDER BY priority DESC, created_on, id
     LIMIT $2
     FOR UPDATE SKIP LOCKED
  )
  UPDATE pgboss.job j SET
    state = 'active',
    started_on = now(),
    retry_count = CASE WHEN j.started_on IS NOT NULL THEN j.retry_count + 1 ELSE j.retry_count END
  FROM next
  WHERE j.name = $1 AND j.id = next.id
  RETURNING j.id, j.name, j.data, j.retry_count AS "retryCount", j.singleton_key AS "singletonKey", j.priority`;

/** Heartbeat: a live worker moves its running jobs' expiry forward. */
const HEARTBEAT = `
  UPDATE pgboss.job SET expire_in = (now() - started_on) + make_interval(secs => $3::double precision)
   WHERE name = $1 AND id = ANY($2::uuid[]) AND state = 'active'`;

/** A queued job of a coalescing queue covers a new request: raise it to the request's priority, unless a backoff deferred it. */
const RAISE_PRIORITY = `
  UPDATE pgboss.job SET priority = $3
   WHERE name = $1 AND singleton_key = $2 AND state < 'active' AND priority < $3 AND start_after <= now()`;

/** A provider asked to wait: the key's queued job (if any) waits too, so a new notification cannot bypass the backoff. */
const DEFER_QUEUED = `
  UPDATE pgboss.job SET start_after = GREATEST(start_after, $3::timestamptz)
   WHERE name = $1 AND singleton_key = $2 AND state < 'active'`;

/**
 * The polling floor, one statement for every queue: which of the waiting loops' queues have a due
 * job (delayed, retried, created by cron or by a process whose NOTIFY did not arrive). Only those
 * loops fetch; an idle process polls once per interval instead of once per queue name.
 */
const DUE_QUEUES = `
  SELECT DISTINCT name FROM pgboss.job WHERE name = ANY($1::text[]) AND state < 'active' AND start_after < now()`;

type Executor = { executeSql(text: string, values: unknown[]): Promise<{ rows: unknown[] } | undefined> };

/**
 * The job queue: pg-boss 10 for storage (queues, retries, cron, expiry), with our own worker loop
 * on top, because pg-boss 10's `work()` fetches one batch per polling interval per subscription,
 * fails any job that outlives its expiry while the handler still runs, and has no heartbeat:
 *  - each queue name has one loop that fetches as many jobs as it has free slots, right away when
 *    woken (an enqueue in this process; on Postgres a NOTIFY from any process, through a
 *    dedicated LISTEN connection that reconnects); every `pollingIntervalSeconds` one statement
 *    for all queues (DUE_QUEUES) wakes the loops whose queue has due jobs nobody announced;
 *  - running jobs get a heartbeat that extends their expiry, so the expiry can be short
 *    (JOB_EXPIRE_SECONDS) and a dead worker's job is retried within `deadWorkerRecoverySeconds`;
 *  - coalescing queues (`stately`, keyed by mailbox) hold at most one queued and one running job
 *    per key, and their fetch never lets one key block the others.
 */
export async function createJobQueue(deps: {
  connection: { connectionString: string } | { db: { executeSql(text: string, values: unknown[]): Promise<{ rows: unknown[] }> } };
  logger: Logger;
  metrics: Metrics;
  /** Seconds between polls for new jobs; tests use a short one. */
  pollingIntervalSeconds?: number;
  timings?: Partial<JobTimings>;
}): Promise<JobQueue> {
  const timings: JobTimings = {
    ...DEFAULT_JOB_TIMINGS,
    ...deps.timings,
    ...(deps.pollingIntervalSeconds !== undefined ? { pollingIntervalSeconds: deps.pollingIntervalSeconds } : {}),
  };
  const boss: Boss = new PgBoss({
    ...(deps.connection as PgBoss.ConstructorOptions),
    schema: 'pgboss',
    // Our own scheduled jobs handle archival of domain data; keep pg-boss's history short.
    deleteAfterDays: 7,
  });
  boss.on('error', (err: Error) => deps.logger.error({ err }, 'job queue error'));
  await boss.start();
  const db = boss.getDb() as Executor;
  for (const name of ALL_JOB_NAMES) {
    const kind = JOB_KINDS[name];
    // pg-boss 10's typings lack expireInSeconds on queues; its createQueue/updateQueue read it.
    const options = { name, policy: kind.policy, expireInSeconds: timings.expireSeconds } as PgBoss.Queue;
    // Idempotent; queues must exist before send/work in pg-boss 10. updateQueue moves queues made
    // by an earlier version (standard policy, 15-minute expiry) to today's settings; jobs already
    // queued keep theirs.
    await boss.createQueue(name, options);
    await boss.updateQueue(name, options);
  }

  const connectionString = 'connectionString' in deps.connection ? deps.connection.connectionString : undefined;
  const jobsTotal = deps.metrics.counter('mbc_jobs_total', 'Jobs processed by name and outcome', ['name', 'outcome'] as const);
  const loops = new Map<JobName, QueueLoop>();
  const handlers = new Map<JobName, { handler: JobHandler<JobName>; concurrency: number }>();
  let started = false;
  let stopping: Promise<void> | undefined;
  const timers: NodeJS.Timeout[] = [];
  let listener: NotificationListener | undefined;

  // Cross-process wake-ups, coalesced per queue name: one NOTIFY per name in flight.
  const notifyPending = new Set<JobName>();
  const notifyOthers = (name: JobName): void => {
    if (!connectionString || notifyPending.has(name)) return;
    notifyPending.add(name);
    setImmediate(() => {
      notifyPending.delete(name);
      notifyOtherProcesses(listener, name, () => db.executeSql('SELECT pg_notify($1, $2)', [CHANNEL, name])).catch((err: unknown) =>
        deps.logger.debug({ err }, 'job notify failed; workers find the job at their next poll'),
      );
    });
  };
  const wake = (name: JobName): void => {
    loops.get(name)?.wake();
  };

  async function fetch(name: JobName, limit: number): Promise<FetchedJob[]> {
    const sql = JOB_KINDS[name].policy === 'stately' ? FETCH_STATELY : FETCH_STANDARD;
    try {
      const res = await db.executeSql(sql, [name, limit]);
      return (res?.rows ?? []) as FetchedJob[];
    } catch (err) {
      // Two fetchers raced for two queued jobs of one key (a retry and a fresh one): the loser hits
      // the one-active-per-key index. The next fetch sees the winner's job running and skips the key.
      if ((err as { code?: string }).code === '23505') return [];
      throw err;
    }
  }

  /**
   * Records a job's end. The server may be restarting just then (the job's result could not be
   * written while it was down): the write is repeated for about 15 s instead of leaving the job
   * to its expiry (45 s). `complete`/`fail` only change a job that is still active, so a repeat
   * is harmless; after the last try the error goes up and the job expires and is retried.
   */
  async function record(write: () => Promise<unknown>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await write();
        return;
      } catch (err) {
        const delay = RECORD_RETRY_MS[attempt];
        if (delay === undefined) throw err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async function runJob(name: JobName, handler: JobHandler<JobName>, job: FetchedJob): Promise<void> {
    let outcome: JobOutcome;
    try {
      outcome = await handler(job.data as JobMap[JobName], { jobId: job.id, attempt: job.retryCount + 1 });
    } catch (err) {
      jobsTotal.inc({ name, outcome: 'error' });
      deps.logger.error({ err, job: { id: job.id, name } }, 'job threw');
      // pg-boss retries with backoff (retry_count < retry_limit) or marks it failed.
      await record(() => boss.fail(name, job.id, { message: err instanceof Error ? err.name : 'error' }));
      return;
    }
    jobsTotal.inc({ name, outcome: outcome.status });
    if (outcome.status === 'retry') {
      deps.logger.info({ job: { id: job.id, name }, reason: outcome.reason }, 'job will retry');
      if (outcome.afterMs === undefined) {
        await record(() => boss.fail(name, job.id, { message: outcome.reason }));
        return;
      }
      // Re-enqueue at the provider's requested time instead of pg-boss's own backoff. Keep the key
      // so a purge's cancelByKey still finds the re-queued job; on a coalescing queue the key's
      // already-queued job (a notification that arrived meanwhile) is deferred to the same time.
      const startAfter = new Date(Date.now() + outcome.afterMs);
      if (job.singletonKey && JOB_KINDS[name].policy === 'stately') await db.executeSql(DEFER_QUEUED, [name, job.singletonKey, startAfter.toISOString()]);
      await boss.send(name, job.data as object, {
        ...DEFAULT_RETRY,
        startAfter,
        priority: job.priority,
        ...(job.singletonKey ? { singletonKey: job.singletonKey } : {}),
      });
      await record(() => boss.complete(name, job.id, outcomeOutput(outcome)));
      return;
    }
    if (outcome.status === 'failed') deps.logger.warn({ job: { id: job.id, name }, reason: outcome.reason }, 'job failed');
    await record(() => boss.complete(name, job.id, outcomeOutput(outcome)));
  }

  function heartbeat(): void {
    for (const [name, loop] of loops) {
      const ids = loop.runningIds();
      if (ids.length === 0) continue;
      db.executeSql(HEARTBEAT, [name, ids, timings.expireSeconds]).catch((err: unknown) => deps.logger.warn({ err, name }, 'job heartbeat failed'));
    }
  }

  let polling = false;
  /** The polling floor: one DUE_QUEUES statement, then only the loops with due work fetch. */
  async function pollDue(): Promise<void> {
    const waiting = [...loops].filter(([, loop]) => loop.waiting);
    if (polling || waiting.length === 0) return;
    polling = true;
    try {
      const res = await db.executeSql(DUE_QUEUES, [waiting.map(([name]) => name)]);
      const due = new Set((res?.rows ?? []).map((r) => (r as { name: string }).name));
      for (const [name, loop] of waiting) {
        if (due.has(name)) loop.wake();
        else loop.idleTick();
      }
    } catch {
      // The loops find out for themselves: their fetch fails and backs off (and says so).
      for (const [, loop] of waiting) loop.wake();
    } finally {
      polling = false;
    }
  }

  let expiring = false;
  function expire(): void {
    if (expiring) return;
    expiring = true;
    (boss as unknown as { expire(): Promise<void> })
      .expire()
      .then(() => {
        // Expired jobs are retried after their backoff; nothing to wake now.
      })
      .catch((err: unknown) => deps.logger.warn({ err }, 'job expiry check failed'))
      .finally(() => {
        expiring = false;
      });
  }

  return {
    async enqueue(name, payload, opts = {}) {
      const id = await boss.send(name, payload as object, { ...DEFAULT_RETRY, ...opts });
      if (id === null && opts.singletonKey && opts.priority && JOB_KINDS[name].policy === 'stately') {
        await db.executeSql(RAISE_PRIORITY, [name, opts.singletonKey, opts.priority]);
      }
      const due = opts.startAfter === undefined || new Date(opts.startAfter).getTime() <= Date.now();
      if (id !== null && due) {
        wake(name);
        notifyOthers(name);
      }
      return id;
    },
    register(name, handler, opts = {}) {
      if (handlers.has(name)) throw new Error(`a handler for ${name} is already registered`);
      handlers.set(name, { handler: handler as JobHandler<JobName>, concurrency: opts.concurrency ?? 1 });
    },
    async schedule(name, cron) {
      await boss.schedule(name, cron, {}, { singletonKey: name });
    },
    async cancelByKey(name, singletonKey) {
      const rows = (await db.executeSql(
        `UPDATE pgboss.job SET state = 'cancelled', completed_on = now()
          WHERE name = $1 AND singleton_key = $2 AND state < 'active' RETURNING id`,
        [name, singletonKey],
      )) as { rows: { id: string }[] };
      return rows.rows.length;
    },
    async startWorkers() {
      if (started) return;
      started = true;
      for (const [name, { handler, concurrency }] of handlers) {
        const loop = new QueueLoop(name, concurrency, (n) => fetch(name, n), (job) => runJob(name, handler, job), deps.logger);
        loops.set(name, loop);
        loop.start();
      }
      timers.push(setInterval(() => void pollDue(), timings.pollingIntervalSeconds * 1000));
      timers.push(setInterval(heartbeat, Math.max(1, timings.expireSeconds / 3) * 1000));
      timers.push(setInterval(expire, timings.expireCheckSeconds * 1000));
      if (connectionString) {
        listener = new NotificationListener(connectionString, CHANNEL, deps.logger, (name) => name && wake(name as JobName), () => {
          for (const loop of loops.values()) loop.wake();
        });
        listener.start();
      }
      for (const t of timers) t.unref();
    },
    wake(name) {
      wake(name);
      notifyOthers(name);
    },
    stalledQueues(olderThanMs) {
      const before = Date.now() - olderThanMs;
      return [...loops].filter(([, loop]) => !stopping && loop.lastTickAt < before).map(([name]) => name);
    },
    async ping() {
      try {
        await db.executeSql('SELECT 1', []);
        return true;
      } catch {
        return false;
      }
    },
    stop(timeoutMs = 20_000) {
      stopping ??= (async () => {
        for (const t of timers) clearInterval(t);
        await listener?.stop();
        const deadline = Date.now() + timeoutMs;
        for (const loop of loops.values()) loop.stop();
        for (const loop of loops.values()) await loop.drained(Math.max(0, deadline - Date.now()));
        // Jobs still running after the grace period go back to the queue (retried after backoff).
        for (const [name, loop] of loops) {
          const ids = loop.runningIds();
          for (const id of ids) await boss.fail(name, id, { message: 'worker stopped while the job was running' }).catch(() => undefined);
        }
        await boss.stop({ graceful: true, wait: true, timeout: 1_000 });
      })();
      return stopping;
    },
  };
}

/** One queue name's worker loop: fetch up to the free slots, run, repeat when woken (by work or by the poll). */
class QueueLoop {
  readonly #running = new Map<string, Promise<void>>();
  #woken = false;
  /** When the loop last came round or was found waiting by the poll (watchdog: see JobQueue.stalledQueues). */
  lastTickAt = Date.now();
  #stopped = false;
  #sleep: { timer: NodeJS.Timeout | undefined; resolve: () => void } | undefined;
  #done: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private readonly concurrency: number,
    private readonly fetch: (limit: number) => Promise<FetchedJob[]>,
    private readonly run: (job: FetchedJob) => Promise<void>,
    private readonly logger: Pick<Logger, 'error' | 'warn'>,
  ) {}

  start(): void {
    this.#done = this.#loop();
  }

  wake(): void {
    this.#woken = true;
    const s = this.#sleep;
    if (s) {
      this.#sleep = undefined;
      clearTimeout(s.timer);
      s.resolve();
    }
  }

  /** Waiting for a wake-up (not fetching, not backing off): the poll looks for its queue's due work. */
  get waiting(): boolean {
    return this.#sleep !== undefined && this.#sleep.timer === undefined;
  }

  /** The poll found nothing due for a waiting loop: it is healthy, just idle. */
  idleTick(): void {
    if (this.waiting) this.lastTickAt = Date.now();
  }

  runningIds(): string[] {
    return [...this.#running.keys()];
  }

  stop(): void {
    this.#stopped = true;
    this.wake();
  }

  async drained(timeoutMs: number): Promise<void> {
    await this.#done;
    const all = Promise.allSettled([...this.#running.values()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  async #loop(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      this.lastTickAt = Date.now();
      this.#woken = false;
      const free = this.concurrency - this.#running.size;
      if (free > 0) {
        let jobs: FetchedJob[];
        try {
          jobs = await this.fetch(free);
          failures = 0;
        } catch (err) {
          failures++;
          this.logger.warn({ err, queue: this.name }, 'job fetch failed; retrying');
          await this.#pause(FETCH_RETRY_BACKOFF.delayMs(failures + 1));
          continue;
        }
        for (const job of jobs) this.#start(job);
        // A full batch may mean more is waiting: fetch again as soon as a slot frees (its end wakes us).
        if (jobs.length > 0 && jobs.length === free) continue;
      }
      if (this.#stopped) break;
      if (!this.#woken) await this.#pause();
    }
  }

  #start(job: FetchedJob): void {
    const p = this.run(job)
      .catch((err: unknown) => this.logger.error({ err, job: { id: job.id, name: this.name } }, 'job bookkeeping failed; the job expires and is retried'))
      .finally(() => {
        this.#running.delete(job.id);
        this.wake();
      });
    this.#running.set(job.id, p);
  }

  /** Sleeps `ms`, or until woken when no `ms`. */
  #pause(ms?: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer =
        ms === undefined
          ? undefined
          : setTimeout(() => {
              this.#sleep = undefined;
              resolve();
            }, ms);
      this.#sleep = { timer, resolve };
    });
  }
}

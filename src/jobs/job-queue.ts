import PgBoss from 'pg-boss';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { EnqueueOptions, JobHandler, JobMap, JobName, JobOutcome } from './job-map.js';

type Boss = PgBoss;

export interface JobQueue {
  enqueue<N extends JobName>(name: N, payload: JobMap[N], opts?: EnqueueOptions): Promise<string | null>;
  /** Register the handler for a job name (once per process). */
  register<N extends JobName>(name: N, handler: JobHandler<N>, opts?: { concurrency?: number }): void;
  schedule(name: JobName, cron: string): Promise<void>;
  /** Cancel queued jobs of `name` whose singletonKey matches (e.g. a purged mailbox's syncs). */
  cancelByKey(name: JobName, singletonKey: string): Promise<number>;
  /** Start processing registered handlers. */
  startWorkers(): Promise<void>;
  ping(): Promise<boolean>;
  /** Finish active jobs (up to timeoutMs), then stop. Unfinished jobs go back to the queue. */
  stop(timeoutMs?: number): Promise<void>;
}

export const ALL_JOB_NAMES: JobName[] = [
  'sync.mailbox',
  'sync.poll',
  'sync.renew-watches',
  'scan.attachments',
  'webhooks.dispatch',
  'webhooks.deliver',
  'webhooks.sweep',
  'send.outbound',
  'lifecycle.purge',
  'lifecycle.revoke-retry',
  'lifecycle.reauth-expiry',
  'retention.run',
];

const DEFAULT_RETRY: Required<Pick<EnqueueOptions, 'retryLimit' | 'retryDelaySeconds' | 'retryBackoff'>> = {
  retryLimit: 8,
  retryDelaySeconds: 5,
  retryBackoff: true,
};

export class RetryableJobError extends Error {
  override readonly name = 'RetryableJobError';
}

export async function createJobQueue(deps: {
  connection: { connectionString: string } | { db: { executeSql(text: string, values: unknown[]): Promise<{ rows: unknown[] }> } };
  logger: Logger;
  metrics: Metrics;
  /** Seconds between polls for new jobs; tests use a short one. */
  pollingIntervalSeconds?: number;
}): Promise<JobQueue> {
  const boss: Boss = new PgBoss({
    ...(deps.connection as PgBoss.ConstructorOptions),
    schema: 'pgboss',
    // Our own scheduled jobs handle archival of domain data; keep pg-boss's history short.
    deleteAfterDays: 7,
  });
  boss.on('error', (err: Error) => deps.logger.error({ err }, 'job queue error'));
  await boss.start();
  for (const name of ALL_JOB_NAMES) {
    // Idempotent; queues must exist before send/work in pg-boss 10.
    await boss.createQueue(name);
  }

  const handlers = new Map<JobName, { handler: JobHandler<JobName>; concurrency: number }>();
  const jobsTotal = deps.metrics.counter('mbc_jobs_total', 'Jobs processed by name and outcome', ['name', 'outcome'] as const);
  const polling = deps.pollingIntervalSeconds ?? 2;
  let started = false;

  return {
    async enqueue(name, payload, opts = {}) {
      return boss.send(name, payload as object, { ...DEFAULT_RETRY, ...opts });
    },
    register(name, handler, opts = {}) {
      if (handlers.has(name)) throw new Error(`a handler for ${name} is already registered`);
      handlers.set(name, { handler: handler as JobHandler<JobName>, concurrency: opts.concurrency ?? 1 });
    },
    async schedule(name, cron) {
      await boss.schedule(name, cron, {}, { singletonKey: name });
    },
    async cancelByKey(name, singletonKey) {
      const rows = (await boss
        .getDb()
        .executeSql(
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
        // pg-boss 10 has no per-worker concurrency option: each `work()` subscription fetches and
        // runs one job at a time, so N subscriptions give N jobs of this name in flight per process.
        const run = async (jobs: unknown): Promise<void> => {
          const [job] = jobs as { id: string; data: unknown; retryCount: number; singletonKey: string | null }[];
          if (!job) return;
          let outcome: JobOutcome;
          try {
            outcome = await handler(job.data as JobMap[JobName], { jobId: job.id, attempt: job.retryCount + 1 });
          } catch (err) {
            jobsTotal.inc({ name, outcome: 'error' });
            deps.logger.error({ err, job: { id: job.id, name } }, 'job threw');
            throw err; // pg-boss retries with backoff
          }
          jobsTotal.inc({ name, outcome: outcome.status });
          if (outcome.status === 'retry') {
            deps.logger.info({ job: { id: job.id, name }, reason: outcome.reason }, 'job will retry');
            if (outcome.afterMs !== undefined) {
              // Re-enqueue at the provider's requested time instead of pg-boss's own backoff.
              // Keep the key so a purge's cancelByKey still finds the re-queued job.
              await boss.send(name, job.data as object, {
                ...DEFAULT_RETRY,
                startAfter: new Date(Date.now() + outcome.afterMs),
                ...(job.singletonKey ? { singletonKey: job.singletonKey } : {}),
              });
              return;
            }
            throw new RetryableJobError(outcome.reason);
          }
          if (outcome.status === 'failed') deps.logger.warn({ job: { id: job.id, name }, reason: outcome.reason }, 'job failed');
        };
        for (let i = 0; i < concurrency; i++) {
          await boss.work(name, { batchSize: 1, pollingIntervalSeconds: polling, includeMetadata: true }, run as never);
        }
      }
    },
    async ping() {
      try {
        await boss.getDb().executeSql('SELECT 1', []);
        return true;
      } catch {
        return false;
      }
    },
    async stop(timeoutMs = 20_000) {
      await boss.stop({ graceful: true, wait: true, timeout: timeoutMs });
    },
  };
}

import type { PrismaClient } from './database.js';
import type { SqlExecutor } from './sql-executor.port.js';

export interface WorkerHeartbeatInfo {
  id: string;
  command: 'serve' | 'worker';
  hostname: string;
  pid: number;
}

/**
 * Liveness rows of the processes that run job workers (table `worker_heartbeats`), independent of
 * the job queue's own tables, so a `serve --no-workers` can tell whether anything will run the
 * jobs it queues.
 */
export class WorkerHeartbeatRepository {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly sql: SqlExecutor,
  ) {}

  async beat(info: WorkerHeartbeatInfo, at: Date): Promise<void> {
    await this.prisma.workerHeartbeat.upsert({
      where: { id: info.id },
      create: { ...info, startedAt: at, seenAt: at },
      update: { seenAt: at },
    });
  }

  /** Processes (other than `exceptId`) seen since `since`. */
  async seenSince(since: Date, exceptId?: string): Promise<number> {
    return this.prisma.workerHeartbeat.count({ where: { seenAt: { gte: since }, ...(exceptId ? { id: { not: exceptId } } : {}) } });
  }

  async remove(id: string): Promise<void> {
    await this.prisma.workerHeartbeat.deleteMany({ where: { id } });
  }

  /** Rows of processes that died without removing theirs. */
  async prune(before: Date): Promise<number> {
    return (await this.prisma.workerHeartbeat.deleteMany({ where: { seenAt: { lt: before } } })).count;
  }

  /**
   * Jobs waiting to run now (queued or retrying, start time reached) in the job queue's table:
   * work that only a worker process will do.
   */
  async dueJobs(): Promise<number> {
    const res = await this.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM pgboss.job WHERE state IN ('created', 'retry') AND start_after <= now()");
    return Number(res.rows[0]?.n ?? 0);
  }
}

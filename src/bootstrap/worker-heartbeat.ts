import { hostname } from 'node:os';
import type { ReadinessCheck } from '../http/app.js';
import type { Logger } from '../observability/logger.js';
import { newId } from '../storage/ids.js';
import type { WorkerHeartbeatRepository } from '../storage/worker-heartbeat.repository.js';

/** How often a process running workers records that it is alive. */
export const HEARTBEAT_INTERVAL_MS = 15_000;
/** A worker not seen for this long is not counted (four missed beats). */
export const HEARTBEAT_STALE_MS = 60_000;
/** A job loop that has not come round for this long makes its process not ready… */
export const LOOP_STALL_NOT_READY_MS = 90_000;
/** …and for this long, exit (server-runner), so a supervisor starts a fresh process. */
export const LOOP_STALL_EXIT_MS = 300_000;
/** Rows older than this belong to processes that died without removing theirs. */
const PRUNE_AFTER_MS = 86_400_000;

/**
 * The `worker_heartbeats` row of a process that runs job workers, refreshed every 15 s while the
 * process can reach the database; removed on a clean stop.
 */
export class WorkerHeartbeat {
  readonly id = newId('workerHeartbeat');
  #timer: NodeJS.Timeout | undefined;
  #lastOk: number | undefined;
  #beats = 0;
  #failing = false;

  constructor(
    private readonly repo: WorkerHeartbeatRepository,
    private readonly command: 'serve' | 'worker',
    private readonly logger: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** When this process last recorded its heartbeat (ms since epoch), if ever. */
  get lastOk(): number | undefined {
    return this.#lastOk;
  }

  async start(): Promise<void> {
    await this.beat();
    this.#timer = setInterval(() => void this.beat(), HEARTBEAT_INTERVAL_MS);
    this.#timer.unref();
  }

  async beat(): Promise<void> {
    const now = this.clock();
    try {
      await this.repo.beat({ id: this.id, command: this.command, hostname: hostname(), pid: process.pid }, now);
      if (++this.#beats % 40 === 1) await this.repo.prune(new Date(now.getTime() - PRUNE_AFTER_MS));
      this.#lastOk = now.getTime();
      if (this.#failing) this.logger.info('worker heartbeat recorded again');
      this.#failing = false;
    } catch (err) {
      // The database is unreachable (restarting?): readiness says so; the next beat retries.
      if (!this.#failing) this.logger.warn({ err }, 'worker heartbeat failed; retrying every 15 s');
      this.#failing = true;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.repo.remove(this.id).catch(() => undefined);
  }
}

/**
 * Readiness `workers`: whether the jobs this service queues will run.
 *  - A process running workers is ready when it recorded its own heartbeat within the last
 *    minute (it is alive and reaches the database) and none of its job loops is stalled.
 *  - A `serve --no-workers` relies on other processes: it is NOT ready when jobs are due and no
 *    worker was seen for a minute (they would wait for ever); with nothing due it only reports.
 */
export function workersReadiness(deps: {
  repo: WorkerHeartbeatRepository;
  own: WorkerHeartbeat | undefined;
  /** This process's job loops that stopped coming round (JobQueue.stalledQueues). */
  stalled?: () => string[];
  clock?: () => Date;
}): ReadinessCheck {
  const clock = deps.clock ?? (() => new Date());
  return {
    name: 'workers',
    required: true,
    async check() {
      const now = clock().getTime();
      const since = new Date(now - HEARTBEAT_STALE_MS);
      const others = await deps.repo.seenSince(since, deps.own?.id);
      const plural = (n: number) => `${n} other worker process${n === 1 ? '' : 'es'}`;
      if (deps.own) {
        const last = deps.own.lastOk;
        if (last === undefined || now - last > HEARTBEAT_STALE_MS) {
          return { status: 'error', detail: `this process has not recorded its worker heartbeat for over ${HEARTBEAT_STALE_MS / 1000} s` };
        }
        const stalled = deps.stalled?.() ?? [];
        if (stalled.length > 0) return { status: 'error', detail: `job loop stalled in this process: ${stalled.join(', ')}` };
        return { status: 'ok', detail: `workers run in this process; ${plural(others)} seen in the last ${HEARTBEAT_STALE_MS / 1000} s` };
      }
      if (others > 0) return { status: 'ok', detail: `${plural(others).replace('other ', '')} seen in the last ${HEARTBEAT_STALE_MS / 1000} s` };
      const due = await deps.repo.dueJobs();
      if (due > 0) return { status: 'error', detail: `${due} job${due === 1 ? ' is' : 's are'} due and no worker process was seen in the last ${HEARTBEAT_STALE_MS / 1000} s (this process runs none: start \`mailbox-connector worker\`)` };
      return { status: 'ok', detail: `no worker process seen in the last ${HEARTBEAT_STALE_MS / 1000} s; no job is due` };
    },
  };
}

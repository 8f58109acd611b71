import type { JobOutcome } from '../jobs/job-map.js';
import type { Logger } from '../observability/logger.js';
import type { OutboxRepository } from '../storage/outbox.repository.js';
import type { Claimed, WebhookRepository } from '../storage/webhook.repository.js';
import type { WebhookDispatcher } from './webhook-dispatcher.service.js';

/**
 * Runs webhook attempts in a worker process, up to `slots` at once, claiming deliveries straight
 * from the deliveries table in batches (WebhookRepository.claimDue: per-endpoint locks, leases,
 * the per-endpoint concurrency limit counted cluster-wide).
 *
 * Scheduling: no job per delivery. The pump looks for work
 *  - when woken in-process (this process dispatched events, or a `webhooks.dispatch` /
 *    `webhooks.deliver` job arrived: jobs are how other processes wake it),
 *  - when slots free up (results written), and
 *  - every `tickMs` (≤ 250 ms): retries that became due, work another process created, and
 *    committed events whose dispatch job is not here yet (fanned out in batches).
 * Batching: while attempts run it waits until at least a quarter of the slots are free before
 * claiming again, so one claim statement serves many deliveries under load, and claims at once
 * when idle. A crash loses nothing: an interrupted attempt's lease expires and any worker takes
 * it over.
 */
export class DeliveryPump {
  private active = 0;
  private readonly inflight = new Set<Promise<void>>();
  private looping: Promise<void> | undefined;
  private again = false;
  private dispatchDue = true;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: {
      dispatcher: WebhookDispatcher;
      webhooks: WebhookRepository;
      outbox: OutboxRepository;
      logger: Logger;
      clock: () => Date;
      slots: number;
      endpointConcurrency: number;
      leaseMs: number;
      tickMs?: number;
    },
  ) {}

  start(): void {
    if (this.timer || this.stopping) return;
    this.timer = setInterval(() => {
      this.dispatchDue = true;
      this.wake();
    }, this.deps.tickMs ?? 250);
    this.timer.unref();
  }

  /** `webhooks.deliver` handler: the delivery row is the work item; the job only wakes the pump. */
  async onJob(_deliveryId: string): Promise<JobOutcome> {
    this.start();
    this.wake();
    return { status: 'done', detail: { woke: true } };
  }

  /** `webhooks.dispatch` handler: fan out committed events (this one and any other) in batches. */
  async onDispatchJob(_eventId: string): Promise<JobOutcome> {
    this.start();
    this.dispatchDue = true;
    this.wake();
    return { status: 'done', detail: { woke: true } };
  }

  /** New work is due (events dispatched in this process): look now rather than at the next tick. */
  wake(): void {
    if (this.stopping || !this.timer) return;
    if (this.looping) {
      this.again = true;
      return;
    }
    this.looping = this.loop().finally(() => {
      this.looping = undefined;
    });
  }

  /** Finish attempts in progress and store their results (shutdown). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.looping;
    await Promise.allSettled([...this.inflight]);
    await this.deps.dispatcher.drain();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        if (this.dispatchDue) {
          this.dispatchDue = false;
          await this.dispatchCommitted();
        }
        await this.claim();
      } catch (err) {
        this.deps.logger.warn({ err }, 'webhook pump failed to look for work; trying again at the next tick');
      }
    } while (this.again && !this.stopping);
  }

  /** Committed events not fanned out yet (their dispatch job may be elsewhere or lost). */
  private async dispatchCommitted(): Promise<void> {
    for (;;) {
      const batch = await this.deps.outbox.listUndispatched(this.deps.clock(), 500);
      if (batch.length === 0 || this.stopping) return;
      await this.deps.dispatcher.dispatchMany(batch);
      if (batch.length < 500) return;
    }
  }

  private async claim(): Promise<void> {
    const minBatch = Math.max(1, Math.floor(this.deps.slots / 4));
    for (;;) {
      const free = this.deps.slots - this.active;
      if (this.stopping || free <= 0 || (free < minBatch && this.active > 0)) return;
      const { claimed, lockedOut } = await this.deps.webhooks.claimDue(this.deps.clock(), {
        take: free,
        limit: this.deps.endpointConcurrency,
        leaseMs: this.deps.leaseMs,
      });
      if (claimed.length > 0) this.run(claimed);
      // Another worker was claiming for some endpoints: look again shortly rather than at the tick.
      if (lockedOut > 0 && !this.retryTimer) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.wake();
        }, 5);
      }
      if (claimed.length < free) return;
    }
  }

  private run(batch: Claimed[]): void {
    this.active += batch.length;
    let left = batch.length;
    const release = () => {
      if (left === 0) return;
      left--;
      this.active--;
      this.wake();
    };
    const p: Promise<void> = this.deps.dispatcher
      .attemptBatch(batch, release)
      .catch((err: unknown) => this.deps.logger.error({ err, deliveries: batch.length }, 'webhook attempts failed unexpectedly'))
      .finally(() => {
        this.inflight.delete(p);
        // Whatever was not released (an unexpected failure) frees its slots now.
        while (left > 0) release();
      });
    this.inflight.add(p);
  }
}

import type { JobOutcome } from '../jobs/job-map.js';
import type { Logger } from '../observability/logger.js';
import type { OutboxRepository } from '../storage/outbox.repository.js';
import type { Claimed, WebhookRepository } from '../storage/webhook.repository.js';
import type { WebhookDispatcher } from './webhook-dispatcher.service.js';

/**
 * Runs webhook attempts in a worker process with `slots` attempts at once.
 *
 * Why not one pg-boss job per attempt and nothing else: a pg-boss 10 worker fetches one job per
 * polling interval (2 s by default), which would cap delivery at a job every 2 s per process and
 * let one slow receiver block the queue. Here the job is only a wake-up: the durable state is the
 * delivery row and its lease (see WebhookRepository.claim), and the pump
 *  - starts a job's attempt in the background as soon as a local slot is free (the job waits for
 *    a slot, which is the back-pressure), and
 *  - whenever a slot frees up, and once per `tickMs`, claims due deliveries straight from the
 *    database (skipping endpoints at their concurrency limit) and dispatches committed events.
 * A crash loses nothing: an interrupted attempt's lease expires and any process picks it up again.
 */
export class DeliveryPump {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  private readonly inflight = new Set<Promise<void>>();
  private refilling = false;
  private refillAgain = false;
  private ticking = false;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;

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
    this.timer = setInterval(() => void this.tick(), this.deps.tickMs ?? 500);
    this.timer.unref();
  }

  /** `webhooks.deliver` handler: waits for a slot, starts the attempt, returns. */
  async onJob(deliveryId: string): Promise<JobOutcome> {
    this.start();
    if (this.stopping) return { status: 'retry', reason: 'worker stopping', afterMs: 1_000 };
    await this.acquire();
    this.run(deliveryId);
    return { status: 'done', detail: { started: true } };
  }

  /** Finish attempts in progress (called on shutdown, after the queue stopped handing out jobs). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled([...this.inflight]);
  }

  private run(work: string | Claimed): void {
    const deliveryId = typeof work === 'string' ? work : work.delivery.id;
    const p: Promise<void> = (typeof work === 'string' ? this.deps.dispatcher.deliver(work) : this.deps.dispatcher.attemptClaimed(work))
      .then(() => undefined)
      .catch((err: unknown) => this.deps.logger.error({ err, deliveryId }, 'webhook attempt failed unexpectedly'))
      .finally(() => {
        this.inflight.delete(p);
        this.release();
        void this.refill();
      });
    this.inflight.add(p);
  }

  /** New work is due (events dispatched in this process): look now rather than at the next tick. */
  wake(): void {
    if (this.timer) void this.refill();
  }

  private async tick(): Promise<void> {
    if (this.stopping || this.ticking) return;
    this.ticking = true;
    try {
      // Committed events whose dispatch job has not run yet: fan them out now, in batches.
      for (;;) {
        const batch = await this.deps.outbox.listUndispatched(this.deps.clock(), 200);
        if (batch.length === 0 || this.stopping) break;
        await this.deps.dispatcher.dispatchMany(batch);
        await this.refill();
      }
      await this.refill();
    } catch (err) {
      this.deps.logger.warn({ err }, 'webhook pump tick failed');
    } finally {
      this.ticking = false;
    }
  }

  private async refill(): Promise<void> {
    if (this.stopping) return;
    if (this.refilling) {
      this.refillAgain = true;
      return;
    }
    this.refilling = true;
    try {
      do {
        this.refillAgain = false;
        const free = this.deps.slots - this.active;
        if (free <= 0) break;
        const due = await this.deps.webhooks.listDue(this.deps.clock(), { take: free, limit: this.deps.endpointConcurrency, leaseMs: this.deps.leaseMs });
        // Claim per endpoint in one locked statement each (cheap under contention between workers).
        const perEndpoint = new Map<string, number>();
        for (const d of due) perEndpoint.set(d.endpointId, (perEndpoint.get(d.endpointId) ?? 0) + 1);
        for (const [endpointId, count] of perEndpoint) {
          const room = this.deps.slots - this.active;
          if (this.stopping || room <= 0) break;
          const claimed = await this.deps.webhooks.claimBatch(endpointId, this.deps.clock(), {
            limit: this.deps.endpointConcurrency,
            leaseMs: this.deps.leaseMs,
            take: Math.min(count, room),
          });
          for (const c of claimed) {
            this.active++;
            this.run(c);
          }
        }
      } while (this.refillAgain && !this.stopping);
    } catch (err) {
      this.deps.logger.warn({ err }, 'webhook pump refill failed');
    } finally {
      this.refilling = false;
    }
  }

  private acquire(): Promise<void> {
    if (this.active < this.deps.slots) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active--;
  }
}

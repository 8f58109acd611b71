import type { JobOutcome } from '../jobs/job-map.js';
import type { Logger } from '../observability/logger.js';
import type { OutboxRepository } from '../storage/outbox.repository.js';
import type { Claimed, WebhookRepository } from '../storage/webhook.repository.js';
import type { WebhookDispatcher } from './webhook-dispatcher.service.js';

/** Polling floor: work created where no wake-up reaches (a lost NOTIFY, retries written elsewhere). */
const DEFAULT_TICK_MS = 1_000;
/** How long releases are gathered before claiming again when the endpoints are the limit. */
const GATHER_MS = 25;

/**
 * Runs webhook attempts in a worker process, up to `slots` at once, claiming deliveries straight
 * from the deliveries table in batches (WebhookRepository.claimDue: per-endpoint locks, leases,
 * the per-endpoint concurrency limit counted cluster-wide).
 *
 * Scheduling: no job per event or delivery. The pump looks for work
 *  - when events were committed: in this process (the events-committed hook) or in another one
 *    (a NOTIFY on Postgres, see the webhooks module), and when a `webhooks.dispatch` /
 *    `webhooks.deliver` job arrives (replay, sweep, older emitters: the job only wakes it);
 *  - when slots free up (results written) and when a retry it scheduled becomes due;
 *  - every `tickMs` (default 1 s), the floor: committed events nobody announced are fanned out
 *    in batches, and retries another process scheduled are claimed.
 * Batching: while attempts run it waits until at least a quarter of the slots are free before
 * claiming again (and, when the per-endpoint limits rather than its slots bound it, gathers
 * releases for GATHER_MS), so one claim statement serves many deliveries under load; it claims at
 * once when idle. A crash loses nothing: an interrupted attempt's lease expires and any worker takes
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
  private dueTimer: NodeJS.Timeout | undefined;
  private gatherTimer: NodeJS.Timeout | undefined;
  private lastShort = false;
  private releasedSinceClaim = 0;
  private dueAt: number | undefined;

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
    }, this.deps.tickMs ?? DEFAULT_TICK_MS);
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

  /** Events were committed (here or, via NOTIFY, elsewhere): fan them out and deliver now. */
  wakeDispatch(): void {
    this.dispatchDue = true;
    this.wake();
  }

  /** A retry written by this process becomes due at `at`: look then rather than at the next tick. */
  wakeAt(at: Date): void {
    if (this.stopping || !this.timer) return;
    const ms = Math.max(0, at.getTime() - this.deps.clock().getTime()) + 5;
    if (ms > (this.deps.tickMs ?? DEFAULT_TICK_MS)) return; // the tick comes first anyway
    if (this.dueTimer && this.dueAt !== undefined && this.dueAt <= at.getTime()) return;
    if (this.dueTimer) clearTimeout(this.dueTimer);
    this.dueAt = at.getTime();
    this.dueTimer = setTimeout(() => {
      this.dueTimer = undefined;
      this.dueAt = undefined;
      this.wake();
    }, ms);
    this.dueTimer.unref();
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
    if (this.dueTimer) clearTimeout(this.dueTimer);
    if (this.gatherTimer) clearTimeout(this.gatherTimer);
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
      // Postgres: one transaction per 500 events, split between workers (SKIP LOCKED).
      const done = await this.deps.webhooks.dispatchCommitted(this.deps.clock(), 500);
      if (done === undefined) break;
      if (done.created > 0) this.wake();
      if (done.events < 500 || this.stopping) return;
    }
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
      // The last claim found less than it asked for (the endpoints, not this worker's slots, are
      // the limit): claiming again on every single release would mean one transaction per
      // delivery. Gather releases for a moment instead.
      if (this.lastShort && this.active > 0 && this.releasedSinceClaim < minBatch) {
        if (!this.gatherTimer) {
          this.gatherTimer = setTimeout(() => {
            this.gatherTimer = undefined;
            this.releasedSinceClaim = minBatch;
            this.wake();
          }, GATHER_MS);
        }
        return;
      }
      this.releasedSinceClaim = 0;
      const { claimed, lockedOut } = await this.deps.webhooks.claimDue(this.deps.clock(), {
        take: free,
        limit: this.deps.endpointConcurrency,
        leaseMs: this.deps.leaseMs,
        // Busy: skip the idle probe, the claim itself tells.
        probe: this.active === 0,
      });
      this.lastShort = claimed.length < free;
      if (claimed.length > 0) this.run(claimed);
      // Another worker was claiming those endpoints. While attempts run, the next release looks
      // again anyway; an idle pump looks again shortly rather than at the tick.
      if (lockedOut > 0 && this.active === 0 && !this.retryTimer) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.wake();
        }, 20);
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
      this.releasedSinceClaim++;
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

import type { JobOutcome } from '../jobs/job-map.js';
import type { Logger } from '../observability/logger.js';
import type { OutboxRepository } from '../storage/outbox.repository.js';
import type { Claimed, FinishItem, WebhookRepository } from '../storage/webhook.repository.js';
import type { WebhookDispatcher } from './webhook-dispatcher.service.js';

/**
 * Safety tick: work no wake-up announced (a NOTIFY lost while the LISTEN connection was down is
 * covered by its reconnect; a crashed worker's retries and expired leases; deliveries made due
 * by a statement elsewhere, e.g. held deliveries released after a restore). New events, replays
 * and this process's own retries wake the pump at once, so the tick only bounds the delay of
 * those; at idle it is the pump's only cost (two indexed probes per tick).
 */
const DEFAULT_TICK_MS = 15_000;
/** Retry due times this process remembers (the earliest); later ones are found by the tick. */
const MAX_DUE_TIMES = 1_000;
/** Retries due later than this are found by the tick (at most `tickMs` late) rather than a timer. */
const DUE_HORIZON_MS = 60 * 60_000;
/** Events fanned out per transaction (the pump delivers between two such batches). */
const DISPATCH_BATCH = 500;
/** Attempt results stored per cycle statement at most. */
const MAX_RESULTS = 500;
/** How long the first waiting result waits for others to share its cycle. */
const GATHER_MS = 5;

/**
 * Runs webhook attempts in a worker process, up to `slots` at once, claiming deliveries straight
 * from the deliveries table (per-endpoint locks, leases, the per-endpoint concurrency limit
 * counted cluster-wide: see WebhookRepository.finishAndClaim).
 *
 * The pump works in cycles, one at a time: a cycle is ONE statement that stores the results of
 * the attempts that finished since the last cycle and claims due deliveries for the slots they
 * freed (plus any other free ones). Results that arrive while a cycle is in flight go into the
 * next, so under load a cycle carries many results and claims; when idle a result is stored at
 * the next turn of the event loop. A slot stays taken until its attempt's result is stored (the
 * per-endpoint limit counts stored leases).
 *
 * When a cycle runs:
 *  - when attempt results are waiting (their claim rides along);
 *  - when events were committed: in this process (the events-committed hook) or in another one
 *    (a NOTIFY on Postgres, see the webhooks module), and when a `webhooks.dispatch` /
 *    `webhooks.deliver` job arrives (replay, sweep, older emitters: the job only wakes it);
 *  - when a retry it scheduled becomes due (a timer per due time within the hour), and every
 *    `tickMs` (default 15 s), the safety floor: committed events nobody announced are fanned
 *    out, and retries a crashed process scheduled and expired leases are claimed (the minutely
 *    `webhooks.sweep` job also wakes it for those);
 *  - again at once after a claim that got all it asked for (more may be due).
 * A crash loses nothing: an interrupted attempt's lease expires and any worker takes it over.
 */
export class DeliveryPump {
  /** Deliveries this pump holds a lease on (claimed, result not stored yet). */
  private readonly active = new Set<string>();
  private readonly inflight = new Set<Promise<void>>();
  private results: Array<{ item: FinishItem; done: (updated: boolean) => void }> = [];
  private looping: Promise<void> | undefined;
  private again = false;
  private wanted = true;
  private dispatchDue = true;
  private flushScheduled = false;
  private gatherTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private dueTimer: NodeJS.Timeout | undefined;
  private dueAt: number | undefined;
  /** Due times of retries this process scheduled, ascending (dueAt = the first). */
  private dueTimes: number[] = [];

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
    const due = at.getTime();
    if (due - this.deps.clock().getTime() > Math.max(DUE_HORIZON_MS, this.deps.tickMs ?? DEFAULT_TICK_MS)) return; // the tick finds it
    // Remember every due time (several retries at different times each wake the pump when due),
    // coalescing those within a few milliseconds of one already remembered.
    const times = this.dueTimes;
    let lo = 0;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (times[mid]! < due) lo = mid + 1;
      else hi = mid;
    }
    if ((lo > 0 && due - times[lo - 1]! < 5) || (lo < times.length && times[lo]! - due < 5)) return;
    if (times.length >= MAX_DUE_TIMES) {
      if (lo >= times.length) return; // later than all remembered: the tick finds it
      times.pop();
    }
    times.splice(lo, 0, due);
    this.armDueTimer();
  }

  /** The timer for the earliest remembered due time. */
  private armDueTimer(): void {
    const next = this.dueTimes[0];
    if (next === undefined || this.stopping) return;
    if (this.dueTimer && this.dueAt === next) return;
    if (this.dueTimer) clearTimeout(this.dueTimer);
    this.dueAt = next;
    this.dueTimer = setTimeout(
      () => {
        this.dueTimer = undefined;
        this.dueAt = undefined;
        const nowMs = this.deps.clock().getTime();
        let n = 0;
        while (n < this.dueTimes.length && this.dueTimes[n]! <= nowMs + 1) n++;
        this.dueTimes.splice(0, Math.max(1, n));
        this.wake();
        this.armDueTimer();
      },
      Math.max(0, next - this.deps.clock().getTime()) + 5,
    );
    this.dueTimer.unref();
  }

  /** New work may be due: look now rather than at the next tick. */
  wake(): void {
    if (this.stopping || !this.timer) return;
    this.wanted = true;
    this.kick();
  }

  /** Finish attempts in progress and store their results (shutdown). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.dueTimer) clearTimeout(this.dueTimer);
    // Results gathering for a cycle go now.
    this.scheduleResults();
    await this.looping;
    // Attempts in flight hand their results to the loop, which keeps storing them while stopping.
    await Promise.allSettled([...this.inflight]);
    while (this.looping) await this.looping;
    await this.deps.dispatcher.drain();
  }

  /**
   * An attempt's result: stored by the next cycle, together with that cycle's claim. A cycle
   * statement (and the per-batch work of the claim it makes: bodies, endpoint checks) costs about
   * the same for one result as for many, so results are gathered for up to GATHER_MS unless a
   * quarter of the slots — or every attempt still running — has reported.
   */
  private store(item: FinishItem): Promise<boolean> {
    return new Promise((done) => {
      this.results.push({ item, done });
      this.scheduleResults();
    });
  }

  /** Waiting results go with the next cycle now, or when the gathering time is up. */
  private scheduleResults(): void {
    if (this.results.length === 0) return;
    if (this.resultsReady()) {
      if (this.gatherTimer) clearTimeout(this.gatherTimer);
      this.gatherTimer = undefined;
      this.flushSoon();
    } else if (!this.gatherTimer) {
      this.gatherTimer = setTimeout(() => {
        this.gatherTimer = undefined;
        this.flushSoon();
      }, GATHER_MS);
    }
  }

  /** Enough results for a cycle: a quarter of the slots, every attempt still held, or shutdown. */
  private resultsReady(): boolean {
    return this.stopping || this.results.length >= this.minBatch || this.results.length >= this.active.size;
  }

  /** At the next turn of the event loop: results of attempts that end in this one share the cycle. */
  private flushSoon(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.kick();
    });
  }

  private get minBatch(): number {
    return Math.max(1, Math.floor(this.deps.slots / 4));
  }

  private kick(): void {
    if (this.looping) {
      this.again = true;
      return;
    }
    this.looping = this.loop().finally(() => {
      this.looping = undefined;
      // Results handed over while the last cycle was in flight.
      this.scheduleResults();
    });
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        if (this.dispatchDue && !this.stopping) {
          this.dispatchDue = false;
          // One batch at a time, with a delivery cycle in between: the first deliveries go out
          // while a large commit is still being fanned out.
          if (await this.dispatchCommitted()) {
            this.dispatchDue = true;
            this.again = true;
          }
        }
        await this.cycle();
      } catch (err) {
        this.deps.logger.warn({ err }, 'webhook pump failed to look for work; trying again at the next tick');
      }
    } while ((this.results.length > 0 && this.resultsReady()) || (this.again && !this.stopping));
  }

  /** Fans out one batch of committed events not fanned out yet; true when there may be more. */
  private async dispatchCommitted(): Promise<boolean> {
    // Postgres: one transaction per batch, split between workers (SKIP LOCKED).
    const done = await this.deps.webhooks.dispatchCommitted(this.deps.clock(), DISPATCH_BATCH);
    if (done !== undefined) {
      if (done.created > 0) this.wanted = true;
      return done.events >= DISPATCH_BATCH;
    }
    const batch = await this.deps.outbox.listUndispatched(this.deps.clock(), DISPATCH_BATCH);
    if (batch.length === 0) return false;
    if ((await this.deps.dispatcher.dispatchMany(batch)) > 0) this.wanted = true;
    return batch.length >= DISPATCH_BATCH;
  }

  /** Stores the waiting results and claims for the free slots, in one statement. */
  private async cycle(): Promise<void> {
    const batch = this.results.splice(0, MAX_RESULTS);
    const wanted = this.wanted;
    this.wanted = false;
    // The slots of the results stored by this statement are free for its claim.
    const free = this.deps.slots - this.active.size + batch.length;
    // Claim along with results (free of an extra round trip), or when woken. A wake-up while most
    // slots are taken waits for the results that will free them.
    const claim = !this.stopping && free > 0 && (batch.length > 0 || (wanted && (free >= this.minBatch || this.active.size === 0)));
    if (batch.length === 0 && !claim) return;
    const take = claim ? free : 0;
    const now = this.deps.clock();
    const opts = { take, limit: this.deps.endpointConcurrency, leaseMs: this.deps.leaseMs };
    let out: Awaited<ReturnType<WebhookRepository['finishAndClaim']>>;
    try {
      // Nothing to store and nothing running: an indexed probe first (most idle polls find nothing).
      out =
        batch.length === 0
          ? { updated: new Set(), ...(await this.deps.webhooks.claimDue(now, { ...opts, probe: this.active.size === 0 })) }
          : await this.deps.webhooks.finishAndClaim(
              batch.map((b) => b.item),
              now,
              opts,
            );
    } catch (err) {
      if (batch.length === 0) throw err;
      // The statement rolled back (nothing claimed): the writer stores the results, retrying.
      this.deps.logger.warn({ err, results: batch.length }, 'storing webhook attempt results failed; retrying them apart from claims');
      for (const b of batch) {
        void this.deps.dispatcher.storeResult(b.item).then((updated) => {
          this.active.delete(b.item.deliveryId);
          b.done(updated);
        });
      }
      return;
    }
    for (const b of batch) {
      this.active.delete(b.item.deliveryId);
      b.done(out.updated.has(b.item.deliveryId));
    }
    if (out.claimed.length > 0) this.run(out.claimed);
    // Another worker was claiming those endpoints. While attempts run, their results look again
    // anyway; an idle pump looks again shortly rather than at the tick.
    if (out.lockedOut > 0 && this.active.size === 0 && !this.retryTimer && !this.stopping) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.wake();
      }, 20);
    }
    // Got all it asked for: more may be due.
    if (take > 0 && out.claimed.length >= take) {
      this.wanted = true;
      this.again = true;
    }
  }

  private run(batch: Claimed[]): void {
    const unreported = new Set<string>();
    for (const c of batch) {
      this.active.add(c.delivery.id);
      unreported.add(c.delivery.id);
    }
    const p: Promise<void> = this.deps.dispatcher
      .attemptBatch(batch, (item) => {
        unreported.delete(item.deliveryId);
        return this.store(item);
      })
      .catch((err: unknown) => this.deps.logger.error({ err, deliveries: batch.length }, 'webhook attempts failed unexpectedly'))
      .finally(() => {
        this.inflight.delete(p);
        // An attempt that never reported (an unexpected failure) frees its slot now; its lease expires.
        for (const id of unreported) this.active.delete(id);
      });
    this.inflight.add(p);
  }
}

import type { Logger } from '../observability/logger.js';
import type { FinishItem, WebhookRepository } from '../storage/webhook.repository.js';

export type { FinishItem };

/** Waits between tries of a failed batch write (the database may be reconnecting). */
const RETRY_DELAYS_MS = [200, 1_000, 3_000];

/**
 * Writes attempt results in batches: every result that arrives while a write is in flight goes
 * into the next one (one statement for the batch, see WebhookRepository.finishAttempts), so under
 * load a write carries many results and when idle a result is written at once (next turn of the
 * event loop). `write` resolves once the result is stored — the caller keeps the delivery's slot
 * until then — with whether the delivery row was updated (false: a replay took it over meanwhile,
 * or the write failed for good, in which case the lease expires and the attempt is repeated:
 * at-least-once, never lost).
 */
export class AttemptWriter {
  private queue: Array<{ item: FinishItem; done: (updated: boolean) => void }> = [];
  private flushing: Promise<void> | undefined;
  private scheduled = false;

  constructor(
    private readonly deps: {
      webhooks: Pick<WebhookRepository, 'finishAttempts'>;
      logger: Logger;
      maxBatch?: number;
      sleep?: (ms: number) => Promise<void>;
    },
  ) {}

  write(item: FinishItem): Promise<boolean> {
    return new Promise((done) => {
      this.queue.push({ item, done });
      this.schedule();
    });
  }

  /** Resolves when everything written so far is stored (or given up on). */
  async drain(): Promise<void> {
    while (this.flushing || this.queue.length > 0) {
      if (!this.flushing) this.flushing = this.flush();
      await this.flushing;
    }
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.flushing) this.flushing = this.flush();
    });
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.deps.maxBatch ?? 500);
        const updated = await this.store(batch.map((b) => b.item));
        for (const b of batch) b.done(updated?.has(b.item.deliveryId) ?? false);
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async store(items: FinishItem[]): Promise<Set<string> | undefined> {
    const sleep = this.deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (let i = 0; ; i++) {
      try {
        return await this.deps.webhooks.finishAttempts(items);
      } catch (err) {
        const delay = RETRY_DELAYS_MS[i];
        if (delay === undefined) {
          this.deps.logger.error({ err, results: items.length }, 'webhook attempt results not stored; those deliveries are attempted again when their lease expires');
          return undefined;
        }
        this.deps.logger.warn({ err, results: items.length, retryInMs: delay }, 'storing webhook attempt results failed; retrying');
        await sleep(delay);
      }
    }
  }
}

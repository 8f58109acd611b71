export interface ConcurrencyLimiterOptions {
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Caps simultaneous requests for one mailbox. Outlook allows "Four concurrent requests" per app
 * and mailbox (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits); the
 * fifth is answered 429. A 429's Retry-After pauses every caller of the mailbox, not just the one
 * that was throttled, because the limit is shared.
 */
export class ConcurrencyLimiter {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  private pausedUntil = 0;
  private peakActive = 0;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    readonly max: number,
    options: ConcurrencyLimiterOptions = {},
  ) {
    if (!Number.isInteger(max) || max < 1) throw new Error('concurrency limit must be a positive integer');
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? realSleep;
  }

  /** Highest number of requests that ran at once (observability and tests). */
  get peak(): number {
    return this.peakActive;
  }

  get inFlight(): number {
    return this.active;
  }

  /** Nothing running, waiting or paused: a new limiter would behave the same (caches may drop this one). */
  atRest(): boolean {
    return this.active === 0 && this.waiters.length === 0 && this.pausedUntil <= this.now();
  }

  /** Holds back every new request of this mailbox for `ms` (a Retry-After). */
  pauseFor(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  async acquire(): Promise<() => void> {
    for (;;) {
      const wait = this.pausedUntil - this.now();
      if (wait > 0) await this.sleep(wait);
      if (this.active < this.max) break;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    this.active += 1;
    this.peakActive = Math.max(this.peakActive, this.active);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active -= 1;
      this.waiters.shift()?.();
    };
  }
}

import { Backoff } from '../../retry/backoff.js';

/**
 * Client-side quota budget for one mailbox, so the adapter stays under Gmail's per-user limit
 * instead of discovering it through 429s. Costs and limits are configuration (Gmail changed them
 * in May 2026, see provider-facts 1.6).
 */
export type GmailQuotaMethod =
  | 'messages.get'
  | 'messages.list'
  | 'messages.send'
  | 'messages.attachments.get'
  | 'history.list'
  | 'watch'
  | 'stop'
  | 'getProfile'
  | 'settings.sendAs.list';

export const GMAIL_METHOD_COSTS: Readonly<Record<GmailQuotaMethod, number>> = Object.freeze({
  'messages.get': 20,
  'messages.list': 5,
  'messages.send': 100,
  'messages.attachments.get': 20,
  'history.list': 2,
  watch: 100,
  stop: 50,
  getProfile: 1,
  'settings.sendAs.list': 1,
});

export interface GmailQuotaOptions {
  /** Google's per-user limit for the window (6,000/min for projects created since May 2026). */
  unitsPerWindow?: number;
  windowMs?: number;
  /**
   * Fraction of the limit this budget may use. Default 1: the accounting below is exact, so the
   * whole quota is usable; lower it only when another client shares the user's quota.
   */
  safetyFactor?: number;
  costs?: Partial<Record<GmailQuotaMethod, number>>;
  /**
   * How long past the window a call is remembered when its response time is unknown (a ticket
   * never settled). Default: 2% of the window, at least 250 ms.
   */
  expiryMarginMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Uniform in [0, 1): jitter of the rate-limit backoff (tests pin it). */
  random?: () => number;
}

/** Returned by take(): call settle() when the response (or failure) arrives. */
export interface QuotaTicket {
  settle(): void;
}

interface Spend {
  at: number;
  units: number;
  /** When the response arrived; until then the call is in flight. */
  doneAt: number | undefined;
}

/** After a 429 the usable share drops to this fraction… */
const PENALTY_FACTOR = 0.9;
const MIN_FACTOR = 0.5;
/** …and recovers by this fraction of the limit per window without another 429. */
const RECOVERY_PER_WINDOW = 0.1;
/**
 * A 429/403 rate limit without a Retry-After: "retry a failed request after one second, then
 * after two seconds, and then after four seconds … Start retry periods at least one second after
 * the error" (handle-errors), with full jitter so a user's mailboxes do not return together.
 */
const RATE_LIMIT_BACKOFF = { baseMs: 1000, capMs: 64_000, floorMs: 1000 };

/**
 * A sliding log of spend, exact against Google's rolling per-user window: a call counts from the
 * moment it is sent and is forgotten one window after its RESPONSE arrived (Google counted it at
 * some moment in between, so it has left Google's window by then too). That bound needs no fixed
 * safety share: in steady state the budget spends the whole limit, less one response latency per
 * window, and never more in any window (issue 12 target 6). Calls are served in order. A 429
 * (another client spent the user's quota) pauses the budget for the Retry-After and lowers the
 * usable share by 10%, recovering 10% per quiet window.
 */
export class GmailQuotaBudget {
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly marginMs: number;
  private readonly costs: Record<GmailQuotaMethod, number>;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private spent: Spend[] = [];
  private pausedUntil = 0;
  private factorAfterPenalty = 1;
  private penalizedAt = Number.NEGATIVE_INFINITY;
  /** Calls are served in order: a cheap call must not starve an expensive one. */
  private queue: Promise<unknown> = Promise.resolve();
  /** take() calls not yet granted. */
  private waiting = 0;
  /** Rate limits in a row without a successful call in between (the backoff exponent). */
  private rateLimitStreak = 0;
  private readonly backoff: Backoff;

  constructor(opts: GmailQuotaOptions = {}) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.marginMs = opts.expiryMarginMs ?? Math.max(250, Math.round(this.windowMs * 0.02));
    this.limit = Math.floor((opts.unitsPerWindow ?? 6000) * (opts.safetyFactor ?? 1));
    this.costs = { ...GMAIL_METHOD_COSTS, ...opts.costs };
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    if (this.limit <= 0) throw new Error('GmailQuotaBudget: unitsPerWindow * safetyFactor must be positive');
    this.backoff = new Backoff(RATE_LIMIT_BACKOFF, { random: opts.random, now: this.now });
  }

  /** Waits until `method` fits in the budget, then records its cost. Settle the ticket on response. */
  take(method: GmailQuotaMethod): Promise<QuotaTicket> {
    const cost = Math.min(this.costs[method], this.limit);
    this.waiting += 1;
    const turn = this.queue.then(() => this.waitFor(cost)).finally(() => (this.waiting -= 1));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  /**
   * Nothing waiting, nothing spent in the window, no pause and no 429 penalty left: a new budget
   * would behave the same, so a cache may drop this one.
   */
  atRest(): boolean {
    const now = this.now();
    if (this.waiting > 0 || this.pausedUntil > now || this.factor(now) < 1) return false;
    this.prune(now);
    return this.spent.length === 0;
  }

  /**
   * Google said the user is rate limited. With a Retry-After (header or the time in a sending
   * limit's message) that is the wait; without one the wait grows exponentially with jitter per
   * rate limit in a row (1 s, 2 s, 4 s … up to 64 s). The budget pauses for it; the caller is
   * told how long, so the job is re-queued for the same moment. Returns the wait in ms.
   */
  rateLimited(retryAfterMs: number | undefined): number {
    this.rateLimitStreak += 1;
    const wait = retryAfterMs ?? this.backoff.delayMs(this.rateLimitStreak);
    this.pauseFor(wait);
    return wait;
  }

  /** A call succeeded: the next rate limit starts the backoff from one second again. */
  succeeded(): void {
    this.rateLimitStreak = 0;
  }

  /** Honour a provider Retry-After: nothing is sent for this mailbox until it has passed. */
  pauseFor(ms: number): void {
    const now = this.now();
    this.pausedUntil = Math.max(this.pausedUntil, now + ms);
    this.factorAfterPenalty = Math.max(MIN_FACTOR, this.factor(now) * PENALTY_FACTOR);
    this.penalizedAt = now;
  }

  used(): number {
    this.prune(this.now());
    return this.spent.reduce((s, e) => s + e.units, 0);
  }

  /** Units this budget may spend per window right now (the limit, less any 429 penalty). */
  currentLimit(): number {
    return Math.max(1, Math.floor(this.limit * this.factor(this.now())));
  }

  private factor(now: number): number {
    if (this.factorAfterPenalty >= 1) return 1;
    const windows = Math.max(0, now - this.penalizedAt) / this.windowMs;
    return Math.min(1, this.factorAfterPenalty + RECOVERY_PER_WINDOW * Math.floor(windows));
  }

  private expiry(e: Spend): number {
    return e.doneAt !== undefined ? e.doneAt + this.windowMs : e.at + this.windowMs + this.marginMs;
  }

  private prune(now: number): void {
    if (this.spent.some((e) => this.expiry(e) <= now)) this.spent = this.spent.filter((e) => this.expiry(e) > now);
  }

  private async waitFor(cost: number): Promise<QuotaTicket> {
    for (;;) {
      const now = this.now();
      if (this.pausedUntil > now) {
        await this.sleep(this.pausedUntil - now);
        continue;
      }
      this.prune(now);
      const limit = Math.max(cost, this.currentLimit());
      const used = this.spent.reduce((s, e) => s + e.units, 0);
      if (used + cost <= limit) {
        const entry: Spend = { at: now, units: cost, doneAt: undefined };
        this.spent.push(entry);
        return {
          settle: () => {
            entry.doneAt ??= Math.max(entry.at, this.now());
          },
        };
      }
      // Sleep until enough spend has left the window.
      const byExpiry = [...this.spent].sort((a, b) => this.expiry(a) - this.expiry(b));
      let freed = 0;
      let wait = this.windowMs + this.marginMs;
      for (const e of byExpiry) {
        freed += e.units;
        if (used - freed + cost <= limit) {
          wait = this.expiry(e) - now + 1;
          break;
        }
      }
      await this.sleep(Math.max(1, wait));
    }
  }
}

/**
 * Client-side quota budget for one mailbox, so the adapter stays under Gmail's per-user limit
 * instead of discovering it through 429s. Rolling window of units; a call waits until its cost
 * fits. After a 429/403 rate limit the whole budget pauses for the Retry-After.
 * Costs and limits are configuration (Gmail changed them in May 2026, see provider-facts 1.6).
 */
export type GmailQuotaMethod =
  | 'messages.get'
  | 'messages.list'
  | 'messages.send'
  | 'messages.attachments.get'
  | 'history.list'
  | 'watch'
  | 'stop'
  | 'getProfile';

export const GMAIL_METHOD_COSTS: Readonly<Record<GmailQuotaMethod, number>> = Object.freeze({
  'messages.get': 20,
  'messages.list': 5,
  'messages.send': 100,
  'messages.attachments.get': 20,
  'history.list': 2,
  watch: 100,
  stop: 50,
  getProfile: 1,
});

export interface GmailQuotaOptions {
  /** Google's per-user limit for the window (6,000/min for projects created since May 2026). */
  unitsPerWindow?: number;
  windowMs?: number;
  /** Fraction of the limit this budget may use: other clients and clock skew need headroom. */
  safetyFactor?: number;
  costs?: Partial<Record<GmailQuotaMethod, number>>;
  /**
   * Spend is remembered this much longer than the window. Google counts a call when it arrives,
   * we count it when we send it; without the margin a whole burst "expires" here a little before
   * it expires at Google, and the refill lands on a still-full server window. Default: 2% of the
   * window, at least 250 ms.
   */
  expiryMarginMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class GmailQuotaBudget {
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly marginMs: number;
  private readonly costs: Record<GmailQuotaMethod, number>;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly spent: Array<{ at: number; units: number }> = [];
  private pausedUntil = 0;
  /** Calls are served in order: a cheap call must not starve an expensive one. */
  private queue: Promise<void> = Promise.resolve();

  constructor(opts: GmailQuotaOptions = {}) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.marginMs = opts.expiryMarginMs ?? Math.max(250, Math.round(this.windowMs * 0.02));
    this.limit = Math.floor((opts.unitsPerWindow ?? 6000) * (opts.safetyFactor ?? 0.9));
    this.costs = { ...GMAIL_METHOD_COSTS, ...opts.costs };
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    if (this.limit <= 0) throw new Error('GmailQuotaBudget: unitsPerWindow * safetyFactor must be positive');
  }

  /** Waits until `method` fits in the budget, then records its cost. */
  take(method: GmailQuotaMethod): Promise<void> {
    const cost = Math.min(this.costs[method], this.limit);
    const turn = this.queue.then(() => this.waitFor(cost));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  /** Honour a provider Retry-After: nothing is sent for this mailbox until it has passed. */
  pauseFor(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
  }

  used(): number {
    this.prune();
    return this.spent.reduce((s, e) => s + e.units, 0);
  }

  private prune(): void {
    const cutoff = this.now() - this.windowMs - this.marginMs;
    while (this.spent.length > 0 && this.spent[0]!.at <= cutoff) this.spent.shift();
  }

  private async waitFor(cost: number): Promise<void> {
    for (;;) {
      const now = this.now();
      if (this.pausedUntil > now) {
        await this.sleep(this.pausedUntil - now);
        continue;
      }
      this.prune();
      const used = this.spent.reduce((s, e) => s + e.units, 0);
      if (used + cost <= this.limit) {
        this.spent.push({ at: now, units: cost });
        return;
      }
      let freed = 0;
      let wait = this.windowMs + this.marginMs;
      for (const e of this.spent) {
        freed += e.units;
        if (used - freed + cost <= this.limit) {
          wait = e.at + this.windowMs + this.marginMs - now + 1;
          break;
        }
      }
      await this.sleep(Math.max(1, wait));
    }
  }
}

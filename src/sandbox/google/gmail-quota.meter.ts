/**
 * Per-user quota as Gmail enforces it: a rolling per-minute budget of "quota units", each method
 * costing a fixed number of units (https://developers.google.com/workspace/gmail/api/reference/quota).
 * Defaults follow the post-May-2026 table: 6,000 units/user/min, messages.get 20,
 * attachments.get 20. Everything is configuration because Google changes it.
 */
import { GMAIL_METHOD_COSTS, type GmailQuotaMethod } from '../../providers/google/gmail-quota.js';

// One table of Google's documented per-method costs, shared with the connector's client-side
// budget: the stand-in enforces what the adapter budgets for (each side still takes overrides).
export type GmailMethod = GmailQuotaMethod;
export const DEFAULT_GMAIL_METHOD_COSTS: Readonly<Record<GmailMethod, number>> = GMAIL_METHOD_COSTS;

export interface QuotaConfig {
  unitsPerWindow: number;
  windowMs: number;
  costs: Record<GmailMethod, number>;
  /** Google answers per-user overload with 429 rateLimitExceeded or 403 userRateLimitExceeded. */
  overLimitResponse: '429' | '403';
}

export const DEFAULT_QUOTA_CONFIG: QuotaConfig = {
  unitsPerWindow: 6000,
  windowMs: 60_000,
  costs: { ...DEFAULT_GMAIL_METHOD_COSTS },
  overLimitResponse: '429',
};

export type QuotaDecision = { ok: true } | { ok: false; retryAfterMs: number };

/** One quota decision as the stand-in made it (benches count violations and the share used). */
export interface QuotaCharge {
  user: string;
  method: GmailMethod;
  units: number;
  at: number;
  ok: boolean;
}

export class GmailQuotaMeter {
  private readonly spent = new Map<string, Array<{ at: number; units: number }>>();
  private readonly observers = new Set<(c: QuotaCharge) => void>();

  constructor(
    public config: QuotaConfig,
    private readonly now: () => number,
  ) {}

  /** Calls `fn` for every charge decision from now on; returns the unsubscribe. */
  observe(fn: (c: QuotaCharge) => void): () => void {
    this.observers.add(fn);
    return () => this.observers.delete(fn);
  }

  charge(user: string, method: GmailMethod): QuotaDecision {
    const decision = this.decide(user, method);
    if (this.observers.size > 0) {
      const c: QuotaCharge = { user, method, units: this.config.costs[method], at: this.now(), ok: decision.ok };
      for (const fn of this.observers) fn(c);
    }
    return decision;
  }

  private decide(user: string, method: GmailMethod): QuotaDecision {
    const cost = this.config.costs[method];
    const log = this.prune(user);
    const used = log.reduce((s, e) => s + e.units, 0);
    if (used + cost > this.config.unitsPerWindow) {
      // Time until enough of the oldest spend leaves the window.
      let freed = 0;
      let retryAt = this.now() + this.config.windowMs;
      for (const e of log) {
        freed += e.units;
        if (used - freed + cost <= this.config.unitsPerWindow) {
          retryAt = e.at + this.config.windowMs;
          break;
        }
      }
      return { ok: false, retryAfterMs: Math.max(1, retryAt - this.now()) };
    }
    log.push({ at: this.now(), units: cost });
    return { ok: true };
  }

  used(user: string): number {
    return this.prune(user).reduce((s, e) => s + e.units, 0);
  }

  usage(): Record<string, number> {
    return Object.fromEntries([...this.spent.keys()].map((u) => [u, this.used(u)]));
  }

  private prune(user: string): Array<{ at: number; units: number }> {
    const cutoff = this.now() - this.config.windowMs;
    const log = (this.spent.get(user) ?? []).filter((e) => e.at > cutoff);
    this.spent.set(user, log);
    return log;
  }
}

/**
 * The one backoff formula: exponential with full jitter ("Exponential Backoff And Jitter", AWS
 * Architecture Blog): attempt n waits a uniformly random time in [0, min(cap, base × 2^(n−1))).
 * Full jitter spreads retries of many mailboxes hitting the same limit instead of having them
 * return in lockstep. `floorMs` keeps a minimum (Google: "Start retry periods at least one second
 * after the error"). Randomness and clock are injected so tests pin both.
 */
export interface BackoffPolicy {
  /** Ceiling of the first attempt's delay. */
  baseMs: number;
  /** No delay exceeds this. */
  capMs: number;
  /** No delay is below this (default 0). Applied after jitter, never above `capMs`. */
  floorMs?: number;
  /**
   * `full` (default): uniform in [0, ceiling). `none`: the ceiling itself (for a reconnect loop
   * whose only client is this process, where spreading buys nothing).
   */
  jitter?: 'full' | 'none';
}

export interface BackoffDeps {
  /** Uniform in [0, 1), e.g. Math.random. */
  random?: () => number;
  /** Epoch ms, for `retryAt`. */
  now?: () => number;
}

export class Backoff {
  readonly #random: () => number;
  readonly #now: () => number;

  constructor(
    readonly policy: BackoffPolicy,
    deps: BackoffDeps = {},
  ) {
    if (!(policy.baseMs > 0) || !(policy.capMs >= policy.baseMs)) throw new RangeError('backoff needs 0 < baseMs <= capMs');
    this.#random = deps.random ?? Math.random;
    this.#now = deps.now ?? Date.now;
  }

  /** Ceiling of attempt `attempt` (1-based): base × 2^(attempt−1), capped. */
  ceilingMs(attempt: number): number {
    const n = Math.max(1, Math.floor(attempt));
    // 2^40 × any sane base is far past any cap; stop doubling before floats lose integers.
    return Math.min(this.policy.capMs, this.policy.baseMs * 2 ** Math.min(n - 1, 40));
  }

  /** Delay before retry number `attempt` (1-based: the wait after the first failure is attempt 1). */
  delayMs(attempt: number): number {
    const ceiling = this.ceilingMs(attempt);
    const jittered = this.policy.jitter === 'none' ? ceiling : Math.floor(this.#random() * ceiling);
    return Math.min(this.policy.capMs, Math.max(this.policy.floorMs ?? 0, jittered));
  }

  /** The delay, or a provider's requested wait (Retry-After) when that is longer. */
  delayOrRetryAfterMs(attempt: number, retryAfterMs: number | undefined): number {
    const own = this.delayMs(attempt);
    return retryAfterMs !== undefined && retryAfterMs > own ? retryAfterMs : own;
  }

  /** When retry number `attempt` is due, on the injected clock. */
  retryAt(attempt: number): Date {
    return new Date(this.#now() + this.delayMs(attempt));
  }
}

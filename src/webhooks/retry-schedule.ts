/**
 * What to do after a webhook delivery attempt. Pure: the clock and randomness come in.
 *
 * Default schedule is Svix's (https://docs.svix.com/retries, provider-facts §6.2): after the
 * immediate first attempt, retry after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight attempts
 * over about 27.5 h — then the message is dead for that endpoint. Outcome rules from the
 * Standard Webhooks sender guidance (§6.1):
 * - 2xx → delivered;
 * - 410 Gone → "Sender should disable the webhook endpoint";
 * - 429/502/503/504 are throttling: a Retry-After longer than our own delay wins;
 * - everything else, 3xx and timeouts included, is retried;
 * - `webhook-delivery: abort-message` (Svix) stops retries of this message.
 * Jitter (±10 % by default) spreads the retries of a burst that failed together.
 */

export const SVIX_RETRY_DELAYS_MS: readonly number[] = Object.freeze([
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
]);

const THROTTLE_STATUSES = new Set([429, 502, 503, 504]);

/** The part of a send result the schedule reads (a `WebhookSendResult` fits). */
export interface AttemptOutcome {
  ok: boolean;
  status?: number;
  retryAfterMs?: number;
  abortMessage?: boolean;
}

export type NextAction =
  | { kind: 'delivered' }
  | { kind: 'retry'; at: Date; delayMs: number }
  | { kind: 'dead'; reason: 'exhausted' | 'aborted_by_receiver' }
  | { kind: 'disable_endpoint' };

export interface RetrySchedule {
  /** Delay before retry n+1 after attempt n (index n-1). Length = number of retries. */
  delaysMs: readonly number[];
  /** Fraction of the delay to jitter by, both ways. Default 0.1. */
  jitter: number;
  /** Upper bound for an honoured Retry-After, so a hostile header cannot park a message forever. Default 24 h. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_SCHEDULE: RetrySchedule = Object.freeze({
  delaysMs: SVIX_RETRY_DELAYS_MS,
  jitter: 0.1,
  maxRetryAfterMs: 24 * 3_600_000,
});

export interface NextActionInput {
  /** 1-based number of the attempt that just finished (1 = the immediate first attempt). */
  attempt: number;
  result: AttemptOutcome;
  now: Date;
  /** Uniform in [0, 1), e.g. Math.random. */
  random: () => number;
  schedule?: Partial<RetrySchedule>;
}

export function nextAction(input: NextActionInput): NextAction {
  const { attempt, result, now } = input;
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError('attempt must be an integer >= 1');
  const schedule: RetrySchedule = { ...DEFAULT_RETRY_SCHEDULE, ...input.schedule };

  if (result.ok && result.status !== undefined && result.status >= 200 && result.status < 300) {
    return { kind: 'delivered' };
  }
  if (result.status === 410) return { kind: 'disable_endpoint' };
  if (result.abortMessage) return { kind: 'dead', reason: 'aborted_by_receiver' };

  const base = schedule.delaysMs[attempt - 1];
  if (base === undefined) return { kind: 'dead', reason: 'exhausted' };

  const spread = Math.min(Math.max(schedule.jitter, 0), 1);
  let delayMs = Math.round(base * (1 + spread * (2 * input.random() - 1)));
  if (
    result.status !== undefined &&
    THROTTLE_STATUSES.has(result.status) &&
    result.retryAfterMs !== undefined &&
    result.retryAfterMs > delayMs
  ) {
    delayMs = Math.min(result.retryAfterMs, schedule.maxRetryAfterMs);
  }
  delayMs = Math.max(0, delayMs);
  return { kind: 'retry', at: new Date(now.getTime() + delayMs), delayMs };
}

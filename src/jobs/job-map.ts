/**
 * Every job this service runs, by name, with its payload type. Payloads carry ids only — never
 * mail content, tokens or secrets (pg-boss stores them in plaintext).
 */
export interface JobMap {
  /** Incremental sync (or backfill / window resync when the cursor says so) of one mailbox. */
  'sync.mailbox': { mailboxId: string; reason: 'connect' | 'push' | 'poll' | 'manual' | 'resync' | 'lifecycle' };
  /** Periodic: enqueue a poll for mailboxes with no push for a while; renew watches/subscriptions. */
  'sync.poll': Record<string, never>;
  'sync.renew-watches': Record<string, never>;
  /** Retry scanning attachments whose verdict is pending/error. */
  'scan.attachments': { attachmentIds?: string[] };
  /** Fan an outbox event out into one delivery per matching endpoint. */
  'webhooks.dispatch': { eventId: string };
  'webhooks.deliver': { deliveryId: string };
  /** Periodic: pick up outbox events that were not dispatched (crash between commit and enqueue). */
  'webhooks.sweep': Record<string, never>;
  'send.outbound': { outboundId: string };
  'lifecycle.purge': { purgeId: string };
  'lifecycle.revoke-retry': { purgeId: string };
  /** Periodic: purge mailboxes left in reauth_required past the grace period. */
  'lifecycle.reauth-expiry': Record<string, never>;
  'retention.run': Record<string, never>;
}

export type JobName = keyof JobMap;

/** What a handler reports instead of throwing for expected outcomes (immich style). */
export type JobOutcome =
  | { status: 'done'; detail?: Record<string, unknown> }
  | { status: 'skipped'; reason: string }
  /** Try again later (a rate limit, a transient provider error); `afterMs` overrides the backoff. */
  | { status: 'retry'; reason: string; afterMs?: number }
  | { status: 'failed'; reason: string };

export type JobHandler<N extends JobName> = (payload: JobMap[N], ctx: { jobId: string; attempt: number }) => Promise<JobOutcome>;

export interface EnqueueOptions {
  /**
   * pg-boss singletonKey. Our queues use pg-boss's standard policy, where the key does NOT
   * de-duplicate; it labels jobs so `cancelByKey` can cancel a mailbox's queued work (purge).
   * One-at-a-time per mailbox is enforced by the handlers (Postgres advisory locks).
   */
  singletonKey?: string;
  startAfter?: Date | number;
  retryLimit?: number;
  retryDelaySeconds?: number;
  retryBackoff?: boolean;
  priority?: number;
}

/**
 * Every job this service runs, by name, with its payload type. Payloads carry ids only — never
 * mail content, tokens or secrets (pg-boss stores them in plaintext).
 */
export interface JobMap {
  /**
   * Incremental sync (or backfill / window resync when the cursor says so) of one mailbox.
   * `renew`: its watch/subscription renewal is due (the sync renews it, then fetches changes).
   */
  'sync.mailbox': { mailboxId: string; reason: 'connect' | 'push' | 'poll' | 'renew' | 'manual' | 'resync' | 'lifecycle' };
  /** Periodic (every minute): queue syncs where push is unhealthy (sync-scheduler.service.ts); renew watches/subscriptions. */
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
  /** Periodic (daily): the restriction probe of every active organization install with a probe address. */
  'organizations.access-check': Record<string, never>;
}

export type JobName = keyof JobMap;

/**
 * How each job kind is queued.
 *  - `stately` (pg-boss 10 policy, keyed by singletonKey): at most one queued and one running job
 *    per key. `sync.mailbox` is keyed by mailbox, so any number of push notifications, polls and
 *    resync requests for one mailbox coalesce into one waiting sync (it reads from the stored
 *    cursor, so it covers them all); the queue's fetch skips a mailbox whose sync is running, so a
 *    busy mailbox never delays the others. A provider backoff (429/503) defers the mailbox's
 *    waiting job too, so new notifications cannot bypass it.
 *  - `standard`: every enqueue is its own job (sends, purges, deliveries: each carries its own id).
 * Every kind has the same short expiry (JOB_EXPIRE_SECONDS, default 45 s) plus a heartbeat while
 * it runs, so a long job lives as long as its worker and a dead worker's job is retried within
 * `deadWorkerRecoverySeconds` (job-queue.ts): 45 + 10 + 10 + 2 = 67 s with the defaults.
 */
export const JOB_KINDS: Record<JobName, { policy: 'standard' | 'stately' }> = {
  'sync.mailbox': { policy: 'stately' },
  'sync.poll': { policy: 'standard' },
  'sync.renew-watches': { policy: 'standard' },
  'scan.attachments': { policy: 'standard' },
  'webhooks.dispatch': { policy: 'standard' },
  'webhooks.deliver': { policy: 'standard' },
  'webhooks.sweep': { policy: 'standard' },
  'send.outbound': { policy: 'standard' },
  'lifecycle.purge': { policy: 'standard' },
  'lifecycle.revoke-retry': { policy: 'standard' },
  'lifecycle.reauth-expiry': { policy: 'standard' },
  'retention.run': { policy: 'standard' },
  'organizations.access-check': { policy: 'standard' },
};

/** Priorities of `sync.mailbox` (higher runs first): new mail beats the periodic polls and renewals. */
export const SYNC_PRIORITY = { push: 10, manual: 10, connect: 5, poll: 0 } as const;

/** The priority a `sync.mailbox` request of this reason is queued with. */
export function syncPriority(reason: JobMap['sync.mailbox']['reason']): number {
  if (reason === 'poll' || reason === 'renew') return SYNC_PRIORITY.poll;
  if (reason === 'connect') return SYNC_PRIORITY.connect;
  return reason === 'push' || reason === 'lifecycle' ? SYNC_PRIORITY.push : SYNC_PRIORITY.manual;
}

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
   * pg-boss singletonKey. On a `stately` queue (JOB_KINDS) it coalesces: one queued and one
   * running job per key. On `standard` queues it does NOT de-duplicate; it labels jobs so
   * `cancelByKey` can cancel a mailbox's queued work (purge). The sync handler still takes a
   * per-mailbox lock as a second line of defence.
   */
  singletonKey?: string;
  startAfter?: Date | number;
  retryLimit?: number;
  retryDelaySeconds?: number;
  retryBackoff?: boolean;
  priority?: number;
}

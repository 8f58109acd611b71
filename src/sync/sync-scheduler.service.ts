import type { JobOutcome } from '../jobs/job-map.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { SyncStateRepository } from '../storage/sync-state.repository.js';
import { requestMailboxSync } from './sync-request.js';

/**
 * A mailbox whose push is healthy is synced by its notifications; it is polled only after this
 * long with neither a sync nor a notification (less up to RECONCILE_JITTER of it, i.e. 24–25 h): a
 * rare reconciliation under notifications that "may be delayed or dropped" (provider-facts §1.1).
 * A reconciliation that finds unannounced mail marks push as failing (`pushMissedAt`), and the
 * mailbox is polled every interval from then on until a notification arrives.
 * Why a day: a no-op sync costs about 33 ms of CPU (service + Postgres, docs/benchmarks.md, Idle),
 * so reconciling 10,000 mailboxes daily costs 10,000 × 33 ms / 86,400 s ≈ 0.4 % of a core, hourly
 * ≈ 9 %. Why just over a day: a Gmail watch is renewed 0.9–1 day after the last renewal, by a
 * sync (watch-renewal.ts), so a Gmail mailbox is never silent that long and the reconciliation
 * costs nothing more for it; a Graph mailbox (subscription renewed every ~5 days) gets one a day.
 */
export const RECONCILE_MS = 25 * 3_600_000;
export const RECONCILE_JITTER = 0.04;
/** A mailbox without working push is polled every POLL_INTERVAL_SECONDS less up to this share (jitter). */
export const POLL_JITTER = 0.2;

/**
 * Microsoft 365 shared mailboxes (access `shared_member`) can have no push: the member's delegated
 * Mail.Read.Shared permission does not support change notifications. They are polled on their own,
 * short interval (SHARED_MAILBOX_POLL_SECONDS, default 60 s, less up to POLL_JITTER), whatever
 * their push columns say, and get no renewals. With sync.poll running every minute, new mail shows
 * up 1–2 minutes after it arrived (docs/sync.md).
 */
export const DEFAULT_SHARED_POLL_SECONDS = 60;

/** Mailboxes queued per poll run (it runs every minute; coalescing keeps one waiting sync per mailbox). */
const POLL_BATCH = 2_000;

/**
 * The two periodic sync jobs. Neither talks to a provider itself: each queues `sync.mailbox` for
 * the mailboxes that need it, and the sync run (under its per-mailbox lock) starts or renews the
 * watch/subscription and fetches changes. That keeps one code path — and one lock — per mailbox.
 *  - `sync.poll` (every minute) polls only where push is unhealthy: mailboxes with no live Gmail
 *    watch / Graph subscription, or whose push missed mail (`pushMissedAt`, no notification
 *    since), once neither a sync, a notification nor an attempt happened for
 *    POLL_INTERVAL_SECONDS (less up to POLL_JITTER). Mailboxes with healthy push only after
 *    RECONCILE_MS of silence (less up to RECONCILE_JITTER). Polls have the lowest priority.
 *    The same run queues the renewals that came due: watches/subscriptions whose renewal time
 *    (`pushRenewAt`, computed from the expiration the provider returned, with jitter:
 *    watch-renewal.ts) has come, that lapsed, or that were never started.
 *  - `sync.renew-watches` (hourly): the same renewal selection once more.
 */
export class SyncSchedulerService {
  constructor(
    private readonly d: {
      state: SyncStateRepository;
      jobs: Pick<JobQueue, 'enqueue'>;
      clock: () => Date;
      pollIntervalSeconds: number;
      /** SHARED_MAILBOX_POLL_SECONDS: a Microsoft 365 shared mailbox (no push) is polled this often, less up to POLL_JITTER. */
      sharedPollIntervalSeconds?: number;
      googleWatchEnabled: boolean;
    },
  ) {}

  /** `sync.poll` (every minute): polls where push is unhealthy, reconciliations, and the renewals that came due. */
  async poll(): Promise<JobOutcome> {
    const now = this.d.clock();
    const ids = await this.d.state.listPollDueByPushHealth(
      {
        now,
        intervalMs: this.d.pollIntervalSeconds * 1000,
        sharedIntervalMs: (this.d.sharedPollIntervalSeconds ?? DEFAULT_SHARED_POLL_SECONDS) * 1000,
        intervalJitter: POLL_JITTER,
        reconcileMs: RECONCILE_MS,
        reconcileJitter: RECONCILE_JITTER,
        googleWatchEnabled: this.d.googleWatchEnabled,
      },
      POLL_BATCH,
    );
    for (const id of ids) await requestMailboxSync(this.d.jobs, id, 'poll');
    // Renewal times are jittered per mailbox (watch-renewal.ts): taking them every minute keeps
    // them spread, where the hourly `sync.renew-watches` alone would renew an hour's worth at once.
    const renewals = await this.#queueRenewals(now);
    return { status: 'done', detail: { queued: ids.length, renewals } };
  }

  /** `sync.renew-watches` (hourly): a second look for due renewals (sync.poll takes them every minute). */
  async renewWatches(): Promise<JobOutcome> {
    return { status: 'done', detail: { queued: await this.#queueRenewals(this.d.clock()) } };
  }

  async #queueRenewals(now: Date): Promise<number> {
    let afterId: string | undefined;
    let queued = 0;
    for (;;) {
      const due = await this.d.state.listRenewalDue({ now, google: this.d.googleWatchEnabled }, afterId, 200);
      for (const m of due) {
        await requestMailboxSync(this.d.jobs, m.id, 'renew');
        queued++;
      }
      if (due.length < 200) return queued;
      afterId = due[due.length - 1]!.id;
    }
  }
}

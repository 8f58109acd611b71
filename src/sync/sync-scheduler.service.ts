import type { JobOutcome } from '../jobs/job-map.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { SyncStateRepository } from '../storage/sync-state.repository.js';
import { requestMailboxSync } from './sync-request.js';

/** A mailbox with healthy push is polled this many poll intervals apart (1 h with the default 300 s). */
export const HEALTHY_PUSH_POLL_FACTOR = 12;

/** Mailboxes queued per poll run (it runs every minute; coalescing keeps one waiting sync per mailbox). */
const POLL_BATCH = 2_000;

/**
 * The two periodic sync jobs. Neither talks to a provider itself: each queues `sync.mailbox` for
 * the mailboxes that need it, and the sync run (under its per-mailbox lock) starts or renews the
 * watch/subscription and fetches changes. That keeps one code path — and one lock — per mailbox.
 *  - `sync.poll`: mailboxes whose push is not working (no live Gmail watch / Graph subscription)
 *    with neither a sync nor a push for POLL_INTERVAL_SECONDS; mailboxes with healthy push only
 *    after HEALTHY_PUSH_POLL_FACTOR intervals, as the floor under notifications that "may be
 *    delayed or dropped" (provider-facts §1.1). Polls have the lowest priority.
 *  - `sync.renew-watches`: watches/subscriptions whose renewal time (`pushRenewAt`, computed
 *    from the expiration the provider returned, with jitter: watch-renewal.ts) has come, that
 *    lapsed, or that were never started.
 */
export class SyncSchedulerService {
  constructor(
    private readonly d: {
      state: SyncStateRepository;
      jobs: Pick<JobQueue, 'enqueue'>;
      clock: () => Date;
      pollIntervalSeconds: number;
      googleWatchEnabled: boolean;
    },
  ) {}

  async poll(): Promise<JobOutcome> {
    const now = this.d.clock();
    const interval = this.d.pollIntervalSeconds * 1000;
    const ids = await this.d.state.listPollDueByPushHealth(
      { now, before: new Date(now.getTime() - interval), healthyBefore: new Date(now.getTime() - HEALTHY_PUSH_POLL_FACTOR * interval), googleWatchEnabled: this.d.googleWatchEnabled },
      POLL_BATCH,
    );
    for (const id of ids) await requestMailboxSync(this.d.jobs, id, 'poll');
    return { status: 'done', detail: { queued: ids.length } };
  }

  async renewWatches(): Promise<JobOutcome> {
    const now = this.d.clock();
    let afterId: string | undefined;
    let queued = 0;
    for (;;) {
      const due = await this.d.state.listRenewalDue({ now, google: this.d.googleWatchEnabled }, afterId, 200);
      for (const m of due) {
        await requestMailboxSync(this.d.jobs, m.id, 'poll');
        queued++;
      }
      if (due.length < 200) break;
      afterId = due[due.length - 1]!.id;
    }
    return { status: 'done', detail: { queued } };
  }
}

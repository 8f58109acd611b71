import type { JobOutcome } from '../jobs/job-map.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { SyncStateRepository } from '../storage/sync-state.repository.js';
import { requestMailboxSync } from './sync-request.js';

const DAY = 86_400_000;

/**
 * The two periodic sync jobs. Neither talks to a provider itself: each queues `sync.mailbox` for
 * the mailboxes that need it, and the sync run (under its per-mailbox lock) starts or renews the
 * watch/subscription and fetches changes. That keeps one code path — and one lock — per mailbox.
 *  - `sync.poll`: mailboxes with neither a sync nor a push for POLL_INTERVAL_SECONDS. Push is
 *    best effort ("may be delayed or dropped", provider-facts §1.1), polling is the floor.
 *  - `sync.renew-watches`: Gmail watches older than a day ("We recommend calling watch once per
 *    day") and Graph subscriptions within two days of expiry.
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
    const before = new Date(this.d.clock().getTime() - this.d.pollIntervalSeconds * 1000);
    const ids = await this.d.state.listPollDue(before, 500);
    for (const id of ids) await requestMailboxSync(this.d.jobs, id, 'poll');
    return { status: 'done', detail: { queued: ids.length } };
  }

  async renewWatches(): Promise<JobOutcome> {
    const now = this.d.clock().getTime();
    let afterId: string | undefined;
    let queued = 0;
    for (;;) {
      const due = await this.d.state.listRenewalDue(
        { googleBefore: this.d.googleWatchEnabled ? new Date(now + 6 * DAY) : null, microsoftBefore: new Date(now + 2 * DAY) },
        afterId,
        200,
      );
      for (const m of due) await requestMailboxSync(this.d.jobs, m.id, 'poll');
      queued += due.length;
      if (due.length < 200) break;
      afterId = due[due.length - 1]!.id;
    }
    return { status: 'done', detail: { queued } };
  }
}

import { syncPriority, type JobMap } from '../jobs/job-map.js';
import type { JobQueue } from '../jobs/job-queue.js';

/**
 * Ask for a sync of one mailbox. `sync.mailbox` is a coalescing queue keyed by mailbox: when a
 * sync is already waiting this adds nothing (the waiting one reads from the stored cursor, so it
 * covers this request too) and only raises its priority — unless a provider backoff deferred it.
 * Returns true when a sync is waiting or was queued.
 */
export async function requestMailboxSync(jobs: Pick<JobQueue, 'enqueue'>, mailboxId: string, reason: JobMap['sync.mailbox']['reason']): Promise<boolean> {
  await jobs.enqueue('sync.mailbox', { mailboxId, reason }, { singletonKey: mailboxId, priority: syncPriority(reason) });
  return true;
}

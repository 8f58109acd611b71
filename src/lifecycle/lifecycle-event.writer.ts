import type { OutboxService } from '../events/outbox.service.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { Logger } from '../observability/logger.js';
import type { DbTransaction } from '../storage/database.js';

type Tx = DbTransaction;

/** Event types this room emits. `mailbox.break_glass_opened` extends CONTRACT's list (docs/data-lifecycle.md). */
export type LifecycleEventType = 'mailbox.disconnected' | 'mailbox.purged' | 'mailbox.reauth_required' | 'mailbox.break_glass_opened';

/**
 * Flat, non-content facts (the outbox's `dataEnc` contract: scalars, at most 2 KB), so the
 * webhooks payload builder can merge them into the event's `data`.
 */
export type EventFacts = Record<string, string | number | boolean | null>;

export interface PendingEvent {
  eventId: string;
}

/**
 * Writes lifecycle events into the transactional outbox (inside the caller's transaction) and,
 * once that transaction committed, asks the webhooks room to dispatch them. A lost enqueue is
 * harmless: the webhooks sweep picks up undispatched rows.
 *
 * The event data (ids, statuses, counts; never mail content) is sealed with the TENANT DEK: it
 * has to outlive the mailbox DEK, which a purge destroys before the event is delivered.
 */
export class LifecycleEventWriter {
  constructor(
    private readonly outbox: Pick<OutboxService, 'appendEvent'>,
    private readonly jobs: Pick<JobQueue, 'enqueue'>,
    private readonly logger: Logger,
    private readonly clock: () => Date,
  ) {}

  /**
   * `seq`: pass one when the mailbox row is about to disappear in the same transaction
   * (`mailbox.purged`); otherwise the mailbox's counter is advanced.
   */
  async append(
    tx: Tx,
    input: { tenantId: string; mailboxId: string; type: LifecycleEventType; refs: { purgeId?: string }; data: EventFacts; seq?: bigint },
  ): Promise<PendingEvent> {
    // The shared outbox writer validates refs/data, seals data with the tenant key and hands out
    // the mailbox sequence (or takes the given one when the mailbox row is already gone).
    const appended = await this.outbox.appendEvent(tx, {
      tenantId: input.tenantId,
      mailboxId: input.mailboxId,
      type: input.type,
      refs: input.refs,
      data: input.data,
      ...(input.seq !== undefined ? { sequence: input.seq } : {}),
    });
    return { eventId: appended.id };
  }

  /** Call after the transaction that appended `events` committed. */
  async dispatch(events: PendingEvent[]): Promise<void> {
    for (const e of events) {
      await this.jobs.enqueue('webhooks.dispatch', { eventId: e.eventId }, { singletonKey: e.eventId }).catch((err: unknown) => {
        this.logger.warn({ err, eventId: e.eventId }, 'could not enqueue event dispatch; the sweep will pick it up');
      });
    }
  }
}

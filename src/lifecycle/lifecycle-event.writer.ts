import type { DataKeyService } from '../crypto/data-key.service.js';
import { EVENT_TYPES, type EventType } from '../events/event-types.js';
import type { OutboxService } from '../events/outbox.service.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { Logger } from '../observability/logger.js';
import type { Prisma } from '../storage/database.js';
import { newId } from '../storage/ids.js';
import type { PurgeEventsRepository } from '../storage/purge-events.repository.js';

type Tx = Prisma.TransactionClient;

/** Event types this room emits. `mailbox.break_glass_opened` extends CONTRACT's list (docs/data-lifecycle.md). */
export type LifecycleEventType = 'mailbox.disconnected' | 'mailbox.purged' | 'mailbox.reauth_required' | 'mailbox.break_glass_opened';

/**
 * Flat, non-content facts (the outbox's `dataEnc` contract: scalars, at most 2 KB), so the
 * webhooks payload builder can merge them into the event's `data`.
 */
export type EventFacts = Record<string, string | number | boolean | null>;

export const OUTBOX_DATA_AAD = (eventId: string) => ({ table: 'outbox_events', column: 'dataEnc', rowId: eventId }) as const;

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
    private readonly repo: PurgeEventsRepository,
    private readonly outbox: Pick<OutboxService, 'appendEvent'>,
    private readonly dataKeys: DataKeyService,
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
    if (isOutboxType(input.type) && input.seq === undefined) {
      // The shared outbox writer validates refs/data and hands out the mailbox sequence.
      const appended = await this.outbox.appendEvent(tx, { tenantId: input.tenantId, mailboxId: input.mailboxId, type: input.type, refs: input.refs, data: input.data });
      return { eventId: appended.id };
    }
    // Types the outbox does not know yet (`mailbox.break_glass_opened`), or an event for a mailbox
    // row that is already gone: written here, in the same table and format.
    const eventId = newId('event');
    const seq = input.seq ?? (await this.repo.nextMailboxSeq(tx, input.mailboxId)) ?? 1n;
    if (Buffer.byteLength(JSON.stringify(input.data)) > 2048) throw new Error(`${input.type} event data exceeds 2 KB`);
    const dataEnc = await this.dataKeys.encryptFor({ type: 'tenant', id: input.tenantId }, JSON.stringify(input.data), OUTBOX_DATA_AAD(eventId));
    await this.repo.insert(tx, { id: eventId, tenantId: input.tenantId, mailboxId: input.mailboxId, type: input.type, seq, refs: input.refs, dataEnc, createdAt: this.clock() });
    return { eventId };
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

const OUTBOX_TYPES: ReadonlySet<string> = new Set(EVENT_TYPES);

function isOutboxType(type: string): type is EventType {
  return OUTBOX_TYPES.has(type);
}

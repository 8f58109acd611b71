import type { DataKeyService } from '../crypto/data-key.service.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { Logger } from '../observability/logger.js';
import type { DbTransaction } from '../storage/database.js';
import type { SqlTransaction } from '../storage/sql-executor.port.js';
import { newId } from '../storage/ids.js';
import type { OutboxRepository } from '../storage/outbox.repository.js';
import { eventsCommittedHook } from './events-committed.js';
import { eventDataSchema, eventRefsSchema, eventTypeSchema, REQUIRED_REFS, type EventData, type EventRefs, type EventType } from './event-types.js';

export interface AppendEventInput {
  tenantId: string;
  /** The mailbox the event is about; null only for tenant-level events. */
  mailboxId: string | null;
  type: EventType;
  /** Ids only: the payload is built from them at send time (see payload-builder.ts). */
  refs?: EventRefs;
  /** Non-content facts that must survive a mailbox purge (reason, trigger, purgeId…). */
  data?: EventData;
  /**
   * Only for an event about a mailbox whose row no longer exists (the last event of a purge that
   * resumed after the row was deleted): there is no counter left to advance, so the caller says
   * which sequence number the event takes.
   */
  sequence?: bigint;
}

export interface AppendedEvent {
  id: string;
  /** Per-mailbox (or per-tenant, without a mailbox) order; consumers sort by it. */
  sequence: bigint;
}

/** AAD of `outbox_events.dataEnc` (tenant DEK). */
export const EVENT_DATA_AAD = (eventId: string) => ({ table: 'outbox_events', column: 'dataEnc', rowId: eventId }) as const;

export class OutboxError extends Error {
  override readonly name = 'OutboxError';
}

/**
 * The transactional outbox writer. Every room that emits an event calls `appendEvent` inside the
 * same Prisma transaction that changes the state the event describes, so an event exists iff the
 * change committed. After commit, call `notifyEventsCommitted` to dispatch promptly; if that
 * never happens (crash in between) the periodic `webhooks.sweep` dispatches it.
 */
export class OutboxService {
  constructor(
    private readonly deps: {
      repo: OutboxRepository;
      dataKeys: DataKeyService;
      clock: () => Date;
    },
  ) {}

  async appendEvent(tx: DbTransaction, input: AppendEventInput): Promise<AppendedEvent> {
    const type = eventTypeSchema.parse(input.type);
    const refs = eventRefsSchema.parse(input.refs ?? {});
    for (const key of REQUIRED_REFS[type]) {
      if (!refs[key]) throw new OutboxError(`${type} events need refs.${key}`);
    }
    const data = input.data === undefined ? undefined : eventDataSchema.parse(input.data);
    const id = newId('event');
    // Encrypt before taking the sequence lock: keeps the mailbox row locked for as short as possible.
    // The tenant key comes from the key store, a database of its own: its connection is free while
    // `tx` holds the data database's (also on the embedded database).
    const keys = this.deps.dataKeys;
    const dataEnc = data ? await keys.encryptFor({ type: 'tenant', id: input.tenantId }, JSON.stringify(data), EVENT_DATA_AAD(id)) : null;
    let seq: bigint;
    if (input.sequence !== undefined) {
      seq = input.sequence;
    } else if (input.mailboxId) {
      const next = await this.deps.repo.nextMailboxSeq(tx, input.mailboxId);
      if (next === null) throw new OutboxError('event names a mailbox that does not exist');
      seq = next;
    } else {
      seq = await this.deps.repo.nextTenantSeq(tx, input.tenantId);
    }
    await this.deps.repo.insert(tx, {
      id,
      tenantId: input.tenantId,
      mailboxId: input.mailboxId,
      type,
      seq,
      refs: refs as Record<string, string>,
      dataEnc,
      createdAt: this.deps.clock(),
    });
    return { id, sequence: seq };
  }

  /**
   * Events about ONE mailbox, appended in one statement (ingest of a page of messages, inside its
   * driver transaction — Database.transaction): validated like appendEvent, consecutive sequence
   * numbers in the given order. Refs only (no encrypted data: no key load inside the statement).
   */
  async appendMailboxEvents(
    tx: SqlTransaction,
    input: { tenantId: string; mailboxId: string; events: ReadonlyArray<{ type: EventType; refs?: EventRefs }> },
  ): Promise<AppendedEvent[]> {
    const rows = [];
    for (const e of input.events) {
      const type = eventTypeSchema.parse(e.type);
      const refs = eventRefsSchema.parse(e.refs ?? {});
      for (const key of REQUIRED_REFS[type]) {
        if (!refs[key]) throw new OutboxError(`${type} events need refs.${key}`);
      }
      rows.push({ id: newId('event'), tenantId: input.tenantId, type, refs: refs as Record<string, string>, createdAt: this.deps.clock() });
    }
    const seqs = await this.deps.repo.insertMailboxEvents(tx, input.mailboxId, rows);
    if (seqs === null) throw new OutboxError('event names a mailbox that does not exist');
    return rows.map((r, i) => ({ id: r.id, sequence: seqs[i]! }));
  }
}

/**
 * Call after the transaction that appended the events committed. Never throws. Where the webhooks
 * module attached its hook (every service process) this is one wake-up of the delivery pumps
 * (they fan out every committed event; a lost wake-up costs at most their 15 s safety tick); otherwise
 * one `webhooks.dispatch` job per event (a failed enqueue only delays delivery until the next
 * `webhooks.sweep`, at most about a minute).
 */
export async function notifyEventsCommitted(jobs: Pick<JobQueue, 'enqueue'>, eventIds: readonly string[], logger?: Pick<Logger, 'warn'>): Promise<void> {
  if (eventIds.length === 0) return;
  const hook = eventsCommittedHook(jobs);
  if (hook) {
    // One wake-up for the whole commit (see events-committed.ts); a lost one costs a poll interval.
    try {
      hook(eventIds);
    } catch (err) {
      logger?.warn({ err }, 'waking the webhook dispatchers failed; they find the events at their next poll');
    }
    return;
  }
  for (const eventId of eventIds) {
    try {
      await jobs.enqueue('webhooks.dispatch', { eventId });
    } catch (err) {
      logger?.warn({ err, eventId }, 'webhooks.dispatch enqueue failed; the sweep will pick the event up');
    }
  }
}

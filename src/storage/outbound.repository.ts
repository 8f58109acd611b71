import type { Prisma, PrismaClient } from './database.js';

type Tx = Prisma.TransactionClient;

export type OutboundStatus = 'queued' | 'sending' | 'sent' | 'failed';

/** One `outbound_messages` row. `contentEnc` is the mailbox-DEK ciphertext of the composed request. */
export interface OutboundRow {
  id: string;
  tenantId: string;
  mailboxId: string;
  kind: 'reply' | 'new';
  replyToMessageId: string | null;
  idempotencyKey: string;
  requestHash: string;
  status: OutboundStatus;
  failureCode: string | null;
  failureReason: string | null;
  messageIdIndex: string;
  contentEnc: Uint8Array;
  providerMessageId: string | null;
  providerThreadId: string | null;
  threadKey: string | null;
  attempts: number;
  sendStartedAt: Date | null;
  sentAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A new row: what the send request decided; status, attempts and provider ids start empty. */
export type NewOutbound = Pick<
  OutboundRow,
  'id' | 'tenantId' | 'mailboxId' | 'kind' | 'replyToMessageId' | 'idempotencyKey' | 'requestHash' | 'messageIdIndex' | 'contentEnc' | 'threadKey' | 'createdAt'
>;

/** What an Idempotency-Key lookup needs: enough to replay the first answer or refuse a reuse. */
export interface IdempotencyHit {
  id: string;
  requestHash: string;
  status: OutboundStatus;
}

/** A send attempt that owns the row: `attempt` is the fencing token for every later write. */
export interface ClaimedOutbound {
  row: OutboundRow;
  attempt: number;
}

/**
 * The outbound outbox (`outbound_messages`). Status moves only through guarded UPDATEs:
 * `claim` records intent (attempts + sendStartedAt) BEFORE the provider is called, and every
 * later write is fenced on the attempt number it claimed, so a slow worker whose lease was taken
 * over can never overwrite the newer attempt's outcome.
 */
export class OutboundRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * A transaction for a status change and its outbox event. Generous limits: on the embedded
   * database every connection queues behind one, and an expired transaction would turn a send
   * the provider accepted into a retry (harmless — the retry finds the copy — but slow).
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(fn, { timeout: 30_000, maxWait: 30_000 });
  }

  async findByIdempotencyKey(tenantId: string, idempotencyKey: string): Promise<IdempotencyHit | null> {
    const row = await this.prisma.outboundMessage.findUnique({
      where: { tenantId_idempotencyKey: { tenantId, idempotencyKey } },
      select: { id: true, requestHash: true, status: true },
    });
    return row ? { id: row.id, requestHash: row.requestHash, status: row.status as OutboundStatus } : null;
  }

  /**
   * Inserts a `queued` row inside the caller's transaction. A second row for the same (tenant,
   * Idempotency-Key) violates the unique index and aborts the transaction; the caller then reads
   * the winner with `findByIdempotencyKey`.
   */
  async insertQueued(tx: Tx, input: NewOutbound): Promise<void> {
    // A copy of the ciphertext: the caller's buffer may be a view into a larger one.
    await tx.outboundMessage.create({ data: { ...input, status: 'queued', contentEnc: new Uint8Array(input.contentEnc) } });
  }

  /** Removes a row that never got a send job (the enqueue failed right after the insert). */
  async deleteUnsent(id: string): Promise<void> {
    await this.prisma.outboundMessage.deleteMany({ where: { id, status: 'queued', attempts: 0 } });
  }

  async findForTenant(tenantId: string, id: string): Promise<OutboundRow | null> {
    const row = await this.prisma.outboundMessage.findFirst({ where: { id, tenantId } });
    return row as OutboundRow | null;
  }

  async findUnscoped(id: string): Promise<OutboundRow | null> {
    const row = await this.prisma.outboundMessage.findUnique({ where: { id } });
    return row as OutboundRow | null;
  }

  /**
   * Takes the row for one send attempt: `queued`, or `sending` whose previous attempt last renewed
   * its lease (`updatedAt`, see `heartbeat`) before `staleBefore` (its worker died). Increments `attempts` and stamps `sendStartedAt` in
   * the same statement, so the intent is durable before any provider call. Null when another
   * worker holds a live lease or the row is finished.
   */
  async claim(id: string, now: Date, staleBefore: Date): Promise<ClaimedOutbound | null> {
    const claimed = await this.prisma.outboundMessage.updateManyAndReturn({
      where: {
        id,
        OR: [{ status: 'queued' }, { status: 'sending', updatedAt: { lt: staleBefore } }],
      },
      data: { status: 'sending', attempts: { increment: 1 }, sendStartedAt: now, updatedAt: now },
    });
    const row = claimed[0] as OutboundRow | undefined;
    return row ? { row, attempt: row.attempts } : null;
  }

  /** Renews the lease of a running attempt (sendStartedAt stays: the evidence of when it began). */
  async heartbeat(id: string, attempt: number, at: Date): Promise<boolean> {
    const res = await this.prisma.outboundMessage.updateMany({ where: { id, status: 'sending', attempts: attempt }, data: { updatedAt: at } });
    return res.count === 1;
  }

  /** Marks the claimed attempt sent. False when the attempt no longer owns the row. */
  async markSent(tx: Tx, id: string, attempt: number, result: { providerMessageId: string | null; providerThreadId: string | null; sentAt: Date }): Promise<boolean> {
    const res = await tx.outboundMessage.updateMany({
      where: { id, status: 'sending', attempts: attempt },
      data: {
        status: 'sent',
        providerMessageId: result.providerMessageId,
        providerThreadId: result.providerThreadId,
        sentAt: result.sentAt,
        failureCode: null,
        failureReason: null,
        updatedAt: result.sentAt,
      },
    });
    return res.count === 1;
  }

  /**
   * Marks the row failed. `attempt` fences a claimed attempt; null fails a row that is still
   * `queued` (refused before any attempt, e.g. the mailbox was disconnected meanwhile).
   */
  async markFailed(tx: Tx, id: string, attempt: number | null, failure: { code: string; reason: string; at: Date }): Promise<boolean> {
    const res = await tx.outboundMessage.updateMany({
      where: attempt === null ? { id, status: 'queued' } : { id, status: 'sending', attempts: attempt },
      data: { status: 'failed', failureCode: failure.code, failureReason: failure.reason, updatedAt: failure.at },
    });
    return res.count === 1;
  }

  /** Hands a claimed row back to the queue after a retryable failure (sendStartedAt is kept as evidence). */
  async release(id: string, attempt: number, at: Date): Promise<boolean> {
    const res = await this.prisma.outboundMessage.updateMany({
      where: { id, status: 'sending', attempts: attempt },
      data: { status: 'queued', updatedAt: at },
    });
    return res.count === 1;
  }

  /** Rows waiting for a send job since before `before` (the enqueue after commit may have been lost). */
  async listStuckQueued(before: Date, limit: number): Promise<Array<{ id: string; mailboxId: string }>> {
    return this.prisma.outboundMessage.findMany({
      where: { status: 'queued', updatedAt: { lt: before } },
      select: { id: true, mailboxId: true },
      orderBy: { updatedAt: 'asc' },
      take: limit,
    });
  }

  async countForMailbox(mailboxId: string): Promise<number> {
    return this.prisma.outboundMessage.count({ where: { mailboxId } });
  }
}

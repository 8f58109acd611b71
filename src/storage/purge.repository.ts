import type { DekOwnerType } from '../crypto/data-key.port.js';
import type { Prisma, PrismaClient } from './database.js';
import { newId } from './ids.js';

export type PurgeTrigger = 'customer' | 'ops' | 'provider_revoked' | 'retention';
export type RevokeStatus = 'pending' | 'revoked' | 'failed' | 'not_supported' | 'not_needed';

export interface PurgeReceiptRecord {
  id: string;
  tenantId: string;
  mailboxId: string;
  provider: string;
  trigger: PurgeTrigger;
  reason: string | null;
  status: 'running' | 'completed';
  steps: string[];
  counts: Record<string, number | string>;
  revokeStatus: RevokeStatus;
  revokeAttempts: number;
  revokeError: string | null;
  revokeTokenEnc: Uint8Array | null;
  startedAt: Date;
  completedAt: Date | null;
}

type Tx = Prisma.TransactionClient;

/** Tables whose rows name a mailbox directly, deleted in batches of this many rows per statement. */
const BATCH = 500;

/** A mailbox row as the purge needs it: the credential is read here and nowhere else in lifecycle. */
export interface PurgeMailboxRow {
  id: string;
  tenantId: string;
  provider: 'google' | 'microsoft';
  status: string;
  credentialEnc: Uint8Array | null;
  subscriptionId: string | null;
  eventSeq: bigint;
}

/**
 * Purge receipts, the disconnecting transition, and the batched deletion of everything a
 * mailbox owns. Deletions are plain SQL with `LIMIT` sub-selects so a mailbox with a million
 * messages never holds one huge transaction or lock.
 */
export class PurgeRepository {
  constructor(
    private readonly prisma: PrismaClient,
    /** The key store (another database): which owners have a data key. */
    private readonly keys?: KeyOwnerLookup,
  ) {}

  private keyLookup(): KeyOwnerLookup {
    if (!this.keys) throw new Error('PurgeRepository needs the key store for this query');
    return this.keys;
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(fn, { timeout: 30_000 });
  }

  /** Locks the mailbox row (FOR UPDATE) so two disconnects of one mailbox serialise. */
  async lockMailboxForTenant(tx: Tx, tenantId: string | null, mailboxId: string): Promise<PurgeMailboxRow | null> {
    const rows = tenantId
      ? await tx.$queryRaw<PurgeMailboxRow[]>`SELECT "id", "tenantId", "provider", "status", "credentialEnc", "subscriptionId", "eventSeq"
          FROM "mailboxes" WHERE "id" = ${mailboxId} AND "tenantId" = ${tenantId} FOR UPDATE`
      : await tx.$queryRaw<PurgeMailboxRow[]>`SELECT "id", "tenantId", "provider", "status", "credentialEnc", "subscriptionId", "eventSeq"
          FROM "mailboxes" WHERE "id" = ${mailboxId} FOR UPDATE`;
    return rows[0] ?? null;
  }

  async findMailboxUnscoped(mailboxId: string): Promise<PurgeMailboxRow | null> {
    const row = await this.prisma.mailbox.findUnique({
      where: { id: mailboxId },
      select: { id: true, tenantId: true, provider: true, status: true, credentialEnc: true, subscriptionId: true, eventSeq: true },
    });
    return row as PurgeMailboxRow | null;
  }

  async markDisconnecting(tx: Tx, mailboxId: string, reason: string): Promise<void> {
    await tx.mailbox.update({ where: { id: mailboxId }, data: { status: 'disconnecting', statusReason: reason.slice(0, 200) } });
  }

  async createReceipt(
    tx: Tx,
    input: { tenantId: string; mailboxId: string; provider: string; trigger: PurgeTrigger; reason: string | null; startedAt: Date },
  ): Promise<PurgeReceiptRecord> {
    const row = await tx.purgeReceipt.create({
      data: { id: newId('purge'), tenantId: input.tenantId, mailboxId: input.mailboxId, provider: input.provider, trigger: input.trigger, reason: input.reason, startedAt: input.startedAt },
    });
    return toReceipt(row);
  }

  /** Locks the receipt row; its status as seen under the lock (null if missing). */
  async lockReceiptStatus(tx: Tx, purgeId: string): Promise<'running' | 'completed' | null> {
    const rows = await tx.$queryRaw<Array<{ status: 'running' | 'completed' }>>`SELECT "status" FROM "purge_receipts" WHERE "id" = ${purgeId} FOR UPDATE`;
    return rows[0]?.status ?? null;
  }

  async findReceipt(purgeId: string, tx?: Tx): Promise<PurgeReceiptRecord | null> {
    const row = await (tx ?? this.prisma).purgeReceipt.findUnique({ where: { id: purgeId } });
    return row ? toReceipt(row) : null;
  }

  async findReceiptForTenant(tenantId: string, purgeId: string): Promise<PurgeReceiptRecord | null> {
    const row = await this.prisma.purgeReceipt.findFirst({ where: { id: purgeId, tenantId } });
    return row ? toReceipt(row) : null;
  }

  /** Newest first, keyset by id (ids are time-sortable); `limit + 1` lets the caller see a next page. */
  async listForTenant(tenantId: string, opts: { beforeId?: string; limit: number }): Promise<PurgeReceiptRecord[]> {
    const rows = await this.prisma.purgeReceipt.findMany({
      where: { tenantId, ...(opts.beforeId ? { id: { lt: opts.beforeId } } : {}) },
      orderBy: { id: 'desc' },
      take: opts.limit,
    });
    return rows.map(toReceipt);
  }

  /** The newest receipt of a mailbox (a mailbox id is never reused, so normally the only one). */
  async latestReceiptForMailbox(tenantId: string | null, mailboxId: string, tx?: Tx): Promise<PurgeReceiptRecord | null> {
    const row = await (tx ?? this.prisma).purgeReceipt.findFirst({
      where: { mailboxId, ...(tenantId ? { tenantId } : {}) },
      orderBy: { startedAt: 'desc' },
    });
    return row ? toReceipt(row) : null;
  }

  async listRunningStartedBefore(before: Date, limit: number): Promise<PurgeReceiptRecord[]> {
    const rows = await this.prisma.purgeReceipt.findMany({ where: { status: 'running', startedAt: { lt: before } }, orderBy: { startedAt: 'asc' }, take: limit });
    return rows.map(toReceipt);
  }

  /** Mailboxes waiting for the customer to reconnect since before `before` (grace expired). */
  async listReauthExpired(before: Date, limit: number): Promise<Array<{ id: string; tenantId: string }>> {
    return this.prisma.mailbox.findMany({
      where: { status: 'reauth_required', reauthRequiredAt: { lt: before } },
      select: { id: true, tenantId: true },
      orderBy: { reauthRequiredAt: 'asc' },
      take: limit,
    });
  }

  /** Active mailboxes with this address move to reauth_required (RISC); returns those that moved. */
  async markReauthRequiredByAddress(tx: Tx, provider: string, addressIndex: string, reason: string, at: Date): Promise<Array<{ id: string; tenantId: string }>> {
    return tx.$queryRaw<Array<{ id: string; tenantId: string }>>`
      UPDATE "mailboxes" SET "status" = 'reauth_required', "statusReason" = ${reason}, "reauthRequiredAt" = ${at}, "updatedAt" = ${at}
       WHERE "provider" = ${provider} AND "addressIndex" = ${addressIndex} AND "status" = 'active'
       RETURNING "id", "tenantId"`;
  }

  /**
   * Mailboxes whose DEK no longer exists (shredded by a purge) but whose row is back, e.g. after a
   * database restore. A mailbox gets its DEK when its address is first sealed, at creation. The
   * keys are in the key store (another database): mailbox ids are checked against it in pages.
   */
  async listShreddedMailboxes(limit: number): Promise<Array<{ id: string; tenantId: string }>> {
    const keys = this.keyLookup();
    const out: Array<{ id: string; tenantId: string }> = [];
    let after = '';
    while (out.length < limit) {
      const page = await this.prisma.mailbox.findMany({
        where: { status: { not: 'disconnecting' }, id: { gt: after } },
        select: { id: true, tenantId: true },
        orderBy: { id: 'asc' },
        take: BATCH,
      });
      if (page.length === 0) break;
      const withKey = await keys.ownersWithKeys('mailbox', page.map((m) => m.id));
      for (const m of page) if (!withKey.has(m.id) && out.length < limit) out.push(m);
      after = page[page.length - 1]!.id;
    }
    return out;
  }

  /** Mailbox ids that rows or keys still name although the mailbox row is gone (and no purge is running). */
  async listOrphanMailboxIds(limit: number): Promise<string[]> {
    const rows = await this.prisma.$queryRaw<Array<{ mailboxId: string }>>`
      SELECT DISTINCT x."mailboxId" FROM (
        SELECT "mailboxId" FROM "messages"
        UNION SELECT "mailboxId" FROM "blobs" WHERE "mailboxId" IS NOT NULL
        UNION SELECT "mailboxId" FROM "thread_refs"
        UNION SELECT "mailboxId" FROM "outbound_messages"
      ) x
      WHERE NOT EXISTS (SELECT 1 FROM "mailboxes" m WHERE m."id" = x."mailboxId")
        AND NOT EXISTS (SELECT 1 FROM "purge_receipts" r WHERE r."mailboxId" = x."mailboxId" AND r."status" = 'running')
      ORDER BY 1 LIMIT ${limit}`;
    const ids = new Set(rows.map((r) => r.mailboxId));
    // Keys without a mailbox row. A key minted in the last hour may belong to a connect that has
    // not inserted its row yet.
    const keys = this.keyLookup();
    const hourAgo = new Date(Date.now() - 3600_000);
    let after = '';
    while (ids.size < limit) {
      const owners = await keys.ownerIdsCreatedBefore('mailbox', hourAgo, after, BATCH);
      if (owners.length === 0) break;
      const present = new Set(
        (await this.prisma.mailbox.findMany({ where: { id: { in: owners } }, select: { id: true } })).map((m) => m.id),
      );
      const running = new Set(
        (await this.prisma.purgeReceipt.findMany({ where: { mailboxId: { in: owners }, status: 'running' }, select: { mailboxId: true } })).map((r) => r.mailboxId),
      );
      for (const id of owners) if (!present.has(id) && !running.has(id) && ids.size < limit) ids.add(id);
      after = owners[owners.length - 1]!;
    }
    return [...ids].sort();
  }

  async listRevokeFailed(limit: number): Promise<PurgeReceiptRecord[]> {
    const rows = await this.prisma.purgeReceipt.findMany({ where: { revokeStatus: 'failed', revokeTokenEnc: { not: null } }, orderBy: { startedAt: 'asc' }, take: limit });
    return rows.map(toReceipt);
  }

  /** Records one finished step (idempotent: a step already present is not added twice). */
  async completeStep(
    purgeId: string,
    step: string,
    patch: { counts?: Record<string, number | string>; revokeStatus?: RevokeStatus; revokeError?: string | null; revokeTokenEnc?: Uint8Array | null; revokeAttempts?: number } = {},
    tx?: Tx,
  ): Promise<void> {
    const db = tx ?? this.prisma;
    const current = await db.purgeReceipt.findUnique({ where: { id: purgeId }, select: { steps: true, counts: true } });
    if (!current) throw new Error('purge receipt vanished');
    const steps = current.steps.includes(step) ? current.steps : [...current.steps, step];
    await db.purgeReceipt.update({
      where: { id: purgeId },
      data: {
        steps,
        ...(patch.counts ? { counts: { ...(current.counts as Record<string, unknown>), ...patch.counts } as Prisma.InputJsonValue } : {}),
        ...(patch.revokeStatus ? { revokeStatus: patch.revokeStatus } : {}),
        ...(patch.revokeError !== undefined ? { revokeError: patch.revokeError } : {}),
        ...(patch.revokeTokenEnc !== undefined ? { revokeTokenEnc: patch.revokeTokenEnc ? new Uint8Array(patch.revokeTokenEnc) : null } : {}),
        ...(patch.revokeAttempts !== undefined ? { revokeAttempts: patch.revokeAttempts } : {}),
      },
    });
  }

  /** Adds deletion counts (batches of a resumed purge add up rather than overwrite). */
  async addCounts(purgeId: string, delta: Record<string, number>): Promise<void> {
    const current = await this.prisma.purgeReceipt.findUnique({ where: { id: purgeId }, select: { counts: true } });
    const counts = { ...((current?.counts ?? {}) as Record<string, unknown>) };
    for (const [k, v] of Object.entries(delta)) counts[k] = (typeof counts[k] === 'number' ? (counts[k] as number) : 0) + v;
    await this.prisma.purgeReceipt.update({ where: { id: purgeId }, data: { counts: counts as Prisma.InputJsonValue } });
  }

  /** With `tx`, inside the caller's transaction (e.g. with the audit entry that records the change). */
  async updateRevoke(purgeId: string, patch: { revokeStatus: RevokeStatus; revokeError: string | null; revokeTokenEnc: Uint8Array | null; revokeAttempts: number }, tx?: Tx): Promise<void> {
    await (tx ?? this.prisma).purgeReceipt.update({
      where: { id: purgeId },
      data: { revokeStatus: patch.revokeStatus, revokeError: patch.revokeError, revokeTokenEnc: patch.revokeTokenEnc ? new Uint8Array(patch.revokeTokenEnc) : null, revokeAttempts: patch.revokeAttempts },
    });
  }

  async markCompleted(tx: Tx, purgeId: string, completedAt: Date): Promise<void> {
    const current = await tx.purgeReceipt.findUnique({ where: { id: purgeId }, select: { steps: true } });
    const steps = current?.steps.includes('completed') ? current.steps : [...(current?.steps ?? []), 'completed'];
    await tx.purgeReceipt.update({ where: { id: purgeId }, data: { status: 'completed', completedAt, steps } });
  }

  /** Queued outbound messages of the mailbox (their send jobs are cancelled by id). */
  async queuedOutboundIds(mailboxId: string): Promise<string[]> {
    const rows = await this.prisma.outboundMessage.findMany({ where: { mailboxId, status: { in: ['queued', 'sending'] } }, select: { id: true } });
    return rows.map((r) => r.id);
  }

  /**
   * Deletes one batch of messages (with their addresses, attachments and blobs). Returns what it
   * deleted; `messages: 0` means the mailbox has no messages left.
   */
  async deleteMessageBatch(mailboxId: string): Promise<{ messages: number; messageAddresses: number; attachments: number; blobs: number }> {
    return this.transaction(async (tx) => {
      const msgs = await tx.message.findMany({ where: { mailboxId }, select: { id: true, rawBlobId: true }, take: BATCH, orderBy: { id: 'asc' } });
      return deleteMessagesTx(tx, msgs);
    });
  }

  /** Deletes up to BATCH rows of one per-mailbox table; returns how many. */
  async deleteBatch(table: 'thread_refs' | 'blobs' | 'outbound_messages' | 'outbox_events' | 'connect_sessions' | 'break_glass_sessions', mailboxId: string): Promise<number> {
    switch (table) {
      case 'thread_refs':
        return this.prisma.$executeRaw`DELETE FROM "thread_refs" WHERE ctid IN (SELECT ctid FROM "thread_refs" WHERE "mailboxId" = ${mailboxId} LIMIT ${BATCH})`;
      case 'blobs':
        // Chunks go with their blob (ON DELETE CASCADE); blobs left over after the messages
        // (e.g. a raw blob written before a crash, outbound MIME) are caught here.
        return this.prisma.$executeRaw`DELETE FROM "blobs" WHERE "id" IN (SELECT "id" FROM "blobs" WHERE "mailboxId" = ${mailboxId} LIMIT ${BATCH})`;
      case 'outbound_messages':
        return this.prisma.$executeRaw`DELETE FROM "outbound_messages" WHERE "id" IN (SELECT "id" FROM "outbound_messages" WHERE "mailboxId" = ${mailboxId} LIMIT ${BATCH})`;
      case 'outbox_events':
        // Deliveries and their attempts cascade. The lifecycle's own announcements stay: they
        // carry no content (tenant-keyed facts only) and must still reach the ticket service.
        return this.prisma.$executeRaw`DELETE FROM "outbox_events" WHERE "id" IN (SELECT "id" FROM "outbox_events" WHERE "mailboxId" = ${mailboxId} AND "type" NOT IN ('mailbox.disconnected', 'mailbox.purged') LIMIT ${BATCH})`;
      case 'connect_sessions':
        return this.prisma.$executeRaw`DELETE FROM "connect_sessions" WHERE "id" IN (SELECT "id" FROM "connect_sessions" WHERE "mailboxId" = ${mailboxId} OR "resultMailboxId" = ${mailboxId} LIMIT ${BATCH})`;
      case 'break_glass_sessions':
        return this.prisma.$executeRaw`DELETE FROM "break_glass_sessions" WHERE "id" IN (SELECT "id" FROM "break_glass_sessions" WHERE "mailboxId" = ${mailboxId} LIMIT ${BATCH})`;
    }
  }

  async countWebhookDeliveriesOfMailbox(mailboxId: string): Promise<number> {
    return this.prisma.webhookDelivery.count({ where: { event: { mailboxId, type: { notIn: ['mailbox.disconnected', 'mailbox.purged'] } } } });
  }

  /** Removes the mailbox row (inside the final transaction). */
  async deleteMailbox(tx: Tx, mailboxId: string): Promise<number> {
    const res = await tx.mailbox.deleteMany({ where: { id: mailboxId } });
    return res.count;
  }
}

/** What the purge needs to know from the key store (`DataKeyRepository`). */
export interface KeyOwnerLookup {
  ownersWithKeys(type: DekOwnerType, ids: readonly string[]): Promise<Set<string>>;
  ownerIdsCreatedBefore(type: DekOwnerType, createdBefore: Date, afterId: string, limit: number): Promise<string[]>;
}

/** Deletes the given messages and everything hanging off them, inside `tx`. */
export async function deleteMessagesTx(
  tx: Tx,
  msgs: Array<{ id: string; rawBlobId: string | null }>,
): Promise<{ messages: number; messageAddresses: number; attachments: number; blobs: number }> {
  if (msgs.length === 0) return { messages: 0, messageAddresses: 0, attachments: 0, blobs: 0 };
  const ids = msgs.map((m) => m.id);
  const atts = await tx.attachment.findMany({ where: { messageId: { in: ids } }, select: { blobId: true } });
  const blobIds = [...new Set([...msgs.map((m) => m.rawBlobId), ...atts.map((a) => a.blobId)].filter((b): b is string => Boolean(b)))];
  const messageAddresses = (await tx.messageAddress.deleteMany({ where: { messageId: { in: ids } } })).count;
  const attachments = (await tx.attachment.deleteMany({ where: { messageId: { in: ids } } })).count;
  const messages = (await tx.message.deleteMany({ where: { id: { in: ids } } })).count;
  let blobs = 0;
  if (blobIds.length) {
    await tx.blobChunk.deleteMany({ where: { blobId: { in: blobIds } } });
    blobs = (await tx.blob.deleteMany({ where: { id: { in: blobIds } } })).count;
  }
  return { messages, messageAddresses, attachments, blobs };
}

function toReceipt(row: {
  id: string;
  tenantId: string;
  mailboxId: string;
  provider: string;
  trigger: string;
  reason: string | null;
  status: string;
  steps: string[];
  counts: unknown;
  revokeStatus: string;
  revokeAttempts: number;
  revokeError: string | null;
  revokeTokenEnc: Uint8Array | null;
  startedAt: Date;
  completedAt: Date | null;
}): PurgeReceiptRecord {
  return {
    ...row,
    trigger: row.trigger as PurgeTrigger,
    status: row.status as 'running' | 'completed',
    counts: (row.counts ?? {}) as Record<string, number | string>,
    revokeStatus: row.revokeStatus as RevokeStatus,
  };
}

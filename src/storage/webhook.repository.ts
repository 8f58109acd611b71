import { Prisma, type Database, type PrismaClient } from './database.js';
import { newId } from './ids.js';
import type { MailboxRecord } from './mailbox.repository.js';
import type { AttachmentRecord, MessageRecord } from './message-read.repository.js';
import type { OutboxEventRecord } from './outbox.repository.js';

/** Serialises delivery claims per endpoint (second key: endpoint hash) across worker processes. */
const ENDPOINT_CLAIM_LOCK_KEY = 727_384_618;

/** `held_after_restore`: undelivered when a backup was restored; sent once an operator releases it (docs/operations.md). */
export type DeliveryStatus = 'pending' | 'delivering' | 'delivered' | 'failed' | 'dead' | 'cancelled' | 'held_after_restore';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivering', 'delivered', 'failed', 'dead', 'cancelled', 'held_after_restore'];

export interface WebhookEndpointRecord {
  id: string;
  tenantId: string;
  url: string;
  description: string | null;
  events: string[];
  enabled: boolean;
  disabledReason: string | null;
  secretEnc: Uint8Array;
  previousSecretEnc: Uint8Array | null;
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
}

export interface DeliveryRecord {
  id: string;
  tenantId: string;
  eventId: string;
  endpointId: string;
  status: string;
  attempts: number;
  nextAttemptAt: Date | null;
  lastAttemptAt: Date | null;
  lastStatus: number | null;
  deliveredAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface DeliveryAttemptRecord {
  id: string;
  deliveryId: string;
  attemptNo: number;
  statusCode: number | null;
  latencyMs: number;
  responseSnippet: string | null;
  error: string | null;
  createdAt: Date;
}

export type ClaimResult =
  | ({ kind: 'claimed' } & Claimed)
  | { kind: 'missing' }
  | { kind: 'final'; status: string }
  /** Another worker holds a live lease on this delivery. */
  | { kind: 'busy' }
  | { kind: 'not_due'; at: Date }
  /** The endpoint already has `limit` deliveries in flight. */
  | { kind: 'throttled' };

export interface EndpointPatch {
  url?: string;
  description?: string | null;
  events?: string[];
  enabled?: boolean;
  disabledReason?: string | null;
  secretEnc?: Uint8Array;
  previousSecretEnc?: Uint8Array | null;
  previousSecretExpiresAt?: Date | null;
}

interface ClaimRow extends DeliveryRecord {
  e_url: string;
  e_description: string | null;
  e_events: string[];
  e_enabled: boolean;
  e_disabledReason: string | null;
  e_secretEnc: Uint8Array;
  e_previousSecretEnc: Uint8Array | null;
  e_previousSecretExpiresAt: Date | null;
  e_createdAt: Date;
  e_updatedAt: Date;
  ev_mailboxId: string | null;
  ev_type: string;
  ev_seq: bigint | number;
  ev_refs: unknown;
  ev_dataEnc: Uint8Array | null;
  ev_createdAt: Date;
  ev_dispatchedAt: Date | null;
}


/** What building a webhook body reads of a mailbox (mailboxesForPayloads). */
export type PayloadMailbox = Pick<MailboxRecord, 'id' | 'tenantId' | 'provider' | 'addressEnc' | 'status' | 'statusReason'>;

export interface Claimed {
  delivery: DeliveryRecord;
  endpoint: WebhookEndpointRecord;
  event: OutboxEventRecord;
}

const CLAIM_RETURNING = Prisma.sql`RETURNING d.id, d."tenantId", d."eventId", d."endpointId", d.status, d.attempts, d."nextAttemptAt",
                  d."lastAttemptAt", d."lastStatus", d."deliveredAt", d."createdAt", d."updatedAt",
                  e.url AS "e_url", e.description AS "e_description", e.events AS "e_events", e.enabled AS "e_enabled",
                  e."disabledReason" AS "e_disabledReason", e."secretEnc" AS "e_secretEnc", e."previousSecretEnc" AS "e_previousSecretEnc",
                  e."previousSecretExpiresAt" AS "e_previousSecretExpiresAt", e."createdAt" AS "e_createdAt", e."updatedAt" AS "e_updatedAt",
                  ev."mailboxId" AS "ev_mailboxId", ev.type AS "ev_type", ev.seq AS "ev_seq", ev.refs AS "ev_refs",
                  ev."dataEnc" AS "ev_dataEnc", ev."createdAt" AS "ev_createdAt", ev."dispatchedAt" AS "ev_dispatchedAt"`;

function toClaimed(r: ClaimRow): Claimed {
  return {
    delivery: {
      id: r.id,
      tenantId: r.tenantId,
      eventId: r.eventId,
      endpointId: r.endpointId,
      status: r.status,
      attempts: r.attempts,
      nextAttemptAt: r.nextAttemptAt,
      lastAttemptAt: r.lastAttemptAt,
      lastStatus: r.lastStatus,
      deliveredAt: r.deliveredAt,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    },
    endpoint: {
      id: r.endpointId,
      tenantId: r.tenantId,
      url: r.e_url,
      description: r.e_description,
      events: r.e_events,
      enabled: r.e_enabled,
      disabledReason: r.e_disabledReason,
      secretEnc: r.e_secretEnc,
      previousSecretEnc: r.e_previousSecretEnc,
      previousSecretExpiresAt: r.e_previousSecretExpiresAt,
      createdAt: r.e_createdAt,
      updatedAt: r.e_updatedAt,
      deletedAt: null,
    },
    event: {
      id: r.eventId,
      tenantId: r.tenantId,
      mailboxId: r.ev_mailboxId,
      type: r.ev_type,
      seq: BigInt(r.ev_seq),
      refs: r.ev_refs,
      dataEnc: r.ev_dataEnc,
      createdAt: r.ev_createdAt,
      dispatchedAt: r.ev_dispatchedAt,
    },
  };
}

/** Timestamps come back as UTC instants (pg would read a zone-less timestamp as local time). */
const utc = (col: string, as: string) => `(${col} AT TIME ZONE 'UTC') AS "${as}"`;
type PgClaimRow = Omit<ClaimRow, 'ev_seq'> & { ev_seq: string };

function fromPgRow(r: PgClaimRow): Claimed {
  return toClaimed({ ...r, ev_seq: BigInt(r.ev_seq) });
}

/** One pump cycle in one statement: migration 20261206030000_webhook_finish_and_claim. */
const FINISH_AND_CLAIM_SQL = 'SELECT * FROM mbc_webhook_finish_and_claim($1::json, $2::timestamp, $3::timestamp, $4::int, $5::int, $6::int)';

/** A row of mbc_webhook_finish_and_claim: `finished` (id only), `claimed`, or `locked_out` (count in `attempts`). */
type CycleRow = Omit<PgClaimRow, 'status'> & { kind: 'finished' | 'claimed' | 'locked_out'; status: string };

export interface FinishItem {
  deliveryId: string;
  patch: { status: DeliveryStatus; attempts: number; nextAttemptAt: Date | null; lastStatus: number | null; deliveredAt?: Date };
  attempt?: Omit<DeliveryAttemptRecord, 'id' | 'createdAt' | 'attemptNo' | 'deliveryId'> & { createdAt: Date };
}

export interface CycleResult {
  /** Deliveries whose result was stored (still `delivering` until then; a replay meanwhile wins). */
  updated: Set<string>;
  claimed: Claimed[];
  /** Endpoints skipped because another worker was claiming them right then. */
  lockedOut: number;
}

/** Webhook endpoints, their deliveries (one per event × endpoint) and the attempt log. */
export class WebhookRepository {
  /**
   * `db` (optional): on Postgres the delivery pump's hot statements (batch claim, batch results)
   * go straight through the pg driver: same SQL, without Prisma's per-row result mapping, which
   * cost more CPU than the statements themselves. The embedded database keeps the Prisma path
   * (one connection, shared with every other query of the process).
   */
  constructor(
    private readonly prisma: PrismaClient,
    private readonly db?: Pick<Database, 'kind' | 'sql' | 'session'>,
  ) {}

  private get pg(): Pick<Database, 'sql' | 'session'> | undefined {
    return this.db?.kind === 'postgres' ? this.db : undefined;
  }

  // ------------------------------------------------------------------ endpoints

  async createEndpoint(row: { id: string; tenantId: string; url: string; description: string | null; events: string[]; secretEnc: Uint8Array }): Promise<WebhookEndpointRecord> {
    return this.prisma.webhookEndpoint.create({ data: { ...row, secretEnc: new Uint8Array(row.secretEnc) } });
  }

  async countEndpoints(tenantId: string): Promise<number> {
    return this.prisma.webhookEndpoint.count({ where: { tenantId, deletedAt: null } });
  }

  async listEndpoints(tenantId: string, opts: { afterId?: string; limit: number }): Promise<WebhookEndpointRecord[]> {
    return this.prisma.webhookEndpoint.findMany({
      where: { tenantId, deletedAt: null, ...(opts.afterId ? { id: { gt: opts.afterId } } : {}) },
      orderBy: { id: 'asc' },
      take: opts.limit,
    });
  }

  async findEndpoint(tenantId: string, endpointId: string): Promise<WebhookEndpointRecord | null> {
    return this.prisma.webhookEndpoint.findFirst({ where: { id: endpointId, tenantId, deletedAt: null } });
  }

  async updateEndpoint(tenantId: string, endpointId: string, patch: EndpointPatch): Promise<WebhookEndpointRecord | null> {
    const { secretEnc, previousSecretEnc, ...rest } = patch;
    const data: Prisma.WebhookEndpointUpdateManyMutationInput = {
      ...rest,
      ...(secretEnc ? { secretEnc: new Uint8Array(secretEnc) } : {}),
      ...(previousSecretEnc ? { previousSecretEnc: new Uint8Array(previousSecretEnc) } : {}),
    };
    const res = await this.prisma.webhookEndpoint.updateMany({ where: { id: endpointId, tenantId, deletedAt: null }, data });
    if (res.count && patch.enabled === false) await this.parkDeliveries(endpointId);
    return res.count ? this.findEndpoint(tenantId, endpointId) : null;
  }

  /** Soft delete (the delivery log keeps pointing at it); queued deliveries are cancelled. */
  async deleteEndpoint(tenantId: string, endpointId: string, at: Date): Promise<boolean> {
    return this.prisma.$transaction(async (tx) => {
      const res = await tx.webhookEndpoint.updateMany({ where: { id: endpointId, tenantId, deletedAt: null }, data: { deletedAt: at, enabled: false, disabledReason: 'deleted' } });
      if (!res.count) return false;
      await tx.webhookDelivery.updateMany({ where: { endpointId, status: { in: ['pending', 'failed'] } }, data: { status: 'cancelled', nextAttemptAt: null } });
      return true;
    });
  }

  /** A receiver answered 410 Gone: stop sending (Standard Webhooks sender guidance). */
  async disableEndpointUnscoped(endpointId: string, reason: string): Promise<void> {
    await this.prisma.webhookEndpoint.updateMany({ where: { id: endpointId, deletedAt: null }, data: { enabled: false, disabledReason: reason } });
    await this.parkDeliveries(endpointId);
  }

  /** Queued deliveries of a disabled endpoint become dead: listed under ?status=dead, replayable. */
  async parkDeliveries(endpointId: string): Promise<void> {
    await this.prisma.webhookDelivery.updateMany({ where: { endpointId, status: { in: ['pending', 'failed'] } }, data: { status: 'dead', nextAttemptAt: null } });
  }

  /** Enabled, not deleted, subscribed to `type` (an empty filter means every type). */
  async matchingEndpoints(tenantId: string, type: string): Promise<WebhookEndpointRecord[]> {
    return this.prisma.webhookEndpoint.findMany({
      where: { tenantId, enabled: true, deletedAt: null, OR: [{ events: { isEmpty: true } }, { events: { has: type } }] },
      orderBy: { id: 'asc' },
    });
  }

  /** Enabled endpoints of several tenants at once (batch dispatch); filter by type in memory. */
  async enabledEndpointsOf(tenantIds: readonly string[]): Promise<WebhookEndpointRecord[]> {
    if (tenantIds.length === 0) return [];
    return this.prisma.webhookEndpoint.findMany({ where: { tenantId: { in: [...tenantIds] }, enabled: true, deletedAt: null }, orderBy: { id: 'asc' } });
  }

  // ------------------------------------------------------------------ deliveries

  /** Inserts deliveries, ignoring (eventId, endpointId) pairs that already exist. Returns how many were new. */
  async insertDeliveries(rows: ReadonlyArray<{ tenantId: string; eventId: string; endpointId: string }>): Promise<number> {
    if (rows.length === 0) return 0;
    const res = await this.prisma.webhookDelivery.createMany({ data: rows.map((r) => ({ id: newId('delivery'), ...r })), skipDuplicates: true });
    return res.count;
  }

  /** One delivery per endpoint; existing (eventId, endpointId) pairs are left alone. Returns the new ones. */
  async createDeliveries(tenantId: string, eventId: string, endpointIds: readonly string[]): Promise<DeliveryRecord[]> {
    if (endpointIds.length === 0) return [];
    const existing = await this.prisma.webhookDelivery.findMany({ where: { eventId, endpointId: { in: [...endpointIds] } }, select: { endpointId: true } });
    const have = new Set(existing.map((e) => e.endpointId));
    const rows = endpointIds.filter((id) => !have.has(id)).map((endpointId) => ({ id: newId('delivery'), tenantId, eventId, endpointId }));
    if (rows.length) await this.prisma.webhookDelivery.createMany({ data: rows, skipDuplicates: true });
    return this.prisma.webhookDelivery.findMany({ where: { id: { in: rows.map((r) => r.id) } } });
  }

  /**
   * Replay: every listed endpoint gets a delivery that starts the schedule again (attempts reset,
   * due now). Deliveries in flight are left alone. Returns the deliveries to enqueue.
   */
  async resetForReplay(tenantId: string, eventId: string, endpointIds: readonly string[]): Promise<DeliveryRecord[]> {
    await this.createDeliveries(tenantId, eventId, endpointIds);
    await this.prisma.webhookDelivery.updateMany({
      where: { eventId, endpointId: { in: [...endpointIds] }, status: { not: 'delivering' } },
      data: { status: 'pending', attempts: 0, nextAttemptAt: null },
    });
    return this.prisma.webhookDelivery.findMany({ where: { eventId, endpointId: { in: [...endpointIds] }, status: 'pending' } });
  }

  /**
   * Takes a delivery for one attempt. Under a per-endpoint transaction lock, one UPDATE checks the
   * delivery is due and not final, the endpoint is enabled, and the endpoint has fewer than
   * `limit` live leases; it then marks the delivery `delivering` with a lease (lastAttemptAt) that
   * expires after `leaseMs`, so a crashed worker's delivery is taken over instead of stuck.
   * (READ COMMITTED: the UPDATE runs after the lock with a fresh snapshot, so it sees every claim
   * committed before it — the count cannot overshoot.) The reason for a refusal is looked up
   * afterwards, off the hot path.
   */
  async claim(deliveryId: string, now: Date, opts: { limit: number; leaseMs: number; endpointId?: string }): Promise<ClaimResult> {
    let endpointId = opts.endpointId;
    if (!endpointId) {
      const head = await this.prisma.webhookDelivery.findUnique({ where: { id: deliveryId }, select: { endpointId: true } });
      if (!head) return { kind: 'missing' };
      endpointId = head.endpointId;
    }
    const nowTs = now.toISOString();
    const floorTs = new Date(now.getTime() - opts.leaseMs).toISOString();
    // The endpoint and the event come back with the claim: one round trip instead of three.
    const [, rows] = await this.prisma.$transaction([
      this.prisma.$executeRaw`SELECT pg_advisory_xact_lock(${ENDPOINT_CLAIM_LOCK_KEY}::int4, hashtext(${endpointId}))`,
      this.prisma.$queryRaw<ClaimRow[]>`
        UPDATE webhook_deliveries d
           SET status = 'delivering', "lastAttemptAt" = ${nowTs}::timestamp, "updatedAt" = ${nowTs}::timestamp
          FROM webhook_endpoints e, outbox_events ev
         WHERE d.id = ${deliveryId} AND e.id = d."endpointId" AND ev.id = d."eventId"
           AND e.enabled AND e."deletedAt" IS NULL
           AND ((d.status IN ('pending', 'failed') AND (d."nextAttemptAt" IS NULL OR d."nextAttemptAt" <= ${nowTs}::timestamp))
                OR (d.status = 'delivering' AND d."lastAttemptAt" < ${floorTs}::timestamp))
           AND (SELECT count(*) FROM webhook_deliveries l
                 WHERE l."endpointId" = d."endpointId" AND l.status = 'delivering'
                   AND l."lastAttemptAt" >= ${floorTs}::timestamp AND l.id <> d.id) < ${opts.limit}
        ${CLAIM_RETURNING}`,
    ]);
    const r = rows[0];
    if (!r) return this.whyNotClaimed(deliveryId, now, opts.leaseMs);
    return { kind: 'claimed', ...toClaimed(r) };
  }

  /**
   * Claims up to `take` due deliveries of one endpoint at once, never more than its free lease
   * slots (limit − live leases), under the per-endpoint lock: the lock is taken once per batch
   * instead of once per delivery, and concurrent workers never claim the same row twice.
   */
  async claimBatch(endpointId: string, now: Date, opts: { limit: number; leaseMs: number; take: number }): Promise<Claimed[]> {
    const nowTs = now.toISOString();
    const floorTs = new Date(now.getTime() - opts.leaseMs).toISOString();
    const [, rows] = await this.prisma.$transaction([
      this.prisma.$executeRaw`SELECT pg_advisory_xact_lock(${ENDPOINT_CLAIM_LOCK_KEY}::int4, hashtext(${endpointId}))`,
      this.prisma.$queryRaw<ClaimRow[]>`
        UPDATE webhook_deliveries d
           SET status = 'delivering', "lastAttemptAt" = ${nowTs}::timestamp, "updatedAt" = ${nowTs}::timestamp
          FROM webhook_endpoints e, outbox_events ev
         WHERE d.id IN (
                 SELECT c.id FROM webhook_deliveries c
                  WHERE c."endpointId" = ${endpointId}
                    AND ((c.status IN ('pending', 'failed') AND (c."nextAttemptAt" IS NULL OR c."nextAttemptAt" <= ${nowTs}::timestamp))
                         OR (c.status = 'delivering' AND c."lastAttemptAt" < ${floorTs}::timestamp))
                  ORDER BY c.id
                  LIMIT GREATEST(0, LEAST(${opts.take}::int, ${opts.limit}::int - (
                    SELECT count(*)::int FROM webhook_deliveries l
                     WHERE l."endpointId" = ${endpointId} AND l.status = 'delivering' AND l."lastAttemptAt" >= ${floorTs}::timestamp))))
           AND e.id = d."endpointId" AND ev.id = d."eventId" AND e.enabled AND e."deletedAt" IS NULL
        ${CLAIM_RETURNING}`,
    ]);
    return rows.map(toClaimed);
  }

  /**
   * Claims up to `take` due deliveries across endpoints in one short transaction — the batch claim
   * of the delivery pump. Per-endpoint concurrency holds cluster-wide:
   *  1. lock (pg_try_advisory_xact_lock, the lock `claim`/`claimBatch` take) the endpoints that
   *     have due work and, by this snapshot, a free lease slot; an endpoint another worker is
   *     claiming right now is skipped, not waited for;
   *  2. with a fresh snapshot (READ COMMITTED, after the locks), take per locked endpoint at most
   *     `limit` − live leases due deliveries and lease them.
   * A delivery is never claimed twice while its lease lives; `lockedOut` reports endpoints that
   * were skipped because another worker held them (try again shortly).
   */
  async claimDue(now: Date, opts: { limit: number; leaseMs: number; take: number; probe?: boolean }): Promise<{ claimed: Claimed[]; lockedOut: number }> {
    if (opts.take <= 0) return { claimed: [], lockedOut: 0 };
    const nowTs = now.toISOString();
    const floorTs = new Date(now.getTime() - opts.leaseMs).toISOString();
    // Idle probe first (one statement, no transaction): most idle polls find nothing due. Two
    // bounded index lookups, however many deliveries wait for later (mbc_webhook_any_due, migration
    // 20261206150000).
    if (opts.probe !== false) {
      const [probe] = await this.prisma.$queryRaw<Array<{ due: boolean }>>`SELECT mbc_webhook_any_due(${nowTs}::timestamp, ${floorTs}::timestamp) AS due`;
      if (!probe?.due) return { claimed: [], lockedOut: 0 };
    }
    const { claimed, lockedOut } = await this.finishAndClaim([], now, opts);
    return { claimed, lockedOut };
  }

  /**
   * One cycle of the delivery pump in one statement (one round trip, one transaction): stores the
   * results of finished attempts (`items`: appends each attempt to the log when given and updates
   * each delivery that is still `delivering`), then claims up to `claim.take` due deliveries as
   * claimDue does — the slots the results just freed count already. `claim` undefined or
   * `take` 0: results only. See the migration 20261206030000_webhook_finish_and_claim for the
   * locking (per-endpoint advisory locks, a fresh snapshot after them).
   */
  async finishAndClaim(items: readonly FinishItem[], now: Date, claim?: { limit: number; leaseMs: number; take: number }): Promise<CycleResult> {
    const take = claim?.take ?? 0;
    if (items.length === 0 && take <= 0) return { updated: new Set(), claimed: [], lockedOut: 0 };
    const ts = (d: Date | null | undefined) => (d ? d.toISOString() : null);
    const rows =
      items.length === 0
        ? null
        : JSON.stringify(
            items.map((i) => ({
              id: i.deliveryId,
              status: i.patch.status,
              attempts: i.patch.attempts,
              next: ts(i.patch.nextAttemptAt),
              last: i.patch.lastStatus,
              delivered: ts(i.patch.deliveredAt),
              aid: i.attempt ? newId('deliveryAttempt') : null,
              code: i.attempt?.statusCode ?? null,
              latency: i.attempt?.latencyMs ?? null,
              snippet: i.attempt?.responseSnippet ?? null,
              error: i.attempt?.error ?? null,
              at: ts(i.attempt?.createdAt),
            })),
          );
    const values = [rows, now.toISOString(), new Date(now.getTime() - (claim?.leaseMs ?? 0)).toISOString(), claim?.limit ?? 0, take, ENDPOINT_CLAIM_LOCK_KEY];
    // Postgres: straight through the pg driver. The embedded database: Prisma's raw path (its one
    // connection is shared with every other query of the process).
    const result: CycleRow[] = this.pg
      ? (await this.pg.sql.query<CycleRow>(FINISH_AND_CLAIM_SQL, values)).rows
      : await this.prisma.$queryRawUnsafe<CycleRow[]>(FINISH_AND_CLAIM_SQL, ...values);
    const out: CycleResult = { updated: new Set(), claimed: [], lockedOut: 0 };
    for (const r of result) {
      if (r.kind === 'finished') out.updated.add(r.id);
      else if (r.kind === 'claimed') out.claimed.push(fromPgRow(r));
      else out.lockedOut += r.attempts;
    }
    return out;
  }

  /**
   * Fans out up to `limit` committed, undispatched events into deliveries (one per enabled
   * endpoint of the tenant subscribed to the type) and marks them dispatched: one statement
   * through the pg driver (mbc_webhook_dispatch, migration 20261207010000: it makes the delivery
   * ids too), its own transaction; with nothing to do it is the idle probe. Events another worker
   * is fanning out right now are skipped (SKIP LOCKED), so concurrent workers split the work
   * instead of repeating it. Postgres only: undefined elsewhere (the caller uses the Prisma path).
   */
  async dispatchCommitted(now: Date, limit: number): Promise<{ events: number; created: number } | undefined> {
    const pg = this.pg;
    if (!pg) return undefined;
    const res = await pg.sql.query<{ events: number; created: number }>('SELECT events, created FROM mbc_webhook_dispatch($1::timestamp, $2::int)', [now.toISOString(), limit]);
    return { events: res.rows[0]!.events, created: res.rows[0]!.created };
  }

  /**
   * The mailboxes of a batch of events, as the payload builder reads them: on Postgres one plain
   * statement through the pg driver (Prisma's query path cost more CPU than building the bodies);
   * undefined elsewhere (the builder then reads through Prisma).
   */
  async mailboxesForPayloads(mailboxIds: readonly string[]): Promise<PayloadMailbox[] | undefined> {
    const pg = this.pg;
    if (!pg) return undefined;
    if (mailboxIds.length === 0) return [];
    const rows = await pg.sql.query<PayloadMailbox>('SELECT id, "tenantId", provider, "addressEnc", status, "statusReason" FROM mailboxes WHERE id = ANY($1::text[])', [[...mailboxIds]]);
    return rows.rows;
  }

  /**
   * The messages of a batch of message.received events, in the MessageReadRepository shape, for
   * the payload builder: on Postgres two plain statements (messages, then their attachments)
   * through the pg driver; undefined elsewhere (the builder then reads through Prisma).
   */
  async messagesForPayloads(messageIds: readonly string[]): Promise<MessageRecord[] | undefined> {
    const pg = this.pg;
    if (!pg) return undefined;
    if (messageIds.length === 0) return [];
    const ids = [...messageIds];
    const messages = await pg.sql.query<Omit<MessageRecord, 'attachments'>>(
      `SELECT id, "tenantId", "mailboxId", "providerMessageId", "providerThreadId", "threadKey", direction, "isAutoReply", "isBounce",
              oversize, "parseError", "sizeBytes", origin, ${utc('"receivedAt"', 'receivedAt')}, "contentEnc", "outboundId", ${utc('"createdAt"', 'createdAt')}
         FROM messages WHERE id = ANY($1::text[])`,
      [ids],
    );
    const attachments = await pg.sql.query<AttachmentRecord>(
      `SELECT id, "tenantId", "mailboxId", "messageId", ordinal, "filenameEnc", "contentType", size, "isInline", "contentIdEnc", "scanStatus", "scanSignature", "blobId"
         FROM attachments WHERE "messageId" = ANY($1::text[]) ORDER BY "messageId", ordinal`,
      [ids],
    );
    const byMessage = new Map<string, AttachmentRecord[]>();
    for (const a of attachments.rows) {
      const list = byMessage.get(a.messageId);
      if (list) list.push(a);
      else byMessage.set(a.messageId, [a]);
    }
    return messages.rows.map((m) => ({ ...m, attachments: byMessage.get(m.id) ?? [] }));
  }

  /**
   * Ends many attempts in one statement (the pump writes results in batches): appends each
   * attempt to the log (when given) and updates each delivery that is still `delivering` (a
   * replay meanwhile wins). Returns the ids of the deliveries that were updated.
   */
  async finishAttempts(items: readonly FinishItem[]): Promise<Set<string>> {
    return (await this.finishAndClaim(items, new Date())).updated;
  }

  private async whyNotClaimed(deliveryId: string, now: Date, leaseMs: number): Promise<ClaimResult> {
    const delivery = await this.prisma.webhookDelivery.findUnique({ where: { id: deliveryId }, include: { endpoint: true } });
    if (!delivery) return { kind: 'missing' };
    if (['delivered', 'dead', 'cancelled'].includes(delivery.status)) return { kind: 'final', status: delivery.status };
    if (delivery.status === 'delivering' && delivery.lastAttemptAt && delivery.lastAttemptAt.getTime() >= now.getTime() - leaseMs) return { kind: 'busy' };
    if (delivery.nextAttemptAt && delivery.nextAttemptAt > now) return { kind: 'not_due', at: delivery.nextAttemptAt };
    if (delivery.endpoint.deletedAt) {
      await this.prisma.webhookDelivery.updateMany({ where: { id: deliveryId, status: { in: ['pending', 'failed'] } }, data: { status: 'cancelled', nextAttemptAt: null } });
      return { kind: 'final', status: 'cancelled' };
    }
    if (!delivery.endpoint.enabled) {
      // Parked as dead: visible under ?status=dead and replayable once the endpoint is enabled.
      await this.prisma.webhookDelivery.updateMany({ where: { id: deliveryId, status: { in: ['pending', 'failed'] } }, data: { status: 'dead', nextAttemptAt: null } });
      return { kind: 'final', status: 'dead' };
    }
    return { kind: 'throttled' };
  }

  /**
   * Ends an attempt: appends to the attempt log (when `attempt` is given) and updates the
   * delivery, in one statement. Only a delivery still `delivering` is changed (a replay meanwhile
   * wins); the log entry is written either way.
   */
  async finishAttempt(
    deliveryId: string,
    patch: { status: DeliveryStatus; attempts: number; nextAttemptAt: Date | null; lastStatus: number | null; deliveredAt?: Date },
    attempt?: Omit<DeliveryAttemptRecord, 'id' | 'createdAt' | 'attemptNo' | 'deliveryId'> & { createdAt: Date },
  ): Promise<boolean> {
    const ts = (d: Date | null | undefined) => (d ? d.toISOString() : null);
    const now = new Date().toISOString();
    if (!attempt) {
      const n = await this.prisma.$executeRaw`
        UPDATE webhook_deliveries SET status = ${patch.status}, attempts = ${patch.attempts}::int, "nextAttemptAt" = ${ts(patch.nextAttemptAt)}::timestamp,
               "lastStatus" = ${patch.lastStatus}::int, "deliveredAt" = COALESCE(${ts(patch.deliveredAt)}::timestamp, "deliveredAt"), "updatedAt" = ${now}::timestamp
         WHERE id = ${deliveryId} AND status = 'delivering'`;
      return n > 0;
    }
    const n = await this.prisma.$executeRaw`
      WITH logged AS (
        INSERT INTO delivery_attempts (id, "deliveryId", "attemptNo", "statusCode", "latencyMs", "responseSnippet", error, "createdAt")
        SELECT ${newId('deliveryAttempt')}, ${deliveryId}, COALESCE(MAX("attemptNo"), 0) + 1, ${attempt.statusCode}::int, ${attempt.latencyMs}::int,
               ${attempt.responseSnippet}::text, ${attempt.error}::text, ${attempt.createdAt.toISOString()}::timestamp
          FROM delivery_attempts WHERE "deliveryId" = ${deliveryId})
      UPDATE webhook_deliveries SET status = ${patch.status}, attempts = ${patch.attempts}::int, "nextAttemptAt" = ${ts(patch.nextAttemptAt)}::timestamp,
             "lastStatus" = ${patch.lastStatus}::int, "deliveredAt" = COALESCE(${ts(patch.deliveredAt)}::timestamp, "deliveredAt"), "updatedAt" = ${now}::timestamp
       WHERE id = ${deliveryId} AND status = 'delivering'`;
    return n > 0;
  }

  async deliveriesForEvents(eventIds: readonly string[]): Promise<DeliveryRecord[]> {
    if (eventIds.length === 0) return [];
    return this.prisma.webhookDelivery.findMany({ where: { eventId: { in: [...eventIds] } }, orderBy: { id: 'asc' } });
  }

  /** An event's deliveries and their attempt logs from one snapshot (no half-finished attempt shows). */
  async deliveriesWithAttempts(eventId: string): Promise<{ deliveries: DeliveryRecord[]; attempts: DeliveryAttemptRecord[] }> {
    const [deliveries, attempts] = await this.prisma.$transaction(
      [
        this.prisma.webhookDelivery.findMany({ where: { eventId }, orderBy: { id: 'asc' } }),
        this.prisma.deliveryAttempt.findMany({ where: { delivery: { eventId } }, orderBy: [{ deliveryId: 'asc' }, { attemptNo: 'asc' }] }),
      ],
      { isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead },
    );
    return { deliveries, attempts };
  }

  /**
   * Deliveries whose job was lost: due long ago but still waiting, or holding an expired lease.
   * Each half reads only its own rows (webhook_deliveries_wake_idx: those due before `dueBefore`;
   * webhook_deliveries_leased_idx: the deliveries in flight), never the delivered history.
   */
  async listStrandedDeliveries(dueBefore: Date, leaseFloor: Date, limit: number): Promise<string[]> {
    const due = dueBefore.toISOString();
    const rows = await this.prisma.$queryRaw<Array<{ id: string }>>`
      SELECT id FROM (
        (SELECT d.id FROM webhook_deliveries d
          WHERE d.status IN ('pending', 'failed') AND COALESCE(d."nextAttemptAt", '-infinity'::timestamp) < ${due}::timestamp
            AND (d."nextAttemptAt" IS NOT NULL OR d."createdAt" < ${due}::timestamp)
          ORDER BY d.id LIMIT ${limit}::int)
        UNION ALL
        (SELECT d.id FROM webhook_deliveries d
          WHERE d.status = 'delivering' AND d."lastAttemptAt" < ${leaseFloor.toISOString()}::timestamp
          ORDER BY d.id LIMIT ${limit}::int)) s
      ORDER BY id LIMIT ${limit}::int`;
    return rows.map((r) => r.id);
  }
}

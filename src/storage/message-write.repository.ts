import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { HeldBlob } from './blob.store.js';
import type { Prisma, PrismaClient } from './database.js';

type Tx = Prisma.TransactionClient;

export interface NewMessageRow {
  id: string;
  tenantId: string;
  mailboxId: string;
  providerMessageId: string;
  providerThreadId: string | null;
  messageIdIndex: string | null;
  threadKey: string;
  direction: 'inbound' | 'outbound';
  isAutoReply: boolean;
  isBounce: boolean;
  oversize: boolean;
  parseError: string | null;
  sizeBytes: number;
  receivedAt: Date;
  contentEnc: Uint8Array;
  outboundId: string | null;
}

export interface NewAddressRow {
  id: string;
  role: 'from' | 'to' | 'cc' | 'bcc' | 'reply_to';
  addressIndex: string;
}

export interface NewAttachmentRow {
  id: string;
  ordinal: number;
  filenameEnc: Uint8Array | null;
  contentType: string;
  size: number;
  contentIdEnc: Uint8Array | null;
  isInline: boolean;
  scanStatus: 'pending' | 'clean' | 'infected' | 'unscannable';
  scanSignature: string | null;
  scanAttempts: number;
  scanError: string | null;
  scannedAt: Date | null;
  nextScanAt: Date | null;
  blobId: string | null;
}

export interface OutboundMatch {
  id: string;
  threadKey: string | null;
}

/** One outbound row that may match messages of a page (by Message-ID index or provider id). */
export interface OutboundCandidate extends OutboundMatch {
  messageIdIndex: string | null;
  providerMessageId: string | null;
}

export interface PageLookup {
  /** Oldest first (a message takes the first one that matches it, as findOutbound). */
  outbound: OutboundCandidate[];
  /** thread_refs: ref index → thread key, for the ref indexes asked about. */
  threadRefs: Map<string, string>;
}

/** A page of messages with everything that belongs to them, for one statement. */
export interface PageRows {
  messages: ReadonlyArray<NewMessageRow & { children: ChildRowsJson }>;
  /** One-chunk attachment blobs not written yet (BlobStore.writeOrHold). */
  blobs: readonly HeldBlob[];
  threadRefs: ReadonlyArray<{ refIndex: string; threadKey: string }>;
  createdAt: Date;
}

/** A message's participant and attachment rows as JSON fragments (comma-separated objects, no brackets), a slice each. */
export interface ChildRowsJson {
  addresses: string[];
  attachments: string[];
}

/**
 * Child rows carried by one statement at most (bytes of JSON). The page statement takes the first
 * fragments; a message with tens of thousands of participants gets follow-up statements, so no
 * single statement (which the driver encodes on the event loop) grows without bound.
 */
const STATEMENT_CHILD_BYTES = 256 * 1024;

/** Rows serialised between two yields to the event loop. */
const SERIALIZE_SLICE = 512;

const b64 = (v: Uint8Array | null): string | null => (v ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : null);
const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/**
 * Serialises a message's child rows ahead of its transaction, in bounded slices: a message with
 * tens of thousands of participants must not hold the event loop while it is encoded.
 */
export async function serializeChildRows(
  m: { id: string; tenantId: string; mailboxId: string },
  addresses: readonly NewAddressRow[],
  attachments: readonly NewAttachmentRow[],
): Promise<ChildRowsJson> {
  const parts: string[] = [];
  for (let i = 0; i < addresses.length; i += SERIALIZE_SLICE) {
    if (i > 0) await yieldToLoop();
    const slice = addresses.slice(i, i + SERIALIZE_SLICE).map((a) => ({ id: a.id, tenantId: m.tenantId, mailboxId: m.mailboxId, messageId: m.id, role: a.role, addressIndex: a.addressIndex }));
    parts.push(JSON.stringify(slice).slice(1, -1));
  }
  const att: string[] = [];
  for (let i = 0; i < attachments.length; i += SERIALIZE_SLICE) {
    if (i > 0) await yieldToLoop();
    const slice = attachments.slice(i, i + SERIALIZE_SLICE).map((a) => ({
      id: a.id,
      tenantId: m.tenantId,
      mailboxId: m.mailboxId,
      messageId: m.id,
      ordinal: a.ordinal,
      filenameEnc: b64(a.filenameEnc),
      contentType: a.contentType,
      size: a.size,
      contentIdEnc: b64(a.contentIdEnc),
      isInline: a.isInline,
      scanStatus: a.scanStatus,
      scanSignature: a.scanSignature,
      scanAttempts: a.scanAttempts,
      scanError: a.scanError,
      scannedAt: iso(a.scannedAt),
      nextScanAt: iso(a.nextScanAt),
      blobId: a.blobId,
    }));
    att.push(JSON.stringify(slice).slice(1, -1));
  }
  return { addresses: parts.filter((x) => x !== ''), attachments: att.filter((x) => x !== '') };
}

/** Raised inside a page transaction to roll it back: these provider ids are already stored. */
export class PageConflictError extends Error {
  override readonly name = 'PageConflictError';
  constructor(readonly providerMessageIds: readonly string[]) {
    super(`${providerMessageIds.length} message(s) of the page already stored`);
  }
}

/** Raised inside the ingest transaction to roll it back when the message row already exists. */
export class MessageAlreadyStoredError extends Error {
  override readonly name = 'MessageAlreadyStoredError';
}

/**
 * The write side of stored mail: one message with its participants and attachments, inserted in
 * the caller's transaction (ingest appends the outbox event in the same one). Uniqueness per
 * (mailboxId, providerMessageId) is enforced by the database; a concurrent second insert is
 * reported as MessageAlreadyStoredError, never as a second row.
 */
export class MessageWriteRepository {
  constructor(private readonly prisma: PrismaClient) {}

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(fn, { timeout: 60_000, maxWait: 30_000 });
  }

  /** Which of `providerMessageIds` this mailbox already stored (skips a fetch, saves quota). */
  async storedProviderIds(mailboxId: string, providerMessageIds: readonly string[]): Promise<Set<string>> {
    if (providerMessageIds.length === 0) return new Set();
    const rows = await this.prisma.message.findMany({
      where: { mailboxId, providerMessageId: { in: [...providerMessageIds] } },
      select: { providerMessageId: true },
    });
    return new Set(rows.map((r) => r.providerMessageId));
  }

  async findStoredId(mailboxId: string, providerMessageId: string): Promise<string | null> {
    const row = await this.prisma.message.findUnique({ where: { mailboxId_providerMessageId: { mailboxId, providerMessageId } }, select: { id: true } });
    return row?.id ?? null;
  }

  /** Receive time of the newest stored message: where a window resync starts (minus overlap). */
  async newestReceivedAt(mailboxId: string): Promise<Date | null> {
    const row = await this.prisma.message.findFirst({ where: { mailboxId }, orderBy: { receivedAt: 'desc' }, select: { receivedAt: true } });
    return row?.receivedAt ?? null;
  }

  /**
   * A reply the connector itself sent, recognised by the blind index of its generated Message-ID
   * (recorded before sending) or by the provider id the send returned.
   */
  async findOutbound(tx: Tx, mailboxId: string, messageIdIndex: string | null, providerMessageId: string): Promise<OutboundMatch | null> {
    const row = await tx.outboundMessage.findFirst({
      where: {
        mailboxId,
        OR: [...(messageIdIndex ? [{ messageIdIndex }] : []), { providerMessageId }],
      },
      orderBy: { createdAt: 'asc' },
      select: { id: true, threadKey: true },
    });
    return row;
  }

  /**
   * What a page of messages needs to read before it is written, in ONE statement: the outbound
   * rows that may match any of them (our own sent replies), and the known thread refs among all
   * their Message-ID candidates.
   */
  async pageLookup(tx: Tx, mailboxId: string, q: { messageIdIndexes: readonly string[]; providerMessageIds: readonly string[]; refIndexes: readonly string[] }): Promise<PageLookup> {
    const rows = await tx.$queryRawUnsafe<Array<{ outbound: OutboundCandidate[] | string | null; refs: Array<{ r: string; k: string }> | string | null }>>(
      `SELECT
         (SELECT json_agg(json_build_object('id', o.id, 'threadKey', o."threadKey", 'messageIdIndex', o."messageIdIndex", 'providerMessageId', o."providerMessageId") ORDER BY o."createdAt", o.id)
            FROM outbound_messages o
           WHERE o."mailboxId" = $1
             AND (o."messageIdIndex" IN (SELECT json_array_elements_text($2::json)) OR o."providerMessageId" IN (SELECT json_array_elements_text($3::json)))) AS outbound,
         (SELECT json_agg(json_build_object('r', t."refIndex", 'k', t."threadKey"))
            FROM thread_refs t
           WHERE t."mailboxId" = $1 AND t."refIndex" IN (SELECT json_array_elements_text($4::json))) AS refs`,
      mailboxId,
      JSON.stringify(q.messageIdIndexes),
      JSON.stringify(q.providerMessageIds),
      JSON.stringify(q.refIndexes),
    );
    const row = rows[0];
    const parse = <T>(v: T | string | null | undefined): T | null => (typeof v === 'string' ? (JSON.parse(v) as T) : (v ?? null));
    const outbound = parse<OutboundCandidate[]>(row?.outbound) ?? [];
    const refs = parse<Array<{ r: string; k: string }>>(row?.refs) ?? [];
    return { outbound, threadRefs: new Map(refs.map((r) => [r.r, r.k])) };
  }

  /**
   * Inserts a page of messages — rows, participants, attachments, held blobs with their chunk,
   * new thread refs — in ONE statement (multi-row inserts fed by JSON recordsets; works the same
   * on Postgres and the embedded database). Throws PageConflictError, before anything else is
   * written by the caller, when some message is already stored (a concurrent fetch won): the
   * caller rolls back and retries the page without it.
   */
  async insertPage(tx: Tx, page: PageRows): Promise<void> {
    if (page.messages.length === 0) return;
    const createdAt = page.createdAt.toISOString();
    const messages = page.messages.map((m) => ({
      id: m.id,
      tenantId: m.tenantId,
      mailboxId: m.mailboxId,
      providerMessageId: m.providerMessageId,
      providerThreadId: m.providerThreadId,
      messageIdIndex: m.messageIdIndex,
      threadKey: m.threadKey,
      direction: m.direction,
      isAutoReply: m.isAutoReply,
      isBounce: m.isBounce,
      oversize: m.oversize,
      parseError: m.parseError,
      sizeBytes: m.sizeBytes,
      receivedAt: m.receivedAt.toISOString(),
      contentEnc: b64(m.contentEnc),
      outboundId: m.outboundId,
    }));
    // Fragments packed into statements of at most STATEMENT_CHILD_BYTES (the first goes with the page).
    const pack = (key: keyof ChildRowsJson): string[] => {
      const out: string[] = [];
      let current: string[] = [];
      let size = 0;
      for (const fragment of page.messages.flatMap((m) => m.children[key])) {
        if (size > 0 && size + fragment.length > STATEMENT_CHILD_BYTES) {
          out.push(`[${current.join(',')}]`);
          current = [];
          size = 0;
        }
        current.push(fragment);
        size += fragment.length;
      }
      out.push(`[${current.join(',')}]`);
      return out;
    };
    const addressPacks = pack('addresses');
    const attachmentPacks = pack('attachments');
    const blobs = page.blobs.map((b) => ({ id: b.blobId, tenantId: b.tenantId, mailboxId: b.mailboxId, kind: b.kind, size: b.size, dataEnc: b64(b.dataEnc) }));
    const mailboxId = page.messages[0]!.mailboxId;
    const inserted = await tx.$queryRawUnsafe<Array<{ providerMessageId: string }>>(
      `WITH m AS (
         INSERT INTO messages (id, "tenantId", "mailboxId", "providerMessageId", "providerThreadId", "messageIdIndex", "threadKey", direction,
                               "isAutoReply", "isBounce", oversize, "parseError", "sizeBytes", "receivedAt", "contentEnc", "outboundId", "createdAt")
         SELECT x.id, x."tenantId", x."mailboxId", x."providerMessageId", x."providerThreadId", x."messageIdIndex", x."threadKey", x.direction,
                x."isAutoReply", x."isBounce", x.oversize, x."parseError", x."sizeBytes", x."receivedAt", decode(x."contentEnc", 'base64'), x."outboundId", $6::timestamp
           FROM json_to_recordset($1::json) AS x(id text, "tenantId" text, "mailboxId" text, "providerMessageId" text, "providerThreadId" text,
                "messageIdIndex" text, "threadKey" text, direction text, "isAutoReply" boolean, "isBounce" boolean, oversize boolean,
                "parseError" text, "sizeBytes" int, "receivedAt" timestamp, "contentEnc" text, "outboundId" text)
         ON CONFLICT ("mailboxId", "providerMessageId") DO NOTHING
         RETURNING id, "providerMessageId"),
       b AS (
         INSERT INTO blobs (id, "tenantId", "mailboxId", kind, size, chunks, complete, "createdAt")
         SELECT x.id, x."tenantId", x."mailboxId", x.kind, x.size, 1, true, $6::timestamp
           FROM json_to_recordset($2::json) AS x(id text, "tenantId" text, "mailboxId" text, kind text, size bigint)
         RETURNING id),
       c AS (
         INSERT INTO blob_chunks ("blobId", seq, "dataEnc")
         SELECT x.id, 0, decode(x."dataEnc", 'base64') FROM json_to_recordset($2::json) AS x(id text, "dataEnc" text)
         RETURNING "blobId"),
       a AS (
         INSERT INTO message_addresses (id, "tenantId", "mailboxId", "messageId", role, "addressIndex")
         SELECT x.id, x."tenantId", x."mailboxId", x."messageId", x.role, x."addressIndex"
           FROM json_to_recordset($3::json) AS x(id text, "tenantId" text, "mailboxId" text, "messageId" text, role text, "addressIndex" text)
          WHERE x."messageId" IN (SELECT id FROM m)
         RETURNING id),
       t AS (
         INSERT INTO attachments (id, "tenantId", "mailboxId", "messageId", ordinal, "filenameEnc", "contentType", size, "contentIdEnc", "isInline",
                                  "scanStatus", "scanSignature", "scanAttempts", "scanError", "scannedAt", "nextScanAt", "blobId", "createdAt")
         SELECT x.id, x."tenantId", x."mailboxId", x."messageId", x.ordinal, decode(x."filenameEnc", 'base64'), x."contentType", x.size,
                decode(x."contentIdEnc", 'base64'), x."isInline", x."scanStatus", x."scanSignature", x."scanAttempts", x."scanError",
                x."scannedAt", x."nextScanAt", x."blobId", $6::timestamp
           FROM json_to_recordset($4::json) AS x(id text, "tenantId" text, "mailboxId" text, "messageId" text, ordinal int, "filenameEnc" text,
                "contentType" text, size int, "contentIdEnc" text, "isInline" boolean, "scanStatus" text, "scanSignature" text,
                "scanAttempts" int, "scanError" text, "scannedAt" timestamp, "nextScanAt" timestamp, "blobId" text)
          WHERE x."messageId" IN (SELECT id FROM m)
         RETURNING id),
       r AS (
         INSERT INTO thread_refs ("mailboxId", "refIndex", "threadKey", "createdAt")
         SELECT $7, x."refIndex", x."threadKey", $6::timestamp FROM json_to_recordset($5::json) AS x("refIndex" text, "threadKey" text)
         ON CONFLICT ("mailboxId", "refIndex") DO NOTHING
         RETURNING "refIndex")
       SELECT "providerMessageId" FROM m`,
      JSON.stringify(messages),
      JSON.stringify(blobs),
      addressPacks[0],
      attachmentPacks[0],
      JSON.stringify(page.threadRefs),
      createdAt,
      mailboxId,
    );
    if (inserted.length < page.messages.length) {
      const stored = new Set(inserted.map((r) => r.providerMessageId));
      throw new PageConflictError(page.messages.filter((m) => !stored.has(m.providerMessageId)).map((m) => m.providerMessageId));
    }
    // Between statements, a turn of the event loop: the embedded database executes on this thread,
    // and a chain of statements resolving as microtasks would otherwise never let HTTP in.
    for (const pack of addressPacks.slice(1)) {
      await yieldToLoop();
      await tx.$executeRawUnsafe(
        `INSERT INTO message_addresses (id, "tenantId", "mailboxId", "messageId", role, "addressIndex")
         SELECT x.id, x."tenantId", x."mailboxId", x."messageId", x.role, x."addressIndex"
           FROM json_to_recordset($1::json) AS x(id text, "tenantId" text, "mailboxId" text, "messageId" text, role text, "addressIndex" text)`,
        pack,
      );
    }
    for (const pack of attachmentPacks.slice(1)) {
      await yieldToLoop();
      await tx.$executeRawUnsafe(
        `INSERT INTO attachments (id, "tenantId", "mailboxId", "messageId", ordinal, "filenameEnc", "contentType", size, "contentIdEnc", "isInline",
                                  "scanStatus", "scanSignature", "scanAttempts", "scanError", "scannedAt", "nextScanAt", "blobId", "createdAt")
         SELECT x.id, x."tenantId", x."mailboxId", x."messageId", x.ordinal, decode(x."filenameEnc", 'base64'), x."contentType", x.size,
                decode(x."contentIdEnc", 'base64'), x."isInline", x."scanStatus", x."scanSignature", x."scanAttempts", x."scanError",
                x."scannedAt", x."nextScanAt", x."blobId", $2::timestamp
           FROM json_to_recordset($1::json) AS x(id text, "tenantId" text, "mailboxId" text, "messageId" text, ordinal int, "filenameEnc" text,
                "contentType" text, size int, "contentIdEnc" text, "isInline" boolean, "scanStatus" text, "scanSignature" text,
                "scanAttempts" int, "scanError" text, "scannedAt" timestamp, "nextScanAt" timestamp, "blobId" text)`,
        pack,
        createdAt,
      );
    }
  }

  /** Inserts the message or throws MessageAlreadyStoredError (ON CONFLICT DO NOTHING: no aborted transaction). */
  async insertMessage(tx: Tx, row: NewMessageRow, addresses: readonly NewAddressRow[], attachments: readonly NewAttachmentRow[]): Promise<void> {
    const inserted = await tx.message.createMany({
      data: [{ ...row, contentEnc: new Uint8Array(row.contentEnc) }],
      skipDuplicates: true,
    });
    if (inserted.count === 0) throw new MessageAlreadyStoredError('message already stored');
    if (addresses.length > 0) {
      await tx.messageAddress.createMany({
        data: addresses.map((a) => ({ id: a.id, tenantId: row.tenantId, mailboxId: row.mailboxId, messageId: row.id, role: a.role, addressIndex: a.addressIndex })),
      });
    }
    if (attachments.length > 0) {
      await tx.attachment.createMany({
        data: attachments.map((a) => ({
          ...a,
          filenameEnc: a.filenameEnc ? new Uint8Array(a.filenameEnc) : null,
          contentIdEnc: a.contentIdEnc ? new Uint8Array(a.contentIdEnc) : null,
          tenantId: row.tenantId,
          mailboxId: row.mailboxId,
          messageId: row.id,
        })),
      });
    }
  }

  /**
   * Marks messages of the page as imported history (`origin = 'backfill'`; the column defaults to
   * `live`). One statement, only for pages that have such messages (window walks).
   */
  async markBackfill(tx: Tx, messageIds: readonly string[]): Promise<void> {
    if (messageIds.length === 0) return;
    await tx.message.updateMany({ where: { id: { in: [...messageIds] } }, data: { origin: 'backfill' } });
  }
}

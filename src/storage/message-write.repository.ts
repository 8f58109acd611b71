import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { HeldBlob } from './blob.store.js';
import type { Database, PrismaClient } from './database.js';
import type { SqlTransaction } from './sql-executor.port.js';

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
  messages: ReadonlyArray<NewMessageRow & { children: ChildRows }>;
  /** One-chunk attachment blobs not written yet (BlobStore.writeOrHold). */
  blobs: readonly HeldBlob[];
  threadRefs: ReadonlyArray<{ refIndex: string; threadKey: string }>;
  createdAt: Date;
}

/** A message's participant and attachment rows. */
export interface ChildRows {
  addresses: readonly NewAddressRow[];
  attachments: readonly NewAttachmentRow[];
}

/**
 * Child rows carried by one statement at most. The page statement takes the first ones; a message
 * with tens of thousands of participants gets follow-up statements, so no single statement (whose
 * array parameters the driver encodes on the event loop) grows without bound.
 */
const STATEMENT_CHILD_ROWS = 2048;

/**
 * The binary values of one statement (encrypted content, blob chunks, file names) concatenated
 * into ONE bytea parameter, each value addressed by (1-based offset, length): the pg driver sends
 * a Buffer parameter as binary, where an array of bytea would go as hex text (and JSON as base64).
 */
class ByteParam {
  readonly #parts: Uint8Array[] = [];
  #size = 0;

  /** [offset, length] of `v` (nulls for null), for `substring($bytes from offset for length)`. */
  add(v: Uint8Array | null): [number | null, number | null] {
    if (v === null) return [null, null];
    this.#parts.push(v);
    const at = this.#size + 1;
    this.#size += v.length;
    return [at, v.length];
  }

  buffer(): Buffer {
    return Buffer.concat(this.#parts, this.#size);
  }
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** Column arrays of `rows` (unnest parameters), one per key. */
function columns<R, K extends string>(rows: readonly R[], pick: (r: R) => Record<K, unknown>, keys: readonly K[]): unknown[][] {
  const out = keys.map(() => [] as unknown[]);
  for (const r of rows) {
    const v = pick(r);
    keys.forEach((k, i) => out[i]!.push(v[k]));
  }
  return out;
}

const ADDRESS_COLUMNS = ['id', 'messageId', 'role', 'addressIndex'] as const;
const ATTACHMENT_COLUMNS = [
  'id', 'messageId', 'ordinal', 'filenameAt', 'filenameLen', 'contentType', 'size', 'contentIdAt', 'contentIdLen', 'isInline',
  'scanStatus', 'scanSignature', 'scanAttempts', 'scanError', 'scannedAt', 'nextScanAt', 'blobId',
] as const;

/** A child row with the id of its message. */
interface Child<R> {
  messageId: string;
  row: R;
}

/** The page's child rows of one kind, in packs of at most STATEMENT_CHILD_ROWS (built as they are sent). */
function* childPacks<R>(messages: PageRows['messages'], pick: (c: ChildRows) => readonly R[]): Generator<Array<Child<R>>> {
  let pack: Array<Child<R>> = [];
  for (const m of messages) {
    for (const row of pick(m.children)) {
      pack.push({ messageId: m.id, row });
      if (pack.length === STATEMENT_CHILD_ROWS) {
        yield pack;
        pack = [];
      }
    }
  }
  if (pack.length > 0) yield pack;
}

function addressColumns(rows: ReadonlyArray<Child<NewAddressRow>>): unknown[][] {
  return columns(rows, ({ messageId, row: a }) => ({ id: a.id, messageId, role: a.role, addressIndex: a.addressIndex }), ADDRESS_COLUMNS);
}

function attachmentColumns(rows: ReadonlyArray<Child<NewAttachmentRow>>, bytes: ByteParam): unknown[][] {
  return columns(
    rows,
    ({ messageId, row: a }) => {
      const [filenameAt, filenameLen] = bytes.add(a.filenameEnc);
      const [contentIdAt, contentIdLen] = bytes.add(a.contentIdEnc);
      return {
        id: a.id,
        messageId,
        ordinal: a.ordinal,
        filenameAt,
        filenameLen,
        contentType: a.contentType,
        size: a.size,
        contentIdAt,
        contentIdLen,
        isInline: a.isInline,
        scanStatus: a.scanStatus,
        scanSignature: a.scanSignature,
        scanAttempts: a.scanAttempts,
        scanError: a.scanError,
        scannedAt: iso(a.scannedAt),
        nextScanAt: iso(a.nextScanAt),
        blobId: a.blobId,
      };
    },
    ATTACHMENT_COLUMNS,
  );
}

/** `INSERT … SELECT` of attachment rows from unnest($p…) (params from `first`), bytes in `$bytes`. */
const ATTACHMENT_SELECT = (first: number, bytes: string, tenant: string, mailbox: string, createdAt: string, onlyInserted: boolean) => `
         INSERT INTO attachments (id, "tenantId", "mailboxId", "messageId", ordinal, "filenameEnc", "contentType", size, "contentIdEnc", "isInline",
                                  "scanStatus", "scanSignature", "scanAttempts", "scanError", "scannedAt", "nextScanAt", "blobId", "createdAt")
         SELECT x.id, ${tenant}, ${mailbox}, x.mid, x.ord, substring(${bytes}::bytea from x.fa for x.fl), x.ct, x.sz,
                substring(${bytes}::bytea from x.ca for x.cl), x.inl, x.ss, x.sg, x.sa, x.se, x.sat, x.nsa, x.bid, ${createdAt}
           FROM unnest(${[
             'text', 'text', 'int', 'int', 'int', 'text', 'int', 'int', 'int', 'bool', 'text', 'text', 'int', 'text', 'timestamp', 'timestamp', 'text',
           ]
             .map((t, i) => `$${first + i}::${t}[]`)
             .join(', ')})
                AS x(id, mid, ord, fa, fl, ct, sz, ca, cl, inl, ss, sg, sa, se, sat, nsa, bid)${onlyInserted ? `
          WHERE x.mid IN (SELECT id FROM m)` : ''}`;

const ADDRESS_SELECT = (first: number, tenant: string, mailbox: string, onlyInserted: boolean) => `
         INSERT INTO message_addresses (id, "tenantId", "mailboxId", "messageId", role, "addressIndex")
         SELECT x.id, ${tenant}, ${mailbox}, x.mid, x.role, x.idx
           FROM unnest($${first}::text[], $${first + 1}::text[], $${first + 2}::text[], $${first + 3}::text[]) AS x(id, mid, role, idx)${onlyInserted ? `
          WHERE x.mid IN (SELECT id FROM m)` : ''}`;

/** The page statement: messages, held blobs with their chunk, child rows (the first ones), thread refs. */
const INSERT_PAGE_SQL = `WITH m AS (
         INSERT INTO messages (id, "tenantId", "mailboxId", "providerMessageId", "providerThreadId", "messageIdIndex", "threadKey", direction,
                               "isAutoReply", "isBounce", oversize, "parseError", "sizeBytes", "receivedAt", "contentEnc", "outboundId", "createdAt")
         SELECT x.id, $2, $3, x.pid, x.tid, x.midx, x.tk, x.dir, x.ar, x.bo, x.os, x.pe, x.sz, x.ra, substring($1::bytea from x.ca for x.cl), x.ob, $4::timestamp
           FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bool[], $12::bool[], $13::bool[],
                       $14::text[], $15::int[], $16::timestamp[], $17::int[], $18::int[], $19::text[])
                AS x(id, pid, tid, midx, tk, dir, ar, bo, os, pe, sz, ra, ca, cl, ob)
         ON CONFLICT ("mailboxId", "providerMessageId") DO NOTHING
         RETURNING id, "providerMessageId"),
       b AS (
         INSERT INTO blobs (id, "tenantId", "mailboxId", kind, size, chunks, complete, "createdAt")
         SELECT x.id, x.tid, x.mid, x.kind, x.size, 1, true, $4::timestamp
           FROM unnest($20::text[], $21::text[], $22::text[], $23::text[], $24::bigint[]) AS x(id, tid, mid, kind, size)
         RETURNING id),
       c AS (
         INSERT INTO blob_chunks ("blobId", seq, "dataEnc")
         SELECT x.id, 0, substring($1::bytea from x.da for x.dl) FROM unnest($20::text[], $25::int[], $26::int[]) AS x(id, da, dl)
         RETURNING "blobId"),
       a AS (${ADDRESS_SELECT(27, '$2', '$3', true)}
         RETURNING id),
       t AS (${ATTACHMENT_SELECT(31, '$1', '$2', '$3', '$4::timestamp', true)}
         RETURNING id),
       r AS (
         INSERT INTO thread_refs ("mailboxId", "refIndex", "threadKey", "createdAt")
         SELECT $3, x.ri, x.tk, $4::timestamp FROM unnest($48::text[], $49::text[]) AS x(ri, tk)
         ON CONFLICT ("mailboxId", "refIndex") DO NOTHING
         RETURNING "refIndex")
       SELECT "providerMessageId" FROM m`;

const INSERT_ADDRESSES_SQL = ADDRESS_SELECT(3, '$1', '$2', false);
const INSERT_ATTACHMENTS_SQL = ATTACHMENT_SELECT(5, '$1', '$2', '$3', '$4::timestamp', false);

/** Raised inside a page transaction to roll it back: these provider ids are already stored. */
export class PageConflictError extends Error {
  override readonly name = 'PageConflictError';
  constructor(readonly providerMessageIds: readonly string[]) {
    super(`${providerMessageIds.length} message(s) of the page already stored`);
  }
}

/**
 * The write side of stored mail: a page of messages with their participants, attachments, held
 * blobs and thread refs, inserted in one transaction (ingest appends the outbox events in the same
 * one). The page's statements go straight through the driver (Database.transaction: arrays and one
 * binary parameter, no Prisma query path — it cost more CPU than the statements). Uniqueness per
 * (mailboxId, providerMessageId) is enforced by the database; a concurrent second insert is
 * reported as PageConflictError, never as a second row.
 */
export class MessageWriteRepository {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly db: Pick<Database, 'transaction'>,
  ) {}

  /** One page transaction (pageLookup, insertPage, the outbox events) through the driver. */
  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
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
   * What a page of messages needs to read before it is written, in ONE statement: the outbound
   * rows that may match any of them (our own sent replies), and the known thread refs among all
   * their Message-ID candidates.
   */
  async pageLookup(tx: SqlTransaction, mailboxId: string, q: { messageIdIndexes: readonly string[]; providerMessageIds: readonly string[]; refIndexes: readonly string[] }): Promise<PageLookup> {
    const res = await tx.query<{ outbound: OutboundCandidate[] | string | null; refs: Array<{ r: string; k: string }> | string | null }>(
      `SELECT
         (SELECT json_agg(json_build_object('id', o.id, 'threadKey', o."threadKey", 'messageIdIndex', o."messageIdIndex", 'providerMessageId', o."providerMessageId") ORDER BY o."createdAt", o.id)
            FROM outbound_messages o
           WHERE o."mailboxId" = $1 AND (o."messageIdIndex" = ANY($2::text[]) OR o."providerMessageId" = ANY($3::text[]))) AS outbound,
         (SELECT json_agg(json_build_object('r', t."refIndex", 'k', t."threadKey"))
            FROM thread_refs t
           WHERE t."mailboxId" = $1 AND t."refIndex" = ANY($4::text[])) AS refs`,
      [mailboxId, [...q.messageIdIndexes], [...q.providerMessageIds], [...q.refIndexes]],
    );
    const row = res.rows[0];
    const parse = <T>(v: T | string | null | undefined): T | null => (typeof v === 'string' ? (JSON.parse(v) as T) : (v ?? null));
    const outbound = parse<OutboundCandidate[]>(row?.outbound) ?? [];
    const refs = parse<Array<{ r: string; k: string }>>(row?.refs) ?? [];
    return { outbound, threadRefs: new Map(refs.map((r) => [r.r, r.k])) };
  }

  /**
   * Inserts a page of messages — rows, participants, attachments, held blobs with their chunk,
   * new thread refs — in ONE statement (multi-row inserts from unnest'ed column arrays; every
   * binary value a slice of one bytea parameter; the same SQL on Postgres and the embedded
   * database). Throws PageConflictError, before anything else is written by the caller, when some
   * message is already stored (a concurrent fetch won): the caller rolls back and retries the page
   * without it.
   */
  async insertPage(tx: SqlTransaction, page: PageRows): Promise<void> {
    if (page.messages.length === 0) return;
    const { tenantId, mailboxId } = page.messages[0]!;
    if (page.messages.some((m) => m.mailboxId !== mailboxId || m.tenantId !== tenantId)) throw new Error('insertPage: a page belongs to one mailbox');
    const createdAt = page.createdAt.toISOString();
    const bytes = new ByteParam();
    const messageCols = columns(
      page.messages,
      (m) => {
        const [contentAt, contentLen] = bytes.add(m.contentEnc);
        return {
          id: m.id,
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
          contentAt,
          contentLen,
          outboundId: m.outboundId,
        };
      },
      [
        'id', 'providerMessageId', 'providerThreadId', 'messageIdIndex', 'threadKey', 'direction', 'isAutoReply', 'isBounce', 'oversize',
        'parseError', 'sizeBytes', 'receivedAt', 'contentAt', 'contentLen', 'outboundId',
      ] as const,
    );
    const blobCols = columns(
      page.blobs,
      (b) => {
        const [dataAt, dataLen] = bytes.add(b.dataEnc);
        return { id: b.blobId, tenantId: b.tenantId, mailboxId: b.mailboxId, kind: b.kind, size: String(b.size), dataAt, dataLen };
      },
      ['id', 'tenantId', 'mailboxId', 'kind', 'size', 'dataAt', 'dataLen'] as const,
    );
    // Child rows in statements of at most STATEMENT_CHILD_ROWS (the first ones go with the page).
    const addresses = childPacks(page.messages, (c) => c.addresses);
    const attachments = childPacks(page.messages, (c) => c.attachments);
    const refCols = columns(page.threadRefs, (r) => ({ refIndex: r.refIndex, threadKey: r.threadKey }), ['refIndex', 'threadKey'] as const);
    const addressCols = addressColumns(addresses.next().value ?? []);
    const attachmentCols = attachmentColumns(attachments.next().value ?? [], bytes);
    const inserted = await tx.query<{ providerMessageId: string }>(INSERT_PAGE_SQL, [
      bytes.buffer(),
      tenantId,
      mailboxId,
      createdAt,
      ...messageCols,
      ...blobCols,
      ...addressCols,
      ...attachmentCols,
      ...refCols,
    ]);
    if (inserted.rows.length < page.messages.length) {
      const stored = new Set(inserted.rows.map((r) => r.providerMessageId));
      throw new PageConflictError(page.messages.filter((m) => !stored.has(m.providerMessageId)).map((m) => m.providerMessageId));
    }
    // Between statements, a turn of the event loop: the embedded database executes on this thread,
    // and a chain of statements resolving as microtasks would otherwise never let HTTP in.
    for (const pack of addresses) {
      await yieldToLoop();
      await tx.query(INSERT_ADDRESSES_SQL, [tenantId, mailboxId, ...addressColumns(pack)]);
    }
    for (const pack of attachments) {
      await yieldToLoop();
      const more = new ByteParam();
      const cols = attachmentColumns(pack, more);
      await tx.query(INSERT_ATTACHMENTS_SQL, [more.buffer(), tenantId, mailboxId, createdAt, ...cols]);
    }
  }

  /**
   * Marks messages of the page as imported history (`origin = 'backfill'`; the column defaults to
   * `live`). One statement, only for pages that have such messages (window walks).
   */
  async markBackfill(tx: SqlTransaction, messageIds: readonly string[]): Promise<void> {
    if (messageIds.length === 0) return;
    await tx.query(`UPDATE messages SET origin = 'backfill' WHERE id = ANY($1::text[])`, [[...messageIds]]);
  }
}

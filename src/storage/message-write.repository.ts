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

/**
 * A message's participant rows, up to a few thousand per chunk, each column one comma-separated
 * string (row ids, roles `from|to|cc|bcc|reply_to`, hex blind indexes; none contains a comma). Built
 * in the parse worker thread (ingest/message-encoder.ts): a header of 25,000 addresses reaches
 * the statement as a few strings, not tens of thousands of values for the driver to encode.
 */
export interface AddressChunk {
  count: number;
  ids: string;
  roles: string;
  indexes: string;
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
  addresses: readonly AddressChunk[];
  attachments: readonly NewAttachmentRow[];
}

/**
 * Attachment rows carried by one statement at most. A statement takes the first ones; more get
 * follow-up statements, so no single statement (whose array parameters the driver encodes on the
 * event loop) grows without bound.
 */
const STATEMENT_CHILD_ROWS = 2048;
/**
 * Bytes one statement carries, about (binary values, participant chunks): a page is written as
 * several statements of at most this much each — a message above it alone in its statement — with
 * a turn of the event loop between them. One multi-MB bind would be built, copied into the
 * driver's buffer and written to the socket in one stretch of the event loop.
 */
const STATEMENT_BYTES = 1024 * 1024;
/**
 * The same bound on the embedded database, which executes each statement synchronously on the
 * event loop (PGlite): about one participant chunk per statement. A 1 MiB statement of ~10,000
 * participant rows held the event loop for 190–300 ms there (ingest-event-loop.test.ts's
 * address-heavy message); on Postgres the statement runs in its backend, and larger statements
 * save round trips.
 */
const EMBEDDED_STATEMENT_BYTES = 256 * 1024;

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

  get size(): number {
    return this.#size;
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

const ATTACHMENT_COLUMNS = [
  'id', 'messageId', 'ordinal', 'filenameAt', 'filenameLen', 'contentType', 'size', 'contentIdAt', 'contentIdLen', 'isInline',
  'scanStatus', 'scanSignature', 'scanAttempts', 'scanError', 'scannedAt', 'nextScanAt', 'blobId',
] as const;

/** A child row with the id of its message. */
interface Child<R> {
  messageId: string;
  row: R;
}

/** The child rows of one kind of `messages`, in packs of at most `size` (built as they are sent). */
function* childPacks<R>(messages: PageRows['messages'], pick: (c: ChildRows) => readonly R[], size: number): Generator<Array<Child<R>>> {
  let pack: Array<Child<R>> = [];
  for (const m of messages) {
    for (const row of pick(m.children)) {
      pack.push({ messageId: m.id, row });
      if (pack.length === size) {
        yield pack;
        pack = [];
      }
    }
  }
  if (pack.length > 0) yield pack;
}

const MESSAGE_COLUMNS = [
  'id', 'providerMessageId', 'providerThreadId', 'messageIdIndex', 'threadKey', 'direction', 'isAutoReply', 'isBounce', 'oversize',
  'parseError', 'sizeBytes', 'receivedAt', 'contentAt', 'contentLen', 'outboundId',
] as const;

function messageColumns(messages: PageRows['messages'], bytes: ByteParam): unknown[][] {
  return columns(
    messages,
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
    MESSAGE_COLUMNS,
  );
}

/** What a message adds to a statement, about: content, its held blobs, participant chunks, attachment rows. */
function messageBytes(m: PageRows['messages'][number], held: ReadonlyMap<string, HeldBlob>): number {
  let n = m.contentEnc.length;
  for (const c of m.children.addresses) n += chunkBytes(c);
  for (const a of m.children.attachments) n += 160 + (a.filenameEnc?.length ?? 0) + (a.contentIdEnc?.length ?? 0) + (a.blobId ? (held.get(a.blobId)?.dataEnc.length ?? 0) : 0);
  return n;
}

/** A page cut into statements of about `statementBytes` (each message whole, with its held blobs). */
function pageSlices(page: PageRows, statementBytes: number): Array<{ messages: PageRows['messages']; blobs: HeldBlob[] }> {
  const held = new Map(page.blobs.map((b) => [b.blobId, b]));
  const slices: Array<{ messages: Array<PageRows['messages'][number]>; blobs: HeldBlob[]; bytes: number }> = [];
  for (const m of page.messages) {
    const size = messageBytes(m, held);
    let slice = slices.at(-1);
    if (!slice || (slice.messages.length > 0 && slice.bytes + size > statementBytes)) {
      slice = { messages: [], blobs: [], bytes: 0 };
      slices.push(slice);
    }
    slice.messages.push(m);
    slice.bytes += size;
    for (const a of m.children.attachments) {
      const b = a.blobId ? held.get(a.blobId) : undefined;
      if (b) {
        slice.blobs.push(b);
        held.delete(b.blobId);
      }
    }
  }
  // A held blob no attachment row names (none is expected): written with the first statement, as before.
  slices[0]!.blobs.push(...held.values());
  return slices;
}

function addressColumns(chunks: ReadonlyArray<Child<AddressChunk>>): unknown[][] {
  return [chunks.map((c) => c.messageId), chunks.map((c) => c.row.ids), chunks.map((c) => c.row.roles), chunks.map((c) => c.row.indexes)];
}

/** What a participant chunk adds to a statement, about. */
const chunkBytes = (c: AddressChunk): number => c.ids.length + c.roles.length + c.indexes.length;

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

/** Participant rows from AddressChunks: one (message id, ids, roles, indexes) element per chunk, split in SQL. */
const ADDRESS_SELECT = (first: number, tenant: string, mailbox: string, onlyInserted: boolean) => `
         INSERT INTO message_addresses (id, "tenantId", "mailboxId", "messageId", role, "addressIndex")
         SELECT x.id, ${tenant}, ${mailbox}, c.mid, x.role, x.idx
           FROM unnest($${first}::text[], $${first + 1}::text[], $${first + 2}::text[], $${first + 3}::text[]) AS c(mid, ids, roles, idxs)
          CROSS JOIN LATERAL unnest(string_to_array(c.ids, ','), string_to_array(c.roles, ','), string_to_array(c.idxs, ',')) AS x(id, role, idx)${onlyInserted ? `
          WHERE c.mid IN (SELECT id FROM m)` : ''}`;

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
  /** Bytes one statement carries, about: STATEMENT_BYTES, or EMBEDDED_STATEMENT_BYTES on the embedded database. */
  readonly #statementBytes: number;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly db: Pick<Database, 'transaction' | 'kind'>,
  ) {
    this.#statementBytes = db.kind === 'embedded' ? EMBEDDED_STATEMENT_BYTES : STATEMENT_BYTES;
  }

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
   * new thread refs — as multi-row inserts from unnest'ed column arrays (every binary value a slice
   * of one bytea parameter; the same SQL on Postgres and the embedded database): one statement for
   * a page of up to STATEMENT_BYTES (EMBEDDED_STATEMENT_BYTES on the embedded database), otherwise
   * one per slice of its messages of about that size,
   * plus follow-up statements for participant chunks and attachment rows that did not fit their
   * message's statement. Throws PageConflictError, before the caller writes anything else, when
   * some message is already stored (a concurrent fetch won): the caller rolls back and retries the
   * page without it.
   */
  async insertPage(tx: SqlTransaction, page: PageRows): Promise<void> {
    if (page.messages.length === 0) return;
    const { tenantId, mailboxId } = page.messages[0]!;
    if (page.messages.some((m) => m.mailboxId !== mailboxId || m.tenantId !== tenantId)) throw new Error('insertPage: a page belongs to one mailbox');
    const createdAt = page.createdAt.toISOString();
    const slices = pageSlices(page, this.#statementBytes);
    const conflicts: string[] = [];
    const followUps: Array<() => Promise<void>> = [];
    for (const [i, slice] of slices.entries()) {
      // Between statements, a turn of the event loop: the embedded database executes on this
      // thread, and a chain of statements resolving as microtasks would otherwise never let HTTP in.
      if (i > 0) await yieldToLoop();
      const bytes = new ByteParam();
      const messageCols = messageColumns(slice.messages, bytes);
      const blobCols = columns(
        slice.blobs,
        (b) => {
          const [dataAt, dataLen] = bytes.add(b.dataEnc);
          return { id: b.blobId, tenantId: b.tenantId, mailboxId: b.mailboxId, kind: b.kind, size: String(b.size), dataAt, dataLen };
        },
        ['id', 'tenantId', 'mailboxId', 'kind', 'size', 'dataAt', 'dataLen'] as const,
      );
      const refCols = columns(i === 0 ? page.threadRefs : [], (r) => ({ refIndex: r.refIndex, threadKey: r.threadKey }), ['refIndex', 'threadKey'] as const);
      // Participant chunks while the statement stays within the budget (at least one); the rest follow.
      const chunks = [...childPacks(slice.messages, (c) => c.addresses, 1)].map((p) => p[0]!);
      let taken = 0;
      let room = this.#statementBytes - bytes.size;
      while (taken < chunks.length && (taken === 0 || room >= chunkBytes(chunks[taken]!.row))) room -= chunkBytes(chunks[taken++]!.row);
      const attachments = childPacks(slice.messages, (c) => c.attachments, STATEMENT_CHILD_ROWS);
      const attachmentCols = attachmentColumns(attachments.next().value ?? [], bytes);
      const inserted = await tx.query<{ providerMessageId: string }>(INSERT_PAGE_SQL, [
        bytes.buffer(),
        tenantId,
        mailboxId,
        createdAt,
        ...messageCols,
        ...blobCols,
        ...addressColumns(chunks.slice(0, taken)),
        ...attachmentCols,
        ...refCols,
      ]);
      if (inserted.rows.length < slice.messages.length) {
        const stored = new Set(inserted.rows.map((r) => r.providerMessageId));
        conflicts.push(...slice.messages.filter((m) => !stored.has(m.providerMessageId)).map((m) => m.providerMessageId));
      }
      // Statements for what did not fit: participant chunks up to the budget each, attachment packs.
      for (let at = taken; at < chunks.length; ) {
        let end = at + 1;
        let size = chunkBytes(chunks[at]!.row);
        while (end < chunks.length && size + chunkBytes(chunks[end]!.row) <= this.#statementBytes) size += chunkBytes(chunks[end++]!.row);
        const pack = chunks.slice(at, end);
        followUps.push(() => tx.query(INSERT_ADDRESSES_SQL, [tenantId, mailboxId, ...addressColumns(pack)]).then(() => undefined));
        at = end;
      }
      for (const pack of attachments) {
        followUps.push(async () => {
          const more = new ByteParam();
          const cols = attachmentColumns(pack, more);
          await tx.query(INSERT_ATTACHMENTS_SQL, [more.buffer(), tenantId, mailboxId, createdAt, ...cols]);
        });
      }
    }
    // Every slice's messages are in (or conflicted) before any follow-up statement: follow-ups
    // carry no conflict filter, so they only run when nothing conflicted.
    if (conflicts.length > 0) throw new PageConflictError(conflicts);
    for (const run of followUps) {
      await yieldToLoop();
      await run();
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

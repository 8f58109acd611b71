import type { Readable } from 'node:stream';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { BlindIndex } from '../crypto/blind-index.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { notifyEventsCommitted, type OutboxService } from '../events/outbox.service.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { DEFAULT_SCAN_POLICY, INITIAL_SCAN_STATE, nextScanState, type ScanPolicy } from '../scan/scan-policy.js';
import type { Scanner, ScanVerdict } from '../scan/scanner.port.js';
import type { BlobStore, HeldBlob } from '../storage/blob.store.js';
import {
  PageConflictError,
  type ChildRows,
  type MessageWriteRepository,
  type NewAttachmentRow,
  type NewMessageRow,
} from '../storage/message-write.repository.js';
import { ThreadRefPage } from '../storage/thread-ref.repository.js';
import type { AttachmentSink } from './attachment-sink.port.js';
import { BlobAttachmentSink } from './blob-attachment-sink.js';
import { encodeParsed, type EncodedAttachment, type EncodedParse, type EncodeSpec, type ParsedSummary } from './message-encoder.js';
import { type ParsedAttachment } from './mime-parser.js';
import { parseInProcess, type MimeEncodeFn, type MimeParseFn } from './parse-pool.js';
import { ScanningAttachmentSink } from './scanning-attachment-sink.js';
import { scanColumns } from './scan-columns.js';
import { resolveThreadKey, threadCandidates, type ThreadInput } from './threading.js';

export interface IngestMailbox {
  id: string;
  tenantId: string;
  provider: 'google' | 'microsoft';
}

/** One message as the provider handed it over (MailProvider.fetchRaw's RawMessage fits). */
export interface IngestInput {
  providerMessageId: string;
  providerThreadId: string | undefined;
  raw: Readable;
  receivedAt: Date | undefined;
  /**
   * The caller has just checked that the message is not stored (sync checks a whole page in one
   * query): skip the per-message lookup. The unique constraint still makes a race a no-op.
   */
  knownNew?: boolean;
  /**
   * `backfill`: imported history (fetched by a window walk, received before the mailbox was
   * connected); `live` (default): everything else. Stored on the message, delivered in
   * `message.received` (docs/sync.md, "Backfill and live mail").
   */
  origin?: 'backfill' | 'live';
}

export type IngestResult =
  | { status: 'stored'; messageId: string; direction: 'inbound' | 'outbound'; eventIds: string[]; oversize: boolean; infected: number; pending: number }
  | { status: 'duplicate'; messageId: string | null };

export interface IngestServiceDeps {
  messages: MessageWriteRepository;
  blobs: Pick<BlobStore, 'writeOrHold' | 'delete'>;
  /** The mailbox DEK is handed to the parse function, which encodes where it parses (message-encoder.ts). */
  dataKeys: Pick<DataKeyService, 'getOrCreate'>;
  blindIndex: Pick<BlindIndex, 'messageIdIndex' | 'derivedKeys'>;
  outbox: Pick<OutboxService, 'appendMailboxEvents'>;
  /** Enqueues webhooks.dispatch after commit; null in benches that measure ingest alone. */
  jobs: Pick<JobQueue, 'enqueue'> | null;
  scanner: { scanner: Scanner; configured: boolean };
  maxMessageBytes: number;
  scanPolicy?: ScanPolicy;
  /**
   * How MIME is parsed: MimeParsePool.parse (worker threads) in the service; in-process by default.
   * Its `encoded` variant is used when present: classification, the content JSON, encryption and
   * the blind indexes then run in the parse thread too, so the event loop only assembles rows.
   */
  parse?: MimeParseFn;
  /** Tuning of ingestPage; the defaults suit a 2-core machine. */
  page?: Partial<PageLimits>;
  clock: () => Date;
  logger: Pick<Logger, 'warn' | 'debug'>;
  metrics?: Metrics;
}

export interface PageLimits {
  /** Messages being fetched and parsed at once, ahead of the writer (parsing overlaps writing and hides the port round trips). */
  parseAhead: number;
  /** At most this many messages per transaction. */
  maxMessages: number;
  /** Close a transaction's batch at about this many bytes of encrypted content and held blobs. */
  maxBytes: number;
  /** Attachments of up to one chunk are written with the page, up to this much per message. */
  holdBytesPerMessage: number;
  /**
   * While messages are still being parsed, the writer waits for this many ready at the head of
   * the page before it commits (or for `commitWaitMs`, or the page's end): each transaction costs
   * a handful of statements whatever its size, and parse results come back in small batches.
   */
  commitAtLeast: number;
  /** The longest the writer waits for `commitAtLeast` (a slow parse of a large message never holds the others back longer). */
  commitWaitMs: number;
}

const DEFAULT_PAGE_LIMITS: PageLimits = {
  parseAhead: 16,
  maxMessages: 100,
  maxBytes: 4 * 1024 * 1024,
  holdBytesPerMessage: 2 * 1024 * 1024,
  commitAtLeast: 32,
  commitWaitMs: 50,
};

export interface IngestPageHooks {
  /** After each message's batch committed, in input order (sync counts; tests abort here). */
  onResult?(result: IngestResult, input: IngestInput): void | Promise<void>;
  /**
   * Messages pulled from `inputs` and not yet parsed, at most (default `PageLimits.parseAhead`).
   * Each pull may be an open provider request: the sync passes the provider's concurrency limit.
   */
  parseAhead?: number;
}

/** A message parsed and encrypted, waiting for its batch's transaction. */
interface Prepared {
  kind: 'prepared';
  input: IngestInput;
  parsed: ParsedSummary;
  row: Omit<NewMessageRow, 'threadKey' | 'direction' | 'outboundId'>;
  thread: ThreadInput;
  /** Blind index of each threadCandidates(thread) id, in that order (computed where it was parsed). */
  threadIndexes: readonly string[];
  /** Participant and attachment rows. */
  children: ChildRows;
  infectedIds: string[];
  pending: number;
  /** Blobs already written (multi-chunk attachments): deleted if the message is not stored. */
  written: string[];
  /** One-chunk attachment blobs written with the page. */
  held: HeldBlob[];
  bytes: number;
}

/** Nothing to write: already stored, or the same provider id earlier in the page. */
interface Skipped {
  kind: 'skipped';
  input: IngestInput;
  /** Stored id, or the provider id of the earlier entry of the page that stores it. */
  storedId: string | null;
  samePageAs: string | null;
}

type Entry = { settled: boolean; value?: Prepared | Skipped; error?: unknown; done: Promise<void> };

/**
 * Raw MIME → stored message, exactly once per (mailbox, provider message id).
 *
 * A page of messages (a sync page) flows through a pipeline: fetching and parsing run ahead
 * (`parseAhead` at a time, parsing in worker threads when `parse` is the MimeParsePool) while
 * the messages already parsed are written, in page order, by ONE transaction per batch — a
 * batch being whatever was ready when the previous transaction finished (group commit), up to
 * `maxMessages`/`maxBytes`. A batch is a handful of statements whatever its size: one read (our
 * own sent replies and known thread refs for all its messages), one multi-row insert (messages,
 * participants, attachments, one-chunk blobs with their chunk, thread refs) and one for the
 * outbox events with their consecutive per-mailbox sequence numbers.
 *
 * Every attachment is teed into the encrypted BlobStore (mailbox key) and into clamd at the same
 * time (ScanningAttachmentSink), so none is held whole and none is stored unscanned-and-forgotten
 * (no verdict → `pending`, rescanned by `scan.attachments`). A one-chunk attachment is kept
 * encrypted in memory and written with its message; a larger one is streamed to blob_chunks while
 * parsing (one statement per chunk) and deleted again if its message is not stored.
 *
 * Raw MIME is not kept: the normalized content and the attachments are what the helpdesk uses, the
 * original stays with the provider (refetchable by provider id), and a second encrypted copy of
 * every message would double storage and write time (docs/sync.md, "Raw MIME").
 */
export class IngestService {
  readonly #d: IngestServiceDeps;
  readonly #policy: ScanPolicy;
  readonly #limits: PageLimits;
  readonly #parse: MimeEncodeFn;
  readonly #counter: ReturnType<Metrics['counter']> | undefined;

  constructor(deps: IngestServiceDeps) {
    this.#d = deps;
    this.#policy = deps.scanPolicy ?? DEFAULT_SCAN_POLICY;
    this.#limits = { ...DEFAULT_PAGE_LIMITS, ...deps.page };
    const parse = deps.parse ?? parseInProcess;
    this.#parse = parse.encoded ?? (async (raw, options, encode) => encodeParsed(await parse(raw, options), encode));
    this.#counter = deps.metrics?.counter('mbc_ingest_messages_total', 'Messages through ingest by outcome', ['outcome'] as const);
  }

  /** True when the message is already stored (callers skip the provider fetch). */
  async isStored(mailboxId: string, providerMessageId: string): Promise<boolean> {
    return (await this.#d.messages.findStoredId(mailboxId, providerMessageId)) !== null;
  }

  /** One message: a page of one. */
  async ingest(mailbox: IngestMailbox, input: IngestInput): Promise<IngestResult> {
    const [result] = await this.ingestPage(mailbox, [input]);
    return result!;
  }

  /**
   * Ingests `inputs` in order and returns one result per input, after everything committed.
   * Pulling from `inputs` may throw (a provider fetch failing): the messages before it that were
   * parsed are committed first, then the error is rethrown — so a caller that saves its cursor
   * only after this returns never moves it past a message that is not stored.
   */
  async ingestPage(mailbox: IngestMailbox, inputs: Iterable<IngestInput> | AsyncIterable<IngestInput>, hooks: IngestPageHooks = {}): Promise<IngestResult[]> {
    const limits = { ...this.#limits, ...(hooks.parseAhead ? { parseAhead: hooks.parseAhead } : {}) };
    const source: AsyncIterator<IngestInput> =
      Symbol.asyncIterator in inputs ? (inputs as AsyncIterable<IngestInput>)[Symbol.asyncIterator]() : toAsync((inputs as Iterable<IngestInput>)[Symbol.iterator]());
    const entries: Entry[] = [];
    const results: IngestResult[] = [];
    const storedByProviderId = new Map<string, string>();
    const seen = new Set<string>();
    let inFlight = 0;
    let readyBytes = 0;
    let exhausted = false;
    let stopping = false;
    let sourceError: unknown = null;
    // Producer and writer wait on each other's progress.
    let waiters: Array<() => void> = [];
    const notify = (): void => {
      const w = waiters;
      waiters = [];
      for (const wake of w) wake();
    };
    const changed = (): Promise<void> => new Promise((resolve) => waiters.push(resolve));

    // Producer: pulls inputs (each pull may be a provider fetch) and starts their preparation,
    // staying at most `parseAhead` unsettled and about `maxBytes` settled ahead of the writer.
    const producer = (async () => {
      try {
        while (!stopping) {
          if (inFlight >= limits.parseAhead || readyBytes >= limits.maxBytes || entries.length >= limits.maxMessages * 2) {
            await changed();
            continue;
          }
          const next = await source.next();
          if (next.done || stopping) {
            if (!next.done) next.value.raw.destroy();
            break;
          }
          const input = next.value;
          const entry: Entry = { settled: false, done: Promise.resolve() };
          const duplicateInPage = seen.has(input.providerMessageId);
          seen.add(input.providerMessageId);
          inFlight++;
          entry.done = (duplicateInPage ? Promise.resolve<Skipped>({ kind: 'skipped', input, storedId: null, samePageAs: input.providerMessageId }) : this.#prepare(mailbox, input)).then(
            (value) => {
              entry.value = value;
              if (value.kind === 'prepared') readyBytes += value.bytes;
              if (value.kind === 'skipped') value.input.raw.destroy();
            },
            (err: unknown) => {
              entry.error = err;
            },
          );
          void entry.done.finally(() => {
            entry.settled = true;
            inFlight--;
            notify();
          });
          entries.push(entry);
          notify();
        }
      } catch (err) {
        sourceError = err;
      } finally {
        exhausted = true;
        notify();
      }
    })();

    const abandon = async (): Promise<void> => {
      stopping = true;
      notify();
      await producer;
      await source.return?.().catch(() => undefined);
      const left = entries.splice(0);
      await Promise.all(left.map((e) => e.done));
      await this.#discard(left.flatMap((e) => (e.value?.kind === 'prepared' ? e.value.written : [])));
    };

    // Ready entries at the head, and whether the writer should wait for more before committing:
    // only while a message is being prepared (fetched and parsed; not while the source is asked
    // for the next input), the page's last input has not been pulled and the held bytes and
    // entries have room — and never longer than commitWaitMs.
    const readyAtHead = (): number => {
      let n = 0;
      while (n < entries.length && entries[n]!.settled) n++;
      return n;
    };
    const worthWaiting = (): boolean =>
      inFlight > 0 && !exhausted && readyBytes < limits.maxBytes && entries.length < limits.maxMessages && readyAtHead() < Math.min(limits.commitAtLeast, limits.maxMessages);
    try {
      for (;;) {
        while (!(entries[0]?.settled ?? false) && !(exhausted && entries.length === 0)) await changed();
        if (entries.length === 0) break;
        if (worthWaiting()) {
          let timedOut = false;
          const timer = setTimeout(() => {
            timedOut = true;
            notify();
          }, limits.commitWaitMs);
          while (!timedOut && worthWaiting()) await changed();
          clearTimeout(timer);
        }
        // The batch: every settled entry at the head, in order.
        const batch: Array<Prepared | Skipped> = [];
        let bytes = 0;
        let failure: unknown = null;
        while (entries[0]?.settled && batch.length < limits.maxMessages && (batch.length === 0 || bytes < limits.maxBytes)) {
          const e = entries.shift()!;
          if (e.error !== undefined) {
            failure = e.error;
            break;
          }
          batch.push(e.value!);
          if (e.value!.kind === 'prepared') {
            bytes += e.value!.bytes;
            readyBytes -= e.value!.bytes;
          }
        }
        notify();
        // A turn of the event loop per batch (the embedded database runs on this thread).
        await yieldToLoop();
        const committed = await this.#commit(mailbox, batch, storedByProviderId).catch(async (err: unknown) => {
          await this.#discard(batch.flatMap((p) => (p.kind === 'prepared' ? p.written : [])));
          throw err;
        });
        for (let i = 0; i < batch.length; i++) {
          results.push(committed[i]!);
          await hooks.onResult?.(committed[i]!, batch[i]!.input);
        }
        if (failure !== null) throw failure;
      }
      if (sourceError !== null) throw sourceError;
      return results;
    } finally {
      await abandon();
    }
  }

  /** Fetch (by pulling the input), parse, classify and encrypt one message: everything but the write. */
  async #prepare(mailbox: IngestMailbox, input: IngestInput): Promise<Prepared | Skipped> {
    const d = this.#d;
    if (!input.knownNew) {
      const existing = await d.messages.findStoredId(mailbox.id, input.providerMessageId);
      if (existing) return { kind: 'skipped', input, storedId: existing, samePageAs: null };
    }
    const blobSink = new BlobAttachmentSink(d.blobs, { tenantId: mailbox.tenantId, mailboxId: mailbox.id }, this.#limits.holdBytesPerMessage);
    const sink: AttachmentSink = d.scanner.configured ? new ScanningAttachmentSink(blobSink, d.scanner.scanner) : blobSink;
    let parsed: EncodedParse;
    try {
      const dek = await d.dataKeys.getOrCreate({ type: 'mailbox', id: mailbox.id });
      const encode: EncodeSpec = { dek: { version: dek.version, key: dek.key }, blindKeys: d.blindIndex.derivedKeys };
      parsed = await this.#parse(input.raw, { attachmentSink: sink, maxBytes: d.maxMessageBytes, receivedAt: input.receivedAt ?? null, now: d.clock }, encode);
    } catch (err) {
      await this.#discard(blobSink.written);
      throw err;
    }
    try {
      return await this.#encode(mailbox, input, parsed, blobSink);
    } catch (err) {
      await this.#discard(blobSink.written);
      throw err;
    }
  }

  /** The rows of a message parsed and encoded (message-encoder.ts), and what became of its attachments. */
  async #encode(mailbox: IngestMailbox, input: IngestInput, { message: parsed, encoded }: EncodedParse, blobSink: BlobAttachmentSink): Promise<Prepared> {
    const d = this.#d;
    const now = d.clock();

    // Attachments: a cut one (oversize/malformed) is not a file; its partial blob is dropped.
    const kept: Array<[ParsedAttachment, EncodedAttachment]> = [];
    const dropBlobs: string[] = [];
    parsed.attachments.forEach((a, i) => {
      if (a.status === 'stored' && a.id) kept.push([a, encoded.attachments[i]!]);
      else if (a.id) dropBlobs.push(a.id);
    });
    const attachmentRows: NewAttachmentRow[] = [];
    const infectedIds: string[] = [];
    let pending = 0;
    for (const [a, enc] of kept) {
      const id = enc.rowId;
      const verdict: ScanVerdict = a.scan ?? { status: 'not_configured' };
      const attempts = verdict.status === 'not_configured' ? 0 : 1;
      const state = nextScanState(INITIAL_SCAN_STATE, verdict, attempts, now, this.#policy);
      if (state.status === 'infected') {
        // Content of an infected file is never kept (issue 5): only the signature survives.
        dropBlobs.push(a.id!);
        infectedIds.push(id);
      }
      if (state.status === 'pending') pending++;
      attachmentRows.push({
        id,
        ordinal: a.ordinal,
        filenameEnc: enc.filenameEnc,
        contentType: a.contentType,
        size: a.sizeBytes,
        contentIdEnc: enc.contentIdEnc,
        isInline: a.contentDisposition === 'inline' || a.related,
        ...scanColumns(state),
        blobId: state.status === 'infected' ? null : a.id!,
      });
    }
    // Ordinals stay those of the MIME order; re-number densely only if a cut attachment left a gap.
    attachmentRows.forEach((row, i) => (row.ordinal = i));
    const dropped = new Set(dropBlobs);
    const held = [...blobSink.held.values()].filter((b) => !dropped.has(b.blobId));
    const writtenDrops = dropBlobs.filter((id) => !blobSink.held.has(id));
    if (writtenDrops.length > 0) await d.blobs.delete(writtenDrops);
    const written = blobSink.written.filter((id) => !dropped.has(id));

    const contentEnc = encoded.contentEnc;
    const children: ChildRows = { addresses: encoded.addresses, attachments: attachmentRows };
    return {
      kind: 'prepared',
      input,
      parsed,
      row: {
        id: encoded.id,
        tenantId: mailbox.tenantId,
        mailboxId: mailbox.id,
        providerMessageId: input.providerMessageId,
        providerThreadId: input.providerThreadId ?? null,
        messageIdIndex: encoded.messageIdIndex,
        isAutoReply: encoded.isAutoReply,
        isBounce: encoded.isBounce,
        oversize: parsed.oversize,
        parseError: parsed.parseError,
        sizeBytes: parsed.sizeBytes,
        receivedAt: input.receivedAt ?? parsed.date,
        contentEnc,
      },
      thread: {
        messageId: parsed.messageId,
        inReplyTo: parsed.inReplyTo,
        references: parsed.references,
        providerThreadId: input.providerThreadId ?? null,
        provider: mailbox.provider,
      },
      threadIndexes: encoded.threadIndexes,
      children,
      infectedIds,
      pending,
      written,
      held,
      // About what the batch's statement carries for this message (binary values as they are).
      bytes:
        contentEnc.length +
        held.reduce((s, b) => s + b.dataEnc.length, 0) +
        encoded.addresses.reduce((s, c) => s + c.ids.length + c.roles.length + c.indexes.length, 0) +
        attachmentRows.length * CHILD_ROW_BYTES,
    };
  }

  /**
   * One transaction for a batch. When a message turns out to be stored already (a concurrent
   * fetch of the same message won the insert), the whole batch rolls back and is written again
   * without it: the threading of the others must not have seen its references.
   */
  async #commit(mailbox: IngestMailbox, batch: ReadonlyArray<Prepared | Skipped>, storedByProviderId: Map<string, string>): Promise<IngestResult[]> {
    const d = this.#d;
    let toWrite = batch.filter((p): p is Prepared => p.kind === 'prepared');
    const lost = new Set<string>();
    for (let attempt = 0; toWrite.length > 0; attempt++) {
      try {
        const stored = await this.#writeBatch(mailbox, toWrite);
        for (const p of toWrite) storedByProviderId.set(p.input.providerMessageId, p.row.id);
        if (d.jobs) await notifyEventsCommitted(d.jobs, [...stored.values()].flatMap((r) => r.eventIds), d.logger);
        return this.#results(mailbox.id, batch, stored, lost, storedByProviderId);
      } catch (err) {
        if (!(err instanceof PageConflictError) || attempt > 2) throw err;
        const conflicting = new Set(err.providerMessageIds);
        const losers = toWrite.filter((p) => conflicting.has(p.input.providerMessageId));
        await this.#discard(losers.flatMap((p) => p.written));
        for (const p of losers) lost.add(p.input.providerMessageId);
        toWrite = toWrite.filter((p) => !conflicting.has(p.input.providerMessageId));
      }
    }
    return this.#results(mailbox.id, batch, new Map(), lost, storedByProviderId);
  }

  async #results(
    mailboxId: string,
    batch: ReadonlyArray<Prepared | Skipped>,
    stored: ReadonlyMap<string, Extract<IngestResult, { status: 'stored' }>>,
    lost: ReadonlySet<string>,
    storedByProviderId: Map<string, string>,
  ): Promise<IngestResult[]> {
    const out: IngestResult[] = [];
    for (const p of batch) {
      const pid = p.input.providerMessageId;
      const result = stored.get(pid);
      if (p.kind === 'prepared' && result && !lost.has(pid)) {
        this.#counter?.inc({ outcome: p.parsed.oversize ? 'oversize' : p.parsed.parseError ? 'parse_error' : 'stored' });
        out.push(result);
        continue;
      }
      this.#counter?.inc({ outcome: 'duplicate' });
      let id: string | null = p.kind === 'skipped' ? p.storedId : null;
      id ??= storedByProviderId.get(pid) ?? null;
      // Lost a race with another fetch of the same message (overlapping pushes): already stored.
      id ??= await this.#d.messages.findStoredId(mailboxId, pid);
      out.push({ status: 'duplicate', messageId: id });
    }
    return out;
  }

  async #writeBatch(mailbox: IngestMailbox, batch: readonly Prepared[]): Promise<Map<string, Extract<IngestResult, { status: 'stored' }>>> {
    const d = this.#d;
    // Everything the transaction reads, computed before it opens. The blind indexes of the thread
    // candidates came with each message (computed where it was parsed).
    const hashes = new Map<string, string>();
    for (const p of batch) threadCandidates(p.thread).forEach((id, i) => hashes.set(id, p.threadIndexes[i] ?? d.blindIndex.messageIdIndex(id)));
    const refIndexes = [...new Set(hashes.values())];
    const messageIdIndexes = [...new Set(batch.map((p) => p.row.messageIdIndex).filter((v): v is string => v !== null))];
    const providerIds = batch.map((p) => p.input.providerMessageId);
    return d.messages.transaction(async (tx) => {
      const found = await d.messages.pageLookup(tx, mailbox.id, { messageIdIndexes, providerMessageIds: providerIds, refIndexes });
      const index = new ThreadRefPage(found.threadRefs, (id) => hashes.get(id) ?? d.blindIndex.messageIdIndex(id));
      const rows = [];
      const events: Array<{ type: 'message.received' | 'attachment.infected'; refs: { messageId: string; attachmentId?: string }; providerMessageId: string }> = [];
      for (const p of batch) {
        // Our own sent reply (same rule as one message at a time: the oldest outbound row that
        // matches by generated Message-ID or by the provider id the send returned).
        const outbound = found.outbound.find((o) => (p.row.messageIdIndex !== null && o.messageIdIndex === p.row.messageIdIndex) || o.providerMessageId === p.input.providerMessageId) ?? null;
        let threadKey: string;
        if (outbound?.threadKey) {
          // Our own reply joins the thread it was sent into, whatever its headers say.
          threadKey = outbound.threadKey;
          await index.record(threadCandidates(p.thread), threadKey);
        } else {
          threadKey = await resolveThreadKey(p.thread, index);
        }
        const direction: 'inbound' | 'outbound' = outbound ? 'outbound' : 'inbound';
        rows.push({ ...p.row, threadKey, direction, outboundId: outbound?.id ?? null, children: p.children });
        // The connector's own sent mail is stored in its thread but never announced as new
        // inbound mail: that is how a reply loop is broken.
        if (direction === 'inbound') events.push({ type: 'message.received', refs: { messageId: p.row.id }, providerMessageId: p.input.providerMessageId });
        for (const attachmentId of p.infectedIds) events.push({ type: 'attachment.infected', refs: { messageId: p.row.id, attachmentId }, providerMessageId: p.input.providerMessageId });
      }
      await d.messages.insertPage(tx, { messages: rows, blobs: batch.flatMap((p) => p.held), threadRefs: index.added(), createdAt: d.clock() });
      await d.messages.markBackfill(tx, batch.filter((p) => p.input.origin === 'backfill').map((p) => p.row.id));
      const appended = await d.outbox.appendMailboxEvents(tx, {
        tenantId: mailbox.tenantId,
        mailboxId: mailbox.id,
        events: events.map((e) => ({ type: e.type, refs: e.refs })),
      });
      const out = new Map<string, Extract<IngestResult, { status: 'stored' }>>();
      for (const [i, p] of batch.entries()) {
        out.set(p.input.providerMessageId, {
          status: 'stored',
          messageId: p.row.id,
          direction: rows[i]!.direction,
          eventIds: [],
          oversize: p.parsed.oversize,
          infected: p.infectedIds.length,
          pending: p.pending,
        });
      }
      events.forEach((e, i) => out.get(e.providerMessageId)!.eventIds.push(appended[i]!.id));
      return out;
    });
  }

  async #discard(blobIds: string[]): Promise<void> {
    if (blobIds.length === 0) return;
    await this.#d.blobs.delete([...blobIds]).catch((err: unknown) => this.#d.logger.warn({ err, count: blobIds.length }, 'could not delete orphan attachment blobs'));
  }
}

async function* toAsyncGen<T>(it: Iterator<T>): AsyncGenerator<T> {
  for (let r = it.next(); !r.done; r = it.next()) yield r.value;
}

function toAsync<T>(it: Iterator<T>): AsyncIterator<T> {
  return toAsyncGen(it);
}

/** What a participant or attachment row adds to a statement, about (ids, index, columns). */
const CHILD_ROW_BYTES = 160;

import type { Readable } from 'node:stream';
import type { BlindIndex } from '../crypto/blind-index.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { notifyEventsCommitted, type OutboxService } from '../events/outbox.service.js';
import type { JobQueue } from '../jobs/job-queue.js';
import {
  ATTACHMENT_CONTENT_ID_AAD,
  ATTACHMENT_FILENAME_AAD,
  encodeMessageContent,
  MESSAGE_CONTENT_AAD,
  type MessageAddress,
  type MessageContent,
} from '../mailboxes/message-content.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { DEFAULT_SCAN_POLICY, INITIAL_SCAN_STATE, nextScanState, type ScanPolicy } from '../scan/scan-policy.js';
import type { Scanner, ScanVerdict } from '../scan/scanner.port.js';
import type { BlobStore } from '../storage/blob.store.js';
import { newId } from '../storage/ids.js';
import {
  MessageAlreadyStoredError,
  type MessageWriteRepository,
  type NewAddressRow,
  type NewAttachmentRow,
} from '../storage/message-write.repository.js';
import { ThreadRefRepository } from '../storage/thread-ref.repository.js';
import type { AttachmentSink } from './attachment-sink.port.js';
import { BlobAttachmentSink } from './blob-attachment-sink.js';
import { classify } from './classifier.js';
import { parseMime, type MailAddress, type ParsedAttachment, type ParsedMessage } from './mime-parser.js';
import { ScanningAttachmentSink } from './scanning-attachment-sink.js';
import { scanColumns } from './scan-columns.js';
import { resolveThreadKey, threadCandidates } from './threading.js';

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
}

export type IngestResult =
  | { status: 'stored'; messageId: string; direction: 'inbound' | 'outbound'; eventIds: string[]; oversize: boolean; infected: number; pending: number }
  | { status: 'duplicate'; messageId: string | null };

export interface IngestServiceDeps {
  messages: MessageWriteRepository;
  blobs: Pick<BlobStore, 'write' | 'delete'>;
  dataKeys: Pick<DataKeyService, 'encryptFor'>;
  blindIndex: Pick<BlindIndex, 'emailIndex' | 'messageIdIndex'>;
  outbox: Pick<OutboxService, 'appendEvent'>;
  /** Enqueues webhooks.dispatch after commit; null in benches that measure ingest alone. */
  jobs: Pick<JobQueue, 'enqueue'> | null;
  scanner: { scanner: Scanner; configured: boolean };
  maxMessageBytes: number;
  scanPolicy?: ScanPolicy;
  clock: () => Date;
  logger: Pick<Logger, 'warn' | 'debug'>;
  metrics?: Metrics;
}

/**
 * Raw MIME → stored message, exactly once per (mailbox, provider message id).
 *
 * One streaming pass: mailparser splits the message; every attachment is teed into the encrypted
 * BlobStore (mailbox key) and into clamd at the same time (ScanningAttachmentSink), so no
 * attachment is held whole in memory and none is stored unscanned-and-forgotten (no verdict →
 * `pending`, rescanned by `scan.attachments`). Then ONE transaction writes the message row
 * (content encrypted), its participants' blind indexes, its attachments with their scan states,
 * its thread references and the outbox events.
 *
 * Raw MIME is not kept: the normalized content and the attachments are what the helpdesk uses, the
 * original stays with the provider (refetchable by provider id), and a second encrypted copy of
 * every message would double storage and write time (docs/sync.md, "Raw MIME").
 */
export class IngestService {
  readonly #d: IngestServiceDeps;
  readonly #policy: ScanPolicy;
  readonly #counter: ReturnType<Metrics['counter']> | undefined;

  constructor(deps: IngestServiceDeps) {
    this.#d = deps;
    this.#policy = deps.scanPolicy ?? DEFAULT_SCAN_POLICY;
    this.#counter = deps.metrics?.counter('mbc_ingest_messages_total', 'Messages through ingest by outcome', ['outcome'] as const);
  }

  /** True when the message is already stored (callers skip the provider fetch). */
  async isStored(mailboxId: string, providerMessageId: string): Promise<boolean> {
    return (await this.#d.messages.findStoredId(mailboxId, providerMessageId)) !== null;
  }

  async ingest(mailbox: IngestMailbox, input: IngestInput): Promise<IngestResult> {
    const d = this.#d;
    const existing = input.knownNew ? null : await d.messages.findStoredId(mailbox.id, input.providerMessageId);
    if (existing) {
      input.raw.destroy();
      this.#counter?.inc({ outcome: 'duplicate' });
      return { status: 'duplicate', messageId: existing };
    }

    const blobSink = new BlobAttachmentSink(d.blobs, { tenantId: mailbox.tenantId, mailboxId: mailbox.id });
    const sink: AttachmentSink = d.scanner.configured ? new ScanningAttachmentSink(blobSink, d.scanner.scanner) : blobSink;
    let parsed: ParsedMessage;
    try {
      parsed = await parseMime(input.raw, { attachmentSink: sink, maxBytes: d.maxMessageBytes, receivedAt: input.receivedAt ?? null, now: d.clock });
    } catch (err) {
      await this.#discard(blobSink.written);
      throw err;
    }

    try {
      return await this.#store(mailbox, input, parsed, blobSink.written);
    } catch (err) {
      await this.#discard(blobSink.written);
      if (err instanceof MessageAlreadyStoredError) {
        // Lost a race with another fetch of the same message (overlapping pushes): already stored.
        this.#counter?.inc({ outcome: 'duplicate' });
        return { status: 'duplicate', messageId: await d.messages.findStoredId(mailbox.id, input.providerMessageId) };
      }
      throw err;
    }
  }

  async #store(mailbox: IngestMailbox, input: IngestInput, parsed: ParsedMessage, written: string[]): Promise<IngestResult> {
    const d = this.#d;
    const now = d.clock();
    const owner = { type: 'mailbox' as const, id: mailbox.id };
    const messageId = newId('message');
    const classification = classify(parsed);
    const messageIdIndex = d.blindIndex.messageIdIndex(parsed.messageId);

    // Attachments: a cut one (oversize/malformed) is not a file; its partial blob is dropped.
    const kept: ParsedAttachment[] = [];
    const dropBlobs: string[] = [];
    for (const a of parsed.attachments) {
      if (a.status === 'stored' && a.id) kept.push(a);
      else if (a.id) dropBlobs.push(a.id);
    }
    const attachmentRows: NewAttachmentRow[] = [];
    const infectedIds: string[] = [];
    let pending = 0;
    for (const a of kept) {
      const id = newId('attachment');
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
        filenameEnc: a.filename ? await d.dataKeys.encryptFor(owner, a.filename, ATTACHMENT_FILENAME_AAD(id)) : null,
        contentType: a.contentType,
        size: a.sizeBytes,
        contentIdEnc: a.contentId ? await d.dataKeys.encryptFor(owner, a.contentId, ATTACHMENT_CONTENT_ID_AAD(id)) : null,
        isInline: a.contentDisposition === 'inline' || a.related,
        ...scanColumns(state),
        blobId: state.status === 'infected' ? null : a.id!,
      });
    }
    // Ordinals stay those of the MIME order; re-number densely only if a cut attachment left a gap.
    attachmentRows.forEach((row, i) => (row.ordinal = i));
    if (dropBlobs.length > 0) await d.blobs.delete(dropBlobs);
    const dropped = new Set(dropBlobs);
    for (let i = written.length - 1; i >= 0; i--) if (dropped.has(written[i]!)) written.splice(i, 1);

    const content: MessageContent = {
      v: 1,
      internetMessageId: parsed.messageId,
      messageIdSynthetic: parsed.messageIdSynthetic,
      inReplyTo: parsed.inReplyTo,
      references: parsed.references,
      from: parsed.from ? toAddress(parsed.from) : null,
      to: parsed.to.map(toAddress),
      cc: parsed.cc.map(toAddress),
      bcc: parsed.bcc.map(toAddress),
      replyTo: parsed.replyTo.map(toAddress),
      subject: parsed.subject,
      date: parsed.date.toISOString(),
      text: parsed.text,
      html: parsed.html,
      headers: headerRecord(parsed),
      autoReplyReason: classification.autoReplyReason ?? null,
      bounceReason: classification.bounceReason ?? null,
    };
    const contentEnc = await d.dataKeys.encryptFor(owner, encodeMessageContent(content), MESSAGE_CONTENT_AAD(messageId));
    const addresses = addressRows(parsed, (a) => d.blindIndex.emailIndex(a));
    const receivedAt = input.receivedAt ?? parsed.date;

    const { direction, eventIds } = await d.messages.transaction(async (tx) => {
      const outbound = await d.messages.findOutbound(tx, mailbox.id, messageIdIndex, input.providerMessageId);
      const index = new ThreadRefRepository(tx, mailbox.id, (id) => d.blindIndex.messageIdIndex(id));
      const threadInput = {
        messageId: parsed.messageId,
        inReplyTo: parsed.inReplyTo,
        references: parsed.references,
        providerThreadId: input.providerThreadId ?? null,
        provider: mailbox.provider,
      };
      let threadKey: string;
      if (outbound?.threadKey) {
        // Our own reply joins the thread it was sent into, whatever its headers say.
        threadKey = outbound.threadKey;
        await index.record(threadCandidates(threadInput), threadKey);
      } else {
        threadKey = await resolveThreadKey(threadInput, index);
      }
      const dir: 'inbound' | 'outbound' = outbound ? 'outbound' : 'inbound';
      await d.messages.insertMessage(
        tx,
        {
          id: messageId,
          tenantId: mailbox.tenantId,
          mailboxId: mailbox.id,
          providerMessageId: input.providerMessageId,
          providerThreadId: input.providerThreadId ?? null,
          messageIdIndex,
          threadKey,
          direction: dir,
          isAutoReply: classification.isAutoReply,
          isBounce: classification.isBounce,
          oversize: parsed.oversize,
          parseError: parsed.parseError,
          sizeBytes: parsed.sizeBytes,
          receivedAt,
          contentEnc,
          outboundId: outbound?.id ?? null,
        },
        addresses,
        attachmentRows,
      );
      const ids: string[] = [];
      // The connector's own sent mail is stored in its thread but never announced as new
      // inbound mail: that is how a reply loop is broken.
      if (dir === 'inbound') {
        ids.push((await d.outbox.appendEvent(tx, { tenantId: mailbox.tenantId, mailboxId: mailbox.id, type: 'message.received', refs: { messageId } })).id);
      }
      for (const attachmentId of infectedIds) {
        ids.push((await d.outbox.appendEvent(tx, { tenantId: mailbox.tenantId, mailboxId: mailbox.id, type: 'attachment.infected', refs: { messageId, attachmentId } })).id);
      }
      return { direction: dir, eventIds: ids };
    });

    if (d.jobs) await notifyEventsCommitted(d.jobs, eventIds, d.logger);
    this.#counter?.inc({ outcome: parsed.oversize ? 'oversize' : parsed.parseError ? 'parse_error' : 'stored' });
    return { status: 'stored', messageId, direction, eventIds, oversize: parsed.oversize, infected: infectedIds.length, pending };
  }

  async #discard(blobIds: string[]): Promise<void> {
    if (blobIds.length === 0) return;
    await this.#d.blobs.delete([...blobIds]).catch((err: unknown) => this.#d.logger.warn({ err, count: blobIds.length }, 'could not delete orphan attachment blobs'));
  }
}

function toAddress(a: MailAddress): MessageAddress {
  return { name: a.name === '' ? null : a.name, address: a.address };
}

/** Only the classification headers, as strings (MessageContent.headers); never the whole block. */
function headerRecord(p: ParsedMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.headers)) if (typeof v === 'string') out[k] = v;
  return out;
}

function addressRows(p: ParsedMessage, index: (address: string) => string): NewAddressRow[] {
  const rows: NewAddressRow[] = [];
  const seen = new Set<string>();
  const add = (role: NewAddressRow['role'], list: MailAddress[]): void => {
    for (const a of list) {
      if (!a.address) continue;
      let addressIndex: string;
      try {
        addressIndex = index(a.address);
      } catch {
        continue; // not an address the index can normalise (group syntax leftovers): nothing to find it by
      }
      const key = `${role}:${addressIndex}`;
      if (seen.has(key)) continue;
      seen.add(key);
      rows.push({ id: newId('messageAddress'), role, addressIndex });
    }
  };
  add('from', p.from ? [p.from] : []);
  add('to', p.to);
  add('cc', p.cc);
  add('bcc', p.bcc);
  add('reply_to', p.replyTo);
  return rows;
}

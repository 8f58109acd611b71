import { KeyDestroyedError } from '../crypto/crypto-error.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { MAILBOX_ADDRESS_AAD } from '../mailboxes/message-content.js';
import type { MessageContentPool } from '../messages/content-pool.js';
import { decrypt } from '../crypto/envelope.js';
import { decodeMessageContent, MESSAGE_CONTENT_AAD } from '../mailboxes/message-content.js';
import type { AttachmentMeta, MessageViewer } from '../messages/message-view.js';
import { messageReceivedData, receivedDataJson, type ReceivedDataTask } from '../messages/received-data.js';
import type { MailboxRepository } from '../storage/mailbox.repository.js';
import type { MessageReadRepository, MessageRecord } from '../storage/message-read.repository.js';
import type { OutboxEventRecord } from '../storage/outbox.repository.js';
import type { PayloadMailbox } from '../storage/webhook.repository.js';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { z } from 'zod';
import { eventRefsSchema } from './event-types.js';
import { EVENT_DATA_AAD } from './outbox.service.js';

/** The CONTRACT.md webhook body. */
export interface WebhookEventBody {
  id: string;
  type: string;
  createdAt: string;
  tenantId: string;
  mailboxId: string | null;
  /** Per-mailbox order (per-tenant for events without a mailbox). */
  sequence: number;
  data: Record<string, unknown>;
}

export type BuiltPayload =
  | { kind: 'ready'; body: WebhookEventBody }
  /** The content the event points at is gone (purged, crypto-shredded): never send a hollow event. */
  | { kind: 'cancelled'; reason: 'source_purged' | 'mailbox_disconnecting' };

/** A body as it goes on the wire: `JSON.stringify(body)` as UTF-8, byte for byte (encodeMany). */
export type EncodedPayload = { kind: 'ready'; bytes: Buffer } | Extract<BuiltPayload, { kind: 'cancelled' }> | { kind: 'error'; error: unknown };

/**
 * Synchronous work of building bodies on the event loop runs in slices of about this long; then
 * the builder yields a turn (HTTP, health checks, other deliveries) before the next body.
 */
const SLICE_MS = 10;
/** Attachment names decrypted per step (a message may have a thousand parts). */
const ATTACHMENT_STEP = 64;

/**
 * Runs synchronous pieces of work on the event loop in slices of at most about `budgetMs` (each
 * piece itself bounded by its caller): a piece that finds the slice used up waits for the next
 * turn. The check and the piece run in one continuation, so concurrent callers cannot all pass
 * the check before any of them has worked.
 */
class Slicer {
  #start = performance.now();
  #next: Promise<void> | null = null;
  constructor(private readonly budgetMs: number) {}

  async run<T>(fn: () => T): Promise<T> {
    while (performance.now() - this.#start >= this.budgetMs) {
      this.#next ??= yieldToLoop().then(() => {
        this.#next = null;
        this.#start = performance.now();
      });
      await this.#next;
    }
    return fn();
  }
}

const CLOSE_BRACE = Buffer.from('}', 'utf8');

const storedDataSchema = z.record(z.string(), z.unknown());

const MAILBOX_UNAVAILABLE = new Set(['disconnecting', 'purged']);

/** Where rows come from: the repositories, or rows prefetched for a batch (buildMany). */
interface Sources {
  mailbox(id: string): Promise<PayloadMailbox | null>;
  message(id: string): Promise<MessageRecord | null>;
}

class SourceGone extends Error {
  constructor(readonly reason: 'source_purged' | 'mailbox_disconnecting') {
    super(reason);
  }
}

/**
 * Builds webhook bodies at send time from encrypted storage, so nothing readable sits in the
 * outbox or the job queue. Mailbox lifecycle events never need mail content and are always
 * delivered (the facts that outlive a purge come from `dataEnc`, tenant key); content events are
 * cancelled when their source was purged or the mailbox is being disconnected.
 */
export class PayloadBuilder {
  constructor(
    private readonly deps: {
      messages: MessageReadRepository;
      mailboxes: MailboxRepository;
      viewer: MessageViewer;
      dataKeys: DataKeyService;
      /** A faster bulk read of messages for buildMany (undefined answer: use `messages`). */
      bulkMessages?: (ids: readonly string[]) => Promise<MessageRecord[] | undefined>;
      /**
       * Where encodeMany turns a large message content into its data JSON (a worker thread); without
       * it every content is decoded on the event loop, in slices.
       */
      contentPool?: Pick<MessageContentPool, 'minBytes' | 'receivedDataJson'>;
    },
  ) {}

  readonly #slicer = new Slicer(SLICE_MS);

  private readonly direct: Sources = {
    mailbox: (id) => this.deps.mailboxes.findByIdUnscoped(id),
    message: (id) => this.deps.messages.findMessageUnscoped(id),
  };

  async build(event: OutboxEventRecord, src: Sources = this.direct): Promise<BuiltPayload> {
    try {
      const data = await this.data(event, src);
      return { kind: 'ready', body: { ...this.envelope(event), data } };
    } catch (err) {
      if (err instanceof SourceGone) return { kind: 'cancelled', reason: err.reason };
      if (err instanceof KeyDestroyedError) return { kind: 'cancelled', reason: 'source_purged' };
      throw err;
    }
  }

  /**
   * Bodies for a batch of events (the webhook pump's claim): their mailboxes and messages are read
   * in one query each instead of per event. An event whose build fails gets its error back, the
   * others are unaffected.
   */
  async buildMany(
    events: readonly OutboxEventRecord[],
    /** A faster bulk read of mailboxes (the webhook pump's, straight through the driver; undefined answer: `mailboxes`). */
    bulk: { mailboxes?: (ids: readonly string[]) => Promise<PayloadMailbox[] | undefined> } = {},
  ): Promise<Array<BuiltPayload | { kind: 'error'; error: unknown }>> {
    const src = await this.prefetch(events, bulk);
    return Promise.all(events.map((e) => this.build(e, src).catch((error: unknown) => ({ kind: 'error' as const, error }))));
  }

  /**
   * The wire bodies of a batch of events (what buildMany gives, as `JSON.stringify(body)` in
   * UTF-8, byte for byte), without long stretches on the event loop: a `message.received` content
   * of `contentPool.minBytes` or more (tens of thousands of addresses, megabytes of text) is
   * parsed, checked and encoded in the content worker; everything else is built here in slices of
   * about SLICE_MS with a turn of the event loop between them.
   */
  async encodeMany(
    events: readonly OutboxEventRecord[],
    bulk: { mailboxes?: (ids: readonly string[]) => Promise<PayloadMailbox[] | undefined> } = {},
  ): Promise<EncodedPayload[]> {
    const src = await this.prefetch(events, bulk);
    return Promise.all(events.map((e) => this.encode(e, src).catch((error: unknown) => ({ kind: 'error' as const, error }))));
  }

  private async encode(event: OutboxEventRecord, src: Sources): Promise<EncodedPayload> {
    if (event.type !== 'message.received') {
      const built = await this.build(event, src);
      if (built.kind !== 'ready') return built;
      return this.#slicer.run(() => ({ kind: 'ready' as const, bytes: Buffer.from(JSON.stringify(built.body), 'utf8') }));
    }
    let data: Uint8Array;
    try {
      const refs = eventRefsSchema.parse(event.refs ?? {});
      data = await this.messageReceivedJson(event, refs.messageId!, src);
    } catch (err) {
      if (err instanceof SourceGone) return { kind: 'cancelled', reason: err.reason };
      if (err instanceof KeyDestroyedError) return { kind: 'cancelled', reason: 'source_purged' };
      throw err;
    }
    // The body's own fields in build()'s order, then the data JSON: JSON.stringify of the whole body.
    const head = JSON.stringify({ ...this.envelope(event), data: null });
    const prefix = Buffer.from(head.slice(0, -'null}'.length), 'utf8');
    return { kind: 'ready', bytes: Buffer.concat([prefix, data, CLOSE_BRACE]) };
  }

  /** `message.received` data as JSON (UTF-8): in the content worker when the content is large. */
  private async messageReceivedJson(event: OutboxEventRecord, messageId: string, src: Sources): Promise<Uint8Array> {
    await this.liveMailbox(event, src);
    const row = await src.message(messageId);
    if (!row || row.tenantId !== event.tenantId) throw new SourceGone('source_purged');
    const attachments: AttachmentMeta[] = [];
    for (let i = 0; i < row.attachments.length; i += ATTACHMENT_STEP) {
      const step = row.attachments.slice(i, i + ATTACHMENT_STEP);
      attachments.push(...(await this.#slicer.run(() => Promise.all(step.map((a) => this.deps.viewer.attachment(a))))));
    }
    // Decrypted in a slice of its own (AES-GCM over a few MiB is a few ms): key first, then the
    // synchronous decryption inside the slicer, so several large contents do not decrypt back to back.
    const key = await this.deps.dataKeys.get({ type: 'mailbox', id: row.mailboxId });
    const task: ReceivedDataTask = {
      plain: await this.#slicer.run(() => decrypt(key, row.contentEnc, MESSAGE_CONTENT_AAD(row.id))),
      row: { id: row.id, threadKey: row.threadKey, providerThreadId: row.providerThreadId, isAutoReply: row.isAutoReply, isBounce: row.isBounce, origin: row.origin, oversize: row.oversize, parseError: row.parseError },
      blockImages: await this.deps.viewer.blocksRemoteImages(row.tenantId),
      attachments: attachments.map((a) => ({ id: a.id, filename: a.filename, contentType: a.contentType, size: a.size, contentId: a.contentId, isInline: a.isInline, scanStatus: a.scanStatus })),
    };
    const pool = this.deps.contentPool;
    if (pool && task.plain.byteLength >= pool.minBytes) return pool.receivedDataJson(task);
    return this.#slicer.run(() => receivedDataJson(task));
  }

  /** Reads a batch's mailboxes and messages in one query each; others fall back to the repositories. */
  private async prefetch(
    events: readonly OutboxEventRecord[],
    bulk: { mailboxes?: (ids: readonly string[]) => Promise<PayloadMailbox[] | undefined> },
  ): Promise<Sources> {
    const mailboxIds = new Set<string>();
    const messageIds = new Set<string>();
    for (const e of events) {
      if (e.mailboxId) mailboxIds.add(e.mailboxId);
      if (e.type === 'message.received') {
        const parsed = eventRefsSchema.safeParse(e.refs ?? {});
        if (parsed.success && parsed.data.messageId) messageIds.add(parsed.data.messageId);
      }
    }
    // Sequential, not Promise.all: harmless on Postgres, and the embedded database has one connection.
    const mailboxRows = (await bulk.mailboxes?.([...mailboxIds])) ?? (await this.deps.mailboxes.findManyByIdsUnscoped([...mailboxIds]));
    const mailboxes = new Map<string, PayloadMailbox>(mailboxRows.map((m) => [m.id, m]));
    const ids = [...messageIds];
    const rows = (await this.deps.bulkMessages?.(ids)) ?? (await this.deps.messages.findMessagesUnscoped(ids));
    const messages = new Map(rows.map((m) => [m.id, m]));
    return {
      mailbox: async (id) => (mailboxIds.has(id) ? (mailboxes.get(id) ?? null) : this.deps.mailboxes.findByIdUnscoped(id)),
      message: async (id) => (messageIds.has(id) ? (messages.get(id) ?? null) : this.deps.messages.findMessageUnscoped(id)),
    };
  }

  private envelope(event: OutboxEventRecord): Omit<WebhookEventBody, 'data'> {
    return {
      id: event.id,
      type: event.type,
      createdAt: event.createdAt.toISOString(),
      tenantId: event.tenantId,
      mailboxId: event.mailboxId,
      sequence: Number(event.seq),
    };
  }

  /** The decrypted `data` facts stored with the event (tenant key). */
  async storedData(event: OutboxEventRecord): Promise<Record<string, unknown>> {
    if (!event.dataEnc) return {};
    const plain = await this.deps.dataKeys.decryptFor({ type: 'tenant', id: event.tenantId }, event.dataEnc, EVENT_DATA_AAD(event.id));
    // Lenient on read (the size and shape rules are enforced when appending): an event written by
    // an older or another writer must still go out rather than fail on every attempt.
    return storedDataSchema.parse(JSON.parse(plain.toString('utf8')));
  }

  private async data(event: OutboxEventRecord, src: Sources): Promise<Record<string, unknown>> {
    const refs = eventRefsSchema.parse(event.refs ?? {});
    const stored = await this.storedData(event);
    switch (event.type) {
      case 'mailbox.connected':
      case 'mailbox.reauth_required':
      case 'mailbox.disconnected':
      case 'mailbox.purged':
      case 'mailbox.break_glass_opened':
        return this.mailboxData(event, stored, refs.purgeId, src);
      case 'message.received':
        return this.messageReceived(event, refs.messageId!, src);
      case 'attachment.infected':
        return this.attachmentInfected(event, refs.attachmentId!, src);
      case 'attachment.scanned':
        return this.attachmentScanned(event, refs.attachmentId!, src);
      case 'message.sent':
      case 'message.send_failed':
        return this.outbound(event, refs.outboundId!, stored);
      default:
        // A type added by another room before this builder knows it: deliver its stored facts.
        if (event.type.startsWith('mailbox.')) return this.mailboxData(event, stored, refs.purgeId, src);
        return { ...stored };
    }
  }

  private async liveMailbox(event: OutboxEventRecord, src: Sources): Promise<PayloadMailbox> {
    const mailbox = event.mailboxId ? await src.mailbox(event.mailboxId) : null;
    if (!mailbox || mailbox.tenantId !== event.tenantId || mailbox.status === 'purged') throw new SourceGone('source_purged');
    if (MAILBOX_UNAVAILABLE.has(mailbox.status)) throw new SourceGone('mailbox_disconnecting');
    return mailbox;
  }

  private async mailboxData(event: OutboxEventRecord, stored: Record<string, unknown>, purgeId: string | undefined, src: Sources): Promise<Record<string, unknown>> {
    const mailbox = event.mailboxId ? await src.mailbox(event.mailboxId) : null;
    let address: string | null = null;
    if (mailbox) {
      try {
        address = (await this.deps.dataKeys.decryptFor({ type: 'mailbox', id: mailbox.id }, mailbox.addressEnc, MAILBOX_ADDRESS_AAD(mailbox.id))).toString('utf8');
      } catch (err) {
        // After a purge the mailbox key is gone: the event is still delivered, without the address.
        if (!(err instanceof KeyDestroyedError)) throw err;
      }
    }
    return {
      ...stored,
      mailboxId: event.mailboxId,
      provider: mailbox?.provider ?? stored.provider ?? null,
      address,
      status: mailbox?.status ?? stored.status ?? null,
      reason: stored.reason ?? mailbox?.statusReason ?? null,
      ...(purgeId !== undefined || stored.purgeId !== undefined ? { purgeId: purgeId ?? stored.purgeId } : {}),
    };
  }

  private async messageReceived(event: OutboxEventRecord, messageId: string, src: Sources): Promise<Record<string, unknown>> {
    await this.liveMailbox(event, src);
    const row = await src.message(messageId);
    if (!row || row.tenantId !== event.tenantId) throw new SourceGone('source_purged');
    const c = decodeMessageContent(await this.deps.viewer.decryptContent(row));
    const attachments = await Promise.all(row.attachments.map((a) => this.deps.viewer.attachment(a)));
    return messageReceivedData(row, c, await this.deps.viewer.blocksRemoteImages(row.tenantId), attachments);
  }

  /**
   * The attachment's status as it is when the event is sent (a later rescan cannot move a final
   * status back, so this is the status the scan reached); `signature` only when infected.
   */
  private async attachmentScanned(event: OutboxEventRecord, attachmentId: string, src: Sources): Promise<Record<string, unknown>> {
    await this.liveMailbox(event, src);
    const att = await this.deps.messages.findAttachmentUnscoped(attachmentId);
    if (!att || att.tenantId !== event.tenantId) throw new SourceGone('source_purged');
    const meta = await this.deps.viewer.attachment(att);
    return {
      attachmentId: att.id,
      messageId: att.messageId,
      filename: meta.filename,
      contentType: meta.contentType,
      size: meta.size,
      contentId: meta.contentId,
      isInline: meta.isInline,
      previousStatus: 'pending',
      scanStatus: meta.scanStatus,
      signature: att.scanStatus === 'infected' ? att.scanSignature : null,
    };
  }

  private async attachmentInfected(event: OutboxEventRecord, attachmentId: string, src: Sources): Promise<Record<string, unknown>> {
    await this.liveMailbox(event, src);
    const att = await this.deps.messages.findAttachmentUnscoped(attachmentId);
    if (!att || att.tenantId !== event.tenantId) throw new SourceGone('source_purged');
    return {
      attachmentId: att.id,
      messageId: att.messageId,
      filename: await this.deps.viewer.filename(att),
      contentType: att.contentType,
      size: att.size,
      scanStatus: att.scanStatus,
      signature: att.scanSignature,
    };
  }

  private async outbound(event: OutboxEventRecord, outboundId: string, stored: Record<string, unknown>): Promise<Record<string, unknown>> {
    const out = await this.deps.messages.findOutboundUnscoped(outboundId);
    if (!out || out.tenantId !== event.tenantId) throw new SourceGone('source_purged');
    return {
      ...stored,
      outboundId: out.id,
      messageId: out.messageId,
      replyToMessageId: out.replyToMessageId,
      kind: out.kind,
      status: out.status,
      threadKey: out.threadKey,
      providerMessageId: out.providerMessageId,
      providerThreadId: out.providerThreadId,
      sentAt: out.sentAt?.toISOString() ?? null,
      failure: event.type === 'message.send_failed' ? { code: out.failureCode ?? stored.failureCode ?? null, reason: out.failureReason ?? stored.reason ?? null } : null,
    };
  }
}

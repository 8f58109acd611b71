import type { Readable } from 'node:stream';
import type { AuditService } from '../audit/audit.service.js';
import { KeyDestroyedError } from '../crypto/crypto-error.js';
import type { BlobStore } from '../storage/blob.store.js';
import type { MessageContentPool } from './content-pool.js';
import type { MailboxRepository } from '../storage/mailbox.repository.js';
import type { MessageReadRepository, MessageRecord } from '../storage/message-read.repository.js';
import type { AttachmentMeta, MessageSummary, MessageView, MessageViewer } from './message-view.js';

export type ReadFailure =
  | { kind: 'not_found'; what: 'mailbox' | 'message' | 'attachment' }
  /** The mailbox is being disconnected: its content is about to be shredded and is no longer served. */
  | { kind: 'mailbox_disconnecting' }
  | { kind: 'attachment_not_clean'; scanStatus: string };

export class ReadRefusedError extends Error {
  override readonly name = 'ReadRefusedError';
  constructor(readonly failure: ReadFailure) {
    super(failure.kind);
  }
}

export interface MailboxListOptions {
  threadKey?: string;
  origin?: 'backfill' | 'live';
  before?: { receivedAt: Date; id: string };
  limit: number;
}

export interface TenantListOptions extends MailboxListOptions {
  mailboxId?: string;
}

/** A list page as the API sends it: each summary's JSON, whether there is another page, and the last row's position (its cursor). */
export interface JsonPage {
  items: Buffer[];
  more: boolean;
  last?: { receivedAt: Date; id: string };
}

/** Who is reading, for the audit trail. */
export interface Reader {
  tenantId: string;
  actorType: 'api_key' | 'ops';
  actorId: string;
}

export interface AttachmentDownload {
  meta: AttachmentMeta;
  size: number;
  stream: Readable;
}

/**
 * Reads of stored mail for the owning tenant. Every query is scoped by tenant id (another
 * tenant's id is simply "not found", nothing is decrypted), content is served only while the
 * mailbox is active or awaiting re-consent, and every content read is audited.
 */
export class MessageReadService {
  constructor(
    private readonly deps: {
      messages: MessageReadRepository;
      mailboxes: MailboxRepository;
      viewer: MessageViewer;
      blobs: BlobStore;
      blobInfo: (blobId: string) => Promise<{ size: number; complete: boolean } | null>;
      audit: AuditService;
      /** Where a large message's content becomes its API JSON (a worker thread); without it, the event loop. */
      contentPool?: Pick<MessageContentPool, 'messageViewJson'>;
    },
  ) {}

  /** `limit + 1` rows so the caller knows whether there is another page. */
  async list(reader: Reader, mailboxId: string, opts: MailboxListOptions): Promise<MessageSummary[]> {
    const rows = await this.mailboxRows(reader, mailboxId, opts);
    const views = await this.decrypting(() => Promise.all(rows.map((r) => this.deps.viewer.summary(r))), 'mailbox');
    await this.auditList(reader, mailboxId, rows.length, opts);
    return views;
  }

  /**
   * Newest first across every mailbox of the tenant whose content is served (not disconnecting or
   * purged), or one of them (`mailboxId`). `limit + 1` rows, like `list`.
   */
  async listForTenant(reader: Reader, opts: TenantListOptions): Promise<MessageSummary[]> {
    const rows = await this.tenantRows(reader, opts);
    const views = await this.decrypting(() => Promise.all(rows.map((r) => this.deps.viewer.summary(r))), 'message');
    await this.auditList(reader, opts.mailboxId, rows.length, opts);
    return views;
  }

  /**
   * `list` as the API sends it: the page's summaries as JSON (`JSON.stringify` of each, UTF-8),
   * built one after the other off the event loop when large (MessageViewer.summaryJson); the
   * extra row that tells whether there is another page is not decrypted. Same checks and audit.
   */
  async listJson(reader: Reader, mailboxId: string, opts: MailboxListOptions): Promise<JsonPage> {
    const rows = await this.mailboxRows(reader, mailboxId, opts);
    const page = await this.decrypting(() => this.jsonPage(rows, opts.limit), 'mailbox');
    await this.auditList(reader, mailboxId, rows.length, opts);
    return page;
  }

  /** `listForTenant` as the API sends it (see listJson). */
  async listForTenantJson(reader: Reader, opts: TenantListOptions): Promise<JsonPage> {
    const rows = await this.tenantRows(reader, opts);
    const page = await this.decrypting(() => this.jsonPage(rows, opts.limit), 'message');
    await this.auditList(reader, opts.mailboxId, rows.length, opts);
    return page;
  }

  private async mailboxRows(reader: Reader, mailboxId: string, opts: MailboxListOptions): Promise<MessageRecord[]> {
    await this.usableMailbox(reader.tenantId, mailboxId);
    return this.deps.messages.listMessages(reader.tenantId, mailboxId, { ...opts, limit: opts.limit + 1 });
  }

  private async tenantRows(reader: Reader, opts: TenantListOptions): Promise<MessageRecord[]> {
    const { mailboxId, ...query } = opts;
    let mailboxIds: string[];
    if (mailboxId) {
      await this.usableMailbox(reader.tenantId, mailboxId);
      mailboxIds = [mailboxId];
    } else {
      mailboxIds = [];
      for (let afterId: string | undefined; ; ) {
        const page = await this.deps.mailboxes.listForTenant(reader.tenantId, { limit: 500, ...(afterId ? { afterId } : {}) });
        for (const m of page) if (m.status !== 'purged' && m.status !== 'disconnecting') mailboxIds.push(m.id);
        if (page.length < 500) break;
        afterId = page[page.length - 1]!.id;
      }
    }
    return this.deps.messages.listTenantMessages(reader.tenantId, mailboxIds, { ...query, limit: query.limit + 1 });
  }

  /** The first `limit` rows' summaries, one at a time (each yields the event loop; large ones go to the worker). */
  private async jsonPage(rows: MessageRecord[], limit: number): Promise<JsonPage> {
    const shown = rows.slice(0, limit);
    const items: Buffer[] = [];
    for (const row of shown) items.push(await this.deps.viewer.summaryJson(row, this.deps.contentPool));
    const last = shown[shown.length - 1];
    return { items, more: rows.length > limit, ...(last ? { last: { receivedAt: last.receivedAt, id: last.id } } : {}) };
  }

  private async auditList(reader: Reader, mailboxId: string | undefined, rows: number, opts: { limit: number; threadKey?: string; origin?: 'backfill' | 'live' }): Promise<void> {
    await this.audit(reader, 'message.listed', mailboxId ? 'mailbox' : 'tenant', mailboxId ?? reader.tenantId, {
      count: Math.min(rows, opts.limit),
      ...(opts.threadKey ? { threadKey: opts.threadKey } : {}),
      ...(opts.origin ? { origin: opts.origin } : {}),
    });
  }

  /** `inlineImageUrl`: rewrite `cid:` references to this message's attachments to these URLs. */
  async get(reader: Reader, messageId: string, opts: { inlineImageUrl?: (attachmentId: string) => string } = {}): Promise<MessageView> {
    return this.readMessage(reader, messageId, (row) => this.deps.viewer.full(row, opts));
  }

  /**
   * `get` as the API sends it: `JSON.stringify` of the view in UTF-8, byte for byte, built off the
   * event loop when the content is large (MessageViewer.fullJson). Same checks and audit as `get`.
   */
  async getJson(reader: Reader, messageId: string, opts: { inlineImageUrl?: (attachmentId: string) => string } = {}): Promise<Buffer> {
    return this.readMessage(reader, messageId, (row) => this.deps.viewer.fullJson(row, opts, this.deps.contentPool));
  }

  /** One message of the reader's tenant whose mailbox is served, shown by `show`, audited as read. */
  private async readMessage<T>(reader: Reader, messageId: string, show: (row: MessageRecord) => Promise<T>): Promise<T> {
    const row = await this.deps.messages.findMessageForTenant(reader.tenantId, messageId);
    if (!row) throw new ReadRefusedError({ kind: 'not_found', what: 'message' });
    await this.usableMailbox(reader.tenantId, row.mailboxId, 'message');
    const shown = await this.decrypting(() => show(row), 'message');
    await this.audit(reader, 'message.read', 'message', row.id, { mailboxId: row.mailboxId });
    return shown;
  }

  /** Only a `clean` verdict is served (fail closed: pending, infected, error, unscannable are not). */
  async download(reader: Reader, attachmentId: string): Promise<AttachmentDownload> {
    const att = await this.deps.messages.findAttachmentForTenant(reader.tenantId, attachmentId);
    if (!att) throw new ReadRefusedError({ kind: 'not_found', what: 'attachment' });
    await this.usableMailbox(reader.tenantId, att.mailboxId, 'attachment');
    if (att.scanStatus !== 'clean' || !att.blobId) throw new ReadRefusedError({ kind: 'attachment_not_clean', scanStatus: att.scanStatus });
    const info = await this.deps.blobInfo(att.blobId);
    if (!info?.complete) throw new ReadRefusedError({ kind: 'not_found', what: 'attachment' });
    const meta = await this.decrypting(() => this.deps.viewer.attachment(att), 'attachment');
    await this.audit(reader, 'attachment.downloaded', 'attachment', att.id, { mailboxId: att.mailboxId, messageId: att.messageId, size: info.size });
    return { meta, size: info.size, stream: this.deps.blobs.read(att.blobId) };
  }

  private async usableMailbox(tenantId: string, mailboxId: string, what: 'mailbox' | 'message' | 'attachment' = 'mailbox'): Promise<void> {
    const mailbox = await this.deps.mailboxes.findForTenant(tenantId, mailboxId);
    if (!mailbox || mailbox.status === 'purged') throw new ReadRefusedError({ kind: 'not_found', what });
    if (mailbox.status === 'disconnecting') throw new ReadRefusedError({ kind: 'mailbox_disconnecting' });
  }

  /** A shredded key means the data is gone: that is "not found", not a server error. */
  private async decrypting<T>(fn: () => Promise<T>, what: 'mailbox' | 'message' | 'attachment'): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof KeyDestroyedError) throw new ReadRefusedError({ kind: 'not_found', what });
      throw err;
    }
  }

  private async audit(reader: Reader, action: string, targetType: string, targetId: string, metadata: Record<string, string | number>): Promise<void> {
    await this.deps.audit.record({ tenantId: reader.tenantId, actorType: reader.actorType, actorId: reader.actorId, action, targetType, targetId, metadata });
  }
}

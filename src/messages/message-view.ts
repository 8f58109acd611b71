import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { z } from 'zod';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { ATTACHMENT_CONTENT_ID_AAD, ATTACHMENT_FILENAME_AAD, decodeMessageContent, MESSAGE_CONTENT_AAD, type MessageContent } from '../mailboxes/message-content.js';
import type { AttachmentRecord, MessageRecord } from '../storage/message-read.repository.js';
import type { MessageContentPool } from './content-pool.js';
import { contentIdKey, rewriteCidUrls } from './inline-images.js';
import { messageViewJson, type MessageViewTask } from './message-view-json.js';
import { extractReply, type ReplyParts } from './reply-extraction.js';
import { blockRemoteImages, sanitizeEmailHtml } from './safe-html.js';

/** Attachment names decrypted per step of `fullJson` / `summaryJson` (a message may have a thousand parts). */
const ATTACHMENT_STEP = 64;

export const SCAN_STATUSES = ['pending', 'clean', 'infected', 'error', 'unscannable'] as const;

const address = z
  .object({
    name: z.string().nullable(),
    address: z.string().nullable().meta({ description: 'null for a name without an address (e.g. From: MAILER-DAEMON (Mail Delivery System))' }),
  })
  .meta({ id: 'EmailAddress' });

export const MESSAGE_ORIGINS = ['backfill', 'live'] as const;
export const originSchema = z.enum(MESSAGE_ORIGINS).meta({
  id: 'MessageOrigin',
  description:
    '`backfill`: history imported by a window walk (the initial backfill after connect, a window resync) — do not auto-reply to it; `live`: arrived after the sync’s cursor was taken (docs/sync.md, "Backfill and live mail")',
});

/** A stored origin as the API shows it (the column only holds these two; anything else reads as live). */
export function originView(origin: string | null | undefined): (typeof MESSAGE_ORIGINS)[number] {
  return origin === 'backfill' ? 'backfill' : 'live';
}

/** Why a message could not be parsed completely (messages.parseError). Never content. */
export const PARSE_ERROR_REASONS = {
  limit_exceeded: 'The message exceeds a parser limit (a header block over 1 MiB or more than 1,000 MIME parts): its main headers were salvaged, its body and attachments may be incomplete.',
  malformed: 'The MIME structure is broken: what was read before the break is kept.',
  no_headers: 'The message has no header block.',
} as const;
export type ParseErrorCode = keyof typeof PARSE_ERROR_REASONS;

export const parseErrorSchema = z
  .object({ code: z.enum(Object.keys(PARSE_ERROR_REASONS) as [ParseErrorCode, ...ParseErrorCode[]]), reason: z.string() })
  .nullable()
  .meta({ description: 'null when the message parsed completely; else a code (limit_exceeded, malformed, no_headers) and a fixed reason, never content (docs/api.md, "parseError")' });
export type ParseErrorView = z.infer<typeof parseErrorSchema>;

/** The stored code as `{code, reason}`; an unknown code reads as `malformed`. */
export function parseErrorView(code: string | null | undefined): ParseErrorView {
  if (!code) return null;
  const known = (Object.keys(PARSE_ERROR_REASONS) as ParseErrorCode[]).includes(code as ParseErrorCode) ? (code as ParseErrorCode) : 'malformed';
  return { code: known, reason: PARSE_ERROR_REASONS[known] };
}

export const attachmentMetaSchema = z
  .object({
    id: z.string(),
    object: z.literal('attachment'),
    filename: z.string().nullable(),
    contentType: z.string(),
    size: z.number().int(),
    /** Content-ID without angle brackets: what `cid:` references in the message's HTML name. */
    contentId: z.string().nullable().meta({ description: 'The part’s Content-ID without angle brackets (what `cid:` URLs in the HTML refer to), or null' }),
    isInline: z.boolean().meta({ description: 'Shown inside the message body (Content-Disposition inline, or a Content-ID part of multipart/related) rather than listed as a file' }),
    scanStatus: z.enum(SCAN_STATUSES),
  })
  .meta({ id: 'Attachment' });
export type AttachmentMeta = z.infer<typeof attachmentMetaSchema>;

export const messageSummarySchema = z
  .object({
    id: z.string(),
    object: z.literal('message'),
    mailboxId: z.string(),
    threadKey: z.string(),
    providerThreadId: z.string().nullable(),
    direction: z.enum(['inbound', 'outbound']),
    from: address.nullable(),
    to: z.array(address),
    cc: z.array(address),
    subject: z.string(),
    date: z.string(),
    receivedAt: z.string(),
    isAutoReply: z.boolean(),
    isBounce: z.boolean(),
    origin: originSchema,
    oversize: z.boolean(),
    parseError: parseErrorSchema,
    sizeBytes: z.number().int(),
    attachments: z.array(attachmentMetaSchema),
  })
  .meta({ id: 'MessageSummary' });
export type MessageSummary = z.infer<typeof messageSummarySchema>;

/** Reply text, signature and forwarded facts (docs/api.md, "Reply text, signature, forwarded"). */
export const replyFieldsShape = {
  replyText: z.string().nullable().meta({
    description:
      'The text without the quoted history ("On … wrote:", "-----Original Message-----", Outlook header blocks, > quotes), signature included. Null only when the message has no text; never empty for a non-empty text (the whole text when nothing is recognised)',
  }),
  signature: z.string().nullable().meta({ description: 'The trailing signature block of replyText when one is detected (replyText ends with it), else null' }),
  forwarded: z
    .object({
      from: z.object({ name: z.string().nullable(), address: z.string().nullable() }).nullable(),
      date: z.string().nullable().meta({ description: 'As written in the forwarded header (free text)' }),
      subject: z.string().nullable(),
    })
    .nullable()
    .meta({ id: 'ForwardedMessage', description: 'Set when the message forwards another one (subject "Fwd:"/"TR:"/"WG:"… and a forwarded header in the text): that message’s sender, date and subject' }),
};

export const messageSchema = messageSummarySchema
  .extend({
    internetMessageId: z.string().nullable(),
    inReplyTo: z.string().nullable(),
    references: z.array(z.string()),
    bcc: z.array(address),
    replyTo: z.array(address),
    text: z.string().nullable(),
    html: z.string().nullable().meta({ description: 'The sender’s HTML as received: never render it unsanitised (use safeHtml)' }),
    safeHtml: z
      .string()
      .nullable()
      .meta({
        description:
          'The HTML sanitised for display (no scripts, handlers, forms, frames, style elements, unsafe URLs or CSS); remote images turned off when the tenant blocks them (docs/api.md, "safeHtml")',
      }),
    ...replyFieldsShape,
  })
  .meta({ id: 'Message' });
export type MessageView = z.infer<typeof messageSchema>;

/**
 * The message's `safeHtml` as readers see it: stored at ingest (sanitised here for rows stored
 * before it existed), remote images turned off when the tenant blocks them.
 */
export function safeHtmlOf(c: MessageContent, block: boolean): string | null {
  const safe = c.safeHtml !== undefined ? c.safeHtml : sanitizeEmailHtml(c.html);
  if (safe === null) return null;
  return block ? blockRemoteImages(safe) : safe;
}

/** Reply text, signature and forwarded facts: stored at ingest, computed here for rows stored before. */
export function replyOf(c: MessageContent): ReplyParts {
  if (c.replyText !== undefined) return { replyText: c.replyText, signature: c.signature ?? null, forwarded: c.forwarded ?? null };
  return extractReply(c.text, c.subject);
}

/** The message row's columns the API's message shapes show (no content: that is `MessageContent`). */
export type ViewRow = Pick<MessageRecord, 'id' | 'mailboxId' | 'threadKey' | 'providerThreadId' | 'direction' | 'receivedAt' | 'isAutoReply' | 'isBounce' | 'origin' | 'oversize' | 'parseError' | 'sizeBytes'>;

/** A `MessageSummary` from the row, its decoded content and its attachments' metadata (decrypted). */
export function messageSummaryOf(row: ViewRow, c: MessageContent, attachments: AttachmentMeta[]): MessageSummary {
  return {
    id: row.id,
    object: 'message',
    mailboxId: row.mailboxId,
    threadKey: row.threadKey,
    providerThreadId: row.providerThreadId,
    direction: row.direction === 'outbound' ? 'outbound' : 'inbound',
    from: c.from,
    to: c.to,
    cc: c.cc,
    subject: c.subject,
    date: c.date,
    receivedAt: row.receivedAt.toISOString(),
    isAutoReply: row.isAutoReply,
    isBounce: row.isBounce,
    origin: originView(row.origin),
    oversize: row.oversize,
    parseError: parseErrorView(row.parseError),
    sizeBytes: row.sizeBytes,
    attachments,
  };
}

/** Content-ID → URL for `?inline=urls`: the first attachment with a Content-ID wins. */
export function inlineUrlsOf(attachments: readonly AttachmentMeta[], url: (attachmentId: string) => string): Map<string, string> {
  const urls = new Map<string, string>();
  for (const a of attachments) if (a.contentId && !urls.has(a.contentId)) urls.set(a.contentId, url(a.id));
  return urls;
}

/**
 * The whole message (`GET /v1/messages/:id`). One function for both places it is built — on the
 * event loop for ordinary contents, in the content worker for large ones (content-pool.ts) — so
 * both give the same JSON byte for byte. `inlineUrls`: `cid:` references in `html` and `safeHtml`
 * to these Content-IDs are rewritten to the URLs.
 */
export function messageViewOf(row: ViewRow, c: MessageContent, blockImages: boolean, attachments: AttachmentMeta[], inlineUrls?: ReadonlyMap<string, string>): MessageView {
  const summary = messageSummaryOf(row, c, attachments);
  let html = c.html;
  let safeHtml = safeHtmlOf(c, blockImages);
  if (inlineUrls) {
    if (html !== null) html = rewriteCidUrls(html, inlineUrls);
    if (safeHtml !== null) safeHtml = rewriteCidUrls(safeHtml, inlineUrls);
  }
  return {
    ...summary,
    internetMessageId: c.internetMessageId,
    inReplyTo: c.inReplyTo,
    references: c.references,
    bcc: c.bcc,
    replyTo: c.replyTo,
    text: c.text,
    html,
    safeHtml,
    ...replyOf(c),
  };
}

/**
 * Decrypts stored messages into their API / webhook shapes. Everything here is mail content:
 * callers decide who may see it (owning tenant only) and audit the read.
 */
export class MessageViewer {
  constructor(
    private readonly dataKeys: DataKeyService,
    /** The tenant's display settings (remote-image blocking); none blocked when not given. */
    private readonly display: (tenantId: string) => Promise<{ blockRemoteImages: boolean }> = async () => ({ blockRemoteImages: false }),
  ) {}

  async content(row: Pick<MessageRecord, 'id' | 'mailboxId' | 'contentEnc'>): Promise<MessageContent> {
    return decodeMessageContent(await this.decryptContent(row));
  }

  /** The content's JSON, decrypted but not parsed (the payload builder parses a large one in a worker). */
  async decryptContent(row: Pick<MessageRecord, 'id' | 'mailboxId' | 'contentEnc'>): Promise<Buffer> {
    return this.dataKeys.decryptFor({ type: 'mailbox', id: row.mailboxId }, row.contentEnc, MESSAGE_CONTENT_AAD(row.id));
  }

  async filename(att: Pick<AttachmentRecord, 'id' | 'mailboxId' | 'filenameEnc'>): Promise<string | null> {
    if (!att.filenameEnc) return null;
    const plain = await this.dataKeys.decryptFor({ type: 'mailbox', id: att.mailboxId }, att.filenameEnc, ATTACHMENT_FILENAME_AAD(att.id));
    return plain.toString('utf8');
  }

  async contentId(att: Pick<AttachmentRecord, 'id' | 'mailboxId' | 'contentIdEnc'>): Promise<string | null> {
    if (!att.contentIdEnc) return null;
    const plain = await this.dataKeys.decryptFor({ type: 'mailbox', id: att.mailboxId }, att.contentIdEnc, ATTACHMENT_CONTENT_ID_AAD(att.id));
    return contentIdKey(plain.toString('utf8'));
  }

  /**
   * The message's `safeHtml`: stored at ingest (computed here for rows stored before it existed),
   * with remote images turned off when the tenant blocks them.
   */
  async safeHtml(row: Pick<MessageRecord, 'tenantId'>, c: MessageContent): Promise<string | null> {
    return safeHtmlOf(c, await this.blocksRemoteImages(row.tenantId));
  }

  /** Whether the tenant turns remote images off in `safeHtml` (its display settings). */
  async blocksRemoteImages(tenantId: string): Promise<boolean> {
    return (await this.display(tenantId)).blockRemoteImages;
  }

  async attachment(att: AttachmentRecord): Promise<AttachmentMeta> {
    return {
      id: att.id,
      object: 'attachment',
      filename: await this.filename(att),
      contentType: att.contentType,
      size: att.size,
      contentId: await this.contentId(att),
      isInline: att.isInline,
      scanStatus: (SCAN_STATUSES as readonly string[]).includes(att.scanStatus) ? (att.scanStatus as AttachmentMeta['scanStatus']) : 'pending',
    };
  }

  async summary(row: MessageRecord, content?: MessageContent): Promise<MessageSummary> {
    const c = content ?? (await this.content(row));
    return messageSummaryOf(row, c, await Promise.all(row.attachments.map((a) => this.attachment(a))));
  }

  /** Reply text, signature and forwarded facts: stored at ingest, computed here for rows stored before. */
  reply(c: MessageContent): ReplyParts {
    return replyOf(c);
  }

  /**
   * The whole message. With `inlineImageUrl`, `cid:` references in `html` and `safeHtml` that
   * name one of this message's attachments are rewritten to that attachment's URL.
   */
  async full(row: MessageRecord, opts: { inlineImageUrl?: (attachmentId: string) => string } = {}): Promise<MessageView> {
    const c = await this.content(row);
    const attachments = await Promise.all(row.attachments.map((a) => this.attachment(a)));
    const inlineUrls = opts.inlineImageUrl ? inlineUrlsOf(attachments, opts.inlineImageUrl) : undefined;
    return messageViewOf(row, c, await this.blocksRemoteImages(row.tenantId), attachments, inlineUrls);
  }

  /**
   * `full(row, opts)` as the API sends it — `JSON.stringify` of it in UTF-8, byte for byte — without
   * long stretches on the event loop: attachment names are decrypted ATTACHMENT_STEP at a time with
   * a turn of the event loop between steps, the content in a step of its own, and a content of
   * `pool.minBytes` or more (tens of thousands of addresses, megabytes of HTML) is parsed, checked,
   * shaped and encoded in the pool's worker thread. Without a pool, all of it runs here.
   */
  async fullJson(row: MessageRecord, opts: { inlineImageUrl?: (attachmentId: string) => string } = {}, pool?: Pick<MessageContentPool, 'messageViewJson'>): Promise<Buffer> {
    return this.viewJson(row, opts, pool, false);
  }

  /** `summary(row)` as a list page sends it (`JSON.stringify`, UTF-8), built as `fullJson` builds the whole message. */
  async summaryJson(row: MessageRecord, pool?: Pick<MessageContentPool, 'messageViewJson'>): Promise<Buffer> {
    return this.viewJson(row, {}, pool, true);
  }

  private async viewJson(row: MessageRecord, opts: { inlineImageUrl?: (attachmentId: string) => string }, pool: Pick<MessageContentPool, 'messageViewJson'> | undefined, summary: boolean): Promise<Buffer> {
    const attachments: AttachmentMeta[] = [];
    for (let i = 0; i < row.attachments.length; i += ATTACHMENT_STEP) {
      if (i > 0) await yieldToLoop();
      attachments.push(...(await Promise.all(row.attachments.slice(i, i + ATTACHMENT_STEP).map((a) => this.attachment(a)))));
    }
    // A summary shows no HTML: the tenant's display settings are not read for it.
    const blockImages = summary ? false : await this.blocksRemoteImages(row.tenantId);
    await yieldToLoop();
    const task: MessageViewTask = {
      plain: await this.decryptContent(row),
      // Only the columns the view shows cross to the worker (not the encrypted content).
      row: {
        id: row.id,
        mailboxId: row.mailboxId,
        threadKey: row.threadKey,
        providerThreadId: row.providerThreadId,
        direction: row.direction,
        receivedAt: row.receivedAt,
        isAutoReply: row.isAutoReply,
        isBounce: row.isBounce,
        origin: row.origin,
        oversize: row.oversize,
        parseError: row.parseError,
        sizeBytes: row.sizeBytes,
      },
      blockImages,
      attachments,
      ...(opts.inlineImageUrl ? { inlineUrls: [...inlineUrlsOf(attachments, opts.inlineImageUrl)] } : {}),
      ...(summary ? { summary } : {}),
    };
    const json = pool ? await pool.messageViewJson(task) : messageViewJson(task);
    return Buffer.from(json.buffer, json.byteOffset, json.byteLength);
  }
}

import { decodeMessageContent, type MessageContent } from '../mailboxes/message-content.js';
import type { MessageRecord } from '../storage/message-read.repository.js';
import { originView, parseErrorView, replyOf, safeHtmlOf, type AttachmentMeta } from './message-view.js';

/** The message row's columns a `message.received` payload shows (no content: that is `MessageContent`). */
export type ReceivedRow = Pick<MessageRecord, 'id' | 'threadKey' | 'providerThreadId' | 'isAutoReply' | 'isBounce' | 'origin' | 'oversize' | 'parseError'>;

/** An attachment as a `message.received` payload lists it (decrypted names). */
export type ReceivedAttachment = Pick<AttachmentMeta, 'id' | 'filename' | 'contentType' | 'size' | 'contentId' | 'isInline' | 'scanStatus'>;

/**
 * The `data` of a `message.received` webhook (CONTRACT.md). One function for both places it is
 * built — on the event loop for ordinary messages, in the content worker for large ones
 * (content-pool.ts) — so both give the same JSON byte for byte.
 */
export function messageReceivedData(row: ReceivedRow, c: MessageContent, blockImages: boolean, attachments: readonly ReceivedAttachment[]): Record<string, unknown> {
  return {
    messageId: row.id,
    threadKey: row.threadKey,
    providerThreadId: row.providerThreadId,
    internetMessageId: c.internetMessageId,
    inReplyTo: c.inReplyTo,
    references: c.references,
    from: c.from,
    to: c.to,
    cc: c.cc,
    replyTo: c.replyTo,
    subject: c.subject,
    date: c.date,
    text: c.text,
    html: c.html,
    safeHtml: safeHtmlOf(c, blockImages),
    ...replyOf(c),
    isAutoReply: row.isAutoReply,
    isBounce: row.isBounce,
    origin: originView(row.origin),
    oversize: row.oversize,
    parseError: parseErrorView(row.parseError),
    attachments: attachments.map((a) => ({ id: a.id, filename: a.filename, contentType: a.contentType, size: a.size, contentId: a.contentId, isInline: a.isInline, scanStatus: a.scanStatus })),
  };
}

/** What the content worker needs to build a `message.received` data JSON: the decrypted content and the row's facts. */
export interface ReceivedDataTask {
  /** The decrypted `contentEnc` (MessageContent JSON), transferred to the worker. */
  plain: Uint8Array;
  row: ReceivedRow;
  blockImages: boolean;
  attachments: ReceivedAttachment[];
}

/**
 * decodeMessageContent (JSON.parse + schema check) → data → its JSON as UTF-8, each in its own
 * ArrayBuffer (transferable). Throws what decodeMessageContent throws on a bad content.
 */
export function receivedDataJson(task: ReceivedDataTask): Uint8Array {
  const c = decodeMessageContent(Buffer.from(task.plain.buffer, task.plain.byteOffset, task.plain.byteLength));
  const json = Buffer.from(JSON.stringify(messageReceivedData(task.row, c, task.blockImages, task.attachments)), 'utf8');
  if (json.byteOffset === 0 && json.byteLength === json.buffer.byteLength) return json;
  const own = new Uint8Array(json.byteLength);
  own.set(json);
  return own;
}

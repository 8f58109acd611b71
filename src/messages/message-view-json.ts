import { decodeMessageContent } from '../mailboxes/message-content.js';
import { messageSummaryOf, messageViewOf, type AttachmentMeta, type ViewRow } from './message-view.js';

/** What the content worker needs to build a message's API JSON: the decrypted content and the row's facts. */
export interface MessageViewTask {
  /** The decrypted `contentEnc` (MessageContent JSON), transferred to the worker. */
  plain: Uint8Array;
  row: ViewRow;
  blockImages: boolean;
  attachments: AttachmentMeta[];
  /** `?inline=urls`: Content-ID → attachment content URL (absent: `cid:` references stay as received). */
  inlineUrls?: Array<[string, string]>;
  /** Only the `MessageSummary` (list pages: no bodies; `blockImages` and `inlineUrls` unused). */
  summary?: boolean;
}

/**
 * decodeMessageContent (JSON.parse + schema check) → the `Message` view (or `MessageSummary`) → its JSON as UTF-8
 * (`JSON.stringify`, what express's `res.json` sends), in its own ArrayBuffer (transferable).
 * Throws what decodeMessageContent throws on a bad content.
 */
export function messageViewJson(task: MessageViewTask): Uint8Array {
  const c = decodeMessageContent(Buffer.from(task.plain.buffer, task.plain.byteOffset, task.plain.byteLength));
  const view = task.summary ? messageSummaryOf(task.row, c, task.attachments) : messageViewOf(task.row, c, task.blockImages, task.attachments, task.inlineUrls ? new Map(task.inlineUrls) : undefined);
  const json = Buffer.from(JSON.stringify(view), 'utf8');
  if (json.byteOffset === 0 && json.byteLength === json.buffer.byteLength) return json;
  const own = new Uint8Array(json.byteLength);
  own.set(json);
  return own;
}

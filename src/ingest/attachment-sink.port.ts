import type { Readable } from 'node:stream';
import type { ScanVerdict } from '../scan/scanner.port.js';

/** What the parser knows about an attachment before its bytes flow. Never contains content. */
export interface AttachmentMeta {
  /** 0-based position among the message's attachments, in MIME order. Stable for the same bytes. */
  ordinal: number;
  /** Sanitized file name (no path, no control characters, ≤255 chars), or null when none given. */
  filename: string | null;
  /** Lower-case MIME type; octet-stream is refined from the file name by mailparser. */
  contentType: string;
  /** `attachment`, `inline`, or null when the part had no Content-Disposition. */
  contentDisposition: string | null;
  /** Content-ID without angle brackets (matches `cid:` URLs in the HTML), or null. */
  contentId: string | null;
  /** True for a part with a Content-ID inside multipart/related (an embedded image). */
  related: boolean;
  /** IMAP-style part number ("1.2"), or null for a single-part message. */
  partId: string | null;
}

export interface AttachmentSinkResult {
  /** Whatever the sink assigned (blob id, row id). Returned to the caller in ParsedAttachment. */
  id: string;
  /** Set by sinks that scan while storing (ScanningAttachmentSink). */
  scan?: ScanVerdict;
}

/**
 * Port: receives each attachment's decoded content as a stream, exactly once per attachment.
 *
 * Contract:
 * - Consume `content` to its end (the parser waits for it: this is the backpressure that keeps a
 *   100 MB attachment from being buffered). Anything left unread is drained and discarded.
 * - If `content` emits an error the message was cut short (oversize or malformed input): the sink
 *   must discard what it wrote for this attachment and reject (or resolve; the result is then
 *   reported as `truncated` so the caller can delete it).
 * - Rejecting for any other reason (storage down) aborts the whole parse with AttachmentSinkError,
 *   so the sync job retries the message.
 */
export interface AttachmentSink {
  put(meta: AttachmentMeta, content: Readable): Promise<AttachmentSinkResult>;
}

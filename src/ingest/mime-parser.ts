import { createHash } from 'node:crypto';
import { finished } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { AddressObject, AttachmentStream, EmailAddress, HeaderLines, Headers, MessageText } from 'mailparser';
import { AttachmentNamer, isAttachedMessage } from './attachment-names.js';
import type { AttachmentMeta, AttachmentSink } from './attachment-sink.port.js';
import { TicketMailParser } from './ticket-mail-parser.js';
import { isTnef, parseTnef, TnefError, type TnefAttachment } from './tnef.js';
import type { ReplyParts } from '../messages/reply-extraction.js';
import type { ScanVerdict } from '../scan/scanner.port.js';
import { AttachmentSinkError, MimeSourceError } from './mime-parse.errors.js';
import { MAX_REFERENCES, normalizeMessageId, parseInReplyTo, parseMessageIdList } from './message-id.js';

export const DEFAULT_MAX_BYTES = 50 * 1024 * 1024;
/** Bodies above these are cut: they are for display in a ticket, not archival (raw MIME is kept). */
export const DEFAULT_MAX_TEXT_CHARS = 2 * 1024 * 1024;
export const DEFAULT_MAX_HTML_CHARS = 4 * 1024 * 1024;
/** mailsplit refuses a header block above 1 MiB (EMAXLEN); we capture the same amount ourselves. */
const MAX_HEAD_BYTES = 1024 * 1024;
/**
 * A winmail.dat is read whole to be unpacked (TNEF has no streaming order: names may follow the
 * data). Above this it is stored as it came, one opaque attachment.
 */
const MAX_TNEF_BYTES = 32 * 1024 * 1024;
/** How much of an attached message is read ahead for its subject (its name). */
const MAX_ATTACHED_HEAD_BYTES = 64 * 1024;
/** The message's first declared charset is looked for in its first bytes (the header-bytes fallback). */
const CHARSET_SNIFF_BYTES = 64 * 1024;

export { sanitizeFilename } from './attachment-names.js';

export interface MailAddress {
  name: string;
  /**
   * Local part as written, domain lower-cased (RFC 5321 §2.4: only the domain is case-insensitive).
   * Null for a name without an address (`From: MAILER-DAEMON (Mail Delivery System)`).
   */
  address: string | null;
}

/** Raw (decoded) header values the classifier needs. First occurrence; null when absent. */
export interface ClassificationHeaders {
  autoSubmitted: string | null;
  xAutoreply: string | null;
  xAutorespond: string | null;
  precedence: string | null;
  xAutoResponseSuppress: string | null;
  /** Raw Return-Path, e.g. "<>" for a null reverse-path (RFC 5321 §4.5.5: DSNs use it). */
  returnPath: string | null;
  /** Root Content-Type value, lower-case, e.g. "multipart/report". */
  contentType: string | null;
  /** Root Content-Type report-type parameter, lower-case (RFC 6522), e.g. "delivery-status". */
  reportType: string | null;
  listId: string | null;
  listUnsubscribe: string | null;
  xFailedRecipients: string | null;
  /** Lower-case MIME types of report-ish parts seen anywhere in the message (structural sniff). */
  partTypes: string[];
}

export type ParseErrorCode =
  /** A header block above 1 MiB, or more MIME parts than the splitter allows. */
  | 'limit_exceeded'
  /** The MIME structure could not be decoded further; what was read before is returned. */
  | 'malformed'
  /** No header block could be found at all. */
  | 'no_headers';

export type ParseWarning = 'html_to_text_failed' | 'text_truncated' | 'html_truncated' | 'date_unparsable';

export interface ParsedAttachment extends AttachmentMeta {
  /** Sink-assigned id; null when the sink never returned one (aborted attachment). */
  id: string | null;
  /**
   * `stored`: the sink got the complete decoded content. `truncated`: the message was cut
   * (oversize/malformed) while this attachment streamed; the caller must delete `id` if set.
   */
  status: 'stored' | 'truncated';
  sizeBytes: number;
  /** Hex SHA-256 of the decoded content (computed while streaming); null when truncated. */
  sha256: string | null;
  /** Verdict from a scanning sink; null when the sink does not scan or the attachment was cut. */
  scan: ScanVerdict | null;
}

export interface ParsedMessage {
  /** Normalized, without angle brackets. */
  messageId: string;
  /** True when the message had no usable Message-ID and one was derived from a header hash. */
  messageIdSynthetic: boolean;
  inReplyTo: string | null;
  /** Normalized, deduplicated, original order, own id removed, at most MAX_REFERENCES (newest kept). */
  references: string[];
  from: MailAddress | null;
  to: MailAddress[];
  cc: MailAddress[];
  bcc: MailAddress[];
  replyTo: MailAddress[];
  subject: string;
  date: Date;
  dateSource: 'header' | 'received' | 'now';
  text: string | null;
  html: string | null;
  /** `html` sanitised for display; set after parsing by addDerivedContent (derived-content.ts). */
  safeHtml?: string | null;
  /** Reply text, signature and forward detection; set after parsing by addDerivedContent (derived-content.ts). */
  reply?: ReplyParts;
  headers: ClassificationHeaders;
  attachments: ParsedAttachment[];
  /** Bytes read from the source. For an oversize message: bytes read before stopping. */
  sizeBytes: number;
  /**
   * The source exceeded maxBytes: reading stopped there. Headers are complete; text/html hold what
   * came before the cut; the last attachment is `truncated`.
   */
  oversize: boolean;
  /** Set when parsing stopped early on broken input. A code, never content. */
  parseError: ParseErrorCode | null;
  warnings: ParseWarning[];
}

export interface ParseMimeOptions {
  attachmentSink: AttachmentSink;
  maxBytes?: number;
  maxTextChars?: number;
  maxHtmlChars?: number;
  /** Provider receive time (Gmail internalDate, Graph receivedDateTime): the date fallback. */
  receivedAt?: Date | null;
  /** Clock for the last-resort date fallback. */
  now?: () => Date;
}

/**
 * Streams raw RFC 5322 bytes through mailparser's MailParser. Attachment content goes straight to
 * the sink with backpressure (mailparser pauses on an attachment until `release()`, which we call
 * only once the sink has consumed it), so attachment bytes are never held whole in memory.
 *
 * `raw` is a stream, or a message already read whole (a Buffer: fed as it is, no stream around it).
 * Takes ownership of a stream: it is destroyed when reading stops early (oversize or broken input).
 * Never throws for bad input; throws MimeSourceError / AttachmentSinkError for infrastructure
 * failures, which the sync job retries.
 */
export async function parseMime(raw: Readable | Buffer, options: ParseMimeOptions): Promise<ParsedMessage> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxText = options.maxTextChars ?? DEFAULT_MAX_TEXT_CHARS;
  const maxHtml = options.maxHtmlChars ?? DEFAULT_MAX_HTML_CHARS;
  const now = options.now ?? (() => new Date());

  const parser = new TicketMailParser({
    checksumAlgo: 'sha256',
    // Presentation helpers we do not need: they cost CPU on every message and inlining cid:
    // images as data: URLs would copy attachment bytes into the HTML.
    skipTextToHtml: true,
    skipTextLinks: true,
    skipImageLinks: true,
    maxHtmlLengthToParse: maxHtml,
  });

  const head = new HeadCapture(MAX_HEAD_BYTES);
  const sniffer = new PartTypeSniffer();
  let headers: Headers | null = null;
  let headerLines: HeaderLines | null = null;
  parser.on('headers', (h: Headers) => (headers = h));
  parser.on('headerLines', (l: HeaderLines) => (headerLines = l));

  let total = 0;
  let oversize = false;
  let stopped = false;
  let parseError: ParseErrorCode | null = null;
  let sourceFailure: unknown = null;
  let sinkFailure: AttachmentSinkError | null = null;
  let textItem: (MessageText & { textConversionError?: Error }) | null = null;
  const attachments: ParsedAttachment[] = [];
  // The streams of the attachment being delivered (mailparser's, and our read-ahead wrapper).
  let current: Readable[] = [];

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    for (const stream of current) stream.destroy(new Error('message cut short'));
    parser.destroy();
  };
  // mailsplit's limits (1,000 parts, header size) surface as a parser 'error' while an attachment
  // may be streaming to the sink: without this the sink waited for content that never ended and
  // the parse never finished.
  parser.on('error', (err: unknown) => {
    if (stopped) return;
    parseError = parserErrorCode(err);
    stop();
  });

  const feed = async (): Promise<void> => {
    try {
      // A message already read whole (the parse worker's usual task) is fed as it is, without
      // a stream around it.
      for await (const chunk of Buffer.isBuffer(raw) ? slices(raw) : (raw as AsyncIterable<Buffer | string>)) {
        if (stopped) break;
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        head.push(buf);
        if (total + buf.length > maxBytes) {
          // Feed what fits, then end the input: mailparser finishes what it has (headers, the
          // parts before the cut) and we stop reading the provider body here — leaving the
          // for-await destroys `raw`.
          const fits = buf.subarray(0, Math.max(0, maxBytes - total));
          total += buf.length;
          oversize = true;
          sniffer.push(fits);
          if (total - buf.length < CHARSET_SNIFF_BYTES) parser.offerCharsetSource(fits);
          if (fits.length > 0 && !parser.write(fits)) await drainOrClose(parser);
          break;
        }
        total += buf.length;
        sniffer.push(buf);
        if (total - buf.length < CHARSET_SNIFF_BYTES) parser.offerCharsetSource(buf);
        if (!parser.write(buf)) await drainOrClose(parser);
      }
      if (!stopped) parser.end();
    } catch (err) {
      if (!stopped) {
        sourceFailure = err;
        stop();
      }
    }
  };

  const namer = new AttachmentNamer();
  let ordinal = 0;

  const consume = async (): Promise<void> => {
    try {
      for await (const item of parser as AsyncIterable<AttachmentStream | MessageText>) {
        if (item.type === 'text') {
          textItem = item;
          continue;
        }
        if (stopped) {
          item.content.resume();
          item.release?.();
          continue;
        }
        if (!(await handleAttachment(item))) return;
        item.release?.();
      }
    } catch (err) {
      if (!stopped) {
        parseError = parserErrorCode(err);
        stop();
      }
    }
  };

  /** One MIME attachment (a winmail.dat: each file in it). False when the sink failed (stop). */
  const handleAttachment = async (item: AttachmentStream): Promise<boolean> => {
    const contentType = (item.contentType || 'application/octet-stream').toLowerCase();
    const fromItem = (): Digest => ({ size: item.size ?? 0, sha256: item.checksum ?? null });
    current = [item.content];
    if (isTnefPart(contentType, item.filename)) {
      const ahead = await readAhead(item.content, MAX_TNEF_BYTES, false);
      const files = ahead.done ? unpackTnef(Buffer.concat(ahead.chunks, ahead.size)) : null;
      if (files) {
        for (const file of files) {
          const type = file.contentType ?? 'application/octet-stream';
          const meta: AttachmentMeta = {
            ordinal: ordinal++,
            filename: namer.name(file.filename, type),
            contentType: type,
            contentDisposition: 'attachment',
            contentId: file.contentId,
            related: false,
            partId: item.partId ?? null,
          };
          const digest: Digest = { size: file.data.length, sha256: createHash('sha256').update(file.data).digest('hex') };
          if (!(await settle(meta, Readable.from([file.data], { objectMode: false }), () => digest))) return false;
          if (stopped) break;
        }
        return true;
      }
      return settle(toMeta(item, ordinal++, namer.name(item.filename ?? null, contentType)), ahead.rest(), fromItem);
    }
    if (isAttachedMessage(contentType) && !item.filename) {
      const ahead = await readAhead(item.content, MAX_ATTACHED_HEAD_BYTES, true);
      const head = ahead.failed ? null : await parseHeaderBlock(Buffer.concat(ahead.chunks, ahead.size));
      const subject = head ? stringHeader(head.headers, 'subject') : null;
      return settle(toMeta(item, ordinal++, namer.name(null, contentType, subject)), ahead.rest(), fromItem);
    }
    return settle(toMeta(item, ordinal++, namer.name(item.filename ?? null, contentType)), item.content, fromItem);
  };

  /** Delivers one attachment to the sink and records the outcome. False when the sink failed. */
  const settle = async (meta: AttachmentMeta, content: Readable, digest: () => Digest): Promise<boolean> => {
    const outcome = await deliverAttachment(meta, content, digest);
    current = [];
    if (outcome.kind === 'sink_failed') {
      sinkFailure = new AttachmentSinkError(meta.ordinal, { cause: outcome.cause });
      stop();
      return false;
    }
    if (outcome.kind === 'content_failed' && !stopped) {
      parseError = 'malformed';
      stop();
    }
    attachments.push(outcome.attachment);
    return true;
  };

  type Delivery =
    | { kind: 'ok' | 'content_failed'; attachment: ParsedAttachment }
    | { kind: 'sink_failed'; cause: unknown };

  const deliverAttachment = async (meta: AttachmentMeta, content: Readable, digest: () => Digest): Promise<Delivery> => {
    let contentFailed = false;
    current = [...new Set([...current, content])];
    // Always listen: a decoder error or our own abort must never surface as an unhandled 'error'.
    for (const stream of current) {
      stream.on('error', () => {
        if (!stopped) contentFailed = true;
      });
    }
    if (stopped) content.destroy(new Error('message cut short'));
    let id: string | null = null;
    let scan: ScanVerdict | null = null;
    let sinkError: unknown = null;
    try {
      const result = await options.attachmentSink.put(meta, content);
      id = result.id;
      scan = result.scan ?? null;
    } catch (err) {
      sinkError = err;
    }
    if (sinkError === null && !content.readableEnded && !content.destroyed) {
      // The sink stopped reading early: drain so the parser can move on.
      content.resume();
      await finished(content).catch(() => undefined);
    }
    const cut = stopped || contentFailed;
    if (sinkError !== null && !cut) return { kind: 'sink_failed', cause: sinkError };
    const { size, sha256 } = digest();
    const attachment: ParsedAttachment = cut
      ? { ...meta, id, status: 'truncated', sizeBytes: size, sha256: null, scan: null }
      : { ...meta, id, status: 'stored', sizeBytes: size, sha256, scan };
    return { kind: contentFailed ? 'content_failed' : 'ok', attachment };
  };

  await Promise.all([feed(), consume()]);

  // Cut by maxBytes: every attachment but the last ended at a MIME boundary (a later part
  // started), so only the last one can be incomplete. We cannot see whether its closing boundary
  // was inside the limit, so it is reported truncated (fail-safe: never a cut file as whole).
  const last = attachments.at(-1);
  if (oversize && last && last.status === 'stored') {
    attachments[attachments.length - 1] = { ...last, status: 'truncated', sha256: null, scan: null };
  }

  if (sourceFailure !== null) throw new MimeSourceError({ cause: sourceFailure });
  if (sinkFailure !== null) throw sinkFailure;

  // When reading stopped before mailparser emitted the root headers (oversize, broken body), parse
  // the header block we captured on the side with a fresh parser.
  // A header block mailsplit refuses (over 1 MiB) gets its essential headers salvaged, so the
  // message is never announced blank.
  if (headers === null) {
    const block = head.block();
    const overLimit = block.length >= MAX_HEAD_BYTES;
    const recovered = overLimit ? await parseHeaderBlock(salvageHeaderBlock(block)) : await parseHeaderBlock(block);
    if (recovered) {
      headers = recovered.headers;
      headerLines = recovered.lines;
    }
    if (parseError === null && (overLimit || !recovered)) parseError = overLimit ? 'limit_exceeded' : 'no_headers';
  }

  return buildMessage({
    headers,
    headerLines,
    headBytes: head.block(),
    text: textItem,
    attachments,
    sizeBytes: total,
    oversize,
    parseError,
    partTypes: sniffer.types(),
    maxText,
    maxHtml,
    receivedAt: options.receivedAt ?? null,
    now,
  });
}

function drainOrClose(stream: TicketMailParser): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

function parserErrorCode(err: unknown): ParseErrorCode {
  // mailsplit tags its size/part-count limits with code EMAXLEN.
  const code = typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : null;
  return code === 'EMAXLEN' ? 'limit_exceeded' : 'malformed';
}

function toMeta(item: AttachmentStream, ordinal: number, filename: string): AttachmentMeta {
  return {
    ordinal,
    filename,
    contentType: (item.contentType || 'application/octet-stream').toLowerCase(),
    contentDisposition: item.contentDisposition ? item.contentDisposition.toLowerCase() : null,
    contentId: item.cid ? item.cid : null,
    related: item.related === true,
    partId: item.partId ?? null,
  };
}

interface Digest {
  size: number;
  sha256: string | null;
}

const TNEF_TYPES = new Set(['application/ms-tnef', 'application/vnd.ms-tnef']);

/** Outlook labels TNEF application/ms-tnef; some gateways relabel it octet-stream and keep the name. */
function isTnefPart(contentType: string, filename: string | undefined): boolean {
  return TNEF_TYPES.has(contentType) || (contentType === 'application/octet-stream' && /^winmail\.dat$/i.test(filename?.trim() ?? ''));
}

/** The files of a winmail.dat, or null when it is not TNEF, is broken or holds none (kept as it came). */
function unpackTnef(bytes: Buffer): TnefAttachment[] | null {
  if (!isTnef(bytes)) return null;
  try {
    const files = parseTnef(bytes);
    return files.length > 0 ? files : null;
  } catch (err) {
    if (err instanceof TnefError) return null;
    throw err;
  }
}

interface ReadAhead {
  chunks: Buffer[];
  size: number;
  /** The content ended within the read-ahead. */
  done: boolean;
  /** The content failed (cut short) while reading ahead. */
  failed: boolean;
  /** The whole content again: what was read ahead, then the rest as it streams. */
  rest(): Readable;
}

/**
 * Reads up to `limit` bytes of an attachment (or up to the end of its header block, with
 * `untilHeaderEnd`) without losing them: the sink still gets the whole content from `rest()`, with
 * backpressure for the part not read yet.
 */
async function readAhead(content: Readable, limit: number, untilHeaderEnd: boolean): Promise<ReadAhead> {
  const it = (content as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  let failed: unknown = null;
  // The last bytes of the previous chunk: an empty line can straddle two chunks.
  let tail = Buffer.alloc(0);
  try {
    while (size < limit) {
      const r = await it.next();
      if (r.done) {
        done = true;
        break;
      }
      const buf = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      chunks.push(buf);
      size += buf.length;
      if (untilHeaderEnd) {
        const window = Buffer.concat([tail, buf]);
        if (findHeaderEnd(window) >= 0) break;
        tail = window.subarray(Math.max(0, window.length - 3));
      }
    }
  } catch (err) {
    failed = err ?? new Error('attachment content failed');
  }
  return {
    chunks,
    size,
    done,
    failed: failed !== null,
    rest: () =>
      Readable.from(
        (async function* () {
          yield* chunks;
          if (failed !== null) throw failed;
          if (done) return;
          for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
        })(),
        { objectMode: false },
      ),
  };
}

/** Keeps the root header block (up to the first empty line) as it streams past. */
class HeadCapture {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private complete = false;
  constructor(private readonly limit: number) {}

  push(buf: Buffer): void {
    if (this.complete) return;
    const room = this.limit - this.size;
    const slice = buf.length > room ? buf.subarray(0, room) : buf;
    this.chunks.push(slice);
    this.size += slice.length;
    const joined = this.chunks.length > 1 ? Buffer.concat(this.chunks) : slice;
    // Look for the empty line at the end of the header block (CRLF, LF or bare CR copies exist).
    const end = findHeaderEnd(joined);
    if (end >= 0) {
      this.chunks.length = 0;
      this.chunks.push(joined.subarray(0, end));
      this.size = end;
      this.complete = true;
    } else if (this.size >= this.limit) {
      this.complete = true;
    } else if (this.chunks.length > 1) {
      this.chunks.length = 0;
      this.chunks.push(joined);
    }
  }

  block(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
  }
}

const HEADER_ENDS = ['\r\n\r\n', '\n\n', '\r\r'];

/**
 * A message read whole, as the parser is fed it: views of at most FEED_BYTES (no copies). One
 * write of a whole large message made mailsplit re-scan its remaining bytes at each pause for an
 * attachment's consumer: a 1.8 MB message with hundreds of parts parsed 2.5× slower than fed in slices.
 */
const FEED_BYTES = 64 * 1024;
function slices(raw: Buffer): Buffer[] {
  if (raw.length <= FEED_BYTES) return [raw];
  const out: Buffer[] = [];
  for (let i = 0; i < raw.length; i += FEED_BYTES) out.push(raw.subarray(i, i + FEED_BYTES));
  return out;
}

/** The first empty line (CRLF, LF or bare CR): the earliest of the three separators. */
export function findHeaderEnd(buf: Buffer): number {
  let end = -1;
  for (const sep of HEADER_ENDS) {
    // Once one is found, a later separator only counts when it starts before it: look no further
    // (a whole message arrives as one chunk; this kept the others from scanning all of it).
    const i = (end >= 0 ? buf.subarray(0, end + sep.length - 1) : buf).indexOf(sep);
    if (i >= 0 && (end < 0 || i < end)) end = i;
  }
  return end;
}

async function parseHeaderBlock(block: Buffer): Promise<{ headers: Headers; lines: HeaderLines } | null> {
  if (block.length === 0) return null;
  const parser = new TicketMailParser({ skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });
  let result: { headers: Headers; lines: HeaderLines } | null = null;
  let headers: Headers | null = null;
  parser.on('headers', (h: Headers) => (headers = h));
  parser.on('headerLines', (l: HeaderLines) => {
    if (headers) result = { headers, lines: l };
  });
  parser.end(Buffer.concat([block, Buffer.from('\r\n\r\n')]));
  try {
    for await (const item of parser as AsyncIterable<AttachmentStream | MessageText>) {
      if (item.type === 'attachment') {
        item.content.resume();
        item.release?.();
      }
    }
  } catch {
    // A header block mailsplit rejects (too large) yields whatever was emitted before.
  }
  return result;
}

/**
 * Records which report-ish MIME types appear in part headers, by looking at the raw bytes.
 * mailparser folds message/delivery-status into the text and exposes no part tree, and the
 * classifier needs to know an RFC 3464 part was there.
 */
class PartTypeSniffer {
  private static readonly PATTERN =
    /^content-type:[ \t]*(message\/(?:global-)?(?:delivery-status|feedback-report|disposition-notification|rfc822|global)|text\/rfc822-headers)/gim;
  private readonly found = new Set<string>();
  private carry = '';

  push(buf: Buffer): void {
    const text = this.carry + buf.toString('latin1');
    for (const match of text.matchAll(PartTypeSniffer.PATTERN)) this.found.add(match[1]!.toLowerCase());
    this.carry = text.slice(-96);
  }

  types(): string[] {
    return [...this.found].sort();
  }
}

interface BuildInput {
  headers: Headers | null;
  headerLines: HeaderLines | null;
  headBytes: Buffer;
  text: (MessageText & { textConversionError?: Error }) | null;
  attachments: ParsedAttachment[];
  sizeBytes: number;
  oversize: boolean;
  parseError: ParseErrorCode | null;
  partTypes: string[];
  maxText: number;
  maxHtml: number;
  receivedAt: Date | null;
  now: () => Date;
}

function buildMessage(input: BuildInput): ParsedMessage {
  const warnings: ParseWarning[] = [];
  const lines = input.headerLines ?? [];
  const headers = input.headers ?? new Map();

  const ownIdRaw = normalizeMessageId(firstRaw(lines, 'message-id')?.match(/<([^<>]*)>/)?.[1] ?? firstRaw(lines, 'message-id'));
  const inReplyTo = parseInReplyTo(allRaw(lines, 'in-reply-to').join(' '));
  let references = parseMessageIdList(allRaw(lines, 'references').join(' '));

  const subject = stringHeader(headers, 'subject') ?? '';
  const { date, source: dateSource } = resolveDate(firstRaw(lines, 'date'), input.receivedAt, input.now);
  if (firstRaw(lines, 'date') !== null && dateSource !== 'header') warnings.push('date_unparsable');

  const from = fromAddress(headers.get('from'), firstRaw(lines, 'from'));
  const messageIdSynthetic = ownIdRaw === null;
  const messageId = ownIdRaw ?? synthesizeMessageId(lines, input.headBytes);
  // A message that lists itself in References would otherwise point the threader at itself.
  references = references.filter((id) => id !== messageId);
  if (references.length > MAX_REFERENCES) references = references.slice(-MAX_REFERENCES);

  let text = input.text?.text ?? null;
  let html = typeof input.text?.html === 'string' ? input.text.html : null;
  if (text !== null && text.length > input.maxText) {
    text = text.slice(0, input.maxText);
    warnings.push('text_truncated');
  }
  if (html !== null && html.length > input.maxHtml) {
    html = html.slice(0, input.maxHtml);
    warnings.push('html_truncated');
  }
  if (input.text?.textConversionError) warnings.push('html_to_text_failed');

  const contentType = headers.get('content-type');
  const ct = isStructured(contentType) ? contentType : null;

  return {
    messageId,
    messageIdSynthetic,
    inReplyTo: inReplyTo === messageId ? null : inReplyTo,
    references,
    from,
    to: addresses(headers.get('to')),
    cc: addresses(headers.get('cc')),
    bcc: addresses(headers.get('bcc')),
    replyTo: addresses(headers.get('reply-to')),
    subject,
    date,
    dateSource,
    text,
    html,
    headers: {
      autoSubmitted: firstRaw(lines, 'auto-submitted'),
      xAutoreply: firstRaw(lines, 'x-autoreply'),
      xAutorespond: firstRaw(lines, 'x-autorespond'),
      precedence: firstRaw(lines, 'precedence'),
      xAutoResponseSuppress: firstRaw(lines, 'x-auto-response-suppress'),
      returnPath: firstRaw(lines, 'return-path'),
      contentType: ct ? ct.value.toLowerCase() : null,
      reportType: ct?.params['report-type']?.toLowerCase() ?? null,
      listId: firstRaw(lines, 'list-id'),
      listUnsubscribe: firstRaw(lines, 'list-unsubscribe'),
      xFailedRecipients: firstRaw(lines, 'x-failed-recipients'),
      partTypes: input.partTypes,
    },
    attachments: input.attachments,
    sizeBytes: input.sizeBytes,
    oversize: input.oversize,
    parseError: input.parseError,
    warnings,
  };
}

/** Unfolded raw values of a header, in order. Raw so "<>" and odd syntax survive for classification. */
function allRaw(lines: HeaderLines, key: string): string[] {
  const out: string[] = [];
  for (const line of lines) {
    if (line.key !== key) continue;
    const colon = line.line.indexOf(':');
    out.push(
      line.line
        .slice(colon + 1)
        .replace(/\r?\n[ \t]+/g, ' ')
        .trim(),
    );
  }
  return out;
}

function firstRaw(lines: HeaderLines, key: string): string | null {
  return allRaw(lines, key)[0] ?? null;
}

function stringHeader(headers: Headers, key: string): string | null {
  const value = headers.get(key);
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return null;
}

function isStructured(value: unknown): value is { value: string; params: Record<string, string> } {
  return typeof value === 'object' && value !== null && 'value' in value && 'params' in value;
}

function isAddressObject(value: unknown): value is AddressObject {
  return typeof value === 'object' && value !== null && Array.isArray((value as AddressObject).value);
}

function addresses(value: unknown): MailAddress[] {
  const objects = Array.isArray(value) ? value : [value];
  const out: MailAddress[] = [];
  const visit = (entry: EmailAddress): void => {
    if (entry.group) {
      entry.group.forEach(visit);
      return;
    }
    const address = normalizeAddress(entry.address);
    const name = entry.name?.trim() ?? '';
    // A name without an address (a bounce "From: MAILER-DAEMON (Mail Delivery System)") is kept:
    // the ticket shows who it claims to be from rather than nobody.
    if (address || name) out.push({ name, address });
  };
  for (const object of objects) if (isAddressObject(object)) object.value.forEach(visit);
  return out;
}

/**
 * The first From mailbox. For a From with a name and no address, the whole raw value is the name
 * when it is plain text (mailparser drops a comment: "MAILER-DAEMON (Mail Delivery System)" would
 * otherwise be "MAILER-DAEMON").
 */
function fromAddress(value: unknown, raw: string | null): MailAddress | null {
  const first = addresses(value)[0] ?? null;
  if (!first || first.address !== null || raw === null) return first;
  const plain = raw.trim();
  if (/^[^<>@:;,"=]+\([^()]*\)$/.test(plain) && plain.length <= 200) return { name: plain, address: null };
  return first;
}

/** Header names kept when a header block over the limit is salvaged (what a ticket and threading need). */
const SALVAGED_HEADERS = new Set([
  'from', 'sender', 'reply-to', 'to', 'cc', 'subject', 'date', 'message-id', 'in-reply-to', 'references',
  'mime-version', 'content-type', 'auto-submitted', 'precedence', 'return-path', 'list-id',
]);
/** Bytes kept per salvaged header name (a To: list can be most of the megabyte). */
const SALVAGE_BYTES_PER_HEADER = 64 * 1024;

/**
 * From a header block too large to parse, only the headers a ticket needs (From, To, Cc, Subject,
 * Date, Message-ID, threading and classification headers), each capped at 64 KiB (a long address
 * list is cut after its last complete address).
 */
export function salvageHeaderBlock(block: Buffer): Buffer {
  const text = block.toString('latin1');
  const kept = new Map<string, number>();
  const out: string[] = [];
  // A header line and its folded continuation lines.
  for (const m of text.matchAll(/^([!-9;-~]+)[ \t]*:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*/gm)) {
    const key = m[1]!.toLowerCase();
    if (!SALVAGED_HEADERS.has(key)) continue;
    const used = kept.get(key) ?? 0;
    const room = SALVAGE_BYTES_PER_HEADER - used;
    if (room <= 0) continue;
    let line = m[0];
    if (line.length > room) {
      const cut = line.lastIndexOf(',', room);
      if (cut <= key.length) continue;
      line = line.slice(0, cut);
    }
    kept.set(key, used + line.length);
    out.push(line);
  }
  return Buffer.from(out.join('\r\n'), 'latin1');
}

export function normalizeAddress(value: string | undefined | null): string | null {
  if (!value) return null;
  const trimmed = value.trim();
  const at = trimmed.lastIndexOf('@');
  if (at <= 0 || at === trimmed.length - 1) return trimmed.length ? trimmed : null;
  return trimmed.slice(0, at) + '@' + trimmed.slice(at + 1).toLowerCase();
}

function resolveDate(
  raw: string | null,
  receivedAt: Date | null,
  now: () => Date,
): { date: Date; source: ParsedMessage['dateSource'] } {
  if (raw !== null) {
    // Strip comments like "(PST)" that Date.parse rejects on some inputs.
    const parsed = new Date(raw.replace(/\([^)]*\)/g, ' ').trim());
    const year = parsed.getUTCFullYear();
    if (!Number.isNaN(parsed.getTime()) && year >= 1970 && year < 10000) return { date: parsed, source: 'header' };
  }
  if (receivedAt && !Number.isNaN(receivedAt.getTime())) return { date: receivedAt, source: 'received' };
  return { date: now(), source: 'now' };
}

/**
 * A stable id for a message without one: the same bytes always give the same id (so re-fetching
 * deduplicates), built from headers that do not change in transit (not Received/X-Gmail-*).
 */
function synthesizeMessageId(lines: HeaderLines, headBytes: Buffer): string {
  const hash = createHash('sha256');
  const keys = ['from', 'to', 'cc', 'subject', 'date', 'in-reply-to', 'references'];
  let any = false;
  for (const key of keys) {
    for (const value of allRaw(lines, key)) {
      hash.update(`${key}:${value}\n`);
      any = true;
    }
  }
  if (!any) hash.update(headBytes);
  return `${hash.digest('hex').slice(0, 40)}@synthetic.mailbox-connector.invalid`;
}

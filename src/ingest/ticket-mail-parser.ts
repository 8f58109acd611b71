import { MailParser } from 'mailparser';
import type { MailParserOptions } from 'mailparser';
import { decodeBinaryValue, hasHighBytes, transcodeHeaderLine } from './header-charset.js';

/**
 * mailparser's MailParser with the connector's rules for what a ticket shows, applied where
 * mailparser decides them (it exposes no hooks; these are its `processHeaders` and `createNode`
 * steps, pinned by the exact mailparser version in package.json and covered by
 * ticket-mail-parser.test.ts):
 *
 * 1. Raw 8-bit header bytes without an RFC 2047 label (GB2312, Shift_JIS, Big5, EUC-KR… subjects,
 *    display names and file names) are decoded by header-charset.ts instead of being read as
 *    UTF-8 (which turns them into U+FFFD).
 * 2. Attachments stay attachments: a text/plain or text/html part with a file name (or an
 *    `attachment` disposition, which mailparser already honours) is listed as an attachment, not
 *    folded into `text`/`html`. A text/html part after the first one is an attachment too, unless
 *    both sit side by side in one multipart/mixed (Apple Mail splits a message with inline images
 *    into such html fragments). The root part is always the body.
 */

interface RawHeaderLine {
  key: string;
  line: string;
}

/** The parts of mailsplit's MimeNode used here. */
interface SplitNode {
  filename?: string | false;
  charset?: string | false;
  headers: { getList(): RawHeaderLine[] };
}

/** The parts of mailparser's internal tree node used here. */
interface TreeNode {
  root?: boolean;
  parent?: TreeNode;
  contentType?: string;
  isAttachment?: boolean;
}

interface MailParserInternals {
  processHeaders(this: MailParser, lines: RawHeaderLine[]): Map<string, unknown>;
  createNode(this: MailParser, node: SplitNode): TreeNode;
}

const internals = MailParser.prototype as unknown as MailParserInternals;
const BODY_TEXT = new Set(['text/plain', 'text/html']);
const CHARSET_PARAM = /;\s*charset\s*=\s*"?([A-Za-z0-9_.:+-]{1,40})/i;

export class TicketMailParser extends MailParser {
  #hint: string | null = null;
  /** Raw chunks offered for the charset hint and not looked at yet (only read when a header needs the hint). */
  readonly #hintSources: Buffer[] = [];
  #firstHtmlParent: TreeNode | null | undefined = undefined;

  constructor(options?: MailParserOptions) {
    super(options);
  }

  /**
   * Offers raw message bytes, in order, as they are written, for the charset hint: the first
   * charset (not ASCII/UTF-8) the message declares in them. They are scanned only when a header
   * with unlabelled 8-bit bytes needs the hint — most messages have none — and then give the same
   * hint an eager scan of each chunk before writing it would have given at that point.
   */
  offerCharsetSource(chunk: Buffer): void {
    if (this.#hint === null) this.#hintSources.push(chunk);
  }

  /** The first charset the message declares in the bytes offered so far (the fallback for its unlabelled header bytes). */
  get charsetHint(): string | null {
    while (this.#hint === null && this.#hintSources.length > 0) this.#hint = sniffCharset(this.#hintSources.shift()!);
    if (this.#hint !== null) this.#hintSources.length = 0;
    return this.#hint;
  }

  processHeaders(lines: RawHeaderLine[]): Map<string, unknown> {
    const list = lines ?? [];
    if (!list.some((l) => hasHighBytes(l.line))) return internals.processHeaders.call(this, list);
    const hint = ownCharset(list) ?? this.charsetHint;
    const decoded = list.map((l) => (hasHighBytes(l.line) ? { key: l.key, line: transcodeHeaderLine(l.line, hint) } : l));
    return internals.processHeaders.call(this, decoded);
  }

  createNode(node: SplitNode): TreeNode {
    if (typeof node.filename === 'string' && hasHighBytes(node.filename)) {
      // mailsplit hands an unlabelled 8-bit file name over as one char per byte; decode it when the
      // raw Content-Type/-Disposition lines carried those bytes (not an RFC 2047/2231 result).
      const lines = node.headers.getList();
      const raw = lines.filter((l) => l.key === 'content-disposition' || l.key === 'content-type');
      if (raw.some((l) => hasHighBytes(l.line))) node.filename = decodeBinaryValue(node.filename, ownCharset(lines) ?? this.charsetHint);
    }
    const created = internals.createNode.call(this, node);
    if (created.root || created.isAttachment !== false || !BODY_TEXT.has(created.contentType ?? '')) return created;
    if (typeof node.filename === 'string' && node.filename.trim() !== '') {
      created.isAttachment = true;
    } else if (created.contentType === 'text/html') {
      const parent = created.parent ?? null;
      if (this.#firstHtmlParent === undefined) this.#firstHtmlParent = parent;
      else if (!(parent !== null && parent === this.#firstHtmlParent && parent.contentType === 'multipart/mixed')) created.isAttachment = true;
    }
    return created;
  }
}

const DECLARED_CHARSET = /charset\s*=\s*"?([A-Za-z0-9_.:+-]{1,40})/gi;

/** The first charset declared in `buf` that is not ASCII/UTF-8: the fallback for raw 8-bit header bytes. */
export function sniffCharset(buf: Buffer): string | null {
  for (const m of buf.toString('latin1').matchAll(DECLARED_CHARSET)) {
    const cs = m[1]!.toLowerCase();
    if (!/^(us-?ascii|utf-?8)$/.test(cs)) return cs;
  }
  return null;
}

function ownCharset(lines: RawHeaderLine[] | undefined): string | null {
  const ct = lines?.find((l) => l.key === 'content-type');
  return ct ? (CHARSET_PARAM.exec(ct.line)?.[1] ?? null) : null;
}

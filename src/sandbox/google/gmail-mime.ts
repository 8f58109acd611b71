import type { gmail_v1 } from '@googleapis/gmail';

/**
 * Just enough RFC 5322 / RFC 2045 structure parsing to answer messages.get the way Gmail does
 * (payload tree with partIds "", "0", "0.1", …; decoded body sizes; attachmentIds for named
 * parts) and to thread by Message-ID/References/Subject. Binary-safe: works on latin1 strings
 * so every byte maps to one char and back.
 */
export interface MimeHeader {
  name: string;
  value: string;
}

export interface MimeNode {
  partId: string;
  headers: MimeHeader[];
  mimeType: string;
  filename: string;
  /** Decoded (transfer-encoding removed) bytes of a leaf part; empty for multiparts. */
  body: Buffer;
  children: MimeNode[];
}

const HEADER_BODY_SPLIT = /\r?\n\r?\n/;

export function splitHeaderBody(raw: Buffer): { headerText: string; body: string } {
  const text = raw.toString('latin1');
  const m = HEADER_BODY_SPLIT.exec(text);
  if (!m) return { headerText: text, body: '' };
  return { headerText: text.slice(0, m.index), body: text.slice(m.index + m[0].length) };
}

export function parseHeaders(headerText: string): MimeHeader[] {
  const headers: MimeHeader[] = [];
  for (const line of headerText.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && headers.length > 0) {
      // RFC 5322 2.2.3 unfolding: drop the CRLF, keep the whitespace.
      headers[headers.length - 1]!.value += line;
      continue;
    }
    const idx = line.indexOf(':');
    if (idx <= 0) continue;
    headers.push({ name: line.slice(0, idx).trim(), value: line.slice(idx + 1).trim() });
  }
  // Header bytes are usually ASCII; re-read any 8-bit (RFC 6532) header as UTF-8.
  return headers.map((h) => ({ name: h.name, value: Buffer.from(h.value, 'latin1').toString('utf8') }));
}

export function headerValue(headers: MimeHeader[], name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find((h) => h.name.toLowerCase() === lower)?.value;
}

function param(value: string | undefined, key: string): string | undefined {
  if (!value) return undefined;
  const re = new RegExp(`(?:^|;)\\s*${key}\\*?\\s*=\\s*("([^"]*)"|[^;\\s]+)`, 'i');
  const m = re.exec(value);
  if (!m) return undefined;
  const v = m[2] ?? m[1] ?? '';
  // RFC 2231 `name*=utf-8''a%20b`
  const ext = /^([\w-]+)'[^']*'(.*)$/.exec(v);
  if (ext) {
    try {
      return decodeURIComponent(ext[2] ?? '');
    } catch {
      return ext[2];
    }
  }
  return v;
}

function decodeQuotedPrintable(s: string): Buffer {
  const cleaned = s.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < cleaned.length; i++) {
    const c = cleaned[i]!;
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(cleaned.slice(i + 1, i + 3))) {
      bytes.push(parseInt(cleaned.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(c.charCodeAt(0) & 0xff);
  }
  return Buffer.from(bytes);
}

function decodeBody(body: string, cte: string | undefined): Buffer {
  switch ((cte ?? '').trim().toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
    case 'quoted-printable':
      return decodeQuotedPrintable(body);
    default:
      return Buffer.from(body, 'latin1');
  }
}

function splitMultipart(body: string, boundary: string): string[] {
  const parts: string[] = [];
  const delimiter = `--${boundary}`;
  const lines = body.split(/(?<=\n)/);
  let current: string[] | undefined;
  for (const line of lines) {
    const trimmed = line.replace(/\r?\n$/, '').trimEnd();
    if (trimmed === `${delimiter}--`) {
      if (current) parts.push(current.join('').replace(/\r?\n$/, ''));
      current = undefined;
      break;
    }
    if (trimmed === delimiter) {
      if (current) parts.push(current.join('').replace(/\r?\n$/, ''));
      current = [];
      continue;
    }
    current?.push(line);
  }
  // A missing close delimiter still ends the last part (Gmail is lenient here too).
  if (current) parts.push(current.join('').replace(/\r?\n$/, ''));
  return parts;
}

function parseNode(raw: string, partId: string, depth: number): MimeNode {
  const m = HEADER_BODY_SPLIT.exec(raw);
  const headerText = m ? raw.slice(0, m.index) : raw;
  const bodyText = m ? raw.slice(m.index + m[0].length) : '';
  const headers = parseHeaders(headerText);
  const contentType = headerValue(headers, 'Content-Type');
  const mimeType = (contentType?.split(';')[0]?.trim().toLowerCase() || 'text/plain');
  const filename =
    param(headerValue(headers, 'Content-Disposition'), 'filename') ?? param(contentType, 'name') ?? '';
  const boundary = param(contentType, 'boundary');
  if (mimeType.startsWith('multipart/') && boundary && depth < 32) {
    const children = splitMultipart(bodyText, boundary).map((p, i) =>
      parseNode(p, partId === '' ? String(i) : `${partId}.${i}`, depth + 1),
    );
    return { partId, headers, mimeType, filename, body: Buffer.alloc(0), children };
  }
  return {
    partId,
    headers,
    mimeType,
    filename,
    body: decodeBody(bodyText, headerValue(headers, 'Content-Transfer-Encoding')),
    children: [],
  };
}

export function parseMime(raw: Buffer): MimeNode {
  return parseNode(raw.toString('latin1'), '', 0);
}

/** Gmail's body.data is base64url *with* padding (see the recorded responses). */
export function toGmailBase64(buf: Buffer): string {
  const s = buf.toString('base64url');
  return s + '='.repeat((4 - (s.length % 4)) % 4);
}

export function findNode(node: MimeNode, partId: string): MimeNode | undefined {
  if (node.partId === partId) return node;
  for (const c of node.children) {
    const hit = findNode(c, partId);
    if (hit) return hit;
  }
  return undefined;
}

export function toGmailPart(
  node: MimeNode,
  attachmentIdFor: (partId: string) => string,
): gmail_v1.Schema$MessagePart {
  const part: gmail_v1.Schema$MessagePart = {
    partId: node.partId,
    mimeType: node.mimeType,
    filename: node.filename,
    headers: node.headers.map((h) => ({ name: h.name, value: h.value })),
    body: { size: 0 },
  };
  if (node.children.length > 0 || node.mimeType.startsWith('multipart/')) {
    part.parts = node.children.map((c) => toGmailPart(c, attachmentIdFor));
  } else if (node.filename || !node.mimeType.startsWith('text/')) {
    // Named parts and non-text parts (e.g. inline images referenced by Content-ID) are served
    // through attachments.get rather than inline `data` (seen in recorded Gmail responses).
    part.body = { attachmentId: attachmentIdFor(node.partId), size: node.body.length };
  } else if (node.body.length > 0) {
    // Gmail transcodes text parts to UTF-8 in `data` but reports the size of the part as sent
    // (recorded ISO-8859-1 parts: size 3809, decoded data 3844 bytes).
    const charset = (param(headerValue(node.headers, 'Content-Type'), 'charset') ?? 'utf-8').toLowerCase();
    const utf8 = /^(utf-?8|us-ascii|ascii)$/.test(charset) ? node.body : Buffer.from(decodeText(node), 'utf8');
    part.body = { size: node.body.length, data: toGmailBase64(utf8) };
  }
  return part;
}

function decodeText(node: MimeNode): string {
  const charset = param(headerValue(node.headers, 'Content-Type'), 'charset') ?? 'utf-8';
  try {
    return new TextDecoder(charset).decode(node.body);
  } catch {
    return node.body.toString('utf8');
  }
}

function firstLeaf(node: MimeNode, type: string): MimeNode | undefined {
  if (node.children.length === 0) return node.mimeType === type && !node.filename ? node : undefined;
  for (const c of node.children) {
    const hit = firstLeaf(c, type);
    if (hit) return hit;
  }
  return undefined;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Gmail's snippet: ~200 chars of the text, whitespace collapsed, HTML-escaped. */
export function snippetOf(root: MimeNode): string {
  const plain = firstLeaf(root, 'text/plain');
  const html = plain ? undefined : firstLeaf(root, 'text/html');
  let text = plain ? decodeText(plain) : html ? decodeText(html).replace(/<[^>]*>/g, ' ') : '';
  text = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** Message-IDs mentioned in References and In-Reply-To, without angle brackets. */
export function referencedIds(headers: MimeHeader[]): string[] {
  const joined = `${headerValue(headers, 'References') ?? ''} ${headerValue(headers, 'In-Reply-To') ?? ''}`;
  return [...joined.matchAll(/<([^<>\s]+)>/g)].map((m) => m[1]!);
}

export function normalizeMessageId(id: string): string {
  return id.trim().replace(/^<|>$/g, '');
}

/** Subject compared the way Gmail threads: reply/forward prefixes and case ignored. */
export function normalizeSubject(subject: string | undefined): string {
  let s = (subject ?? '').trim();
  for (;;) {
    const next = s.replace(/^(re|fwd?|aw|sv|vs|wg)\s*(\[\d+\])?\s*:\s*/i, '');
    if (next === s) break;
    s = next;
  }
  return s.replace(/\s+/g, ' ').toLowerCase();
}

export function addressesIn(headers: MimeHeader[], names: string[]): string[] {
  const out: string[] = [];
  for (const h of headers) {
    if (!names.includes(h.name.toLowerCase())) continue;
    for (const m of h.value.matchAll(/[^\s<>,;"]+@[^\s<>,;"]+/g)) out.push(m[0].toLowerCase());
  }
  return out;
}

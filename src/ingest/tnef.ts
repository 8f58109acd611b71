import iconv from 'iconv-lite';

// TNEF (MS-OXTNEF): Outlook's `winmail.dat` / application/ms-tnef wraps a message's attachments
// (and its RTF body) in one binary blob that no mail client outside Outlook opens. We unpack the
// attachments so each is stored and scanned like any other file.
//
// A small parser of our own rather than `node-tnef` (the npm package): that one pulls in an old
// bunyan and yargs for its command line, and we only need the attachment attributes —
// attAttachRendData (starts an attachment), attAttachTitle (its 8.3 name), attAttachData (its
// bytes) and the attAttachment MAPI property list (PR_ATTACH_LONG_FILENAME, PR_ATTACH_FILENAME,
// PR_DISPLAY_NAME, PR_ATTACH_DATA_BIN/OBJ, PR_ATTACH_MIME_TAG, PR_ATTACH_CONTENT_ID). Every length
// is checked against the buffer; anything inconsistent is a TnefError and the caller keeps the
// winmail.dat as it came. Message-level attributes (the RTF/HTML body) are skipped.
// https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxtnef

const TNEF_SIGNATURE = 0x223e9f78;
const LVL_ATTACHMENT = 0x02;

// Attribute ids (low 16 bits; the high 16 are the attribute's type).
const ATT_ATTACH_DATA = 0x800f;
const ATT_ATTACH_TITLE = 0x8010;
const ATT_ATTACH_REND_DATA = 0x9002;
const ATT_ATTACHMENT = 0x9005;
const ATT_OEM_CODEPAGE = 0x9007;

// MAPI property ids and types.
const PR_DISPLAY_NAME = 0x3001;
const PR_ATTACH_DATA = 0x3701; // PR_ATTACH_DATA_BIN (binary) or PR_ATTACH_DATA_OBJ (object)
const PR_ATTACH_FILENAME = 0x3704;
const PR_ATTACH_METHOD = 0x3705;
const PR_ATTACH_LONG_FILENAME = 0x3707;
const PR_ATTACH_MIME_TAG = 0x370e;
const PR_ATTACH_CONTENT_ID = 0x3712;
const ATTACH_EMBEDDED_MSG = 5;

const PT_STRING8 = 0x001e;
const PT_UNICODE = 0x001f;
const PT_BINARY = 0x0102;
const PT_OBJECT = 0x000d;
const MV_FLAG = 0x1000;
const FIXED_SIZE: Record<number, number> = {
  0x0001: 4, // PT_NULL
  0x0002: 4, // PT_SHORT, padded to 4
  0x0003: 4, // PT_LONG
  0x0004: 4, // PT_FLOAT
  0x0005: 8, // PT_DOUBLE
  0x0006: 8, // PT_CURRENCY
  0x0007: 8, // PT_APPTIME
  0x000a: 4, // PT_ERROR
  0x000b: 4, // PT_BOOLEAN, padded to 4
  0x0014: 8, // PT_I8
  0x0040: 8, // PT_SYSTIME
  0x0048: 16, // PT_CLSID
};

/** Hostile-input bounds: far above anything Outlook writes. */
const MAX_ATTACHMENTS = 1000;
const MAX_PROPERTIES = 10_000;
const MAX_VALUES = 10_000;
const MAX_DEPTH = 3;

export class TnefError extends Error {
  constructor(reason: string) {
    super(`TNEF: ${reason}`);
    this.name = 'TnefError';
  }
}

export interface TnefAttachment {
  /** The best name TNEF gives (long file name, else 8.3 name, else display name); null when none. */
  filename: string | null;
  /** PR_ATTACH_MIME_TAG when Outlook recorded one (lower-case), else null. */
  contentType: string | null;
  contentId: string | null;
  data: Buffer;
}

export function isTnef(bytes: Buffer): boolean {
  return bytes.length >= 6 && bytes.readUInt32LE(0) === TNEF_SIGNATURE;
}

interface Draft {
  title: string | null;
  longName: string | null;
  shortName: string | null;
  displayName: string | null;
  mimeTag: string | null;
  contentId: string | null;
  data: Buffer | null;
  /** An attached Outlook item (ATTACH_EMBEDDED_MSG): its own TNEF stream, unpacked in turn. */
  embedded: Buffer | null;
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  need(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) throw new TnefError('truncated');
  }
  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.pos++);
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
}

/**
 * The files inside a TNEF stream, in order. Throws TnefError for anything that is not a
 * well-formed TNEF stream (bad signature, a length beyond the end, absurd counts). Trailing
 * bytes after the last complete attribute are ignored (Outlook pads some).
 */
export function parseTnef(bytes: Buffer, depth = 0): TnefAttachment[] {
  if (!isTnef(bytes)) throw new TnefError('no TNEF signature');
  const r = new Reader(bytes);
  r.skip(6); // signature, legacy key
  let codepage = 'windows-1252';
  const drafts: Draft[] = [];
  let current: Draft | null = null;

  // Attribute header (level, id, length) is 9 bytes, the checksum 2.
  while (r.remaining >= 11) {
    const level = r.u8();
    const attribute = r.u32();
    const length = r.u32();
    if (length > r.remaining - 2) {
      // Garbage after the last attribute (seen in the wild): stop there when something was read.
      if (drafts.length > 0 || level !== LVL_ATTACHMENT) break;
      throw new TnefError('attribute longer than the stream');
    }
    const data = r.bytes(length);
    r.skip(2); // checksum: not verified (Outlook writes wrong ones, and the content is scanned anyway)
    const id = attribute & 0xffff;

    if (id === ATT_OEM_CODEPAGE && data.length >= 4) {
      const cp = data.readUInt32LE(0);
      if (iconv.encodingExists(`cp${cp}`)) codepage = `cp${cp}`;
      continue;
    }
    if (level !== LVL_ATTACHMENT) continue;
    if (id === ATT_ATTACH_REND_DATA) {
      if (drafts.length >= MAX_ATTACHMENTS) throw new TnefError('too many attachments');
      current = { title: null, longName: null, shortName: null, displayName: null, mimeTag: null, contentId: null, data: null, embedded: null };
      drafts.push(current);
      continue;
    }
    if (!current) continue; // an attachment attribute before any attAttachRendData: nothing to attach it to
    if (id === ATT_ATTACH_TITLE) current.title = cString(data, codepage);
    else if (id === ATT_ATTACH_DATA) current.data = data;
    else if (id === ATT_ATTACHMENT) readAttachmentProperties(data, current, codepage);
  }

  const out: TnefAttachment[] = [];
  for (const d of drafts) {
    const filename = clean(d.longName) ?? clean(d.shortName) ?? clean(d.title) ?? clean(d.displayName);
    if (d.embedded) {
      // An attached Outlook item: kept whole (its own TNEF, with its body), and its files listed
      // after it as files of this message. Its attAttachData is only Outlook's placeholder text
      // ("This attachment is a MAPI 1.0 embedded message…"), dropped.
      out.push({ filename, contentType: 'application/ms-tnef', contentId: null, data: d.embedded });
      if (depth < MAX_DEPTH && isTnef(d.embedded)) {
        try {
          out.push(...parseTnef(d.embedded, depth + 1));
        } catch (err) {
          if (!(err instanceof TnefError)) throw err;
        }
      }
      continue;
    }
    if (!d.data) continue; // an attachment without content (a link, a deleted OLE object)
    out.push({
      filename,
      contentType: d.mimeTag && /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i.test(d.mimeTag) ? d.mimeTag.toLowerCase() : null,
      contentId: clean(d.contentId),
      data: d.data,
    });
    if (out.length > MAX_ATTACHMENTS) throw new TnefError('too many attachments');
  }
  return out;
}

function clean(value: string | null): string | null {
  const v = value?.replace(/\0+$/, '').trim();
  return v ? v : null;
}

function cString(data: Buffer, codepage: string): string {
  const nul = data.indexOf(0);
  return iconv.decode(nul >= 0 ? data.subarray(0, nul) : data, codepage);
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** The attAttachment MAPI property list (MS-OXTNEF 2.1.3.4). */
function readAttachmentProperties(data: Buffer, d: Draft, codepage: string): void {
  const r = new Reader(data);
  const count = r.u32();
  if (count > MAX_PROPERTIES) throw new TnefError('too many properties');
  let method = 0;
  let object: Buffer | null = null;
  for (let i = 0; i < count; i++) {
    const type = r.u16();
    const id = r.u16();
    if (id >= 0x8000) {
      // A named property: GUID, kind, then a numeric id or a UTF-16 name.
      r.skip(16);
      const kind = r.u32();
      if (kind === 0) r.skip(4);
      else {
        const len = r.u32();
        r.skip(len + pad4(len));
      }
    }
    const base = type & ~MV_FLAG;
    const variable = base === PT_STRING8 || base === PT_UNICODE || base === PT_BINARY || base === PT_OBJECT;
    const values = type & MV_FLAG || variable ? r.u32() : 1;
    if (values > MAX_VALUES) throw new TnefError('too many values');
    for (let v = 0; v < values; v++) {
      if (variable) {
        const len = r.u32();
        const value = r.bytes(len);
        r.skip(pad4(len));
        if (v > 0 || id >= 0x8000) continue;
        if (base === PT_STRING8 || base === PT_UNICODE) {
          const text = base === PT_UNICODE ? value.toString('utf16le') : iconv.decode(value, codepage);
          if (id === PR_ATTACH_LONG_FILENAME) d.longName = text;
          else if (id === PR_ATTACH_FILENAME) d.shortName = text;
          else if (id === PR_DISPLAY_NAME) d.displayName = text;
          else if (id === PR_ATTACH_MIME_TAG) d.mimeTag = clean(text);
          else if (id === PR_ATTACH_CONTENT_ID) d.contentId = text;
        } else if (id === PR_ATTACH_DATA) {
          // PR_ATTACH_DATA_OBJ starts with the interface id of the object (16 bytes).
          if (base === PT_OBJECT) object = value.length >= 16 ? value.subarray(16) : Buffer.alloc(0);
          else d.data = value;
        }
        continue;
      }
      const size = FIXED_SIZE[base];
      if (size === undefined) throw new TnefError(`unknown property type 0x${base.toString(16)}`);
      const value = r.bytes(size);
      if (id === PR_ATTACH_METHOD && v === 0) method = value.readUInt32LE(0);
    }
  }
  if (object) {
    if (method === ATTACH_EMBEDDED_MSG) d.embedded = object;
    else d.data = object;
  }
}

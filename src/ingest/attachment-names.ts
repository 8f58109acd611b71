import { detectExtension } from 'nodemailer/lib/mime-funcs';

/** Longest stored file name, in characters (common file systems allow 255 bytes; the extension is kept). */
export const MAX_FILENAME_CHARS = 255;

/**
 * THE file name rule (docs/api.md, "Attachment names"). Names are attacker-chosen:
 * - a path keeps only its last segment (`C:\x\report.pdf` → `report.pdf`, `../../x` → `x`);
 * - control characters (C0, DEL, C1) and bidi controls (U+202A-U+202E, U+2066-U+2069, which can
 *   disguise `gpj.exe` as `exe.jpg`) are removed;
 * - `"` `*` `:` `<` `>` `?` `|` (not allowed in Windows file names, `"` breaks header quoting)
 *   become `_`;
 * - leading dots and surrounding white space are trimmed; at most 255 characters, the extension
 *   kept when shortening.
 * A name that ends up empty is no name (null): the attachment is then named by its type.
 */
export function sanitizeFilename(name: string | undefined | null): string | null {
  if (!name) return null;
  const base = name.replace(/\\/g, '/').split('/').pop() ?? '';
  const cleaned = base
    // eslint-disable-next-line no-control-regex -- removing control characters is the point
    .replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '')
    .replace(/["*:<>?|]/g, '_')
    .trim()
    .replace(/^\.+/, '')
    .trim();
  if (cleaned === '') return null;
  return shorten(cleaned);
}

function shorten(name: string): string {
  const chars = [...name];
  if (chars.length <= MAX_FILENAME_CHARS) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && name.length - dot <= 16 ? [...name.slice(dot)] : [];
  return chars.slice(0, MAX_FILENAME_CHARS - ext.length).join('') + ext.join('');
}

const EXTENSION_OVERRIDES: Record<string, string> = {
  'application/octet-stream': 'bin',
  'image/jpeg': 'jpg',
  'image/pjpeg': 'jpg',
  'audio/mpeg': 'mp3',
  'text/plain': 'txt',
  'message/rfc822': 'eml',
  'message/global': 'eml',
  'application/ms-tnef': 'dat',
};

/** File extension for a MIME type ("bin" when unknown). */
export function extensionFor(contentType: string): string {
  const type = contentType.toLowerCase();
  const override = EXTENSION_OVERRIDES[type];
  if (override) return override;
  const ext = detectExtension(type);
  return ext && /^[a-z0-9]{1,10}$/i.test(ext) ? ext.toLowerCase() : 'bin';
}

const DELIVERY_STATUS = new Set(['message/delivery-status', 'message/global-delivery-status']);
const ATTACHED_MESSAGE = new Set(['message/rfc822', 'message/global']);

/** True for the types whose name comes from the attached message's subject. */
export function isAttachedMessage(contentType: string): boolean {
  return ATTACHED_MESSAGE.has(contentType.toLowerCase());
}

/**
 * Names the unnamed attachments of one message, in MIME order:
 * - an attached message (message/rfc822, message/global): its subject + ".eml", else
 *   "attached-message.eml";
 * - a delivery report (message/delivery-status, message/global-delivery-status): "delivery-status.txt";
 * - anything else: "image.<ext>" for images, "attachment.<ext>" otherwise, the extension from the type.
 * A generated name that is already taken in the message is numbered: "image.png", "image-1.png",
 * "image-2.png"… Names the sender gave are sanitized and never renamed (two files may share one).
 */
export class AttachmentNamer {
  private readonly taken = new Set<string>();

  name(given: string | null, contentType: string, subject?: string | null): string {
    const sanitized = sanitizeFilename(given);
    if (sanitized) {
      this.taken.add(sanitized.toLowerCase());
      return sanitized;
    }
    const type = contentType.toLowerCase();
    let base: string;
    let ext: string;
    if (ATTACHED_MESSAGE.has(type)) {
      const fromSubject = sanitizeFilename(subject?.replace(/\s+/g, ' ').trim().slice(0, 200));
      base = fromSubject ?? 'attached-message';
      ext = 'eml';
    } else if (DELIVERY_STATUS.has(type)) {
      base = 'delivery-status';
      ext = 'txt';
    } else {
      base = type.startsWith('image/') ? 'image' : 'attachment';
      ext = extensionFor(type);
    }
    // Room for "-NNNN.ext", so numbering never gets cut off.
    base = [...base].slice(0, MAX_FILENAME_CHARS - ext.length - 8).join('');
    let candidate = `${base}.${ext}`;
    for (let n = 1; this.taken.has(candidate.toLowerCase()); n++) candidate = `${base}-${n}.${ext}`;
    this.taken.add(candidate.toLowerCase());
    return candidate;
  }
}

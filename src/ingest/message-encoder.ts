import { BlindIndex, type BlindIndexKeys } from '../crypto/blind-index.js';
import { encrypt, type EnvelopeKey } from '../crypto/envelope.js';
import {
  ATTACHMENT_CONTENT_ID_AAD,
  ATTACHMENT_FILENAME_AAD,
  encodeMessageContent,
  MESSAGE_CONTENT_AAD,
  type MessageAddress,
  type MessageContent,
} from '../mailboxes/message-content.js';
import { newId } from '../storage/ids.js';
import { classify } from './classifier.js';
import type { MailAddress, ParsedMessage } from './mime-parser.js';
import { threadCandidates } from './threading.js';

/**
 * What a message needs to be encoded for storage where it was parsed: the mailbox's data key and
 * the blind-index keys. In the service this crosses into the parse worker thread (KeyObjects are
 * cloned by postMessage into the same process's memory, never serialised to bytes): the JSON
 * encoding, encryption and the HMAC per participant then cost that thread, not the event loop
 * (docs/security.md, "Keys in the parse worker threads").
 */
export interface EncodeSpec {
  /** The mailbox DEK (`DataKeyService.getOrCreate({type: 'mailbox', id})`). */
  dek: EnvelopeKey;
  blindKeys: BlindIndexKeys;
}

/** What the writer needs of a parsed message besides its encoded content (no bodies, no address lists). */
export type ParsedSummary = Pick<
  ParsedMessage,
  'messageId' | 'messageIdSynthetic' | 'inReplyTo' | 'references' | 'date' | 'sizeBytes' | 'oversize' | 'parseError' | 'attachments' | 'warnings'
>;

/**
 * A message's participants (role + blind index), in chunks of at most ADDRESS_CHUNK_ROWS, each
 * column one comma-separated string (ids, roles and hex indexes never contain a comma): a header
 * of 25,000 addresses crosses back to the event loop as a few strings, not 75,000, and goes into
 * Postgres as they are (`string_to_array`, MessageWriteRepository.insertPage).
 */
export interface AddressChunk {
  count: number;
  ids: string;
  roles: string;
  indexes: string;
}

/** Participant rows per chunk (one statement carries whole chunks). */
export const ADDRESS_CHUNK_ROWS = 2048;

export interface EncodedAttachment {
  /** The attachment row's id (the AAD of its encrypted columns). */
  rowId: string;
  filenameEnc: Uint8Array | null;
  contentIdEnc: Uint8Array | null;
}

export interface EncodedMessage {
  /** The message row's id (the AAD of `contentEnc`). */
  id: string;
  messageIdIndex: string;
  isAutoReply: boolean;
  isBounce: boolean;
  contentEnc: Uint8Array;
  addresses: AddressChunk[];
  /** Aligned with `ParsedSummary.attachments`. */
  attachments: EncodedAttachment[];
  /** Blind index of each `threadCandidates` id of the message, in that order. */
  threadIndexes: string[];
}

export interface EncodedParse {
  message: ParsedSummary;
  encoded: EncodedMessage;
}

/**
 * Parsed message → its stored form: classification, the content JSON encrypted under the mailbox
 * DEK (AAD: the new message id), encrypted attachment names and content ids, participant rows with
 * their blind index, and the blind indexes threading looks up. Pure CPU work (no I/O): runs in the
 * parse worker thread in the service, in-process elsewhere.
 */
export function encodeParsed(parsed: ParsedMessage, spec: EncodeSpec): EncodedParse {
  const blind = new BlindIndex(spec.blindKeys);
  const id = newId('message');
  const classification = classify(parsed);
  const content: MessageContent = {
    v: 1,
    internetMessageId: parsed.messageId,
    messageIdSynthetic: parsed.messageIdSynthetic,
    inReplyTo: parsed.inReplyTo,
    references: parsed.references,
    from: parsed.from ? toAddress(parsed.from) : null,
    to: parsed.to.map(toAddress),
    cc: parsed.cc.map(toAddress),
    bcc: parsed.bcc.map(toAddress),
    replyTo: parsed.replyTo.map(toAddress),
    subject: parsed.subject,
    date: parsed.date.toISOString(),
    text: parsed.text,
    html: parsed.html,
    ...(parsed.safeHtml !== undefined ? { safeHtml: parsed.safeHtml } : {}),
    ...(parsed.reply !== undefined ? { replyText: parsed.reply.replyText, signature: parsed.reply.signature, forwarded: parsed.reply.forwarded } : {}),
    headers: headerRecord(parsed),
    autoReplyReason: classification.autoReplyReason ?? null,
    bounceReason: classification.bounceReason ?? null,
  };
  const contentEnc = own(encrypt(spec.dek, encodeMessageContent(content), MESSAGE_CONTENT_AAD(id)));
  const attachments = parsed.attachments.map((a): EncodedAttachment => {
    const rowId = newId('attachment');
    return {
      rowId,
      filenameEnc: a.filename ? own(encrypt(spec.dek, a.filename, ATTACHMENT_FILENAME_AAD(rowId))) : null,
      contentIdEnc: a.contentId ? own(encrypt(spec.dek, a.contentId, ATTACHMENT_CONTENT_ID_AAD(rowId))) : null,
    };
  });
  const thread = threadCandidates({ messageId: parsed.messageId, inReplyTo: parsed.inReplyTo, references: parsed.references });
  const encoded: EncodedMessage = {
    id,
    messageIdIndex: blind.messageIdIndex(parsed.messageId),
    isAutoReply: classification.isAutoReply,
    isBounce: classification.isBounce,
    contentEnc,
    addresses: addressChunks(parsed, blind),
    attachments,
    threadIndexes: thread.map((m) => blind.messageIdIndex(m)),
  };
  const { messageId, messageIdSynthetic, inReplyTo, references, date, sizeBytes, oversize, parseError, warnings } = parsed;
  const message: ParsedSummary = { messageId, messageIdSynthetic, inReplyTo, references, date, sizeBytes, oversize, parseError, warnings, attachments: parsed.attachments };
  return { message, encoded };
}

/** The buffers of an encoded message (each its own ArrayBuffer): transferred from the worker thread, not copied. */
export function encodedBuffers(e: EncodedMessage): ArrayBuffer[] {
  const out = [e.contentEnc.buffer as ArrayBuffer];
  for (const a of e.attachments) {
    if (a.filenameEnc) out.push(a.filenameEnc.buffer as ArrayBuffer);
    if (a.contentIdEnc) out.push(a.contentIdEnc.buffer as ArrayBuffer);
  }
  return out;
}

/**
 * `b` in an ArrayBuffer of its own. A small Buffer is a view into Node's shared 8 KiB pool, which
 * cannot be transferred and which structured cloning would copy whole.
 */
function own(b: Buffer): Uint8Array {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return b;
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return copy;
}

function toAddress(a: MailAddress): MessageAddress {
  return { name: a.name === '' ? null : a.name, address: a.address };
}

/** Only the classification headers, as strings (MessageContent.headers); never the whole block. */
function headerRecord(p: ParsedMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.headers)) if (typeof v === 'string') out[k] = v;
  return out;
}

type Role = 'from' | 'to' | 'cc' | 'bcc' | 'reply_to';

/** One row per (role, address) — an address listed twice in one role is indexed once. */
function addressChunks(p: ParsedMessage, blind: BlindIndex): AddressChunk[] {
  const chunks: AddressChunk[] = [];
  let ids: string[] = [];
  let roles: string[] = [];
  let indexes: string[] = [];
  const seen = new Set<string>();
  const flush = (): void => {
    if (ids.length === 0) return;
    chunks.push({ count: ids.length, ids: ids.join(','), roles: roles.join(','), indexes: indexes.join(',') });
    ids = [];
    roles = [];
    indexes = [];
  };
  const add = (role: Role, list: readonly MailAddress[]): void => {
    for (const a of list) {
      if (!a.address) continue;
      let addressIndex: string;
      try {
        addressIndex = blind.emailIndex(a.address);
      } catch {
        continue; // not an address the index can normalise (group syntax leftovers): nothing to find it by
      }
      const key = `${role}:${addressIndex}`;
      if (seen.has(key)) continue;
      seen.add(key);
      ids.push(newId('messageAddress'));
      roles.push(role);
      indexes.push(addressIndex);
      if (ids.length === ADDRESS_CHUNK_ROWS) flush();
    }
  };
  add('from', p.from ? [p.from] : []);
  add('to', p.to);
  add('cc', p.cc);
  add('bcc', p.bcc);
  add('reply_to', p.replyTo);
  flush();
  return chunks;
}

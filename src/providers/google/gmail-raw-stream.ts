import { PassThrough, type Readable } from 'node:stream';
import StreamJsonParser from 'stream-json/Parser.js';
import { ProviderError } from '../provider-error.js';

/**
 * A Gmail `messages.get?format=raw` response read as a stream: the JSON is tokenised as it
 * arrives (stream-json), the small metadata fields are collected, and the `raw` string is
 * base64url-decoded incrementally into `raw` — so a 35 MB message is never held as a 47 MB
 * base64 string plus its decoded copy (issue 12, target 4). Backpressure runs end to end: when
 * the consumer of `raw` stops reading, the tokeniser and then the HTTP body stop too.
 *
 * The metadata the caller needs before reading (`internalDate`, `threadId`) may come before or
 * after `raw` in the JSON (Google does not document the order). When it comes after, the decoded
 * bytes are held until it arrives, up to `holdBytes`; past that `onMetadataLate` is asked for it
 * (the adapter spends one `format=minimal` call) so memory stays bounded either way.
 */
export interface GmailRawMetadata {
  id: string | undefined;
  threadId: string | undefined;
  labelIds: string[] | undefined;
  sizeEstimate: number | undefined;
  internalDate: string | undefined;
}

export interface GmailRawStreamResult {
  metadata: GmailRawMetadata;
  raw: Readable;
}

export interface GmailRawStreamOptions {
  /** Decoded bytes held while waiting for metadata that follows `raw`. Default 8 MiB. */
  holdBytes?: number;
  /** Fetches the metadata separately when it has not arrived within `holdBytes`. */
  onMetadataLate?: (id: string | undefined) => Promise<Pick<GmailRawMetadata, 'threadId' | 'labelIds' | 'internalDate'>>;
  /** Base64 characters decoded per output chunk (a multiple of 4). Default 64 KiB. */
  decodeChars?: number;
}

/** Longest non-raw string we keep (ids, dates, snippet): a bound against a hostile body. */
const MAX_FIELD_CHARS = 64 * 1024;
const BASE64_ALPHABET = /^[A-Za-z0-9_-]*$/;

type Token = { name: string; value?: string };

function shapeError(detail: string): ProviderError {
  // A fixed message: the body is mail content and never goes into an error.
  return new ProviderError('google', 'transient', `Google messages.get: unexpected response shape (${detail})`);
}

/** base64url (or base64) text in, bytes out, any split of the text: only whole quads are decoded. */
class Base64Decoder {
  private pending = '';
  private parts: string[] = [];
  private partsChars = 0;

  constructor(private readonly flushChars: number) {}

  /** Returns a decoded chunk once about `flushChars` characters are buffered, else null. */
  push(text: string): Buffer | null {
    this.parts.push(text);
    this.partsChars += text.length;
    if (this.partsChars < this.flushChars) return null;
    return this.take(false);
  }

  end(): Buffer | null {
    return this.take(true);
  }

  private take(final: boolean): Buffer | null {
    let text = this.pending + this.parts.join('');
    this.parts = [];
    this.partsChars = 0;
    if (!BASE64_ALPHABET.test(text)) {
      // Padding and the standard alphabet are tolerated; anything else is not base64.
      text = text.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
      if (!BASE64_ALPHABET.test(text)) throw shapeError('raw is not base64url');
    }
    const cut = final ? text.length : text.length - (text.length % 4);
    if (final && text.length % 4 === 1) throw shapeError('raw is truncated');
    this.pending = text.slice(cut);
    if (cut === 0) return null;
    return Buffer.from(cut === text.length ? text : text.slice(0, cut), 'base64url');
  }
}

/**
 * Reads `body` (the HTTP response) and resolves once the metadata is known and `raw` has started;
 * rejects with a ProviderError when the body ends without `raw` or is not JSON. A failure after
 * that point destroys `raw` with a ProviderError (the ingest sees a source failure and the sync
 * retries). Destroying `raw` early (oversize, duplicate) aborts the HTTP body.
 */
export function readGmailRawMessage(body: Readable, options: GmailRawStreamOptions = {}): Promise<GmailRawStreamResult> {
  const holdBytes = options.holdBytes ?? 8 * 1024 * 1024;
  const decodeChars = Math.max(4, Math.floor((options.decodeChars ?? 64 * 1024) / 4) * 4);
  const parser = new StreamJsonParser({ packKeys: true, streamKeys: false, packStrings: false, streamStrings: true, packNumbers: true, streamNumbers: false });
  const out = new PassThrough({ highWaterMark: decodeChars });
  const meta: GmailRawMetadata = { id: undefined, threadId: undefined, labelIds: undefined, sizeEstimate: undefined, internalDate: undefined };

  return new Promise<GmailRawStreamResult>((resolve, reject) => {
    let settled = false;
    let outClosed = false;
    let held: Buffer[] | null = null; // decoded raw bytes waiting for trailing metadata
    let heldBytes = 0;

    const succeed = (): void => {
      if (settled) return;
      settled = true;
      resolve({ metadata: meta, raw: out });
    };
    const fail = (err: unknown): void => {
      const e = err instanceof ProviderError ? err : shapeError('body could not be read');
      if (!settled) {
        // Nobody holds `raw` yet: the rejection is the error.
        settled = true;
        reject(e);
        out.destroy();
      } else if (!out.destroyed) out.destroy(e);
    };
    out.on('close', () => {
      outClosed = true;
      // The consumer stopped early (or finished): stop reading the provider body.
      if (!parser.destroyed) parser.destroy();
      if (!body.destroyed) body.destroy();
    });
    body.on('error', (err) => parser.destroy(err));
    body.pipe(parser);

    const metadataComplete = (): boolean => meta.internalDate !== undefined && meta.threadId !== undefined;

    const write = async (chunk: Buffer): Promise<void> => {
      if (outClosed) return;
      if (held !== null) {
        held.push(chunk);
        heldBytes += chunk.length;
        if (heldBytes <= holdBytes) return;
        // Too much to hold: ask for the metadata separately, then let the bytes flow.
        if (!options.onMetadataLate) throw shapeError('metadata after a large raw');
        const late = await options.onMetadataLate(meta.id);
        meta.threadId ??= late.threadId;
        meta.labelIds ??= late.labelIds;
        meta.internalDate ??= late.internalDate;
        await releaseHeld();
        return;
      }
      if (!out.write(chunk)) await drained();
    };
    const releaseHeld = async (): Promise<void> => {
      const chunks = held ?? [];
      held = null;
      heldBytes = 0;
      succeed();
      for (const c of chunks) if (!outClosed && !out.write(c)) await drained();
    };
    const drained = (): Promise<void> =>
      new Promise((r) => {
        const done = (): void => {
          out.off('drain', done);
          out.off('close', done);
          r();
        };
        out.on('drain', done);
        out.on('close', done);
      });

    const pump = async (): Promise<void> => {
      let depth = 0;
      let key: string | null = null;
      let inRaw = false;
      let sawRaw = false;
      let text: string[] | null = null; // a small string being collected
      let textChars = 0;
      let labels: string[] | null = null;
      const decoder = new Base64Decoder(decodeChars);
      for await (const t of parser as AsyncIterable<Token>) {
        if (outClosed) return;
        switch (t.name) {
          case 'startObject':
          case 'startArray':
            depth++;
            if (depth === 2 && t.name === 'startArray' && key === 'labelIds') labels = [];
            break;
          case 'endObject':
          case 'endArray':
            if (depth === 2 && labels !== null) {
              meta.labelIds = labels;
              labels = null;
            }
            depth--;
            if (depth === 1) key = null;
            break;
          case 'keyValue':
            if (depth === 1) key = t.value ?? null;
            break;
          case 'startString':
            if (depth === 1 && key === 'raw') {
              if (sawRaw) throw shapeError('raw twice');
              sawRaw = true;
              inRaw = true;
              if (metadataComplete()) succeed();
              else held = [];
            } else {
              text = [];
              textChars = 0;
            }
            break;
          case 'stringChunk':
            if (inRaw) {
              const decoded = decoder.push(t.value ?? '');
              if (decoded) await write(decoded);
            } else if (text !== null) {
              textChars += (t.value ?? '').length;
              if (textChars > MAX_FIELD_CHARS) throw shapeError('field too long');
              text.push(t.value ?? '');
            }
            break;
          case 'endString':
            if (inRaw) {
              inRaw = false;
              const rest = decoder.end();
              if (rest) await write(rest);
            } else if (text !== null) {
              const value = text.join('');
              text = null;
              if (depth === 1 && key !== null) assignString(meta, key, value);
              else if (depth === 2 && labels !== null) labels.push(value);
            }
            if (depth === 1) key = null;
            break;
          case 'numberValue':
            if (depth === 1 && key === 'sizeEstimate') meta.sizeEstimate = Number(t.value);
            if (depth === 1) key = null;
            break;
          case 'nullValue':
          case 'trueValue':
          case 'falseValue':
            if (depth === 1) key = null;
            break;
          default:
            break;
        }
      }
      if (!sawRaw || meta.id === undefined) throw shapeError(sawRaw ? 'no id' : 'no raw');
      if (held !== null) await releaseHeld();
      succeed();
      out.end();
    };
    pump().catch(fail);
  });
}

function assignString(meta: GmailRawMetadata, key: string, value: string): void {
  switch (key) {
    case 'id':
      if (value.length > 0) meta.id = value;
      break;
    case 'threadId':
      meta.threadId = value;
      break;
    case 'internalDate':
      if (/^\d+$/.test(value)) meta.internalDate = value;
      else throw shapeError('internalDate');
      break;
    case 'sizeEstimate':
      break;
    default:
      break;
  }
}

import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { MessagePort } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import type { AttachmentMeta, AttachmentSink, AttachmentSinkResult } from './attachment-sink.port.js';
import { addDerivedContent } from './derived-content.js';
import { AttachmentSinkError, MimeSourceError } from './mime-parse.errors.js';
import { encodedBuffers, encodeParsed, type EncodedMessage, type EncodeSpec, type ParsedSummary } from './message-encoder.js';
import { parseMime, type ParsedMessage, type ParseMimeOptions } from './mime-parser.js';

/**
 * Worker-thread side of MimeParsePool (piscina task). parseMime runs here, so a pathological
 * message (a megabyte of header, thousands of nested parts) costs this thread, never the event
 * loop that answers HTTP and health checks.
 *
 * The bytes stay streamed in both directions over the task's MessagePort, pull-driven so neither
 * side buffers more than one chunk: the worker asks for the next raw chunk (`pull`), and the main
 * thread asks for the next decoded attachment chunk (`apull`) as its sink (BlobStore, clamd)
 * consumes. The sink itself runs on the main thread (it needs the database and the scanner).
 */
export interface ParseTask {
  /** Streamed task: raw bytes and attachment content flow over this port. */
  port?: MessagePort;
  /**
   * Whole-message task (a small message the main thread read to its end first): the raw bytes
   * travel with the task and the decoded attachments come back with the result, so the message
   * costs one task round trip instead of a channel and a dozen port messages.
   */
  raw?: Uint8Array;
  maxBytes?: number;
  maxTextChars?: number;
  maxHtmlChars?: number;
  receivedAt: Date | null;
  /** The main thread's clock at the start: the last-resort date fallback. */
  nowMs: number;
  /**
   * Encode for storage here too (message-encoder.ts): the result is `encoded` — the encrypted
   * content and the rows — instead of the whole parsed message, so neither the encoding nor a
   * structured clone of the bodies and address lists costs the event loop.
   */
  encode?: EncodeSpec;
}

/** A whole-message task's attachment content, for the main thread to replay into its sink. */
export interface CollectedAttachment {
  ordinal: number;
  /** The decoded content in one buffer of its own (transferred back, not copied). */
  content: Uint8Array;
  /** The content stream failed (cut short, broken encoding): replayed as an erroring stream. */
  failed: boolean;
}

/** Several whole-message tasks in one piscina task (MimeParsePool batches small messages). */
export interface ParseBatchTask {
  batch: Array<ParseTask & { raw: Uint8Array }>;
}

export type ParseTaskResult =
  | { kind: 'parsed'; message: ParsedMessage; collected?: CollectedAttachment[] }
  | { kind: 'encoded'; message: ParsedSummary; encoded: EncodedMessage; collected?: CollectedAttachment[] }
  | { kind: 'source_failed' }
  | { kind: 'sink_failed'; ordinal: number }
  /** One message of a batch threw (a bug, not bad input): the others are unaffected. */
  | { kind: 'failed'; error: unknown };

/** Main → worker. */
export type ToWorker =
  | { t: 'data'; bufs: Uint8Array[] }
  | { t: 'end' }
  | { t: 'error' }
  | { t: 'apull'; k: number }
  | { t: 'aresult'; k: number; result: AttachmentSinkResult }
  | { t: 'areject'; k: number };

/** Worker → main. */
export type FromWorker =
  | { t: 'pull' }
  | { t: 'stop' }
  | { t: 'att'; k: number; meta: AttachmentMeta }
  | { t: 'achunk'; k: number; buf: Uint8Array }
  | { t: 'aend'; k: number }
  | { t: 'aerror'; k: number };

interface PendingAttachment {
  content: Readable;
  /** The content ended or failed: nothing more to send. */
  done: boolean;
  resolve: (r: AttachmentSinkResult) => void;
  reject: (err: Error) => void;
}

/** Decoded bytes sent per message at most (mailparser emits an attachment a line at a time). */
const ATTACHMENT_MESSAGE_BYTES = 256 * 1024;

/** A copy in its own ArrayBuffer, so it can be transferred (no second copy, no pooled neighbours). */
export function ownCopy(chunk: unknown): Uint8Array {
  const src = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
  const copy = new Uint8Array(src.length);
  copy.set(src);
  return copy;
}

/** Placeholder sink id in a whole-message task; the main thread's sink assigns the real one. */
const COLLECTED_ID = '';

/** parseMime's options from a task (both kinds of task carry the same limits and clock). */
function parseOptions(task: ParseTask, sink: AttachmentSink): ParseMimeOptions {
  return {
    attachmentSink: sink,
    ...(task.maxBytes !== undefined ? { maxBytes: task.maxBytes } : {}),
    ...(task.maxTextChars !== undefined ? { maxTextChars: task.maxTextChars } : {}),
    ...(task.maxHtmlChars !== undefined ? { maxHtmlChars: task.maxHtmlChars } : {}),
    receivedAt: task.receivedAt,
    now: () => new Date(task.nowMs),
  };
}

async function parseWhole(task: ParseTask & { raw: Uint8Array }): Promise<ParseTaskResult> {
  const collected: CollectedAttachment[] = [];
  const sink: AttachmentSink = {
    async put(meta, content) {
      const bufs: Buffer[] = [];
      let size = 0;
      let failed = false;
      try {
        for await (const chunk of content as AsyncIterable<Buffer>) {
          bufs.push(chunk);
          size += chunk.length;
        }
      } catch {
        // Cut short: parseMime reports the attachment truncated; the replay errors the same way.
        failed = true;
      }
      // One buffer of its own: transferred back whole (a decoded chunk is often a view into a
      // larger pooled buffer, which structured cloning would copy entire).
      const own = new Uint8Array(size);
      let at = 0;
      for (const b of bufs) {
        own.set(b, at);
        at += b.length;
      }
      collected.push({ ordinal: meta.ordinal, content: own, failed });
      if (failed) throw new Error('attachment content cut short');
      return { id: COLLECTED_ID };
    },
  };
  const raw = Buffer.from(task.raw.buffer, task.raw.byteOffset, task.raw.byteLength);
  const message = addDerivedContent(await parseMime(raw, parseOptions(task, sink)));
  return finish(task, message, collected);
}

/** The parsed message as the main thread asked for it: whole, or encoded for storage. */
function finish(task: ParseTask, message: ParsedMessage, collected?: CollectedAttachment[]): ParseTaskResult {
  const extra = collected ? { collected } : {};
  if (!task.encode) return { kind: 'parsed', message, ...extra };
  return { kind: 'encoded', ...encodeParsed(message, task.encode), ...extra };
}

/** Buffers of a result that are transferred back (each one its own ArrayBuffer). */
function resultBuffers(result: ParseTaskResult): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  if (result.kind === 'parsed' || result.kind === 'encoded') for (const c of result.collected ?? []) out.push(c.content.buffer as ArrayBuffer);
  if (result.kind === 'encoded') out.push(...encodedBuffers(result.encoded));
  return out;
}

/**
 * Batches run one after the other, in the order they arrived. piscina hands this thread up to
 * concurrentTasksPerWorker tasks at once (streamed messages need that: they wait on port round
 * trips); two batches run interleaved would both finish late — the pool keeps a second batch here
 * so that the thread has work while the first one's results go back and the event loop refills —
 * and the thread would then idle while the event loop refilled both.
 */
let batchesDone: Promise<unknown> = Promise.resolve();

function parseBatch(task: ParseBatchTask): Promise<unknown> {
  const run = batchesDone.then(() => parseBatchNow(task));
  batchesDone = run.catch(() => undefined);
  return run;
}

/**
 * A batch of small messages, parsed one after the other: one task round trip (and one wake-up of
 * each thread) for all of them; the attachments' buffers are transferred back, not copied.
 */
async function parseBatchNow(task: ParseBatchTask): Promise<unknown> {
  const results: ParseTaskResult[] = [];
  const transfer: ArrayBuffer[] = [];
  for (const t of task.batch) {
    try {
      const result = await parseWhole(t);
      transfer.push(...resultBuffers(result));
      results.push(result);
    } catch (error) {
      results.push({ kind: 'failed', error });
    }
  }
  return move({ [transferableSymbol]: transfer, [valueSymbol]: results } as unknown as Parameters<typeof move>[0]);
}

export default async function parseTask(task: ParseTask | ParseBatchTask): Promise<unknown> {
  if ('batch' in task) return parseBatch(task);
  const result = task.raw ? await parseWhole(task as ParseTask & { raw: Uint8Array }) : await parseStreamed(task);
  const transfer = resultBuffers(result);
  return transfer.length === 0 ? result : move({ [transferableSymbol]: transfer, [valueSymbol]: result } as unknown as Parameters<typeof move>[0]);
}

async function parseStreamed(task: ParseTask): Promise<ParseTaskResult> {
  const port = task.port;
  if (!port) throw new Error('parse task without a port or raw bytes');
  const post = (m: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);
  let ended = false;
  const raw = new Readable({
    read() {
      post({ t: 'pull' });
    },
    destroy(err, cb) {
      // parseMime stops reading (oversize, broken input): the main thread closes the provider body.
      if (!ended) post({ t: 'stop' });
      cb(err);
    },
  });
  const attachments = new Map<number, PendingAttachment>();

  // One message per pull with everything buffered so far (up to ATTACHMENT_MESSAGE_BYTES), not
  // one per decoded line: the port costs per message.
  const pullAttachment = (k: number): void => {
    const a = attachments.get(k);
    if (!a || a.done) return;
    const parts: Buffer[] = [];
    let size = 0;
    let chunk: Buffer | null;
    while (size < ATTACHMENT_MESSAGE_BYTES && (chunk = a.content.read() as Buffer | null) !== null) {
      parts.push(chunk);
      size += chunk.length;
    }
    if (size > 0) {
      const buf = ownCopy(parts.length === 1 ? parts[0] : Buffer.concat(parts, size));
      post({ t: 'achunk', k, buf }, [buf.buffer as ArrayBuffer]);
      return;
    }
    if (a.content.readableEnded) {
      a.done = true;
      post({ t: 'aend', k });
      return;
    }
    if (a.content.destroyed || a.content.errored) {
      a.done = true;
      post({ t: 'aerror', k });
      return;
    }
    const retry = (): void => {
      a.content.off('readable', retry);
      a.content.off('end', retry);
      a.content.off('close', retry);
      pullAttachment(k);
    };
    a.content.on('readable', retry);
    a.content.on('end', retry);
    a.content.on('close', retry);
  };

  const settleAttachment = async (k: number, result: AttachmentSinkResult | null): Promise<void> => {
    const a = attachments.get(k);
    if (!a) return;
    attachments.delete(k);
    if (result === null) {
      a.reject(new Error('attachment sink failed'));
      return;
    }
    // The sink stopped reading early: drain here so the parser can move on.
    if (!a.done && !a.content.readableEnded && !a.content.destroyed) {
      a.content.resume();
      await finished(a.content).catch(() => undefined);
    }
    a.resolve(result);
  };

  port.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'data':
        for (const b of m.bufs) raw.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
        break;
      case 'end':
        ended = true;
        raw.push(null);
        break;
      case 'error':
        ended = true;
        raw.destroy(new Error('message source failed'));
        break;
      case 'apull':
        pullAttachment(m.k);
        break;
      case 'aresult':
        void settleAttachment(m.k, m.result);
        break;
      case 'areject':
        void settleAttachment(m.k, null);
        break;
    }
  });

  const sink: AttachmentSink = {
    put(meta, content) {
      return new Promise<AttachmentSinkResult>((resolve, reject) => {
        attachments.set(meta.ordinal, { content, done: false, resolve, reject });
        post({ t: 'att', k: meta.ordinal, meta });
      });
    },
  };

  try {
    const message = addDerivedContent(await parseMime(raw, parseOptions(task, sink)));
    return finish(task, message);
  } catch (err) {
    if (err instanceof MimeSourceError) return { kind: 'source_failed' };
    if (err instanceof AttachmentSinkError) return { kind: 'sink_failed', ordinal: err.ordinal };
    throw err;
  } finally {
    port.close();
  }
}

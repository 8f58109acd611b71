import { Readable } from 'node:stream';
import type { MessagePort } from 'node:worker_threads';
import type { AttachmentMeta, AttachmentSink, AttachmentSinkResult } from './attachment-sink.port.js';
import { AttachmentSinkError, MimeSourceError } from './mime-parse.errors.js';
import { parseMime, type ParsedMessage } from './mime-parser.js';

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
  port: MessagePort;
  maxBytes?: number;
  maxTextChars?: number;
  maxHtmlChars?: number;
  receivedAt: Date | null;
  /** The main thread's clock at the start: the last-resort date fallback. */
  nowMs: number;
}

export type ParseTaskResult =
  | { kind: 'parsed'; message: ParsedMessage }
  | { kind: 'source_failed' }
  | { kind: 'sink_failed'; ordinal: number };

/** Main → worker. */
export type ToWorker =
  | { t: 'data'; buf: Uint8Array }
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
  it: AsyncIterator<unknown>;
  done: boolean;
  resolve: (r: AttachmentSinkResult) => void;
  reject: (err: Error) => void;
}

/** A copy in its own ArrayBuffer, so it can be transferred (no second copy, no pooled neighbours). */
export function ownCopy(chunk: unknown): Uint8Array {
  const src = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
  const copy = new Uint8Array(src.length);
  copy.set(src);
  return copy;
}

export default async function parseTask(task: ParseTask): Promise<ParseTaskResult> {
  const port = task.port;
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

  const pullAttachment = (k: number): void => {
    const a = attachments.get(k);
    if (!a || a.done) return;
    a.it.next().then(
      (r) => {
        if (r.done) {
          a.done = true;
          post({ t: 'aend', k });
        } else {
          const buf = ownCopy(r.value);
          post({ t: 'achunk', k, buf }, [buf.buffer as ArrayBuffer]);
        }
      },
      () => {
        a.done = true;
        post({ t: 'aerror', k });
      },
    );
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
    try {
      while (!a.done) if ((await a.it.next()).done) a.done = true;
    } catch {
      // content cut: the parser reports it
    }
    a.resolve(result);
  };

  port.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'data':
        raw.push(Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength));
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
        attachments.set(meta.ordinal, { it: content[Symbol.asyncIterator](), done: false, resolve, reject });
        post({ t: 'att', k: meta.ordinal, meta });
      });
    },
  };

  try {
    const message = await parseMime(raw, {
      attachmentSink: sink,
      ...(task.maxBytes !== undefined ? { maxBytes: task.maxBytes } : {}),
      ...(task.maxTextChars !== undefined ? { maxTextChars: task.maxTextChars } : {}),
      ...(task.maxHtmlChars !== undefined ? { maxHtmlChars: task.maxHtmlChars } : {}),
      receivedAt: task.receivedAt,
      now: () => new Date(task.nowMs),
    });
    return { kind: 'parsed', message };
  } catch (err) {
    if (err instanceof MimeSourceError) return { kind: 'source_failed' };
    if (err instanceof AttachmentSinkError) return { kind: 'sink_failed', ordinal: err.ordinal };
    throw err;
  } finally {
    port.close();
  }
}

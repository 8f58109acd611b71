import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { AttachmentSinkError, MimeSourceError } from './mime-parse.errors.js';
import { parseMime, type ParsedMessage, type ParseMimeOptions } from './mime-parser.js';
import { ownCopy, type FromWorker, type ParseTask, type ParseTaskResult, type ToWorker } from './parse-worker.js';

/** parseMime's signature: what IngestService calls (the pool, or parseMime itself in-process). */
export type MimeParseFn = (raw: Readable, options: ParseMimeOptions) => Promise<ParsedMessage>;

export interface MimeParsePoolOptions {
  /** Worker threads; default: the machine's parallelism (at least 1). */
  threads?: number;
  /** Messages one worker parses at once (each waits on I/O part of the time). */
  tasksPerThread?: number;
}

/**
 * MIME parsing off the event loop: parseMime runs in a piscina worker pool (parse-worker.ts), so
 * no message — however deep its nesting or long its header — can stall HTTP, health checks or
 * the database writes of other messages. The raw bytes flow to the worker and each decoded
 * attachment flows back into the caller's AttachmentSink as a stream with backpressure (one chunk
 * in flight per direction), so a 100 MB attachment is never held whole; the sink (BlobStore,
 * clamd) runs here, where its connections are.
 *
 * Same contract as parseMime: MimeSourceError when `raw` fails, AttachmentSinkError (with the
 * sink's own error as cause) when the sink rejects; bad input is a flagged result, not a throw.
 */
/** Raw bytes sent to the worker per port message at most. */
const RAW_MESSAGE_BYTES = 1024 * 1024;

export class MimeParsePool {
  readonly #opts: MimeParsePoolOptions;
  #pool: Piscina | null = null;

  /** Threads start with the first message (a process that never ingests never starts one). */
  constructor(opts: MimeParsePoolOptions = {}) {
    this.#opts = opts;
  }

  #get(): Piscina {
    if (this.#pool) return this.#pool;
    const threads = Math.max(1, this.#opts.threads ?? availableParallelism());
    // In a checkout the sources are TypeScript, run through tsx (bin/mailbox-connector.js); the
    // worker needs the same loader. The build (dist/) ships parse-worker.js.
    const fromSource = import.meta.url.endsWith('.ts');
    this.#pool = new Piscina({
      filename: new URL(fromSource ? './parse-worker.ts' : './parse-worker.js', import.meta.url).href,
      ...(fromSource ? { execArgv: ['--import', 'tsx'] } : {}),
      minThreads: 1,
      maxThreads: threads,
      // Each parse waits on port round trips to this thread part of the time: overlap a few.
      concurrentTasksPerWorker: this.#opts.tasksPerThread ?? 8,
      idleTimeout: 60_000,
    });
    return this.#pool;
  }

  readonly parse: MimeParseFn = async (raw, options) => {
    const { port1: port, port2 } = new MessageChannel();
    const post = (m: ToWorker, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);
    let sourceFailure: unknown = null;
    let sourceDone = false;
    const sinkFailures = new Map<number, unknown>();
    const streams = new Map<number, Readable>();

    // The raw source, read in paused mode: each pull sends everything buffered so far (up to
    // RAW_MESSAGE_BYTES) in one port message — the port costs per message, not per byte.
    raw.on('error', (err: unknown) => {
      sourceFailure ??= err;
    });
    const pull = (): void => {
      if (sourceDone) return;
      const parts: Buffer[] = [];
      let size = 0;
      let chunk: unknown;
      while (size < RAW_MESSAGE_BYTES && (chunk = raw.read()) !== null) {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        parts.push(b);
        size += b.length;
      }
      if (size > 0) {
        const bufs = parts.map(ownCopy);
        post({ t: 'data', bufs }, bufs.map((b) => b.buffer as ArrayBuffer));
        return;
      }
      if (sourceFailure !== null || (raw.destroyed && !raw.readableEnded)) {
        sourceDone = true;
        sourceFailure ??= new Error('message source closed before its end');
        post({ t: 'error' });
        return;
      }
      if (raw.readableEnded) {
        sourceDone = true;
        post({ t: 'end' });
        return;
      }
      const again = (): void => {
        raw.off('readable', again);
        raw.off('end', again);
        raw.off('close', again);
        pull();
      };
      raw.on('readable', again);
      raw.on('end', again);
      raw.on('close', again);
    };

    port.on('message', (m: FromWorker) => {
      switch (m.t) {
        case 'pull':
          pull();
          break;
        case 'stop':
          // The parser stopped reading (oversize, broken input): close the provider body.
          if (!sourceDone) {
            sourceDone = true;
            raw.destroy();
          }
          break;
        case 'att': {
          const k = m.k;
          const content = new Readable({ read: () => post({ t: 'apull', k }) });
          streams.set(k, content);
          options.attachmentSink.put(m.meta, content).then(
            (result) => {
              streams.delete(k);
              post({ t: 'aresult', k, result });
            },
            (err: unknown) => {
              streams.delete(k);
              sinkFailures.set(k, err);
              post({ t: 'areject', k });
            },
          );
          break;
        }
        case 'achunk':
          streams.get(m.k)?.push(Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength));
          break;
        case 'aend':
          streams.get(m.k)?.push(null);
          break;
        case 'aerror':
          // The message was cut (or the part's encoding broke) mid-attachment: the sink discards it.
          streams.get(m.k)?.destroy(new Error('attachment content cut short'));
          break;
      }
    });

    const task: ParseTask = {
      port: port2,
      ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
      ...(options.maxTextChars !== undefined ? { maxTextChars: options.maxTextChars } : {}),
      ...(options.maxHtmlChars !== undefined ? { maxHtmlChars: options.maxHtmlChars } : {}),
      receivedAt: options.receivedAt ?? null,
      nowMs: (options.now ?? (() => new Date()))().getTime(),
    };
    let result: ParseTaskResult;
    try {
      result = (await this.#get().run(task, { transferList: [port2] })) as ParseTaskResult;
    } finally {
      port.close();
      for (const s of streams.values()) s.destroy(new Error('parse ended'));
      if (!sourceDone) raw.destroy();
    }
    switch (result.kind) {
      case 'parsed':
        return result.message;
      case 'source_failed':
        throw new MimeSourceError({ cause: sourceFailure });
      case 'sink_failed':
        throw new AttachmentSinkError(result.ordinal, { cause: sinkFailures.get(result.ordinal) });
    }
  };

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = null;
    await pool?.destroy();
  }
}

/** In-process parsing (unit tests and tools that parse one message): parseMime itself. */
export const parseInProcess: MimeParseFn = parseMime;

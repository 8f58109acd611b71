import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { addDerivedContent } from './derived-content.js';
import { AttachmentSinkError, MimeSourceError } from './mime-parse.errors.js';
import { encodeParsed, type EncodedParse, type EncodeSpec } from './message-encoder.js';
import { parseMime, type ParsedMessage, type ParseMimeOptions } from './mime-parser.js';
import type { ScanVerdict } from '../scan/scanner.port.js';
import { ownCopy, type FromWorker, type ParseBatchTask, type ParseTask, type ParseTaskResult, type ToWorker } from './parse-worker.js';

/**
 * parseMime's signature (the pool, or parseMime itself in-process), optionally with `encoded`: the
 * same parse followed by encodeParsed where the parse ran (the pool: in its worker thread), which
 * is what IngestService calls when it is there.
 */
export type MimeParseFn = ((raw: Readable, options: ParseMimeOptions) => Promise<ParsedMessage>) & { encoded?: MimeEncodeFn };
export type MimeEncodeFn = (raw: Readable, options: ParseMimeOptions, encode: EncodeSpec) => Promise<EncodedParse>;

export interface MimeParsePoolOptions {
  /**
   * Worker threads; default: the machine's parallelism less one (at least 1) — the event loop
   * (database, encryption, storage) keeps a core. Each thread warms its own JIT and heap: on the
   * 2-core machine a second parse thread cost about 0.8 ms more CPU per message for the same
   * throughput (docs/benchmarks.md, Ingest).
   */
  threads?: number;
  /** Messages one worker parses at once (each waits on I/O part of the time). */
  tasksPerThread?: number;
  /** Extra node flags for the worker threads (e.g. `--cpu-prof` to profile them). */
  execArgv?: string[];
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
/**
 * A message whose raw bytes end within this many is read whole first and parsed as one task
 * (bytes in, attachments back with the result); a larger one streams. Per message the streamed
 * path costs a MessageChannel and about a dozen port messages, each waking the other thread —
 * more CPU than parsing a typical message.
 */
const WHOLE_MESSAGE_BYTES = 256 * 1024;

interface Prefix {
  parts: Buffer[];
  size: number;
  /** The source ended within the prefix (the message is whole). */
  ended: boolean;
}

/** Reads `raw` (paused mode) until it ends, fails, or more than `limit` bytes are in. */
function readPrefix(raw: Readable, limit: number): Promise<Prefix> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    const done = (ended: boolean): void => {
      raw.off('readable', step);
      raw.off('end', onEnd);
      raw.off('error', onStop);
      raw.off('close', onStop);
      resolve({ parts, size, ended });
    };
    const onEnd = (): void => done(true);
    // An error or early close: the streamed path sees it and reports it as it always has.
    const onStop = (): void => done(false);
    function step(): void {
      let chunk: unknown;
      while (size <= limit && (chunk = raw.read()) !== null) {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        parts.push(b);
        size += b.length;
      }
      if (size > limit) done(false);
      else if (raw.readableEnded) done(true);
    }
    if (raw.readableEnded) return done(true);
    if (raw.errored || raw.destroyed) return done(false);
    raw.on('readable', step);
    raw.on('end', onEnd);
    raw.on('error', onStop);
    raw.on('close', onStop);
    step();
  });
}

/** One buffer of its own (transferable, no pooled neighbours). */
function wholeCopy(parts: Buffer[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Small messages waiting for a parse thread go to it together, as one task, up to this many (and
 * BATCH_BYTES of raw bytes): a task round trip wakes both threads and costs more than parsing a
 * typical 2–5 kB message. Batches form only while the threads are busy (an idle pool takes the
 * next message at once), so batching never adds latency.
 */
const BATCH_MESSAGES = 32;
const BATCH_BYTES = 1024 * 1024;
/**
 * Replaying a whole message's attachments into the sink yields to the event loop after about this
 * many bytes, counting each attachment as at least REPLAY_ITEM_BYTES (its encryption, row and
 * stream cost something whatever its size).
 */
const REPLAY_SLICE_BYTES = 1024 * 1024;
const REPLAY_ITEM_BYTES = 64 * 1024;
/** Batches handed to piscina per thread at a time: one being parsed, one waiting in its queue. */
const BATCHES_PER_THREAD = 2;
/**
 * A thread that already holds a batch gets its second one only once this many messages wait (or
 * the queue holds no more to come soon): handing each message over alone as soon as the first
 * batch returned made most tasks one message (472 of 528 tasks in a bench block), each costing a
 * task round trip on both threads.
 */
const MIN_SECOND_BATCH = 8;

interface Queued {
  task: ParseTask & { raw: Uint8Array };
  resolve: (r: ParseTaskResult) => void;
  reject: (err: unknown) => void;
}

export class MimeParsePool {
  readonly #opts: MimeParsePoolOptions;
  #pool: Piscina | null = null;
  #threads = 1;
  readonly #queue: Queued[] = [];
  #batchesInFlight = 0;
  #batches = 0;

  /** Threads start with the first message (a process that never ingests never starts one). */
  constructor(opts: MimeParsePoolOptions = {}) {
    this.#opts = opts;
  }

  #get(): Piscina {
    if (this.#pool) return this.#pool;
    const threads = Math.max(1, this.#opts.threads ?? availableParallelism() - 1);
    this.#threads = threads;
    // In a checkout the sources are TypeScript, run through tsx (bin/mailbox-connector.js); the
    // worker needs the same loader, resolved from here: a bare `--import tsx` would be looked up
    // from the working directory and fail when the CLI runs elsewhere. The build (dist/) ships
    // parse-worker.js.
    const fromSource = import.meta.url.endsWith('.ts');
    this.#pool = new Piscina({
      filename: new URL(fromSource ? './parse-worker.ts' : './parse-worker.js', import.meta.url).href,
      execArgv: [...(fromSource ? ['--import', import.meta.resolve('tsx')] : []), ...(this.#opts.execArgv ?? [])],
      // All threads from the start: piscina's least-busy balancer only spreads tasks over threads
      // that exist, and it starts another only when every thread holds concurrentTasksPerWorker
      // tasks — batches (two per thread in flight) would otherwise all land on the first thread.
      minThreads: threads,
      maxThreads: threads,
      // Each parse waits on port round trips to this thread part of the time: overlap a few.
      concurrentTasksPerWorker: this.#opts.tasksPerThread ?? 8,
      idleTimeout: 60_000,
    });
    return this.#pool;
  }

  /** Batches of small messages handed to the threads so far (tests, benches). */
  get batches(): number {
    return this.#batches;
  }

  readonly parse: MimeParseFn = Object.assign(
    async (raw: Readable, options: ParseMimeOptions): Promise<ParsedMessage> => {
      const result = await this.#run(raw, options, undefined);
      if (result.kind !== 'parsed') throw new Error(`parse returned ${result.kind}`);
      return result.message;
    },
    {
      encoded: async (raw: Readable, options: ParseMimeOptions, encode: EncodeSpec): Promise<EncodedParse> => {
        const result = await this.#run(raw, options, encode);
        if (result.kind !== 'encoded') throw new Error(`parse returned ${result.kind}`);
        return { message: result.message, encoded: result.encoded };
      },
    },
  );

  async #run(raw: Readable, options: ParseMimeOptions, encode: EncodeSpec | undefined): Promise<Parsed> {
    const limit = Math.min(WHOLE_MESSAGE_BYTES, options.maxBytes ?? Infinity);
    const prefix = await readPrefix(raw, limit);
    if (prefix.ended && prefix.size <= limit && !raw.errored) return this.#parseWhole(wholeCopy(prefix.parts, prefix.size), options, encode);
    return this.#parseStreamed(raw, options, prefix.parts, encode);
  }

  /**
   * A small message, already read whole: parsed in one task; the decoded attachments come back
   * with the result and are replayed here, in MIME order, into the caller's sink (storage and
   * scanning run as for a streamed message; a sink failure aborts the same way).
   */
  async #parseWhole(raw: Uint8Array, options: ParseMimeOptions, encode: EncodeSpec | undefined): Promise<Parsed> {
    const task: ParseTask = {
      raw,
      ...taskOptions(options),
      ...(encode ? { encode } : {}),
    };
    const result = await new Promise<ParseTaskResult>((resolve, reject) => {
      this.#queue.push({ task: { ...task, raw }, resolve, reject });
      this.#dispatch();
    });
    if (result.kind === 'failed') throw result.error;
    if (result.kind !== 'parsed' && result.kind !== 'encoded') throw new Error(`whole-message parse returned ${result.kind}`);
    const message = result.message;
    const byOrdinal = new Map(message.attachments.map((a, i) => [a.ordinal, i]));
    let replayed = 0;
    for (const c of result.collected ?? []) {
      // A turn of the event loop every few attachments: a message with a thousand small parts
      // is replayed (encrypted, held, scanned) in slices, not in one stretch of microtasks.
      replayed += c.content.byteLength + REPLAY_ITEM_BYTES;
      if (replayed >= REPLAY_SLICE_BYTES) {
        replayed = 0;
        await yieldToLoop();
      }
      const i = byOrdinal.get(c.ordinal);
      if (i === undefined) continue;
      const att = message.attachments[i]!;
      const { id: _id, status: _status, sizeBytes: _size, sha256: _sha, scan: _scan, ...meta } = att;
      const content = new Readable({ read() {} });
      if (c.content.byteLength > 0) content.push(Buffer.from(c.content.buffer, c.content.byteOffset, c.content.byteLength));
      if (c.failed) content.destroy(new Error('attachment content cut short'));
      else content.push(null);
      // As parseMime does: always listen, so a cut attachment never surfaces as an unhandled 'error'.
      content.on('error', () => undefined);
      let outcome: { id: string; scan: ScanVerdict | null } | null = null;
      let sinkError: unknown = null;
      try {
        const r = await options.attachmentSink.put(meta, content);
        outcome = { id: r.id, scan: r.scan ?? null };
      } catch (err) {
        sinkError = err;
      }
      if (!content.readableEnded && !content.destroyed) content.destroy();
      if (att.status === 'stored') {
        if (sinkError !== null) throw new AttachmentSinkError(att.ordinal, { cause: sinkError });
        message.attachments[i] = { ...att, id: outcome!.id, scan: outcome!.scan };
      } else {
        message.attachments[i] = { ...att, id: outcome?.id ?? null, scan: null };
      }
    }
    return result.kind === 'parsed' ? { kind: 'parsed', message: result.message } : { kind: 'encoded', message: result.message, encoded: result.encoded };
  }

  /** Hands queued small messages to the threads, in batches, while fewer than BATCHES_PER_THREAD per thread are out. */
  #dispatch(): void {
    const pool = this.#get();
    while (this.#queue.length > 0 && this.#batchesInFlight < this.#threads * BATCHES_PER_THREAD) {
      // Every thread busy: wait for a batch's worth (the running batch's return dispatches the rest).
      if (this.#batchesInFlight >= this.#threads && this.#queue.length < MIN_SECOND_BATCH) break;
      const batch: Queued[] = [];
      let bytes = 0;
      while (this.#queue.length > 0 && batch.length < BATCH_MESSAGES && (batch.length === 0 || bytes + this.#queue[0]!.task.raw.byteLength <= BATCH_BYTES)) {
        const q = this.#queue.shift()!;
        bytes += q.task.raw.byteLength;
        batch.push(q);
      }
      this.#batchesInFlight++;
      this.#batches++;
      const task: ParseBatchTask = { batch: batch.map((q) => q.task) };
      pool
        .run(task, { transferList: batch.map((q) => q.task.raw.buffer as ArrayBuffer) })
        .then(
          (results: ParseTaskResult[]) => batch.forEach((q, i) => q.resolve(results[i] ?? { kind: 'failed', error: new Error('parse batch returned no result') })),
          (err: unknown) => batch.forEach((q) => q.reject(err)),
        )
        .finally(() => {
          this.#batchesInFlight--;
          this.#dispatch();
        });
    }
  }

  async #parseStreamed(raw: Readable, options: ParseMimeOptions, prefix: Buffer[], encode: EncodeSpec | undefined): Promise<Parsed> {
    const { port1: port, port2 } = new MessageChannel();
    const post = (m: ToWorker, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);
    // The source may already have failed while its first bytes were read (readPrefix).
    let sourceFailure: unknown = raw.errored ?? null;
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
      const parts: Buffer[] = prefix.splice(0);
      let size = parts.reduce((n, b) => n + b.length, 0);
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
      ...taskOptions(options),
      ...(encode ? { encode } : {}),
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
        return { kind: 'parsed', message: result.message };
      case 'encoded':
        return { kind: 'encoded', message: result.message, encoded: result.encoded };
      case 'source_failed':
        throw new MimeSourceError({ cause: sourceFailure });
      case 'sink_failed':
        throw new AttachmentSinkError(result.ordinal, { cause: sinkFailures.get(result.ordinal) });
      case 'failed':
        throw result.error;
    }
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = null;
    await pool?.destroy();
  }
}

/** A worker's answer, as the pool's callers get it. */
type Parsed = { kind: 'parsed'; message: ParsedMessage } | ({ kind: 'encoded' } & EncodedParse);

/** The limits and clock of a task (both kinds of task carry them). */
function taskOptions(options: ParseMimeOptions): Omit<ParseTask, 'port' | 'raw' | 'encode'> {
  return {
    ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
    ...(options.maxTextChars !== undefined ? { maxTextChars: options.maxTextChars } : {}),
    ...(options.maxHtmlChars !== undefined ? { maxHtmlChars: options.maxHtmlChars } : {}),
    receivedAt: options.receivedAt ?? null,
    nowMs: (options.now ?? (() => new Date()))().getTime(),
  };
}

/** In-process parsing (unit tests and tools that parse one message): parseMime and the same derived content as the worker. */
export const parseInProcess: MimeParseFn = Object.assign(async (raw: Readable, options: ParseMimeOptions) => addDerivedContent(await parseMime(raw, options)), {
  encoded: async (raw: Readable, options: ParseMimeOptions, encode: EncodeSpec) => encodeParsed(addDerivedContent(await parseMime(raw, options)), encode),
});

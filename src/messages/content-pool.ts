import { Piscina } from 'piscina';
import { messageViewJson, type MessageViewTask } from './message-view-json.js';
import { receivedDataJson, type ReceivedDataTask } from './received-data.js';

export interface MessageContentPoolOptions {
  /** Decrypted contents of at least this many bytes go to the worker (smaller: the caller's thread). Default 128 KiB. */
  minBytes?: number;
  /** How long an idle thread lives (ms); the thread starts again with the next large content. */
  idleTimeoutMs?: number;
}

/** Below this a content is cheaper to decode where it is (a worker round trip costs more than the parse). */
export const DEFAULT_WORKER_MIN_BYTES = 128 * 1024;

/**
 * One worker thread that turns LARGE message contents into their `message.received` data JSON
 * (webhooks) and their `GET /v1/messages/:id` JSON (the read API):
 * JSON.parse, the schema check and JSON.stringify of a content with tens of thousands of addresses
 * or megabytes of text take hundreds of milliseconds, which on the event loop would stall HTTP,
 * health checks and every other delivery (docs/benchmarks.md, Latency, fuzz phase). The thread
 * starts with the first large content and stops after a minute idle; ordinary contents never
 * leave the event loop. Only decrypted content crosses (no key).
 */
export class MessageContentPool {
  readonly minBytes: number;
  readonly #idleTimeoutMs: number;
  #pool: Piscina | null = null;
  #tasks = 0;

  constructor(opts: MessageContentPoolOptions = {}) {
    this.minBytes = opts.minBytes ?? DEFAULT_WORKER_MIN_BYTES;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
  }

  /** Contents handled in the worker so far (tests, benches). */
  get tasks(): number {
    return this.#tasks;
  }

  #get(): Piscina {
    if (this.#pool) return this.#pool;
    // As MimeParsePool: in a checkout the worker runs TypeScript through tsx, resolved from here.
    const fromSource = import.meta.url.endsWith('.ts');
    this.#pool = new Piscina({
      filename: new URL(fromSource ? './content-worker.ts' : './content-worker.js', import.meta.url).href,
      execArgv: fromSource ? ['--import', import.meta.resolve('tsx')] : [],
      minThreads: 0,
      maxThreads: 1,
      concurrentTasksPerWorker: 1,
      idleTimeout: this.#idleTimeoutMs,
    });
    return this.#pool;
  }

  /**
   * The data JSON of a `message.received` payload (UTF-8), built in the worker when the content is
   * large, here otherwise. `task.plain` is transferred (unusable afterwards) when it goes to the worker.
   */
  async receivedDataJson(task: ReceivedDataTask): Promise<Uint8Array> {
    if (task.plain.byteLength < this.minBytes) return receivedDataJson(task);
    this.#tasks++;
    const plain = ownBuffer(task.plain);
    return (await this.#get().run({ ...task, plain }, { transferList: [plain.buffer as ArrayBuffer] })) as Uint8Array;
  }

  /**
   * The `GET /v1/messages/:id` JSON of a message (UTF-8), built in the worker when the content is
   * large, here otherwise. `task.plain` is transferred (unusable afterwards) when it goes to the worker.
   */
  async messageViewJson(task: MessageViewTask): Promise<Uint8Array> {
    if (task.plain.byteLength < this.minBytes) return messageViewJson(task);
    this.#tasks++;
    const plain = ownBuffer(task.plain);
    return (await this.#get().run({ ...task, plain }, { name: 'messageView', transferList: [plain.buffer as ArrayBuffer] })) as Uint8Array;
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = null;
    await pool?.destroy();
  }
}

/** `bytes` alone in its ArrayBuffer (a view into a larger or pooled buffer is copied): what can be transferred. */
function ownBuffer(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
}

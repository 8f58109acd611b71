import { ResponseType, type Client } from '@microsoft/microsoft-graph-client';
import { Backoff } from '../../retry/backoff.js';
import { isProviderError, type ProviderError } from '../provider-error.js';
import type { ConcurrencyLimiter } from './concurrency-limiter.js';
import { mapGraphError, type GraphFailure, type GraphOperation } from './graph-error.mapper.js';

export interface GraphCall {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Path under the versioned root, e.g. `/me/messages/{id}` (query string allowed). */
  path: string;
  body?: string | Buffer | Record<string, unknown>;
  contentType?: string;
  headers?: Record<string, string>;
  operation: GraphOperation;
  /** Safe to repeat after a 5xx/network failure (GETs, DELETE, PATCH of the same value). */
  idempotent: boolean;
}

export interface GraphRunnerOptions {
  /** Retries after 429 (honouring Retry-After) and, for idempotent calls, after transient failures. */
  maxRetries?: number;
  /** A Retry-After longer than this is returned to the caller as rate_limited instead of slept through. */
  maxRetryWaitMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** Uniform in [0, 1) for the backoff jitter (tests pin it). */
  random?: () => number;
  /** Refines the final (not retried) error, e.g. a shared mailbox's 403 into a named reason. */
  refineError?: (err: ProviderError) => ProviderError;
}

/** A non-2xx Graph answer, carrying only status, code and Retry-After (never the message text). */
export class GraphResponseError extends Error {
  override readonly name = 'GraphResponseError';
  constructor(readonly graphFailure: GraphFailure) {
    super(`Graph answered ${graphFailure.status}${graphFailure.code ? ` ${graphFailure.code}` : ''}`);
  }
}

const ERROR_BODY_LIMIT = 64 * 1024;

async function failureOf(res: Response): Promise<GraphFailure> {
  let code: string | undefined;
  try {
    const text = (await res.text()).slice(0, ERROR_BODY_LIMIT);
    const parsed = JSON.parse(text) as { error?: { code?: unknown } };
    if (typeof parsed.error?.code === 'string') code = parsed.error.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code, retryAfter: res.headers.get('retry-after') };
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs Graph calls through the real client with the mailbox's concurrency limiter, Retry-After
 * handling (https://learn.microsoft.com/graph/throttling#best-practices-to-handle-throttling) and
 * error mapping to ProviderError.
 */
export class GraphRequestRunner {
  private readonly maxRetries: number;
  private readonly maxRetryWaitMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly throttleBackoff: Backoff;
  private readonly transientBackoff: Backoff;
  private readonly refineError: (err: ProviderError) => ProviderError;

  constructor(
    private readonly client: Client,
    readonly limiter: ConcurrencyLimiter,
    options: GraphRunnerOptions = {},
  ) {
    this.maxRetries = options.maxRetries ?? 3;
    this.maxRetryWaitMs = options.maxRetryWaitMs ?? 30_000;
    this.sleep = options.sleep ?? realSleep;
    this.now = options.now ?? Date.now;
    this.refineError = options.refineError ?? ((err) => err);
    // A 429 without Retry-After (Graph normally sends one): 1 s, 2 s, 4 s … with full jitter.
    this.throttleBackoff = new Backoff({ baseMs: 1000, capMs: Math.max(1000, this.maxRetryWaitMs), floorMs: 1000 }, { random: options.random, now: this.now });
    this.transientBackoff = new Backoff({ baseMs: 250, capMs: 5000 }, { random: options.random, now: this.now });
  }

  /** Any function that performs one HTTP exchange, retried and mapped the same way as Graph calls. */
  async withRetries<T>(operation: GraphOperation, idempotent: boolean, attemptFn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.limiter.run(attemptFn);
      } catch (err) {
        const pe = isProviderError(err) ? err : mapGraphError(err, operation, this.now());
        const canRetry = attempt < this.maxRetries;
        if (pe.kind === 'rate_limited' && canRetry) {
          const wait = pe.retryAfterMs ?? this.throttleBackoff.delayMs(attempt + 1);
          if (wait <= this.maxRetryWaitMs) {
            this.limiter.pauseFor(wait);
            continue;
          }
        }
        if (pe.kind === 'transient' && idempotent && canRetry) {
          await this.sleep(this.transientBackoff.delayMs(attempt + 1));
          continue;
        }
        throw this.refineError(pe);
      }
    }
  }

  /** Performs the call and returns the 2xx Response unread (the caller streams or parses it). */
  raw(call: GraphCall): Promise<Response> {
    return this.withRetries(call.operation, call.idempotent, async () => {
      let req = this.client.api(call.path).responseType(ResponseType.RAW);
      if (call.contentType) req = req.header('Content-Type', call.contentType);
      for (const [k, v] of Object.entries(call.headers ?? {})) req = req.header(k, v);
      let res: Response;
      switch (call.method) {
        case 'GET':
          res = (await req.get()) as Response;
          break;
        case 'POST':
          res = (await req.post(call.body ?? '')) as Response;
          break;
        case 'PATCH':
          res = (await req.patch(call.body ?? {})) as Response;
          break;
        case 'DELETE':
          res = (await req.delete()) as Response;
          break;
      }
      if (!res.ok) throw new GraphResponseError(await failureOf(res));
      return res;
    });
  }

  async json<T>(call: GraphCall): Promise<T> {
    const res = await this.raw(call);
    const text = await res.text();
    if (!text) return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw mapGraphError(new GraphResponseError({ status: 502, code: 'InvalidJson', retryAfter: null }), call.operation, this.now());
    }
  }

  async noContent(call: GraphCall): Promise<void> {
    const res = await this.raw(call);
    await res.arrayBuffer().catch(() => undefined);
  }
}


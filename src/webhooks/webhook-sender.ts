import { isIP, type LookupFunction } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { performance } from 'node:perf_hooks';
import type { IncomingHttpHeaders } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import { parseRetryAfter } from '../retry/retry-after.js';
import type { PinnedTarget } from './egress-guard.js';

/**
 * One HTTP POST of a signed webhook to a target the egress guard has already resolved and
 * checked. Sender rules from the Standard Webhooks spec and Svix (provider-facts §6.1, §6.2):
 * - 2xx is success; a 3xx is a FAILURE and is never followed (a redirect to an internal
 *   address would bypass the egress guard);
 * - 15 s budget ("15s with Svix"), enforced over the whole exchange;
 * - `Retry-After` is reported so the schedule can honour throttling (429/502/503/504);
 * - a `webhook-delivery: abort-message` response header tells us to stop retrying (Svix).
 *
 * The connection may only go to `target.addresses`: the custom `lookup` answers from that list
 * and never consults DNS, so a rebinding resolver that answers differently the second time has
 * no say. TLS still validates the certificate against the host name (SNI = `target.host`).
 *
 * HTTP client: undici (a `Pool` of keep-alive connections per pinned target, no pipelining),
 * dispatched with a handler rather than through node:http's request/response streams — the HTTP
 * client was the largest part of a delivery's CPU with node:http. A pool is reused only by
 * attempts whose own egress check pinned the same address list (see PoolSet).
 */

export type WebhookSendError =
  | 'timeout' // no complete answer within timeoutMs
  | 'connect' // could not open a TCP connection (refused, unreachable)
  | 'tls' // handshake or certificate verification failed
  | 'redirect' // 3xx answer: counted as failure, not followed
  | 'http_status' // any other non-2xx answer
  | 'network'; // connection reset / protocol error before an answer

export interface WebhookSendRequest {
  target: PinnedTarget;
  /** The `webhook-*` signature headers (and any other safe extra headers). */
  headers: Readonly<Record<string, string>>;
  /** Exact bytes that were signed. */
  body: string | Buffer;
  /** Overall budget for connect + request + response headers + snippet. Default 15 000. */
  timeoutMs?: number;
}

export interface WebhookSendResult {
  ok: boolean;
  status?: number;
  latencyMs: number;
  /** First bytes of the receiver's response body as text (≤ snippet cap), for the delivery log. */
  responseSnippet: string;
  /** From a `Retry-After` header (delta-seconds or HTTP-date), in ms from now. */
  retryAfterMs?: number;
  /** The receiver answered `webhook-delivery: abort-message`: do not retry this message. */
  abortMessage: boolean;
  error?: WebhookSendError;
  /** Node/OpenSSL/undici error code for failures without an answer (e.g. ECONNREFUSED, CERT_HAS_EXPIRED). */
  errorCode?: string;
}

export interface WebhookSenderDeps {
  /** Product version for `User-Agent: mailbox-connector-webhooks/<version>`. */
  version: string;
  /** Wall clock, for HTTP-date `Retry-After`. */
  now?: () => Date;
  /** Monotonic milliseconds, for latency. */
  monotonicMs?: () => number;
  /** Extra trust anchors (dev/test receivers with their own CA). Public CAs stay trusted only when unset. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Snippet cap in bytes. Default 1024. */
  snippetBytes?: number;
  defaultTimeoutMs?: number;
}

export type WebhookSender = ((request: WebhookSendRequest) => Promise<WebhookSendResult>) & {
  /** Closes pooled keep-alive connections (on shutdown). */
  close?: () => void;
};

/** Headers the caller must not set: they are the transport's, and smuggling them breaks framing. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'content-type', 'user-agent', 'expect', 'upgrade', 'keep-alive', 'te', 'trailer', 'proxy-connection']);

function classifyError(err: NodeJS.ErrnoException): WebhookSendError {
  const code = err.code ?? '';
  if (/CERT|SSL|TLS|EPROTO|ALTNAME|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)) return 'tls';
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT'].includes(code)) {
    return 'connect';
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  return 'network';
}

/** The error code worth reporting: undici wraps some socket errors (Happy Eyeballs: an AggregateError). */
function errorCodeOf(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException & { errors?: unknown[]; cause?: unknown };
  if (typeof e?.code === 'string') return e.code;
  if (Array.isArray(e?.errors) && e.errors.length > 0) return errorCodeOf(e.errors[e.errors.length - 1]);
  if (e?.cause) return errorCodeOf(e.cause);
  return undefined;
}

function toText(bytes: Buffer): string {
  // The snippet is shown in the delivery log UI: keep it text, drop control characters and a
  // multi-byte character cut in half by the cap.
  return bytes
    .toString('utf8')
    .replace(/\uFFFD+$/, '')
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, '');
}

function pinnedLookup(target: PinnedTarget): LookupFunction {
  return (_hostname, options, callback) => {
    const wanted = options.family === 4 || options.family === 6 ? options.family : undefined;
    const candidates = target.addresses.filter((a) => wanted === undefined || a.family === wanted);
    if (candidates.length === 0) {
      const err: NodeJS.ErrnoException = Object.assign(new Error('no pinned address for the requested family'), {
        code: 'ENOTFOUND',
      });
      callback(err, '', 0);
      return;
    }
    if (options.all) {
      const all: LookupAddress[] = candidates.map((a) => ({ address: a.address, family: a.family }));
      callback(null, all);
    } else {
      callback(null, candidates[0]!.address, candidates[0]!.family);
    }
  };
}

/** Idle keep-alive connections are closed before typical receivers (Node: 5 s) close them first. */
const IDLE_SOCKET_MS = 4_000;
/** Pinned pools kept; the least recently used beyond this are closed. */
const MAX_POOLS = 1_000;
/** Errors of a reused keep-alive connection that the receiver closed while it sat idle. */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/**
 * Keep-alive connections, one undici Pool per pinned target: the pool's key holds the exact
 * address list the egress guard approved, and its connector's `lookup` answers only from that
 * list, so a pooled connection is only ever reused for an attempt whose own check pinned the same
 * addresses (a connection is never "older" than the check that allows it). When a host starts
 * resolving elsewhere, its previous pool gets no new requests and is closed (requests in flight
 * finish, idle connections close).
 */
class PoolSet {
  private readonly pools = new Map<string, Pool>();
  private readonly current = new Map<string, string>();

  constructor(private readonly ca: WebhookSenderDeps['ca']) {}

  poolFor(target: PinnedTarget): Pool {
    const hostPart = isIP(target.host) === 6 ? `[${target.host}]` : target.host;
    const origin = `${target.protocol}//${hostPart}:${target.port}`;
    const key = `${origin}|${target.addresses.map((a) => `${a.family}/${a.address}`).join(',')}`;
    let pool = this.pools.get(key);
    if (pool) {
      // LRU order: most recently used last.
      this.pools.delete(key);
      this.pools.set(key, pool);
    } else {
      const connect: Record<string, unknown> = { lookup: pinnedLookup(target) };
      if (target.protocol === 'https:') {
        // SNI must carry the host name (RFC 6066 forbids IP literals there).
        if (isIP(target.host) === 0) connect.servername = target.host;
        if (this.ca !== undefined) connect.ca = this.ca;
      }
      pool = new Pool(origin, {
        connect,
        pipelining: 1,
        keepAliveTimeout: IDLE_SOCKET_MS,
        keepAliveMaxTimeout: IDLE_SOCKET_MS,
      });
      this.pools.set(key, pool);
      while (this.pools.size > MAX_POOLS) {
        const [oldest] = this.pools.keys();
        this.retire(oldest!);
      }
    }
    const previous = this.current.get(origin);
    if (previous !== key) {
      this.current.set(origin, key);
      // The host now resolves elsewhere: the old pool's idle connections must not be reused.
      if (previous !== undefined) this.retire(previous);
    }
    return pool;
  }

  private retire(key: string): void {
    const pool = this.pools.get(key);
    this.pools.delete(key);
    // Requests in flight finish on their connections; idle ones close now.
    pool?.close().catch(() => undefined);
  }

  close(): void {
    for (const pool of this.pools.values()) pool.destroy().catch(() => undefined);
    this.pools.clear();
    this.current.clear();
  }
}

type AttemptResult = WebhookSendResult & { staleSocket?: boolean };

export function createWebhookSender(deps: WebhookSenderDeps): WebhookSender {
  const now = deps.now ?? (() => new Date());
  const monotonicMs = deps.monotonicMs ?? (() => performance.now());
  const snippetCap = deps.snippetBytes ?? 1024;
  const userAgent = `mailbox-connector-webhooks/${deps.version}`;
  const pools = new PoolSet(deps.ca);

  const attempt = (request: WebhookSendRequest, retried: boolean): Promise<AttemptResult> =>
    new Promise((resolve) => {
      const { target } = request;
      const timeoutMs = request.timeoutMs ?? deps.defaultTimeoutMs ?? 15_000;
      const body = typeof request.body === 'string' ? Buffer.from(request.body, 'utf8') : request.body;
      const started = monotonicMs();
      const latency = () => Math.max(0, Math.round(monotonicMs() - started));

      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) {
        const lower = name.toLowerCase();
        if (!RESERVED_HEADERS.has(lower)) headers[lower] = value;
      }
      headers['content-type'] = 'application/json';
      headers['user-agent'] = userAgent;

      let settled = false;
      let timedOut = false;
      let status: number | undefined;
      let responseHeaders: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      let received = 0;
      let controller: Dispatcher.DispatchController | undefined;

      const finish = (result: Omit<AttemptResult, 'latencyMs'>, complete = false) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const done = { ...result, latencyMs: latency() };
        if (complete) {
          // undici marks the connection free again in a setImmediate it schedules right after
          // this callback (pipelining 1): answering in the turn after that lets the caller's next
          // attempt reuse it instead of opening another one.
          setImmediate(() => setImmediate(() => resolve(done)));
          return;
        }
        resolve(done);
        // Anything unread (a huge answer, a timeout) would poison the connection: close it.
        controller?.abort(new Error('webhook attempt finished'));
      };

      const finishWithAnswer = (complete = false) => {
        const code = status ?? 0;
        const retryAfter = responseHeaders['retry-after'];
        const retryAfterMs = parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, now().getTime());
        const delivery = responseHeaders['webhook-delivery'];
        const ok = code >= 200 && code < 300;
        finish(
          {
            ok,
            status: code,
            responseSnippet: toText(Buffer.concat(chunks).subarray(0, snippetCap)),
            abortMessage: typeof delivery === 'string' && delivery.trim().toLowerCase() === 'abort-message',
            ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
            ...(ok ? {} : { error: code >= 300 && code < 400 ? ('redirect' as const) : ('http_status' as const) }),
          },
          complete,
        );
      };

      const timer = setTimeout(() => {
        timedOut = true;
        // An answer whose status line arrived in time but whose body dribbles counts as answered.
        if (status !== undefined) finishWithAnswer();
        else finish({ ok: false, responseSnippet: '', abortMessage: false, error: 'timeout' });
      }, timeoutMs);

      let pool: Pool;
      try {
        pool = pools.poolFor(target);
      } catch (err) {
        clearTimeout(timer);
        settled = true;
        resolve({ ok: false, latencyMs: latency(), responseSnippet: '', abortMessage: false, error: 'network', ...(errorCodeOf(err) ? { errorCode: errorCodeOf(err)! } : {}) });
        return;
      }
      // An idle connection is there: this attempt most likely goes out on a reused one.
      const mayReuse = !retried && pool.stats.free > 0;

      const handler: Dispatcher.DispatchHandler = {
        onRequestStart(c) {
          controller = c;
          // The budget ran out while the request waited for a connection.
          if (settled) c.abort(new Error('webhook attempt finished'));
        },
        onResponseStart(_c, statusCode, resHeaders) {
          status = statusCode;
          responseHeaders = resHeaders;
        },
        onResponseData(_c, chunk) {
          if (received < snippetCap) chunks.push(chunk);
          received += chunk.length;
          // Read up to the cap, then stop: the rest is discarded with the connection.
          if (received >= snippetCap) finishWithAnswer();
        },
        onResponseEnd() {
          finishWithAnswer(true);
        },
        onResponseError(_c, err) {
          if (settled) return;
          if (status !== undefined) {
            finishWithAnswer();
            return;
          }
          const errorCode = errorCodeOf(err);
          finish({
            ok: false,
            responseSnippet: '',
            abortMessage: false,
            error: timedOut ? 'timeout' : classifyError({ ...(err as NodeJS.ErrnoException), code: errorCode ?? '' } as NodeJS.ErrnoException),
            ...(errorCode ? { errorCode } : {}),
            // The receiver closed an idle pooled connection just as we reused it: nothing was answered.
            ...(mayReuse && !timedOut && STALE_SOCKET_CODES.has(errorCode ?? '') ? { staleSocket: true } : {}),
          });
        },
      };

      try {
        pool.dispatch(
          {
            method: 'POST',
            path: target.path,
            headers,
            body,
            // Svix/Standard Webhooks: redirects are failures; dispatch never follows them.
            headersTimeout: timeoutMs,
            bodyTimeout: timeoutMs,
          },
          handler,
        );
      } catch (err) {
        const errorCode = errorCodeOf(err);
        finish({ ok: false, responseSnippet: '', abortMessage: false, error: 'network', ...(errorCode ? { errorCode } : {}) });
      }
    });

  const send = async (request: WebhookSendRequest): Promise<WebhookSendResult> => {
    const first = await attempt(request, false);
    if (!first.staleSocket) return first;
    // Standard keep-alive race, not a receiver failure: once more (the broken connection is gone
    // from the pool; receivers deduplicate by webhook-id, so the rare double delivery this may
    // cause is harmless).
    const { staleSocket: _stale, ...second } = await attempt(request, true);
    return second;
  };
  return Object.assign(send, { close: () => pools.close() });
}

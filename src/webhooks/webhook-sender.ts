import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { performance } from 'node:perf_hooks';
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
 * Connections are kept alive per pinned target (AgentPool): reused only by attempts whose own
 * egress check pinned the same address list.
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
  /** Node/OpenSSL error code for failures without an answer (e.g. ECONNREFUSED, CERT_HAS_EXPIRED). */
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
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'content-type', 'user-agent', 'expect', 'upgrade']);

function classifyError(err: NodeJS.ErrnoException): WebhookSendError {
  const code = err.code ?? '';
  if (/CERT|SSL|TLS|EPROTO|ALTNAME|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)) return 'tls';
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT'].includes(code)) {
    return 'connect';
  }
  return 'network';
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

/** Idle keep-alive sockets are closed before typical receivers (Node: 5 s) close them first. */
const IDLE_SOCKET_MS = 4_000;
/** Pinned agents kept; the least recently used beyond this are closed. */
const MAX_AGENTS = 1_000;
/** Errors of a reused keep-alive socket that the receiver closed while it sat idle. */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

type PooledAgent = http.Agent | https.Agent;

/**
 * Keep-alive connections, one agent per pinned target: the agent's key holds the exact address
 * list the egress guard approved, so a pooled socket is only ever reused for an attempt whose own
 * check pinned the same addresses (a socket is never "older" than the check that allows it). When
 * a host starts resolving elsewhere, its previous agent gets no new requests and its idle sockets
 * are closed.
 */
class AgentPool {
  private readonly agents = new Map<string, PooledAgent>();
  private readonly current = new Map<string, string>();

  agentFor(target: PinnedTarget): PooledAgent {
    const origin = `${target.protocol}//${target.host}:${target.port}`;
    const key = `${origin}|${target.addresses.map((a) => `${a.family}/${a.address}`).join(',')}`;
    let agent = this.agents.get(key);
    if (agent) {
      // LRU order: most recently used last.
      this.agents.delete(key);
      this.agents.set(key, agent);
    } else {
      const options: http.AgentOptions = { keepAlive: true, timeout: IDLE_SOCKET_MS, maxFreeSockets: 256, scheduling: 'lifo' };
      agent = target.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
      this.agents.set(key, agent);
      while (this.agents.size > MAX_AGENTS) {
        const [oldest] = this.agents.keys();
        this.retire(oldest!);
      }
    }
    const previous = this.current.get(origin);
    if (previous !== key) {
      this.current.set(origin, key);
      // The host now resolves elsewhere: the old agent's idle sockets must not be reused.
      if (previous !== undefined) this.retire(previous);
    }
    return agent;
  }

  private retire(key: string): void {
    const agent = this.agents.get(key);
    this.agents.delete(key);
    if (!agent) return;
    // Requests in flight finish on their sockets; idle ones close now.
    // (It is unreachable now, so the sockets it still frees later just idle out.)
    for (const sockets of Object.values(agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
    this.current.clear();
  }
}

export function createWebhookSender(deps: WebhookSenderDeps): WebhookSender {
  const now = deps.now ?? (() => new Date());
  const monotonicMs = deps.monotonicMs ?? (() => performance.now());
  const snippetCap = deps.snippetBytes ?? 1024;
  const userAgent = `mailbox-connector-webhooks/${deps.version}`;
  const pool = new AgentPool();

  const attempt = (request: WebhookSendRequest, fresh: boolean): Promise<WebhookSendResult & { staleSocket?: boolean }> =>
    new Promise((resolve, reject) => {
      const { target } = request;
      const timeoutMs = request.timeoutMs ?? deps.defaultTimeoutMs ?? 15_000;
      const body = typeof request.body === 'string' ? Buffer.from(request.body, 'utf8') : request.body;
      const started = monotonicMs();
      const latency = () => Math.max(0, Math.round(monotonicMs() - started));

      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) {
        if (!RESERVED_HEADERS.has(name.toLowerCase())) headers[name.toLowerCase()] = value;
      }
      headers['content-type'] = 'application/json';
      headers['user-agent'] = userAgent;
      headers['content-length'] = String(body.length);

      let settled = false;
      let timedOut = false;
      let status: number | undefined;
      let responseHeaders: http.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      let received = 0;

      /** `complete`: the whole answer was read, so the socket can go back to the pool. */
      const finish = (result: Omit<WebhookSendResult, 'latencyMs'> & { staleSocket?: boolean }, complete = false) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ...result, latencyMs: latency() });
        // Anything unread (a huge answer, a timeout) would poison the connection: close it.
        if (!complete) req.destroy();
      };

      const finishWithAnswer = (complete = false) => {
        const code = status ?? 0;
        const retryAfterMs = parseRetryAfter(responseHeaders['retry-after'], now().getTime());
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

      const options: https.RequestOptions = {
        method: 'POST',
        host: target.host,
        port: target.port,
        path: target.path,
        headers,
        lookup: pinnedLookup(target),
        // Keep-alive per pinned target (see AgentPool); a retry after a stale socket uses a new one.
        agent: fresh ? false : pool.agentFor(target),
        // Svix/Standard Webhooks: redirects are failures; node:http never follows them anyway.
      };
      if (target.protocol === 'https:') {
        // SNI must carry the host name (RFC 6066 forbids IP literals there).
        if (isIP(target.host) === 0) options.servername = target.host;
        if (deps.ca !== undefined) options.ca = deps.ca;
      }

      let req: http.ClientRequest;
      try {
        req = (target.protocol === 'https:' ? https : http).request(options);
      } catch (err) {
        reject(err);
        return;
      }

      const timer = setTimeout(() => {
        timedOut = true;
        // An answer whose status line arrived in time but whose body dribbles counts as answered.
        if (status !== undefined) finishWithAnswer();
        else {
          finish({ ok: false, responseSnippet: '', abortMessage: false, error: 'timeout' });
        }
      }, timeoutMs);

      req.on('response', (res) => {
        status = res.statusCode;
        responseHeaders = res.headers;
        res.on('data', (chunk: Buffer) => {
          if (received < snippetCap) chunks.push(chunk);
          received += chunk.length;
          // Read up to the cap, then stop: the rest is discarded with the socket.
          if (received >= snippetCap) finishWithAnswer();
        });
        res.on('end', () => finishWithAnswer(true));
        res.on('error', () => finishWithAnswer());
        res.on('close', () => finishWithAnswer());
      });

      req.on('error', (err: NodeJS.ErrnoException) => {
        if (settled) return;
        if (status !== undefined) {
          finishWithAnswer();
          return;
        }
        const error = timedOut ? 'timeout' : classifyError(err);
        finish({
          ok: false,
          responseSnippet: '',
          abortMessage: false,
          error,
          ...(err.code ? { errorCode: err.code } : {}),
          // The receiver closed an idle pooled connection just as we reused it: nothing was answered.
          ...(req.reusedSocket && !timedOut && STALE_SOCKET_CODES.has(err.code ?? '') ? { staleSocket: true } : {}),
        });
      });

      req.end(body);
    });

  const send = async (request: WebhookSendRequest): Promise<WebhookSendResult> => {
    const first = await attempt(request, false);
    if (!first.staleSocket) return first;
    // Standard keep-alive race, not a receiver failure: once more on a fresh connection (receivers
    // deduplicate by webhook-id, so the rare double delivery this may cause is harmless).
    const { staleSocket: _stale, ...second } = await attempt(request, true);
    return second;
  };
  return Object.assign(send, { close: () => pool.close() });
}

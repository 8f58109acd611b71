import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { performance } from 'node:perf_hooks';
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

export type WebhookSender = (request: WebhookSendRequest) => Promise<WebhookSendResult>;

/** Headers the caller must not set: they are the transport's, and smuggling them breaks framing. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'content-type', 'user-agent', 'expect', 'upgrade']);

/**
 * Parses `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date. Returns milliseconds
 * from `now` (0 for a date in the past), or undefined when absent or malformed.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: Date): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
  }
  // HTTP-date always names a weekday and GMT; Date.parse alone would accept "5" or "tomorrow"-ish junk.
  if (!/^[A-Za-z]{3},? .*GMT$|^[A-Za-z]+, \d{2}-[A-Za-z]{3}-\d{2}|^[A-Za-z]{3} [A-Za-z]{3} /.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now.getTime());
}

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

export function createWebhookSender(deps: WebhookSenderDeps): WebhookSender {
  const now = deps.now ?? (() => new Date());
  const monotonicMs = deps.monotonicMs ?? (() => performance.now());
  const snippetCap = deps.snippetBytes ?? 1024;
  const userAgent = `mailbox-connector-webhooks/${deps.version}`;

  return (request) =>
    new Promise<WebhookSendResult>((resolve, reject) => {
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

      const finish = (result: Omit<WebhookSendResult, 'latencyMs'>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ...result, latencyMs: latency() });
        // Nothing more is read: free the socket (agent:false, so it is ours alone).
        req.destroy();
      };

      const finishWithAnswer = () => {
        const code = status ?? 0;
        const retryAfterMs = parseRetryAfter(responseHeaders['retry-after'], now());
        const delivery = responseHeaders['webhook-delivery'];
        const ok = code >= 200 && code < 300;
        finish({
          ok,
          status: code,
          responseSnippet: toText(Buffer.concat(chunks).subarray(0, snippetCap)),
          abortMessage: typeof delivery === 'string' && delivery.trim().toLowerCase() === 'abort-message',
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
          ...(ok ? {} : { error: code >= 300 && code < 400 ? ('redirect' as const) : ('http_status' as const) }),
        });
      };

      const options: https.RequestOptions = {
        method: 'POST',
        host: target.host,
        port: target.port,
        path: target.path,
        headers,
        lookup: pinnedLookup(target),
        // A fresh connection per attempt: a pooled socket could outlive the check that pinned it.
        agent: false,
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
        res.on('end', finishWithAnswer);
        res.on('error', finishWithAnswer);
        res.on('close', finishWithAnswer);
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
        });
      });

      req.end(body);
    });
}

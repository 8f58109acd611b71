import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Keys whose values are censored wherever they appear in a log object (any depth, any case).
 * Mail content, tokens and secrets must never reach a log line (ARCHITECTURE invariant); code
 * should not log them in the first place, and this list is the net under that rule. Errors do not
 * rely on it: any Error (and any `err`/`error` value) is replaced by the allow-list
 * {@link serializeError} output, so `err.code: "ECONNREFUSED"` survives while a top-level OAuth
 * `code` does not.
 */
export const REDACTED_KEYS: ReadonlySet<string> = new Set(
  [
    'authorization',
    'cookie',
    'set-cookie',
    'x-api-key',
    'token',
    'accessToken',
    'access_token',
    'refreshToken',
    'refresh_token',
    'idToken',
    'id_token',
    'code',
    'codeVerifier',
    'code_verifier',
    'state',
    'secret',
    'clientSecret',
    'client_secret',
    'password',
    'apiKey',
    'adminToken',
    'clientState',
    'subject',
    'text',
    'html',
    'body',
    'raw',
    'content',
    'from',
    'to',
    'cc',
    'bcc',
    'replyTo',
    'address',
    'emailAddress',
    'email',
    'filename',
  ].map((k) => k.toLowerCase()),
);

/** Keys whose value goes through {@link serializeError} even when it is not an Error instance. */
const ERROR_KEYS = new Set(['err', 'error']);
const CENSOR = '[redacted]';
const WALK_DEPTH = 6;
const ARRAY_LIMIT = 50;

const MESSAGE_LIMIT = 300;
const STACK_FRAMES = 12;
const CAUSE_DEPTH = 3;
const AGGREGATE_LIMIT = 5;

/**
 * Error-message policy. A message is the most useful part of an error, so it is kept, but a
 * library's message can echo what it was given (Google's API errors quote request fields, MSAL
 * quotes the token endpoint's error_description, a URL may carry `?code=`). So every message is
 * scrubbed of credential-shaped text (Authorization schemes, JWTs, Google `ya29.`/`1//` tokens,
 * `secret=value` pairs, long opaque strings) and of e-mail addresses, and cut to 300 characters.
 * Free text a provider echoes (a subject, say) cannot be recognised; the length bound limits it.
 * Everything else an error carries (gaxios `config`/`response`, Graph `body`/`headers`, pg
 * `detail`, MSAL `correlationId`…) is dropped unless named in the allow-list.
 */
const SCRUBBERS: Array<[RegExp, string]> = [
  [/\b(Bearer|Basic|Negotiate|Token)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]'],
  [/\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*)?/g, '[redacted-jwt]'],
  [/\bya29\.[A-Za-z0-9._-]+/g, '[redacted-token]'],
  [/\b1\/\/[A-Za-z0-9._-]+/g, '[redacted-token]'],
  [
    /\b(access_token|refresh_token|id_token|client_secret|client_assertion|assertion|code|code_verifier|token|password|secret|sig|signature|key|api_key|apikey)(["']?\s*[=:]\s*["']?)[^\s&"',;}]+/gi,
    '$1$2[redacted]',
  ],
  [/[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g, '[email]'],
  // Opaque strings of 32+ token characters containing both letters and digits (refresh tokens,
  // API keys, signed blobs); ordinary words and hex-free identifiers are shorter or lack digits.
  [/[A-Za-z0-9_+/=-]{32,}/g, '\u0000'],
];

export function scrubText(text: string): string {
  let out = text;
  for (const [rx, replacement] of SCRUBBERS) {
    out =
      replacement === '\u0000'
        ? out.replace(rx, (m) => (/[0-9]/.test(m) && /[A-Za-z]/.test(m) ? '[redacted]' : m))
        : out.replace(rx, replacement);
  }
  return out.length > MESSAGE_LIMIT ? `${out.slice(0, MESSAGE_LIMIT)}…` : out;
}

function record(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
}

/** A machine code: short, no spaces — never free text that could carry data. */
function codeLike(v: unknown): string | number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(v)) return v;
  return undefined;
}

function statusOf(e: Record<string, unknown>): number | undefined {
  for (const v of [e.status, e.statusCode, record(e.response)?.status]) {
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    if (typeof v === 'string' && /^\d{3}$/.test(v)) return Number(v);
  }
  return undefined;
}

/** Provider's machine reason: ours (ProviderError), Google's `errors[0].reason` / OAuth `error`, MSAL's `subError`. */
function reasonOf(e: Record<string, unknown>): string | undefined {
  const data = record(record(e.response)?.data);
  const apiError = data?.error;
  const first = record(Array.isArray(record(apiError)?.errors) ? (record(apiError)!.errors as unknown[])[0] : undefined);
  for (const v of [e.reason, first?.reason, typeof apiError === 'string' ? apiError : undefined, e.subError]) {
    const c = codeLike(v);
    if (typeof c === 'string' && c.length > 0) return c;
  }
  return undefined;
}

function stackFrames(stack: unknown): string[] | undefined {
  if (typeof stack !== 'string') return undefined;
  // Only the "at …" lines: the header repeats the (unscrubbed) message.
  const frames = stack
    .split('\n')
    .filter((l) => /^\s+at /.test(l))
    .slice(0, STACK_FRAMES)
    .map((l) => scrubText(l.trim()));
  return frames.length ? frames : undefined;
}

export interface SerializedError {
  type: string;
  message: string;
  code?: string | number;
  status?: number;
  reason?: string;
  kind?: string;
  provider?: string;
  syscall?: string;
  retryAfterMs?: number;
  stack?: string[];
  cause?: SerializedError;
  errors?: SerializedError[];
}

/**
 * Allow-list error serializer: type, message (scrubbed), code, status, provider reason/kind, stack
 * frames, and a bounded cause chain. Nothing else an error object carries is logged.
 */
export function serializeError(err: unknown, depth = 0): SerializedError {
  if (typeof err === 'string') return { type: 'string', message: scrubText(err) };
  const e = record(err);
  if (!e) return { type: typeof err, message: scrubText(String(err)) };
  const ctor = (e.constructor as { name?: unknown } | undefined)?.name;
  const name = typeof e.name === 'string' ? e.name : undefined;
  const type = codeLike(name && name !== 'Error' ? name : ctor) ?? name ?? 'Error';
  const out: SerializedError = { type: String(type), message: scrubText(typeof e.message === 'string' ? e.message : '') };
  // MSAL puts its code in `errorCode` (and `code` is absent); gaxios's `code` is a network code or the status.
  const code = codeLike(e.code) ?? codeLike(e.errorCode);
  if (code !== undefined) out.code = code;
  const status = statusOf(e);
  if (status !== undefined) out.status = status;
  const reason = reasonOf(e);
  if (reason !== undefined) out.reason = reason;
  for (const k of ['kind', 'provider', 'syscall'] as const) {
    const v = codeLike(e[k]);
    if (typeof v === 'string') out[k] = v;
  }
  if (typeof e.retryAfterMs === 'number') out.retryAfterMs = e.retryAfterMs;
  const stack = stackFrames(e.stack);
  if (stack) out.stack = stack;
  if (depth < CAUSE_DEPTH) {
    if (e.cause !== undefined && e.cause !== null) out.cause = serializeError(e.cause, depth + 1);
    if (Array.isArray(e.errors)) out.errors = e.errors.slice(0, AGGREGATE_LIMIT).map((x: unknown) => serializeError(x, depth + 1));
  }
  return out;
}

/**
 * Returns a copy of a log object with censored keys replaced, errors serialized by the allow-list
 * and binary values summarised. Bounded in depth and array length; cycles become "[circular]".
 */
export function sanitizeLogObject(obj: Record<string, unknown>): Record<string, unknown> {
  const seen = new WeakSet<object>();
  const walk = (value: unknown, depth: number): unknown => {
    if (value === null || typeof value !== 'object') return value;
    if (value instanceof Error) return serializeError(value);
    if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[binary ${(value as ArrayBufferView).byteLength} bytes]`;
    if (value instanceof Date) return value;
    if (seen.has(value)) return '[circular]';
    if (depth >= WALK_DEPTH) return '[too deep]';
    seen.add(value);
    if (Array.isArray(value)) return value.slice(0, ARRAY_LIMIT).map((v) => walk(v, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (REDACTED_KEYS.has(k.toLowerCase())) out[k] = CENSOR;
      else if (depth === 0 && ERROR_KEYS.has(k) && v !== undefined && v !== null) out[k] = serializeError(v);
      else out[k] = walk(v, depth + 1);
    }
    return out;
  };
  return walk(obj, 0) as Record<string, unknown>;
}

export function createLogger(opts: { level: string; destination?: DestinationStream; name?: string }): Logger {
  return pino(
    {
      name: opts.name ?? 'mailbox-connector',
      level: opts.level,
      formatters: { log: sanitizeLogObject },
      // pino's default `err` serializer would rebuild an error from every enumerable property;
      // sanitizeLogObject already produced the allow-listed form.
      serializers: { err: (v: unknown) => (v instanceof Error ? serializeError(v) : v) },
      hooks: {
        // `logger.error(err)` with no message makes pino use err.message as `msg`: scrub it first.
        logMethod(args, method) {
          const [first, second] = args as unknown[];
          if (first instanceof Error && typeof second !== 'string') {
            return method.apply(this, [{ err: first }, serializeError(first).message] as never);
          }
          const err = record(first)?.err;
          if (err !== undefined && err !== null && typeof second !== 'string') {
            return method.apply(this, [first, serializeError(err).message] as never);
          }
          return method.apply(this, args);
        },
      },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}

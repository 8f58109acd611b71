import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { isCryptoError } from '../crypto/crypto-error.js';
import { parseKeyring } from '../crypto/keyring.js';
import { loadMicrosoftAppCertificate } from '../providers/microsoft/microsoft-app-certificate.js';
import { MicrosoftCloudError, microsoftEndpoints } from '../providers/microsoft/microsoft-endpoints.js';

/**
 * The one configuration object, read once at start from the environment. An invalid or missing
 * variable stops the start with one line naming it (ConfigError), never with a stack of zod text.
 */

/** One limit: at most `limit` counted requests per client in `windowMs`. */
export interface LimitSetting {
  limit: number;
  windowMs: number;
}

export interface AbuseLimitSettings {
  /** Abuse limits (src/http/abuse-limits.ts). Failed authentications (401) per client IP and per API-key prefix. */
  authFailures: LimitSetting;
  /** Connect sessions created (POST /v1/connect-sessions, /v1/mailboxes/:id/reconnect) per IP and per API-key prefix. */
  connectSessions: LimitSetting;
  /** OAuth callbacks (/oauth/:provider/callback) per client IP. */
  oauthCallbacks: LimitSetting;
  /** Provider pushes (/push/*, /risc/google) per client IP. */
  push: LimitSetting;
}

/** Generous: a real integration never meets them; a script trying keys or forging callbacks does. */
export const DEFAULT_ABUSE_LIMITS: AbuseLimitSettings = {
  authFailures: { limit: 100, windowMs: 15 * 60_000 },
  connectSessions: { limit: 300, windowMs: 15 * 60_000 },
  oauthCallbacks: { limit: 300, windowMs: 15 * 60_000 },
  push: { limit: 6000, windowMs: 60_000 },
};

/**
 * `<count>/<window>` (`100/15m`, `6000/1m`, `50/30s`, `1000/1h`) — the form of the RATE_LIMIT_*
 * variables. Returns undefined when malformed.
 */
export function parseLimitSetting(text: string): LimitSetting | undefined {
  const m = /^\s*(\d{1,7})\s*\/\s*(\d{1,5})\s*(s|m|h)\s*$/.exec(text);
  if (!m) return undefined;
  const limit = Number(m[1]);
  const unit = m[3] === 's' ? 1000 : m[3] === 'm' ? 60_000 : 3_600_000;
  const windowMs = Number(m[2]) * unit;
  if (limit < 1 || windowMs < 1000 || windowMs > 24 * 3_600_000) return undefined;
  return { limit, windowMs };
}

const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', ''])
  .transform((v) => v === '1' || v === 'true' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const csv = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
const limitSetting = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v.trim() === '') return undefined;
    const parsed = parseLimitSetting(v);
    if (!parsed) ctx.addIssue({ code: 'custom', message: 'must be <count>/<window> like 100/15m (window 1s to 24h)' });
    return parsed;
  });
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  DATABASE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  /** The key store (data keys + shred ledger): a database of its own. Unset: see keystoreSettings. */
  KEYSTORE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  DATA_DIR: z.string().min(1).default('./data'),
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  PUBLIC_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  ENCRYPTION_KEYS: optionalString,
  /** Audit chain keys (HMAC-SHA-256), same `version:base64` format as ENCRYPTION_KEYS; first = active. */
  AUDIT_HMAC_KEYS: optionalString,
  /** File the signed audit heads are appended to (outside the database); default DATA_DIR/audit-anchors.jsonl. */
  AUDIT_ANCHOR_FILE: optionalString,
  /** How often `serve` anchors the audit head (when it moved). */
  AUDIT_ANCHOR_INTERVAL_SECONDS: int(10, 86_400).default(300),
  CLAMD_SOCKET: optionalString,
  CLAMD_HOST: optionalString,
  CLAMD_PORT: z.preprocess((v) => (v === '' ? undefined : v), int(1, 65535).optional()),
  CLAMD_TIMEOUT_MS: int(1000, 600_000).default(60_000),
  /** clamd's StreamMaxLength in bytes: larger attachments are `unscannable` at once instead of streamed in vain. */
  CLAMD_STREAM_MAX_BYTES: z.preprocess((v) => (v === '' ? undefined : v), int(1, 2 ** 31 - 1).optional()),
  GOOGLE_CLIENT_ID: optionalString,
  GOOGLE_CLIENT_SECRET: optionalString,
  /** OpenID issuer whose discovery document names Google's OAuth endpoints; unset = Google's documented endpoints. */
  GOOGLE_ISSUER_URL: optionalString.pipe(z.url().optional()),
  /** Gmail API root (default https://gmail.googleapis.com/). */
  GMAIL_API_URL: optionalString.pipe(z.url().optional()),
  GOOGLE_PUBSUB_TOPIC: optionalString,
  GOOGLE_PUBSUB_AUDIENCE: optionalString,
  GOOGLE_PUBSUB_SERVICE_ACCOUNT: optionalString,
  GOOGLE_RISC_ENABLED: bool.default(false),
  /** JWKS for RISC security event tokens; unset = from Google's RISC discovery document (sandbox: the stand-in's keys). */
  GOOGLE_RISC_JWKS_URL: optionalString.pipe(z.url().optional()),
  GOOGLE_RISC_ISSUERS: csv.default(['https://accounts.google.com/', 'https://accounts.google.com']),
  MICROSOFT_CLIENT_ID: optionalString,
  MICROSOFT_CLIENT_SECRET: optionalString,
  /** PEM file with the Entra app certificate and its PKCS#8 private key: the app's credential instead of the secret. */
  MICROSOFT_CLIENT_CERTIFICATE_PATH: optionalString,
  MICROSOFT_TENANT: z.string().min(1).default('common'),
  /** Entra authority host of a national cloud (login.microsoftonline.us, login.chinacloudapi.cn); default the global one. */
  MICROSOFT_AUTHORITY_HOST: optionalString,
  /** Graph host of a national cloud (graph.microsoft.us, dod-graph.microsoft.us, microsoftgraph.chinacloudapi.cn). */
  MICROSOFT_GRAPH_HOST: optionalString,
  SANDBOX: bool.default(false),
  SANDBOX_GOOGLE_URL: optionalString.pipe(z.url().optional()),
  SANDBOX_MICROSOFT_URL: optionalString.pipe(z.url().optional()),
  /** Entra authority of an external Microsoft stand-in (`https://127.0.0.1:PORT/<tenant>`), when its control API does not describe itself. */
  SANDBOX_MICROSOFT_AUTHORITY: optionalString.pipe(z.url({ protocol: /^https$/ }).optional()),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  WEBHOOK_ALLOWED_HOSTS: csv.default([]),
  /** Delays between webhook attempts in ms, comma-separated; default is Svix's schedule. */
  WEBHOOK_RETRY_SCHEDULE_MS: optionalString.pipe(z.string().regex(/^\d+(,\d+)*$/).optional()),
  WEBHOOK_TIMEOUT_MS: int(100, 60_000).default(15_000),
  /** Deliveries in flight per endpoint, across all workers. */
  WEBHOOK_ENDPOINT_CONCURRENCY: int(1, 100).default(4),
  /** Webhook attempts in flight per worker process (the delivery pump's slots; claims come in batches of a quarter of them or more). */
  WEBHOOK_WORKER_CONCURRENCY: int(1, 500).default(128),
  BACKFILL_DAYS: int(0, 3650).default(7),
  MAX_MESSAGE_BYTES: int(1024, 2 ** 31 - 1).default(50 * 1024 * 1024),
  POLL_INTERVAL_SECONDS: int(10, 86_400).default(300),
  /** Microsoft 365 shared mailboxes have no push (delegated .Shared permissions): polled this often (less up to 20 % jitter; sync.poll runs every minute). */
  SHARED_MAILBOX_POLL_SECONDS: int(30, 86_400).default(60),
  /** sync.mailbox jobs run at once per worker process; unset = 8 on Postgres, 4 on the embedded database. */
  SYNC_CONCURRENCY: int(1, 64).optional(),
  /** A running job not heard from (heartbeat) for this long belongs to a dead worker and is retried. */
  JOB_EXPIRE_SECONDS: int(3, 3600).default(45),
  /** How often each worker process looks for expired jobs. */
  JOB_EXPIRE_CHECK_SECONDS: int(1, 600).default(10),
  /** A `sending` outbound record not heard from for this long is taken over (after checking the provider for the copy). */
  SEND_LEASE_SECONDS: int(3, 3600).default(90),
  REAUTH_GRACE_DAYS: int(0, 3650).default(30),
  GMAIL_QUOTA_UNITS_PER_MINUTE: int(1, 1_000_000).default(6000),
  CONNECT_SESSION_TTL_MINUTES: int(1, 1440).default(30),
  BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/i).default('1mb'),
  SEND_BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/i).default('60mb'),
  /** Abuse limits, `<count>/<window>` (`100/15m`); docs/security.md. */
  RATE_LIMIT_AUTH_FAILURES: limitSetting,
  RATE_LIMIT_CONNECT_SESSIONS: limitSetting,
  RATE_LIMIT_OAUTH_CALLBACKS: limitSetting,
  RATE_LIMIT_PUSH: limitSetting,
  /** Which proxies' X-Forwarded-For is believed for the client address: `loopback` (default), `false`, a hop count or IPs/CIDRs. */
  TRUST_PROXY: z
    .string()
    .default('loopback')
    .transform((v) => v.trim())
    .pipe(z.string().regex(/^(false|loopback|\d{1,2}|[0-9A-Fa-f.:/]+(\s*,\s*[0-9A-Fa-f.:/]+)*)$/, 'must be false, loopback, a hop count or comma-separated IPs/CIDRs')),
  /** /metrics needs `Authorization: Bearer <METRICS_TOKEN>` (at least 24 characters). */
  METRICS_TOKEN: optionalString.pipe(z.string().min(24).optional()),
  /** /metrics is served on this port only (on HOST), not on PORT. */
  METRICS_PORT: z.preprocess((v) => (v === '' ? undefined : v), int(1, 65535).optional()),
});

export type Env = z.infer<typeof envSchema>;

/** Webhook hosts allowed by default with SANDBOX=1 (when WEBHOOK_ALLOWED_HOSTS is unset). */
export const SANDBOX_LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '::1'] as const;

export interface Config {
  env: Env['NODE_ENV'];
  production: boolean;
  database: { url: string | undefined; dataDir: string; embedded: boolean };
  /**
   * Where the data keys live (docs/security.md, key store). `url` undefined = embedded, in
   * `DATA_DIR/keystore`. `derived`: KEYSTORE_URL was unset on Postgres, so the key store is the
   * database `<DATABASE_URL's name>_keystore` on the same server (created at start if missing).
   */
  keystore: { url: string | undefined; derived: boolean };
  http: { port: number; host: string; publicUrl: string; bodyLimit: string; sendBodyLimit: string };
  encryptionKeys: string | undefined;
  /** Keyed audit chain: HMAC keys (unset outside production: a development key file) and anchors. */
  audit: { hmacKeys: string | undefined; anchorFile: string; anchorIntervalSeconds: number };
  clamd:
    | { kind: 'socket'; socket: string; timeoutMs: number; streamMaxBytes?: number }
    | { kind: 'tcp'; host: string; port: number; timeoutMs: number; streamMaxBytes?: number }
    | { kind: 'none' };
  google: {
    /** GOOGLE_ISSUER_URL: endpoints from its OpenID discovery document at start. */
    issuerUrl: string | undefined;
    gmailApiUrl: string | undefined;
    clientId: string | undefined;
    clientSecret: string | undefined;
    pubsubTopic: string | undefined;
    pubsubAudience: string | undefined;
    pubsubServiceAccount: string | undefined;
    riscEnabled: boolean;
    riscJwksUrl: string | undefined;
    riscIssuers: string[];
  };
  microsoft: { clientId: string | undefined; clientSecret: string | undefined; clientCertificatePath: string | undefined; tenant: string; authorityHost: string | undefined; graphHost: string | undefined };
  sandbox: { enabled: boolean; googleUrl: string | undefined; microsoftUrl: string | undefined; microsoftAuthority?: string | undefined };
  logLevel: Env['LOG_LEVEL'];
  webhooks: {
    allowedHosts: string[];
    /** SANDBOX=1 with WEBHOOK_ALLOWED_HOSTS unset: loopback receivers are allowed by default. */
    sandboxLoopbackDefault: boolean;
    /** Undefined = the default (Svix) schedule in src/webhooks/retry-schedule.ts. */
    retryDelaysMs: number[] | undefined;
    timeoutMs: number;
    endpointConcurrency: number;
    workerConcurrency: number;
  };
  sync: { backfillDays: number; maxMessageBytes: number; pollIntervalSeconds: number; sharedPollIntervalSeconds: number; gmailQuotaUnitsPerMinute: number; concurrency?: number | undefined };
  jobs: { expireSeconds: number; expireCheckSeconds: number; sendLeaseSeconds: number };
  lifecycle: { reauthGraceDays: number };
  connect: { sessionTtlMinutes: number };
  /** Abuse limits (src/http/abuse-limits.ts) and the proxies believed for the client address. */
  abuse: { limits: AbuseLimitSettings; trustProxy: boolean | number | string };
  /** `/metrics`: behind a bearer token and/or on its own port. */
  metrics: { token: string | undefined; port: number | undefined };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads a `.env` file (default: `.env` in the working directory) into `env`, the way `dotenv`
 * does: `KEY=value` lines, `#` comments, quoted values, optional `export`. A variable that is
 * already set in the real environment wins — even when it is set to an empty value — so a
 * deployment's variables are never overridden by a file left in the folder. A missing file is
 * not an error. Returns the file read and the names it set (never the values).
 */
export function loadDotEnv(file = '.env', env: NodeJS.ProcessEnv = process.env): { path: string; applied: string[] } | undefined {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new ConfigError('.env', `invalid configuration: cannot read ${path} (${code ?? 'error'})`);
  }
  const applied: string[] = [];
  for (const [key, value] of Object.entries(parseEnv(text))) {
    if (Object.hasOwn(env, key)) continue;
    env[key] = value;
    applied.push(key);
  }
  return { path, applied };
}

export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    // The value is deliberately not echoed: it may be a secret.
    throw new ConfigError(variable, `invalid configuration: ${variable} ${describeIssue(issue)}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  if (production && !e.ENCRYPTION_KEYS) {
    throw new ConfigError('ENCRYPTION_KEYS', 'invalid configuration: ENCRYPTION_KEYS is required when NODE_ENV=production');
  }
  if (e.ENCRYPTION_KEYS) {
    // Checked here, before anything opens or migrates a database. The message names the entry
    // and what is wrong with it, never the key material.
    try {
      parseKeyring(e.ENCRYPTION_KEYS);
    } catch (err) {
      if (!isCryptoError(err, 'invalid_keyring')) throw err;
      throw new ConfigError('ENCRYPTION_KEYS', `invalid configuration: ${err.message}`);
    }
  }
  if (production && !e.AUDIT_HMAC_KEYS) {
    throw new ConfigError('AUDIT_HMAC_KEYS', 'invalid configuration: AUDIT_HMAC_KEYS is required when NODE_ENV=production');
  }
  if (e.AUDIT_HMAC_KEYS) {
    try {
      parseKeyring(e.AUDIT_HMAC_KEYS, 'AUDIT_HMAC_KEYS');
    } catch (err) {
      if (!isCryptoError(err, 'invalid_keyring')) throw err;
      throw new ConfigError('AUDIT_HMAC_KEYS', `invalid configuration: ${err.message}`);
    }
  }
  if (production && !e.DATABASE_URL) {
    throw new ConfigError(
      'DATABASE_URL',
      'invalid configuration: DATABASE_URL is required when NODE_ENV=production (the embedded database is for development)',
    );
  }
  if (production && e.SANDBOX) {
    throw new ConfigError('SANDBOX', 'invalid configuration: SANDBOX cannot be enabled when NODE_ENV=production');
  }
  if ((e.CLAMD_HOST === undefined) !== (e.CLAMD_PORT === undefined) && !e.CLAMD_SOCKET) {
    const missing = e.CLAMD_HOST === undefined ? 'CLAMD_HOST' : 'CLAMD_PORT';
    throw new ConfigError(missing, `invalid configuration: ${missing} is required when the other clamd TCP variable is set`);
  }
  if (e.GOOGLE_CLIENT_ID && !e.GOOGLE_CLIENT_SECRET) {
    throw new ConfigError('GOOGLE_CLIENT_SECRET', 'invalid configuration: GOOGLE_CLIENT_SECRET is required with GOOGLE_CLIENT_ID');
  }
  if (e.MICROSOFT_CLIENT_ID && !e.MICROSOFT_CLIENT_SECRET && !e.MICROSOFT_CLIENT_CERTIFICATE_PATH) {
    throw new ConfigError('MICROSOFT_CLIENT_SECRET', 'invalid configuration: MICROSOFT_CLIENT_SECRET (or MICROSOFT_CLIENT_CERTIFICATE_PATH) is required with MICROSOFT_CLIENT_ID');
  }
  if (e.MICROSOFT_CLIENT_CERTIFICATE_PATH) {
    if (!e.MICROSOFT_CLIENT_ID && !e.SANDBOX) throw new ConfigError('MICROSOFT_CLIENT_CERTIFICATE_PATH', 'invalid configuration: MICROSOFT_CLIENT_CERTIFICATE_PATH needs MICROSOFT_CLIENT_ID');
    try {
      loadMicrosoftAppCertificate(e.MICROSOFT_CLIENT_CERTIFICATE_PATH);
    } catch (err) {
      throw new ConfigError('MICROSOFT_CLIENT_CERTIFICATE_PATH', `invalid configuration: MICROSOFT_CLIENT_CERTIFICATE_PATH: ${(err as Error).message}`);
    }
  }
  if (e.GMAIL_API_URL) {
    // @googleapis/gmail resolves its `/gmail/v1/…` paths against the root and silently drops any
    // path the URL has (googleapis-common apirequest): refuse it instead of calling elsewhere.
    const u = new URL(e.GMAIL_API_URL);
    if (u.pathname !== '/' || u.search || u.hash || u.username || u.password) {
      throw new ConfigError(
        'GMAIL_API_URL',
        `invalid configuration: GMAIL_API_URL must be an origin only (scheme, host and port, e.g. ${u.origin}/): the Gmail client drops any path, query or credentials and would call ${u.origin}/gmail/v1/… instead`,
      );
    }
  }
  if (e.MICROSOFT_AUTHORITY_HOST || e.MICROSOFT_GRAPH_HOST) {
    try {
      microsoftEndpoints(e.MICROSOFT_TENANT, { authorityHost: e.MICROSOFT_AUTHORITY_HOST, graphHost: e.MICROSOFT_GRAPH_HOST });
    } catch (err) {
      if (err instanceof MicrosoftCloudError) throw new ConfigError(err.setting, `invalid configuration: ${err.message}`);
      throw err;
    }
  }
  if (e.GOOGLE_PUBSUB_TOPIC && (!e.GOOGLE_PUBSUB_AUDIENCE || !e.GOOGLE_PUBSUB_SERVICE_ACCOUNT) && !e.SANDBOX) {
    const missing = !e.GOOGLE_PUBSUB_AUDIENCE ? 'GOOGLE_PUBSUB_AUDIENCE' : 'GOOGLE_PUBSUB_SERVICE_ACCOUNT';
    throw new ConfigError(missing, `invalid configuration: ${missing} is required with GOOGLE_PUBSUB_TOPIC (push authentication)`);
  }
  const keystore = keystoreSettings(e.DATABASE_URL, e.KEYSTORE_URL);
  const publicUrl = (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
  if (production && !publicUrl.startsWith('https://')) {
    throw new ConfigError('PUBLIC_URL', 'invalid configuration: PUBLIC_URL must be https when NODE_ENV=production');
  }
  return {
    env: e.NODE_ENV,
    production,
    database: { url: e.DATABASE_URL, dataDir: e.DATA_DIR, embedded: !e.DATABASE_URL },
    keystore,
    http: { port: e.PORT, host: e.HOST, publicUrl, bodyLimit: e.BODY_LIMIT, sendBodyLimit: e.SEND_BODY_LIMIT },
    encryptionKeys: e.ENCRYPTION_KEYS,
    audit: {
      hmacKeys: e.AUDIT_HMAC_KEYS,
      anchorFile: e.AUDIT_ANCHOR_FILE ?? join(e.DATA_DIR, 'audit-anchors.jsonl'),
      anchorIntervalSeconds: e.AUDIT_ANCHOR_INTERVAL_SECONDS,
    },
    clamd: e.CLAMD_SOCKET
      ? { kind: 'socket', socket: e.CLAMD_SOCKET, timeoutMs: e.CLAMD_TIMEOUT_MS, ...(e.CLAMD_STREAM_MAX_BYTES ? { streamMaxBytes: e.CLAMD_STREAM_MAX_BYTES } : {}) }
      : e.CLAMD_HOST && e.CLAMD_PORT
        ? { kind: 'tcp', host: e.CLAMD_HOST, port: e.CLAMD_PORT, timeoutMs: e.CLAMD_TIMEOUT_MS, ...(e.CLAMD_STREAM_MAX_BYTES ? { streamMaxBytes: e.CLAMD_STREAM_MAX_BYTES } : {}) }
        : { kind: 'none' },
    google: {
      issuerUrl: e.GOOGLE_ISSUER_URL,
      gmailApiUrl: e.GMAIL_API_URL,
      clientId: e.GOOGLE_CLIENT_ID,
      clientSecret: e.GOOGLE_CLIENT_SECRET,
      pubsubTopic: e.GOOGLE_PUBSUB_TOPIC,
      pubsubAudience: e.GOOGLE_PUBSUB_AUDIENCE,
      pubsubServiceAccount: e.GOOGLE_PUBSUB_SERVICE_ACCOUNT,
      riscEnabled: e.GOOGLE_RISC_ENABLED,
      riscJwksUrl: e.GOOGLE_RISC_JWKS_URL,
      riscIssuers: e.GOOGLE_RISC_ISSUERS,
    },
    microsoft: {
      clientId: e.MICROSOFT_CLIENT_ID,
      clientSecret: e.MICROSOFT_CLIENT_SECRET,
      clientCertificatePath: e.MICROSOFT_CLIENT_CERTIFICATE_PATH,
      tenant: e.MICROSOFT_TENANT,
      authorityHost: e.MICROSOFT_AUTHORITY_HOST,
      graphHost: e.MICROSOFT_GRAPH_HOST,
    },
    sandbox: { enabled: e.SANDBOX, googleUrl: e.SANDBOX_GOOGLE_URL, microsoftUrl: e.SANDBOX_MICROSOFT_URL, microsoftAuthority: e.SANDBOX_MICROSOFT_AUTHORITY },
    logLevel: e.LOG_LEVEL,
    webhooks: {
      // The sandbox is for trying the connector on one machine, where the receiver is a local
      // process; an explicit WEBHOOK_ALLOWED_HOSTS (even one host) replaces this default.
      allowedHosts: e.SANDBOX && e.WEBHOOK_ALLOWED_HOSTS.length === 0 ? [...SANDBOX_LOOPBACK_HOSTS] : e.WEBHOOK_ALLOWED_HOSTS,
      sandboxLoopbackDefault: e.SANDBOX && e.WEBHOOK_ALLOWED_HOSTS.length === 0,
      retryDelaysMs: e.WEBHOOK_RETRY_SCHEDULE_MS?.split(',').map(Number),
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      endpointConcurrency: e.WEBHOOK_ENDPOINT_CONCURRENCY,
      workerConcurrency: e.WEBHOOK_WORKER_CONCURRENCY,
    },
    sync: {
      backfillDays: e.BACKFILL_DAYS,
      maxMessageBytes: e.MAX_MESSAGE_BYTES,
      pollIntervalSeconds: e.POLL_INTERVAL_SECONDS,
      sharedPollIntervalSeconds: e.SHARED_MAILBOX_POLL_SECONDS,
      gmailQuotaUnitsPerMinute: e.GMAIL_QUOTA_UNITS_PER_MINUTE,
      concurrency: e.SYNC_CONCURRENCY,
    },
    jobs: { expireSeconds: e.JOB_EXPIRE_SECONDS, expireCheckSeconds: e.JOB_EXPIRE_CHECK_SECONDS, sendLeaseSeconds: e.SEND_LEASE_SECONDS },
    lifecycle: { reauthGraceDays: e.REAUTH_GRACE_DAYS },
    connect: { sessionTtlMinutes: e.CONNECT_SESSION_TTL_MINUTES },
    abuse: {
      limits: {
        authFailures: e.RATE_LIMIT_AUTH_FAILURES ?? DEFAULT_ABUSE_LIMITS.authFailures,
        connectSessions: e.RATE_LIMIT_CONNECT_SESSIONS ?? DEFAULT_ABUSE_LIMITS.connectSessions,
        oauthCallbacks: e.RATE_LIMIT_OAUTH_CALLBACKS ?? DEFAULT_ABUSE_LIMITS.oauthCallbacks,
        push: e.RATE_LIMIT_PUSH ?? DEFAULT_ABUSE_LIMITS.push,
      },
      trustProxy: e.TRUST_PROXY === 'false' ? false : /^\d+$/.test(e.TRUST_PROXY) ? Number(e.TRUST_PROXY) : e.TRUST_PROXY,
    },
    metrics: { token: e.METRICS_TOKEN, port: e.METRICS_PORT },
  };
}

/**
 * The key store's database. It must not be the data database: a data backup kept for a year must
 * not hold the keys that a purge destroys (docs/security.md). With DATABASE_URL and no
 * KEYSTORE_URL it is `<database>_keystore` on the same server — a separate database, so a
 * `pg_dump` of the data never contains it.
 */
export function keystoreSettings(databaseUrl: string | undefined, keystoreUrl: string | undefined): Config['keystore'] {
  if (!databaseUrl) {
    if (keystoreUrl) throw new ConfigError('KEYSTORE_URL', 'invalid configuration: KEYSTORE_URL needs DATABASE_URL (the embedded database keeps its key store in DATA_DIR/keystore)');
    return { url: undefined, derived: false };
  }
  if (keystoreUrl) {
    if (sameDatabase(databaseUrl, keystoreUrl)) {
      throw new ConfigError('KEYSTORE_URL', 'invalid configuration: KEYSTORE_URL must name another database than DATABASE_URL (data backups must not hold the data keys)');
    }
    return { url: keystoreUrl, derived: false };
  }
  const derived = new URL(databaseUrl);
  const name = decodeURIComponent(derived.pathname.replace(/^\//, '')) || 'postgres';
  derived.pathname = `/${encodeURIComponent(`${name}_keystore`)}`;
  return { url: derived.toString(), derived: true };
}

function sameDatabase(a: string, b: string): boolean {
  const key = (u: string): string => {
    const url = new URL(u);
    return `${url.hostname.toLowerCase()}:${url.port || '5432'}/${decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres'}`;
  };
  return key(a) === key(b);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return 'is missing or has the wrong type';
    case 'invalid_value':
      return `must be one of: ${issue.values.map(String).join(', ')}`;
    case 'too_small':
    case 'too_big':
      return `is out of range (${issue.message})`;
    case 'invalid_format':
      return `is not a valid ${issue.format}`;
    case 'custom':
      // Our own checks' messages (fixed text, never the value).
      return issue.message;
    default:
      return 'is invalid';
  }
}

/**
 * `sync.mailbox` slots per worker process: SYNC_CONCURRENCY, else 8 on Postgres (syncs mostly
 * wait on the provider and the database, so slots beyond the cores still add throughput) and 4 on
 * the embedded database (one connection: more slots would only wait for it).
 */
export function syncConcurrency(config: Pick<Config, 'sync'>, embedded: boolean): number {
  return config.sync.concurrency ?? (embedded ? 4 : 8);
}

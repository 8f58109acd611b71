import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit, type ClientRateLimitInfo, type IncrementResponse, type Options, type Store } from 'express-rate-limit';
import type { AbuseLimitSettings, LimitSetting } from '../config/config.js';
import type { SqlExecutor } from '../storage/sql-executor.port.js';
import { ApiError, RateLimitedError } from './api-error.js';

/**
 * Abuse limits (docs/security.md, "Abuse limits"): express-rate-limit over a Postgres table, so a
 * limit holds across every process on one database (and on the embedded database, across the
 * requests of its one process).
 *
 * Why our own Store: the maintained Postgres stores either pin an old `pg` and bring their own
 * migration runner (@acpr/rate-limit-postgresql) or need a second connection pool; this one is
 * four statements over the service's own SqlExecutor (pg on Postgres, PGlite embedded) and its
 * table comes from our migrations.
 */
export class SqlRateLimitStore implements Store {
  readonly localKeys = false;
  readonly prefix: string;
  protected windowMs = 60_000;
  private calls = 0;

  constructor(
    protected readonly sql: SqlExecutor,
    /** The limiter's name: keys of different limiters never meet. */
    name: string,
    protected readonly clock: () => Date = () => new Date(),
  ) {
    this.prefix = `${name}:`;
  }

  init(options: Options): void {
    this.windowMs = options.windowMs;
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const { rows } = await this.sql.query<{ hits: number; resetAt: Date | string }>(
      'SELECT "hits", "resetAt" FROM "rate_limit_hits" WHERE "key" = $1 AND "resetAt" > $2',
      [this.prefix + key, this.clock()],
    );
    const row = rows[0];
    return row ? { totalHits: row.hits, resetTime: new Date(row.resetAt) } : undefined;
  }

  async increment(key: string): Promise<IncrementResponse> {
    const row = (await this.incrementRows([this.prefix + key]))[0]!;
    return { totalHits: row.hits, resetTime: new Date(row.resetAt) };
  }

  /**
   * One hit on each of `rowKeys` (whole table keys, distinct), in ONE statement: a new window
   * starts for a row whose stored one has ended (atomic under concurrency).
   */
  protected async incrementRows(rowKeys: readonly string[]): Promise<Array<{ hits: number; resetAt: Date | string }>> {
    const now = this.clock();
    const resetAt = new Date(now.getTime() + this.windowMs);
    const { rows } = await this.sql.query<{ hits: number; resetAt: Date | string }>(
      `INSERT INTO "rate_limit_hits" ("key", "hits", "resetAt") SELECT k, 1, $3 FROM unnest($1::text[]) AS k
       ON CONFLICT ("key") DO UPDATE SET
         "hits" = CASE WHEN "rate_limit_hits"."resetAt" <= $2 THEN 1 ELSE "rate_limit_hits"."hits" + 1 END,
         "resetAt" = CASE WHEN "rate_limit_hits"."resetAt" <= $2 THEN $3 ELSE "rate_limit_hits"."resetAt" END
       RETURNING "hits", "resetAt"`,
      [[...rowKeys], now, resetAt],
    );
    if (++this.calls % 500 === 0) {
      void this.sql.query('DELETE FROM "rate_limit_hits" WHERE "resetAt" <= $1', [now]).catch(() => undefined);
    }
    return rows;
  }

  async decrement(key: string): Promise<void> {
    await this.sql.query('UPDATE "rate_limit_hits" SET "hits" = GREATEST("hits" - 1, 0) WHERE "key" = $1 AND "resetAt" > $2', [this.prefix + key, this.clock()]);
  }

  async resetKey(key: string): Promise<void> {
    await this.sql.query('DELETE FROM "rate_limit_hits" WHERE "key" = $1', [this.prefix + key]);
  }
}

/**
 * The authentication-failure limit's store: one limiter over two counters — the client IP's
 * (`auth_ip:<ip>`) and the presented API-key prefix's (`auth_key:<prefix>`) — whose limiter key
 * is `<ip>\n<prefix>` (AuthFailureStore.keyOf). A request is checked with ONE read of both rows:
 * it counts as the failures of the fuller of the two, plus itself, as express-rate-limit counts a
 * request, so it is refused when either counter is at the limit, and the `RateLimit` headers and
 * `Retry-After` speak for that counter. A failure (a 401) is written to both rows in one statement
 * (`recordFailure`) before it is answered, so the client's next request already sees it.
 * express-rate-limit's own way of counting only failures (`skipSuccessfulRequests`) increments
 * every request and decrements it again once it succeeded: two writes per counter, on rows shared
 * by all of a client's requests, for every good API call; and two limiters are two reads.
 */
export class AuthFailureStore extends SqlRateLimitStore {
  constructor(sql: SqlExecutor, clock?: () => Date) {
    super(sql, 'auth', clock);
  }

  /** The limiter key of a request: its client IP and the API-key prefix it presents (empty: none). */
  static keyOf(req: Request): string {
    return `${clientIp(req)}\n${apiKeyPrefixOf(req) ?? ''}`;
  }

  /** The table keys of a limiter key (the counters of express-rate-limit's two limiters before, same rows). */
  static rowKeys(key: string): string[] {
    const [ip, prefix] = key.split('\n') as [string, string | undefined];
    return [`auth_ip:${ip}`, ...(prefix ? [`auth_key:${prefix}`] : [])];
  }

  /** The fuller of the two counters in their windows (undefined: neither has a failure). */
  override async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const { rows } = await this.sql.query<{ hits: number; resetAt: Date | string }>(
      'SELECT "hits", "resetAt" FROM "rate_limit_hits" WHERE "key" = ANY($1::text[]) AND "resetAt" > $2 ORDER BY "hits" DESC, "resetAt" DESC LIMIT 1',
      [AuthFailureStore.rowKeys(key), this.clock()],
    );
    const row = rows[0];
    return row ? { totalHits: row.hits, resetTime: new Date(row.resetAt) } : undefined;
  }

  /** This request as the next failure would count it; nothing is written. */
  override async increment(key: string): Promise<IncrementResponse> {
    const stored = await this.get(key);
    return { totalHits: (stored?.totalHits ?? 0) + 1, resetTime: stored?.resetTime ?? new Date(this.clock().getTime() + this.windowMs) };
  }

  /** Nothing to undo: `increment` wrote nothing. */
  override async decrement(_key: string): Promise<void> {}

  override async resetKey(key: string): Promise<void> {
    await this.sql.query('DELETE FROM "rate_limit_hits" WHERE "key" = ANY($1::text[])', [AuthFailureStore.rowKeys(key)]);
  }

  /** One failure of this request's client IP and key prefix, counted in their current windows (or starting them). */
  async recordFailure(req: Request): Promise<void> {
    await this.incrementRows(AuthFailureStore.rowKeys(AuthFailureStore.keyOf(req)));
  }
}

// IPv6 clients share a /56 (one customer usually owns the whole prefix): the library's own rule.
const clientIp = (req: Request): string => ipKeyGenerator(req.ip ?? 'unknown', 56);

/**
 * The part of a presented API key that names its key without being it: the type prefix and the
 * next six characters (the `prefix` column of api_keys). Anything else is one bucket, `other`.
 */
export function apiKeyPrefixOf(req: Request): string | undefined {
  const header = req.header('authorization');
  if (!header) return undefined;
  const m = /^Bearer\s+(mbc_(?:live|test|admin)_[A-Za-z0-9_-]{0,6})/i.exec(header.trim());
  return m ? m[1]! : 'other';
}

export interface AbuseLimits {
  /** Before the API routes: refuses (429) every request of a client over its 401 limit, per IP and per key prefix (one read). */
  authFailures: RequestHandler[];
  /** Error handler after the API routes, before the error mapper: counts a 401 before it is answered. */
  authFailureRecorder: ErrorRequestHandler;
  connectSessions: RequestHandler[];
  oauthCallbacks: RequestHandler[];
  push: RequestHandler[];
}

export function createAbuseLimits(deps: { sql: SqlExecutor; settings: AbuseLimitSettings; clock?: () => Date }): AbuseLimits {
  const make = (name: string, what: string, setting: LimitSetting, keyOf: (req: Request) => string | undefined, store: Store = new SqlRateLimitStore(deps.sql, name, deps.clock)): RequestHandler =>
    rateLimit({
      windowMs: setting.windowMs,
      limit: setting.limit,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      store,
      skip: (req) => keyOf(req) === undefined,
      keyGenerator: (req) => keyOf(req)!,
      // A database hiccup must not take the API down: the request goes through, unlimited.
      passOnStoreError: true,
      validate: { trustProxy: false, xForwardedForHeader: false },
      handler: (_req, res, next) => {
        const retryAfter = Number(res.getHeader('retry-after')) || Math.ceil(setting.windowMs / 1000);
        next(new RateLimitedError(what, retryAfter));
      },
    });
  // Only authentication failures count toward the auth limit: a request is checked by one read,
  // a 401 written before it is answered (AuthFailureStore).
  const authFailureStore = new AuthFailureStore(deps.sql, deps.clock);
  const authFailureRecorder: ErrorRequestHandler = (err: unknown, req, _res, next) => {
    if (!(err instanceof ApiError) || err.status !== 401) return next(err);
    // As for the limiters themselves: a database hiccup must not change the answer.
    void authFailureStore
      .recordFailure(req)
      .catch(() => undefined)
      .then(() => next(err));
  };
  return {
    authFailures: [make('auth', 'failed authentications', deps.settings.authFailures, AuthFailureStore.keyOf, authFailureStore)],
    authFailureRecorder,
    connectSessions: [
      make('connect_ip', 'connect sessions', deps.settings.connectSessions, clientIp),
      make('connect_key', 'connect sessions for this API key', deps.settings.connectSessions, apiKeyPrefixOf),
    ],
    oauthCallbacks: [make('oauth_ip', 'OAuth callbacks', deps.settings.oauthCallbacks, clientIp)],
    push: [make('push_ip', 'push notifications', deps.settings.push, clientIp)],
  };
}

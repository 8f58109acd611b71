import { randomUUID } from 'node:crypto';
import express, { type ErrorRequestHandler, type Express, type RequestHandler, type Router } from 'express';
import helmet from 'helmet';
import { createDocument } from 'zod-openapi';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { constantTimeEqual } from '../crypto/secret-compare.js';
import type { AbuseLimits } from './abuse-limits.js';
import { errorBody, RouteNotFoundError, UnauthorizedError } from './api-error.js';
import type { Authenticate } from './auth-context.js';
import { createDocsRouter } from './docs.router.js';
import { toApiError } from './error-mapper.js';
import { addExamples, INFRA_PATHS, markRequiredHeaders, webhooksSection } from './openapi-extras.js';
import type { RouteRegistry } from './route-registry.js';

export interface ReadinessCheck {
  name: string;
  /** `required` checks failing make /readyz answer 503; others only report. */
  required: boolean;
  check(): Promise<{ status: 'ok' | 'not_configured' | 'error'; detail?: string }>;
}

export interface AppDeps {
  logger: Logger;
  metrics: Metrics;
  routes: RouteRegistry;
  authenticate: Authenticate;
  readiness: ReadinessCheck[];
  bodyLimit: string;
  version: string;
  publicUrl: string;
  /** Routers mounted before the API routes: the ops console (/admin). Not part of the API document. */
  pages?: Router[];
  /** Abuse limits (429 + Retry-After); absent = none (unit tests of the app alone). */
  abuse?: AbuseLimits;
  /** Express `trust proxy` (TRUST_PROXY): whose X-Forwarded-For names the client. Default `loopback`. */
  trustProxy?: boolean | number | string;
  /**
   * CSP form-action sources besides 'self' (production: the public origin and the providers'
   * sign-in origins). Undefined = development/sandbox: any https origin and loopback stand-ins.
   */
  formActionOrigins?: string[];
  /** /metrics: a bearer token it requires, and whether this app serves it at all (false with METRICS_PORT). */
  metricsAccess?: MetricsAccess;
}

export interface MetricsAccess {
  token?: string | undefined;
  /** False when METRICS_PORT serves /metrics on its own listener. */
  served?: boolean;
}

export function buildOpenApiDocument(routes: RouteRegistry, version: string, publicUrl: string): ReturnType<typeof createDocument> {
  const doc = createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Mailbox connector API',
      version,
      description:
        'Connect Gmail and Microsoft 365 mailboxes, read ingested mail, send replies, manage webhooks and data-subject requests. ' +
        'Every route of the service is here except two sets of HTML pages that are not API: `/docs` (this reference) and the ops console under `/admin` (docs/operations.md). ' +
        'The events the service POSTs to your webhook endpoints are under `webhooks`.',
    },
    servers: [{ url: publicUrl }],
    security: [{ bearerAuth: [] }],
    components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'Tenant or admin API key' } } },
    paths: routes.openApiPaths(),
  });
  const json = doc as unknown as Record<string, unknown>;
  json.paths = { ...(doc.paths ?? {}), ...INFRA_PATHS };
  json.webhooks = webhooksSection();
  markRequiredHeaders(
    json,
    routes.routes.filter((r) => r.requiredHeaders?.length).map((r) => ({ path: r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}'), method: r.method, headers: r.requiredHeaders!.map((h) => h.toLowerCase()) })),
  );
  addExamples(json);
  return doc;
}

export interface ReadinessReport {
  ready: boolean;
  status: 'ready' | 'not_ready';
  checks: Record<string, { status: string; detail?: string }>;
}

/** Runs every check (3 s each, in parallel); not ready when a required one is not `ok`. */
export async function evaluateReadiness(checks: ReadinessCheck[]): Promise<ReadinessReport> {
  const results: ReadinessReport['checks'] = {};
  let ready = true;
  await Promise.all(
    checks.map(async (c) => {
      let r: { status: 'ok' | 'not_configured' | 'error'; detail?: string };
      try {
        r = await withTimeout(c.check(), 3000);
      } catch (err) {
        r = { status: 'error', detail: failureDetail(err) };
      }
      results[c.name] = r;
      if (c.required && r.status !== 'ok') ready = false;
    }),
  );
  return { ready, status: ready ? 'ready' : 'not_ready', checks: results };
}

/**
 * What a failed check says: the error's code (ECONNREFUSED, 57P01, …), never its message, which
 * may name hosts, users or data.
 */
function failureDetail(err: unknown): string {
  if (err instanceof Error && err.message === 'timeout') return 'no answer within 3 s';
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Za-z0-9_.-]{1,40}$/.test(code) ? `unreachable (${code})` : 'check failed';
}

/** `/healthz` (the process answers), `/readyz` (it can do its job: per-component detail), `/metrics`. */
export function registerHealthRoutes(app: Express, deps: Pick<AppDeps, 'metrics' | 'readiness' | 'metricsAccess'>): void {
  app.get('/healthz', (_req, res) => {
    res.locals.route = '/healthz';
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    res.locals.route = '/readyz';
    const report = await evaluateReadiness(deps.readiness);
    res.status(report.ready ? 200 : 503).json({ status: report.status, checks: report.checks });
  });
  if (deps.metricsAccess?.served !== false) registerMetricsRoute(app, deps);
}

/**
 * `/metrics` in Prometheus text format; with METRICS_TOKEN only for `Authorization: Bearer
 * <token>` (401 otherwise, compared in constant time).
 */
export function registerMetricsRoute(app: Express, deps: Pick<AppDeps, 'metrics' | 'metricsAccess'>): void {
  const token = deps.metricsAccess?.token;
  app.get('/metrics', async (req, res) => {
    res.locals.route = '/metrics';
    if (token) {
      const m = /^Bearer ([^\s]+)$/i.exec(req.header('authorization')?.trim() ?? '');
      if (!m || !constantTimeEqual(m[1]!, token)) {
        res.setHeader('www-authenticate', 'Bearer realm="metrics"');
        res.status(401).json(errorBody(new UnauthorizedError('this /metrics needs Authorization: Bearer <METRICS_TOKEN>'), res.locals.requestId as string | undefined));
        return;
      }
    }
    res.setHeader('content-type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });
}

/**
 * The health server of a `worker` process (no API): the same `/healthz`, `/readyz` and `/metrics`
 * as `serve`, so one container HEALTHCHECK and one scrape config fit both.
 */
export function createHealthApp(deps: Pick<AppDeps, 'metrics' | 'readiness' | 'metricsAccess'>): Express {
  const app = express();
  app.disable('x-powered-by');
  registerHealthRoutes(app, deps);
  app.use((_req, res) => {
    res.status(404).json(errorBody(new RouteNotFoundError('this is a worker: only /healthz, /readyz and /metrics'), undefined));
  });
  return app;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxy ?? 'loopback');
  app.set('query parser', 'simple');
  app.use(
    helmet({
      // The hosted connect pages post forms to the provider's authorize URL and use inline styles.
      contentSecurityPolicy: {
        // Production: only our own origin and the providers' sign-in origins; the loopback stand-ins
        // of the sandbox exist in development only.
        directives: {
          'form-action': ["'self'", ...(deps.formActionOrigins ?? ['https:', 'http://127.0.0.1:*', 'http://localhost:*'])],
          'style-src': ["'self'", "'unsafe-inline'"],
        },
      },
    }),
  );

  app.use((req, res, next) => {
    const incoming = req.header('x-request-id');
    const id = incoming && /^[A-Za-z0-9._-]{1,100}$/.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = id;
    res.setHeader('x-request-id', id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = (res.locals.route as string | undefined) ?? 'unmatched';
      deps.metrics.httpRequests.observe({ method: req.method, route, status: String(res.statusCode) }, seconds);
      // Path only: query strings carry OAuth codes and state.
      deps.logger.info(
        { reqId: id, method: req.method, route, status: res.statusCode, ms: Math.round(seconds * 1000) },
        'request',
      );
    });
    next();
  });

  const jsonParser = (limit?: string): RequestHandler => express.json({ limit: limit ?? deps.bodyLimit, strict: true, type: ['application/json', 'application/*+json'] });

  registerHealthRoutes(app, deps);
  let openApiCache: unknown;
  app.get('/openapi.json', (_req, res) => {
    res.locals.route = '/openapi.json';
    openApiCache ??= buildOpenApiDocument(deps.routes, deps.version, deps.publicUrl);
    res.json(openApiCache);
  });
  // The API reference (Swagger UI over /openapi.json); `/` leads there.
  app.get('/', (_req, res) => {
    res.locals.route = '/';
    res.redirect(302, '/docs');
  });
  app.use(createDocsRouter());
  for (const pages of deps.pages ?? []) app.use(pages);

  if (deps.abuse) {
    const a = deps.abuse;
    app.post(['/v1/connect-sessions', '/v1/mailboxes/:id/reconnect'], ...a.connectSessions);
    app.get('/oauth/:provider/callback', ...a.oauthCallbacks);
    // The hosted organization-install pages (Google key upload and its form, Microsoft admin page) and
    // Microsoft's admin-consent redirect share the callbacks' per-IP budget.
    app.all(['/organization-install/google', '/organization-install/microsoft'], ...a.oauthCallbacks);
    app.get('/oauth/microsoft/admin-consent', ...a.oauthCallbacks);
    app.post(['/push/google', '/push/microsoft', '/push/microsoft/lifecycle', '/risc/google'], ...a.push);
    // Failed authentications on the API (the console has its own sign-in limit).
    app.use('/v1', ...a.authFailures);
  }

  const router = express.Router();
  deps.routes.mount(router, deps.authenticate, jsonParser);
  app.use(router);

  app.use((req, _res, next) => {
    next(new RouteNotFoundError(`no route for ${req.method} ${req.path}`));
  });
  // A failed authentication on the API is counted before its 401 goes out (abuse-limits.ts).
  if (deps.abuse) app.use('/v1', deps.abuse.authFailureRecorder);

  // The one HTTP error mapper: catalogue errors as they are, domain errors through toApiError,
  // anything else a 500 whose body carries no internals (the log has the detail).
  const onError: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    const requestId = res.locals.requestId as string | undefined;
    const apiError = toApiError(err);
    if (!apiError.expose) deps.logger.error({ err, reqId: requestId, route: res.locals.route ?? req.path }, 'unhandled error');
    else if (apiError.detail) deps.logger.info({ reqId: requestId, code: apiError.code, detail: apiError.detail }, 'request refused');
    res.status(apiError.status).json(errorBody(apiError, requestId));
  };
  app.use(onError);
  return app;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout')), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

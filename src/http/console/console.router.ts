import express, { type ErrorRequestHandler, type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { rateLimit } from 'express-rate-limit';
import { z } from 'zod';
import type { AuditService } from '../../audit/audit.service.js';
import type { Logger } from '../../observability/logger.js';
import type { OpsCommand } from '../../ops/ops-command.js';
import { runOpsCommand } from '../../ops/ops-runner.js';
import { NotFoundError, ValidationError } from '../api-error.js';
import { toApiError } from '../error-mapper.js';
import { CONSOLE_CSS } from './console-assets.js';
import {
  errorPage,
  loginPage,
  mailboxesPage,
  mailboxPage,
  NOTICES,
  revokePage,
  secretPage,
  tenantPage,
  tenantsPage,
  type EndpointOverview,
  type MailboxHealthRow,
  type MailboxInspection,
  type TenantOverview,
} from './console-pages.js';
import { ConsoleSessions, SESSION_MAX_MS, type ConsoleSession } from './console-session.js';

export interface ConsoleDeps {
  /** Every ops command of the service: the console runs the same ones as the CLI and admin API. */
  commands: OpsCommand[];
  audit: Pick<AuditService, 'record'>;
  sessions: ConsoleSessions;
  /** ApiKeyService.authenticate. */
  authenticateKey(presented: string): Promise<{ keyId: string; scope: 'tenant' | 'admin' } | null>;
  publicUrl: string;
  logger: Logger;
}

export const CONSOLE_COOKIE = 'mbc_console';

/**
 * The console's CSP: no script at all, styles only from the served stylesheet, forms post only
 * here, never framed.
 */
export const CONSOLE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Commands the console never runs: break-glass reads mail and is CLI-only by design. */
const NOT_FROM_CONSOLE = /^breakGlass\./;

const ID = /^[A-Za-z0-9_-]{1,64}$/;

type Locals = { session: ConsoleSession };

/**
 * The ops console at /admin (docs/operations.md): server-rendered pages over the ops views and
 * four actions — revoke, resync, replay dead deliveries, rotate an endpoint's secret — each run as
 * the same ops command the CLI and `POST /v1/admin/ops/:name` run (validated by the command's own
 * schema, audited by the ops runner and by the command). Sign-in with an admin API key starts a
 * server-side session (HttpOnly, SameSite=Strict cookie, Secure under an https PUBLIC_URL); every
 * POST must carry the session's CSRF token and, when the browser sends one, this origin.
 */
export function createConsoleRouter(deps: ConsoleDeps): Router {
  const byName = new Map(deps.commands.filter((c) => !NOT_FROM_CONSOLE.test(c.name)).map((c) => [c.name, c]));
  const secure = deps.publicUrl.startsWith('https:');
  const ownOrigin = safeOrigin(deps.publicUrl);
  const router = express.Router();

  router.use('/admin', (_req, res, next) => {
    res.setHeader('content-security-policy', CONSOLE_CSP);
    res.setHeader('cache-control', 'no-store');
    // Not no-referrer: under it Chromium sends `Origin: null` with same-origin form posts, which
    // the origin check would refuse. same-origin still sends nothing to other sites.
    res.setHeader('referrer-policy', 'same-origin');
    res.locals.route = '/admin';
    next();
  });
  // Forms only, and only on the console's own POST routes (the API keeps its JSON parsing).
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });

  const route = (path: string): RequestHandler => (_req, res, next) => {
    res.locals.route = path;
    next();
  };

  router.get('/admin/assets/console.css', route('/admin/assets/console.css'), (_req, res) => {
    res.setHeader('cache-control', 'public, max-age=3600');
    res.type('text/css').send(CONSOLE_CSS);
  });

  const signInLimit = rateLimit({
    windowMs: 15 * 60_000,
    limit: 10,
    skipSuccessfulRequests: true,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (_req, res) => {
      res.status(429).type('html').send(errorPage(429, 'Too many failed sign-ins from this address. Wait 15 minutes and try again.'));
    },
  });

  /** Same-origin check for POSTs (a second line behind SameSite=Strict and the CSRF token). */
  const sameOrigin = (req: Request): boolean => {
    const origin = req.header('origin');
    if (!origin) return true;
    return origin === ownOrigin || origin === `${req.protocol}://${req.get('host') ?? ''}`;
  };

  const readSession = async (req: Request): Promise<ConsoleSession | null> => deps.sessions.resume(cookieValue(req.header('cookie'), CONSOLE_COOKIE));

  /** Pages and actions behind sign-in; POSTs also need the CSRF token. */
  const signedIn: RequestHandler = async (req, res, next) => {
    const session = await readSession(req);
    if (!session) {
      if (req.method === 'GET') {
        res.redirect(303, `/admin/login?next=${encodeURIComponent(req.originalUrl)}`);
      } else {
        res.status(401).type('html').send(errorPage(401, 'Your session has ended. Sign in again.'));
      }
      return;
    }
    if (req.method === 'POST' && (!sameOrigin(req) || !ConsoleSessions.csrfMatches(session, (req.body as Record<string, unknown> | undefined)?._csrf))) {
      deps.logger.warn({ route: res.locals.route }, 'console: POST refused (CSRF token or origin)');
      res.status(403).type('html').send(errorPage(403, 'This form is stale or did not come from the console. Go back, reload the page and try again.', session.csrf));
      return;
    }
    (res.locals as Locals).session = session;
    next();
  };
  const sessionOf = (res: Response): ConsoleSession => (res.locals as Locals).session;

  const run = async (session: ConsoleSession, name: string, input: unknown): Promise<unknown> => {
    const cmd = byName.get(name);
    if (!cmd) throw new Error(`ops command ${name} is not available`);
    const parsed = cmd.input.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = issue.path.join('.') || 'input';
      throw new ValidationError(`${field}: ${issue.message}`, { field, location: 'form' });
    }
    return runOpsCommand(cmd, parsed.data, { actorId: `console:${session.apiKeyId}`, progress: () => undefined }, deps.audit);
  };

  router.get('/admin', route('/admin'), async (req, res) => {
    res.redirect(303, (await readSession(req)) ? '/admin/tenants' : '/admin/login');
  });

  router.get('/admin/login', route('/admin/login'), async (req, res) => {
    if (await readSession(req)) {
      res.redirect(303, '/admin/tenants');
      return;
    }
    const next = safeNext(req.query.next);
    res.type('html').send(loginPage(next ? { next } : {}));
  });

  router.post('/admin/login', route('/admin/login'), form, signInLimit, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const presented = typeof body.apiKey === 'string' ? body.apiKey.trim() : '';
    const next = safeNext(body.next);
    if (!sameOrigin(req)) {
      res.status(403).type('html').send(errorPage(403, 'The sign-in form did not come from the console.'));
      return;
    }
    const key = presented && presented.length <= 200 ? await deps.authenticateKey(presented) : null;
    if (!key || key.scope !== 'admin') {
      // The same answer for unknown, revoked, malformed and tenant keys; the key is never logged.
      deps.logger.warn('console: sign-in refused');
      res.status(401).type('html').send(loginPage({ error: 'That is not an active admin API key.', ...(next ? { next } : {}) }));
      return;
    }
    const started = await deps.sessions.start(key.keyId);
    await deps.audit.record({ actorType: 'ops', actorId: `console:${key.keyId}`, action: 'console.signed_in', targetType: 'api_key', targetId: key.keyId });
    res.cookie(CONSOLE_COOKIE, started.token, { httpOnly: true, sameSite: 'strict', secure, path: '/admin', maxAge: SESSION_MAX_MS });
    res.redirect(303, next ?? '/admin/tenants');
  });

  router.post('/admin/logout', route('/admin/logout'), form, signedIn, async (_req, res) => {
    const session = sessionOf(res);
    await deps.sessions.end(session);
    await deps.audit.record({ actorType: 'ops', actorId: `console:${session.apiKeyId}`, action: 'console.signed_out', targetType: 'api_key', targetId: session.apiKeyId });
    res.clearCookie(CONSOLE_COOKIE, { httpOnly: true, sameSite: 'strict', secure, path: '/admin' });
    res.redirect(303, '/admin/login');
  });

  router.get('/admin/tenants', route('/admin/tenants'), signedIn, async (_req, res) => {
    const session = sessionOf(res);
    const tenants = (await run(session, 'tenants.overview', {})) as TenantOverview[];
    res.type('html').send(tenantsPage(session.csrf, tenants));
  });

  router.get('/admin/tenants/:id', route('/admin/tenants/:id'), signedIn, async (req, res) => {
    const session = sessionOf(res);
    const id = idParam(req, 'tenant');
    const tenants = (await run(session, 'tenants.overview', {})) as TenantOverview[];
    const tenant = tenants.find((t) => t.tenantId === id);
    if (!tenant) throw new NotFoundError('tenant');
    const endpoints = (await run(session, 'webhookEndpoints.list', { tenantId: id })) as EndpointOverview[];
    res.type('html').send(tenantPage(session.csrf, tenant, endpoints));
  });

  const mailboxFilter = z.strictObject({
    tenantId: z.string().regex(ID).optional().or(z.literal('').transform(() => undefined)),
    status: z.enum(['active', 'reauth_required', 'disconnecting', 'purged']).optional().or(z.literal('').transform(() => undefined)),
    afterId: z.string().regex(ID).optional(),
  });
  router.get('/admin/mailboxes', route('/admin/mailboxes'), signedIn, async (req, res) => {
    const session = sessionOf(res);
    const filter = mailboxFilter.safeParse(req.query);
    if (!filter.success) throw new ValidationError('unknown filter: choose a tenant and a status from the lists', { field: 'filter', location: 'query' });
    const f = filter.data;
    const input = { ...(f.tenantId ? { tenantId: f.tenantId } : {}), ...(f.status ? { status: f.status } : {}), ...(f.afterId ? { afterId: f.afterId } : {}) };
    const [data, tenants] = await Promise.all([
      run(session, 'mailboxes.health', input) as Promise<{ mailboxes: MailboxHealthRow[]; nextAfterId: string | null }>,
      run(session, 'tenants.overview', {}) as Promise<TenantOverview[]>,
    ]);
    res.type('html').send(mailboxesPage(session.csrf, data, { ...(f.tenantId ? { tenantId: f.tenantId } : {}), ...(f.status ? { status: f.status } : {}) }, tenants));
  });

  router.get('/admin/mailboxes/:id', route('/admin/mailboxes/:id'), signedIn, async (req, res) => {
    const session = sessionOf(res);
    const id = idParam(req, 'mailbox');
    const data = (await run(session, 'mailboxes.inspect', { mailboxId: id })) as MailboxInspection;
    const notice = typeof req.query.notice === 'string' && NOTICES[req.query.notice.split(':')[0]!] && /^[a-z_]+(:\d{1,7})?$/.test(req.query.notice) ? req.query.notice : undefined;
    res.type('html').send(mailboxPage(session.csrf, id, data, notice));
  });

  router.get('/admin/mailboxes/:id/revoke', route('/admin/mailboxes/:id/revoke'), signedIn, async (req, res) => {
    const session = sessionOf(res);
    const id = idParam(req, 'mailbox');
    // The page exists only for a mailbox that does (a 404 here rather than after typing a reason).
    await run(session, 'mailboxes.inspect', { mailboxId: id });
    res.type('html').send(revokePage(session.csrf, id));
  });

  router.post('/admin/mailboxes/:id/revoke', route('/admin/mailboxes/:id/revoke'), form, signedIn, async (req, res) => {
    const session = sessionOf(res);
    const id = idParam(req, 'mailbox');
    const raw = (req.body as Record<string, unknown>).reason;
    const reason = typeof raw === 'string' ? raw.trim() : '';
    if (reason.length < 3 || reason.length > 500) {
      res.status(400).type('html').send(revokePage(session.csrf, id, { error: 'Give a reason of 3 to 500 characters.', reason: typeof raw === 'string' ? raw.slice(0, 500) : '' }));
      return;
    }
    await run(session, 'mailboxes.revoke', { mailboxId: id, reason });
    res.redirect(303, `/admin/mailboxes/${encodeURIComponent(id)}?notice=revoked`);
  });

  router.post('/admin/mailboxes/:id/resync', route('/admin/mailboxes/:id/resync'), form, signedIn, async (req, res) => {
    const session = sessionOf(res);
    const id = idParam(req, 'mailbox');
    // queued: a sync is waiting (a new one, or one already waiting that covers this request); not
    // queued: the mailbox is not active.
    const r = (await run(session, 'mailboxes.resync', { mailboxId: id })) as { queued: boolean };
    const notice = r.queued ? 'resync_queued' : 'resync_not_active';
    res.redirect(303, `/admin/mailboxes/${encodeURIComponent(id)}?notice=${notice}`);
  });

  router.post('/admin/mailboxes/:id/replay-dead', route('/admin/mailboxes/:id/replay-dead'), form, signedIn, async (req, res) => {
    const session = sessionOf(res);
    const id = idParam(req, 'mailbox');
    const r = (await run(session, 'events.replayDead', { mailboxId: id })) as { deliveries: number };
    res.redirect(303, `/admin/mailboxes/${encodeURIComponent(id)}?notice=replayed:${r.deliveries}`);
  });

  router.post('/admin/endpoints/:id/rotate-secret', route('/admin/endpoints/:id/rotate-secret'), form, signedIn, async (req, res) => {
    const session = sessionOf(res);
    const id = idParam(req, 'webhook endpoint');
    const r = (await run(session, 'webhookEndpoints.rotateSecret', { endpointId: id })) as { endpointId: string; tenantId: string; secret: string; previousSecretExpiresAt: string | null };
    // Shown once, never cached (cache-control: no-store is set for every console response).
    res.type('html').send(secretPage(session.csrf, r));
  });

  router.use('/admin', (_req, res) => {
    res.status(404).type('html').send(errorPage(404, 'There is no such console page.'));
  });

  const onError: ErrorRequestHandler = (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (!req.path.startsWith('/admin')) {
      next(err);
      return;
    }
    const csrf = (res.locals as Partial<Locals>).session?.csrf;
    const e = err as { type?: string };
    if (e.type === 'entity.too.large' || e.type === 'entity.parse.failed' || e.type === 'parameters.too.many') {
      res.status(400).type('html').send(errorPage(400, 'The form could not be read.', csrf));
      return;
    }
    const apiError = toApiError(err);
    if (apiError.expose && apiError.code !== 'bad_request') {
      res.status(apiError.status).type('html').send(errorPage(apiError.status, apiError.message, csrf));
      return;
    }
    deps.logger.error({ err, reqId: res.locals.requestId as string | undefined, route: res.locals.route as string | undefined }, 'console: request failed');
    res.status(500).type('html').send(errorPage(500, 'The console could not complete this request; the error is in the service log.', csrf));
  };
  router.use(onError);
  return router;
}

function idParam(req: Request, what: string): string {
  const id = req.params.id;
  if (typeof id !== 'string' || !ID.test(id)) throw new NotFoundError(what);
  return id;
}

/** Where to go after sign-in: only a console path of this origin. */
function safeNext(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 300) return undefined;
  return /^\/admin(\/[A-Za-z0-9_\-/]*)?(\?[A-Za-z0-9_\-=&%:.]*)?$/.test(value) && !value.startsWith('//') ? value : undefined;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '';
  }
}

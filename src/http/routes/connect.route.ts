import { readFileSync } from 'node:fs';
import type { Response } from 'express';
import { z } from 'zod';
import type { ConnectService } from '../../oauth/connect.service.js';
import { isProviderError } from '../../providers/provider-error.js';
import { NotFoundError } from '../api-error.js';
import { actorOf } from '../auth-context.js';
import { NO_BRANDING, type PageBranding } from '../../tenancy/tenant-branding.js';
import { allowLogo, choosePage, CLEAN_URL_SCRIPT, CLEAN_URL_SCRIPT_PATH, closedPage, unavailablePage } from '../pages/connect-pages.js';
import { commonErrors, errorSchema, type RouteRegistry } from '../route-registry.js';
import { mailboxIdParams } from './mailboxes.route.js';

const providerSchema = z.enum(['google', 'microsoft']);

export const connectSessionSchema = z
  .object({
    id: z.string(),
    object: z.literal('connect_session'),
    url: z.string().meta({ description: 'Hosted connect page; send the customer here.' }),
    expiresAt: z.string(),
    provider: providerSchema.nullable(),
    mailboxId: z.string().nullable().meta({ description: 'Set for reconnect sessions.' }),
    mailbox: z.string().nullable().meta({ description: 'The Microsoft 365 shared mailbox this session connects (a member signs in); null = the signed-in person’s own mailbox.' }),
  })
  .meta({ id: 'ConnectSession' });

const sessionParams = z.strictObject({ id: z.string().regex(/^cs_[0-9A-Za-z]{1,60}$/) });

/** Cookie that ties a connect session to the browser that started it (checked on the callback). */
export function connectCookieName(sessionId: string): string {
  return `mbc_connect_${sessionId}`;
}

/** The provider logos (assets/provider-logos, two levels above src/http/routes and dist/http/routes), read once. */
function providerLogos(): Record<'google.svg' | 'microsoft.svg', string> {
  const dir = new URL('../../../assets/provider-logos/', import.meta.url);
  return {
    'google.svg': readFileSync(new URL('google.svg', dir), 'utf8'),
    'microsoft.svg': readFileSync(new URL('microsoft.svg', dir), 'utf8'),
  };
}

export function sendHtml(res: Response, status: number, html: string): { handled: true } {
  res.status(status).setHeader('cache-control', 'no-store').type('html').send(html);
  return { handled: true };
}

/** The tenant branding of the hosted pages (src/tenancy/tenant-branding.ts); absent = unbranded. */
export type PageBrandingSource = (tenantId: string) => Promise<PageBranding>;

/** The branding for a page of this tenant (none when the session is unknown), its logo allowed by the CSP. */
export async function brandingFor(res: Response, source: PageBrandingSource | undefined, tenantId: string | undefined): Promise<PageBranding> {
  const branding = tenantId && source ? await source(tenantId) : NO_BRANDING;
  allowLogo(res, branding);
  return branding;
}

export function registerConnectRoutes(routes: RouteRegistry, deps: { connect: ConnectService; secureCookies: boolean; branding?: PageBrandingSource }): void {
  const view = (s: { id: string; url: string; expiresAt: Date; provider: 'google' | 'microsoft' | null; mailboxId: string | null; mailbox: string | null }) => ({
    id: s.id,
    object: 'connect_session' as const,
    url: s.url,
    expiresAt: s.expiresAt.toISOString(),
    provider: s.provider,
    mailboxId: s.mailboxId,
    mailbox: s.mailbox,
  });

  routes.add({
    method: 'post',
    path: '/v1/connect-sessions',
    operationId: 'createConnectSession',
    summary: 'Start connecting a mailbox (or reconnecting one)',
    description:
      'Returns the hosted connect page URL. `returnUrl` must have exactly one of the tenant’s allowed return origins; the customer is sent back there with `mailbox_id` and `status` (`connected`, `denied`, `missing_scopes`, `mailbox_access_denied`, `expired`, `error`). With `mailbox` (provider `microsoft` only), a member of that Microsoft 365 shared mailbox signs in and the shared mailbox is connected (docs/connect.md, Shared mailboxes); for `google` it is refused with 400 `validation_error` until organization installs exist.',
    tags: ['Connect'],
    auth: 'tenant',
    body: z.strictObject({
      provider: providerSchema.optional(),
      returnUrl: z.string().max(2048).optional(),
      mailboxId: z.string().min(1).max(64).optional().meta({ description: 'Reconnect this mailbox (after `reauth_required`).' }),
      mailbox: z
        .email()
        .max(254)
        .optional()
        .meta({ description: 'A Microsoft 365 shared mailbox to connect through a member’s sign-in (needs `provider: "microsoft"`; not with `mailboxId`). The member’s own mailbox is not read.', example: 'support@contoso.example' }),
    }),
    responses: { 201: { description: 'Session created', schema: connectSessionSchema }, 409: { description: 'Mailbox is being disconnected', schema: errorSchema }, ...commonErrors },
    async handler({ body, principal }) {
      const s = await deps.connect.createSession(principal.tenantId, body, actorOf(principal));
      return { status: 201, body: view(s) };
    },
  });

  routes.add({
    method: 'get',
    path: '/v1/connect-sessions/:id',
    operationId: 'getConnectSession',
    summary: 'A connect session’s progress and result',
    description: 'For a ticket service that prefers polling to the returnUrl redirect or the mailbox.connected webhook.',
    tags: ['Connect'],
    auth: 'tenant',
    params: sessionParams,
    responses: {
      200: {
        description: 'The session',
        schema: z
          .object({
            id: z.string(),
            object: z.literal('connect_session'),
            url: z.string(),
            provider: providerSchema.nullable(),
            mailboxId: z.string().nullable(),
            mailbox: z.string().nullable(),
            status: z.enum(['pending', 'authorizing', 'completed', 'failed', 'expired']),
            result: z.enum(['connected', 'denied', 'missing_scopes', 'mailbox_access_denied', 'expired', 'error']).nullable(),
            resultMailboxId: z.string().nullable(),
            missingScopes: z.array(z.string()),
            expiresAt: z.string(),
            createdAt: z.string(),
          })
          .meta({ id: 'ConnectSessionStatus' }),
      },
      ...commonErrors,
    },
    async handler({ params, principal }) {
      const s = await deps.connect.describe(principal.tenantId, params.id);
      if (!s) throw new NotFoundError('connect session');
      return { status: 200, body: { ...s, object: 'connect_session', expiresAt: s.expiresAt.toISOString(), createdAt: s.createdAt.toISOString() } };
    },
  });

  routes.add({
    method: 'post',
    path: '/v1/mailboxes/:id/reconnect',
    operationId: 'reconnectMailbox',
    summary: 'A connect session that restores a mailbox needing re-consent',
    description:
      'A connect session that restores a mailbox in `reauth_required` with the same id and data (same provider and address): send the customer to its `url`.',
    tags: ['Connect', 'Mailboxes'],
    auth: 'tenant',
    params: mailboxIdParams,
    body: z.strictObject({ returnUrl: z.string().max(2048).optional() }),
    responses: { 201: { description: 'Session created', schema: connectSessionSchema }, 409: { description: 'Mailbox is being disconnected', schema: errorSchema }, ...commonErrors },
    async handler({ params, body, principal }) {
      const s = await deps.connect.createSession(principal.tenantId, { mailboxId: params.id, ...(body.returnUrl !== undefined ? { returnUrl: body.returnUrl } : {}) }, actorOf(principal));
      return { status: 201, body: view(s) };
    },
  });

  routes.add({
    method: 'get',
    path: '/connect/:id',
    operationId: 'connectPage',
    summary: 'Hosted connect page (HTML, no API key)',
    description:
      'The hosted page the customer opens from a connect session’s `url`: explains in plain words what is asked and leads to the provider’s consent. HTML; no API key (the session id is the capability).',
    tags: ['Connect'],
    auth: 'none',
    params: sessionParams,
    responses: { 200: { description: 'HTML page', contentType: 'text/html' }, 404: { description: 'Unknown session (HTML)' }, 410: { description: 'Expired or used (HTML)' } },
    async handler({ params, res }) {
      const v = await deps.connect.view(params.id);
      const branding = await brandingFor(res, deps.branding, v.tenantId);
      if (v.kind === 'closed') return sendHtml(res, v.reason === 'not_found' ? 404 : 410, closedPage(v.reason, branding));
      return sendHtml(res, 200, choosePage(v, branding));
    },
  });

  routes.add({
    method: 'get',
    path: CLEAN_URL_SCRIPT_PATH,
    operationId: 'connectCleanUrlScript',
    summary: 'Script of the hosted result pages (JavaScript, no API key)',
    description: 'Removes `code` and `state` from the address bar of the page shown at the OAuth callback (history.replaceState). Served as a file so the pages’ CSP needs no inline script.',
    tags: ['Connect'],
    auth: 'none',
    responses: { 200: { description: 'JavaScript', contentType: 'text/javascript' } },
    async handler({ res }) {
      res.status(200).setHeader('cache-control', 'public, max-age=3600').type('text/javascript').send(CLEAN_URL_SCRIPT);
      return { handled: true };
    },
  });

  const logos = providerLogos();
  routes.add({
    method: 'get',
    path: '/connect/assets/:file',
    operationId: 'connectProviderLogo',
    summary: 'Provider logo of the hosted connect page (SVG, no API key)',
    description: 'A plain wordmark SVG drawn for this project (assets/provider-logos), shown on the provider buttons of the hosted connect page.',
    tags: ['Connect'],
    auth: 'none',
    params: z.strictObject({ file: z.enum(['google.svg', 'microsoft.svg']) }),
    responses: { 200: { description: 'SVG image', contentType: 'image/svg+xml' }, 400: { description: 'Unknown file' } },
    async handler({ params, res }) {
      res.status(200).setHeader('cache-control', 'public, max-age=86400').setHeader('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'").type('image/svg+xml').send(logos[params.file]);
      return { handled: true };
    },
  });

  routes.add({
    method: 'get',
    path: '/connect/:id/start',
    operationId: 'connectStart',
    summary: 'Redirects the customer to the provider’s consent screen',
    description:
      'Starts the OAuth consent for the chosen provider (PKCE, single-use state bound to a cookie) and redirects the browser to Google or Microsoft. HTML flow; no API key.',
    tags: ['Connect'],
    auth: 'none',
    params: sessionParams,
    query: z.object({ provider: providerSchema.optional() }),
    responses: { 302: { description: 'To the provider' }, 410: { description: 'Expired or used (HTML)' } },
    async handler({ params, query, res }) {
      let r: Awaited<ReturnType<ConnectService['start']>>;
      try {
        r = await deps.connect.start(params.id, query.provider);
      } catch (err) {
        // The provider's discovery/authorize metadata could not be fetched: a page, not JSON.
        if (isProviderError(err)) return sendHtml(res, 502, unavailablePage(err.provider));
        throw err;
      }
      if (r.kind === 'closed') return sendHtml(res, r.reason === 'not_found' ? 404 : 410, closedPage(r.reason, await brandingFor(res, deps.branding, r.tenantId)));
      if (r.kind === 'choose_provider') {
        res.redirect(303, `/connect/${encodeURIComponent(params.id)}`);
        return { handled: true };
      }
      const maxAge = Math.max(1, Math.ceil((r.expiresAt.getTime() - Date.now()) / 1000));
      res.cookie(connectCookieName(r.sessionId), '1', { httpOnly: true, sameSite: 'lax', secure: deps.secureCookies, path: '/oauth', maxAge: maxAge * 1000 });
      res.setHeader('cache-control', 'no-store');
      res.redirect(302, r.url);
      return { handled: true };
    },
  });
}

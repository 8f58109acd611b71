import type { Request } from 'express';
import { z } from 'zod';
import { resultRedirect, type ConnectService } from '../../oauth/connect.service.js';
import type { ProviderName } from '../../providers/mail-provider.port.js';
import { rejectedPage, resultPage } from '../pages/connect-pages.js';
import type { RouteRegistry } from '../route-registry.js';
import { brandingFor, connectCookieName, sendHtml, type PageBrandingSource } from './connect.route.js';

// Providers add their own parameters (Google: scope, authuser, prompt; Entra: session_state,
// client_info); only these three matter and unknown ones are dropped, not rejected.
const callbackQuery = z.object({
  state: z.string().max(200).optional(),
  code: z.string().max(4096).optional(),
  error: z.string().max(200).optional(),
});

function cookieNames(req: Request): Set<string> {
  const names = new Set<string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) names.add(part.slice(0, eq).trim());
  }
  return names;
}

/**
 * `GET /oauth/{google,microsoft}/callback`: where the provider sends the customer back. Known
 * sessions end with a redirect to the tenant's returnUrl (or a result page); anything that
 * cannot be tied to a live session started in this browser gets a page and changes nothing.
 */
export function registerOAuthCallbackRoutes(routes: RouteRegistry, deps: { connect: ConnectService; branding?: PageBrandingSource }): void {
  for (const provider of ['google', 'microsoft'] as const satisfies readonly ProviderName[]) {
    routes.add({
      method: 'get',
      path: `/oauth/${provider}/callback`,
      operationId: `${provider}OAuthCallback`,
      summary: `OAuth redirect URI for ${provider === 'google' ? 'Google' : 'Microsoft'} (HTML, no API key)`,
      description: `Where ${provider === 'google' ? 'Google' : 'Microsoft'} sends the customer back after consent: the state and its cookie are checked, the code exchanged, the mailbox stored, then the result page is shown or the browser goes back to the session’s returnUrl. Register this URL in the provider app (docs/connect.md).`,
      tags: ['Connect'],
      auth: 'none',
      query: callbackQuery,
      responses: { 302: { description: 'Back to the tenant’s returnUrl with mailbox_id and status' }, 200: { description: 'Result page (HTML)', contentType: 'text/html' }, 400: { description: 'Rejected callback (HTML)' } },
      async handler({ query, req, res }) {
        const cookies = cookieNames(req);
        const outcome = await deps.connect.callback(provider, query, (sessionId) => cookies.has(connectCookieName(sessionId)));
        if (outcome.kind === 'rejected') return sendHtml(res, 400, rejectedPage(outcome.reason));
        res.clearCookie(connectCookieName(outcome.sessionId), { path: '/oauth' });
        if (outcome.returnUrl) {
          res.setHeader('cache-control', 'no-store');
          res.redirect(302, resultRedirect(outcome.returnUrl, outcome.result, outcome.mailboxId, outcome.sessionId));
          return { handled: true };
        }
        // Declined / a permission unticked / no access to the shared mailbox: the same session can be started again until it expires.
        const retryUrl = outcome.result === 'denied' || outcome.result === 'missing_scopes' || outcome.result === 'mailbox_access_denied' ? `/connect/${encodeURIComponent(outcome.sessionId)}` : undefined;
        const branding = await brandingFor(res, deps.branding, outcome.tenantId);
        return sendHtml(res, outcome.result === 'connected' ? 200 : 400, resultPage(outcome, retryUrl, branding));
      },
    });
  }
}

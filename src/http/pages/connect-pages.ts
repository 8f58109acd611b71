import type { Response } from 'express';
import type { CallbackOutcome, SessionView } from '../../oauth/connect.service.js';
import type { ProviderName } from '../../providers/mail-provider.port.js';
import { NO_BRANDING, type PageBranding } from '../../tenancy/tenant-branding.js';

/**
 * The hosted connect pages. Every interpolated value goes through `escapeHtml`; pages carry no
 * script, and the only form-like action is a plain link to our own /start endpoint.
 */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' })[c] ?? c);
}

const PROVIDER_NAMES: Record<ProviderName, string> = { google: 'Google (Gmail / Google Workspace)', microsoft: 'Microsoft 365 / Outlook' };

/**
 * Served as /connect/assets/clean-url.js on the pages shown at the OAuth callback URL: drops
 * `?code=…&state=…` from the address bar (and so from history and bookmarks). A file, not inline
 * script, so the CSP stays `script-src 'self'`.
 */
export const CLEAN_URL_SCRIPT = "if (window.location.search) window.history.replaceState(null, '', window.location.pathname);\n";
export const CLEAN_URL_SCRIPT_PATH = '/connect/assets/clean-url.js';

/**
 * The page's Content-Security-Policy with the tenant logo's origin added to `img-src` (and
 * nothing else widened): the logo is the only cross-origin resource a hosted page loads.
 */
export function cspWithImageOrigin(csp: string, origin: string): string {
  const directives = csp
    .split(';')
    .map((d) => d.trim())
    .filter(Boolean);
  const i = directives.findIndex((d) => /^img-src(\s|$)/i.test(d));
  if (i >= 0) directives[i] = `${directives[i]} ${origin}`;
  else directives.push(`img-src 'self' data: ${origin}`);
  return directives.join(';');
}

/** Lets this response load the tenant's logo: its origin joins the CSP img-src that helmet set. */
export function allowLogo(res: Response, branding: PageBranding): void {
  const csp = res.getHeader('content-security-policy');
  if (branding.logo && typeof csp === 'string') res.setHeader('content-security-policy', cspWithImageOrigin(csp, branding.logo.origin));
}

/** How the pages name the tenant: its display name, or "your helpdesk" when none is set. */
function tenantName(b: PageBranding, capital = false): string {
  return b.displayName ? escapeHtml(b.displayName) : capital ? 'Your helpdesk' : 'your helpdesk';
}

/** The tenant's logo above the page (alt text names the tenant) and its "Contact support" link below. */
function brandHeader(b: PageBranding): string {
  if (!b.logo) return '';
  const alt = b.displayName ? `${escapeHtml(b.displayName)} logo` : 'Helpdesk logo';
  return `<header class="brand"><img class="brand-logo" id="brand-logo" src="${escapeHtml(b.logo.url)}" alt="${alt}" referrerpolicy="no-referrer" decoding="async"></header>`;
}

function brandFooter(b: PageBranding): string {
  if (!b.supportUrl) return '';
  const external = b.supportUrl.startsWith('mailto:') ? '' : ' target="_blank" rel="noopener noreferrer"';
  return `<footer class="support"><p>Questions about connecting your mailbox? <a id="support-link" href="${escapeHtml(b.supportUrl)}"${external}>Contact support</a></p></footer>`;
}

/** The hosted pages' one layout (connect, result and organization-install pages). */
/** `script`: the path of one of our own script files (CSP `script-src 'self'`; no inline script). */
export function hostedPageLayout(title: string, body: string, opts: { cleanUrl?: boolean; branding?: PageBranding; script?: string } = {}): string {
  const b = opts.branding ?? NO_BRANDING;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1f2328;line-height:1.5}
h1{font-size:1.5rem}.card{border:1px solid #d0d7de;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}
ul.scopes{padding-left:1.2rem}ul.scopes li{margin:.4rem 0}.button{display:inline-block;background:#0969da;color:#fff;padding:.6rem 1rem;border-radius:6px;text-decoration:none;font-weight:600}
.muted{color:#59636e;font-size:.9rem}h2 .logo{display:block;margin-bottom:.4rem}.error{color:#b42318}
.brand{margin-bottom:1rem}.brand-logo{display:block;max-height:48px;max-width:200px;width:auto;height:auto;object-fit:contain}
.support{border-top:1px solid #d0d7de;margin-top:2rem;padding-top:.75rem}.support a{color:#0969da}
</style>${opts.cleanUrl ? `<script src="${CLEAN_URL_SCRIPT_PATH}" defer></script>` : ''}${opts.script ? `<script src="${escapeHtml(opts.script)}" defer></script>` : ''}</head><body>${brandHeader(b)}<main>${body}</main>${brandFooter(b)}</body></html>`;
}

export function choosePage(view: Extract<SessionView, { kind: 'choose' }>, branding: PageBranding = NO_BRANDING): string {
  const cards = view.providers
    .map((p) => {
      const scopes = p.scopes.map((s) => `<li><strong>${escapeHtml(s.label)}</strong> — ${escapeHtml(s.why)}</li>`).join('');
      const start = `/connect/${encodeURIComponent(view.sessionId)}/start?provider=${encodeURIComponent(p.provider)}`;
      return `<div class="card" data-provider="${escapeHtml(p.provider)}">
<h2><img class="logo" src="/connect/assets/${escapeHtml(p.provider)}.svg" alt="" width="120" height="32"> ${escapeHtml(PROVIDER_NAMES[p.provider])}</h2>
<p>You will be asked to allow:</p><ul class="scopes">${scopes}</ul>
<a class="button" id="start-${escapeHtml(p.provider)}" href="${escapeHtml(start)}">Continue with ${escapeHtml(p.provider === 'google' ? 'Google' : 'Microsoft')}</a>
</div>`;
    })
    .join('');
  if (view.sharedMailbox !== undefined) return sharedChoosePage(view, view.sharedMailbox, cards, branding);
  const intro = view.reconnect
    ? `<p>${tenantName(branding, true)} lost access to this mailbox (for example after a password change or a revoked permission). Sign in again to reconnect it. Mail already collected is kept.</p>`
    : `<p>${tenantName(branding, true)} asks to connect a mailbox so that email sent to it becomes tickets and agents can reply from it. ${view.providers.length > 1 ? 'Choose where the mailbox is hosted.' : ''}</p>`;
  const heading = `${view.reconnect ? 'Reconnect your mailbox' : 'Connect your mailbox'}${branding.displayName ? ` to ${escapeHtml(branding.displayName)}` : ''}`;
  // The title is escaped by layout; the heading here is already escaped.
  const title = `${view.reconnect ? 'Reconnect your mailbox' : 'Connect your mailbox'}${branding.displayName ? ` to ${branding.displayName}` : ''}`;
  return hostedPageLayout(
    title,
    `<h1 id="connect-heading">${heading}</h1>${intro}${cards}
<p class="muted">Access is limited to what is listed. You can disconnect at any time from ${tenantName(branding)}, or remove the app in your account's security settings.</p>`,
    { branding },
  );
}

/**
 * A member connects a Microsoft 365 shared mailbox: the page names exactly the one mailbox that
 * will be read (Limited Use, issue 15 item 5) and says the member's own mailbox is not read.
 */
function sharedChoosePage(view: Extract<SessionView, { kind: 'choose' }>, sharedMailbox: string, cards: string, branding: PageBranding): string {
  const who = tenantName(branding);
  const address = `<strong id="shared-mailbox">${escapeHtml(sharedMailbox)}</strong>`;
  const verb = view.reconnect ? 'Reconnect the shared mailbox' : 'Connect the shared mailbox';
  const heading = `${verb} ${escapeHtml(sharedMailbox)}${branding.displayName ? ` to ${escapeHtml(branding.displayName)}` : ''}`;
  const title = `${verb} ${sharedMailbox}${branding.displayName ? ` to ${branding.displayName}` : ''}`;
  return hostedPageLayout(
    title,
    `<h1 id="connect-heading">${heading}</h1>
<p>${tenantName(branding, true)} asks to connect the Microsoft 365 shared mailbox ${address} so that email sent to it becomes tickets and agents can reply from it. Sign in with your own work account: you must be a member of this shared mailbox (Full Access).</p>
<div class="card" id="limited-use"><p><strong>Which mailbox is read:</strong> only the Inbox of ${address}. Your own mailbox is not read, and no other shared mailbox you can open is read.</p>
<p><strong>What is sent:</strong> replies from ${address} (they appear in its Sent Items), only when an agent answers a ticket in ${who}.</p>
<p>The connection uses your membership: if you leave the shared mailbox or are removed from it, ${who} stops reading it until a member connects it again.</p></div>${cards}
<p class="muted">Access is limited to what is listed. You can disconnect at any time from ${who}, or remove the app in your account's security settings.</p>`,
    { branding },
  );
}

export function closedPage(reason: 'not_found' | 'expired' | 'used', branding: PageBranding = NO_BRANDING): string {
  const who = tenantName(branding);
  const text = {
    not_found: ['Link not found', `This connect link does not exist. Ask ${who} for a new one.`],
    expired: ['This link has expired', `Connect links are valid for a limited time. Go back to ${who} and start again to get a new link.`],
    used: ['This link was already used', `Each connect link works once. Go back to ${who} to see the result, or start again for a new link.`],
  }[reason];
  return hostedPageLayout(text[0]!, `<h1 id="closed" data-reason="${escapeHtml(reason)}">${escapeHtml(text[0]!)}</h1><p>${text[1]!}</p>`, { branding });
}

export function rejectedPage(reason: Extract<CallbackOutcome, { kind: 'rejected' }>['reason']): string {
  const text = {
    invalid_state: 'This sign-in response does not belong to a connect request we know. Nothing was changed. Start again from your helpdesk.',
    already_used: 'This sign-in response was already used. Nothing more was changed. Go back to your helpdesk to see the result.',
    other_browser: 'This sign-in was started in a different browser. Nothing was changed. Finish it in the browser where you started, or start again here.',
    wrong_provider: 'This sign-in response came from a different provider than the one that was started. Nothing was changed.',
  }[reason];
  return hostedPageLayout('Sign-in not accepted', `<h1 id="rejected" data-reason="${escapeHtml(reason)}">Sign-in not accepted</h1><p>${escapeHtml(text)}</p>`, { cleanUrl: true });
}

export function resultPage(outcome: Extract<CallbackOutcome, { kind: 'finished' }>, retryUrl: string | undefined, branding: PageBranding = NO_BRANDING): string {
  const name = outcome.provider === 'google' ? 'Google' : 'Microsoft';
  const who = tenantName(branding);
  const again = retryUrl ? `<p><a class="button" id="try-again" href="${escapeHtml(retryUrl)}">Try again</a></p>` : `<p>Go back to ${who} to start again.</p>`;
  const opts = { cleanUrl: true, branding };
  switch (outcome.result) {
    case 'connected':
      return hostedPageLayout(
        'Mailbox connected',
        `<h1 id="result" data-status="connected">Mailbox connected${branding.displayName ? ` to ${escapeHtml(branding.displayName)}` : ''}</h1><p>Your ${escapeHtml(name)} mailbox ${outcome.address ? `<strong id="address">${escapeHtml(outcome.address)}</strong> ` : ''}is connected. New email will appear in ${who} within a few minutes. You can close this window.</p><p class="muted">Reference: ${escapeHtml(outcome.mailboxId ?? '')}</p>`,
        opts,
      );
    case 'denied':
      return hostedPageLayout('Not connected', `<h1 id="result" data-status="denied">Not connected</h1><p>You declined access at ${escapeHtml(name)}, so nothing was connected to ${who} and nothing was stored.</p>${again}`, opts);
    case 'missing_scopes': {
      const items = outcome.missing.map((m) => `<li data-scope="${escapeHtml(m.scope)}"><strong>${escapeHtml(m.label)}</strong> — ${escapeHtml(m.why)}</li>`).join('');
      const revoke =
        outcome.provider === 'google'
          ? 'The partial access you granted has been withdrawn again.'
          : 'Nothing was stored. To remove the partial permission from your account, visit myapps.microsoft.com (work accounts) or account.live.com/consent/Manage (personal accounts).';
      return hostedPageLayout('Some permissions are missing', `<h1 id="result" data-status="missing_scopes">Some permissions are missing</h1><p>The mailbox was not connected to ${who} because these permissions were not granted:</p><ul class="scopes" id="missing">${items}</ul><p>${escapeHtml(revoke)}</p><p>Start again and leave all boxes ticked.</p>${again}`, opts);
    }
    case 'expired':
      return hostedPageLayout('This link has expired', `<h1 id="result" data-status="expired">This link has expired</h1><p>The connect request timed out before sign-in finished. Nothing was connected.</p><p>Go back to ${who} to start again.</p>`, opts);
    case 'mailbox_access_denied':
      return hostedPageLayout('No access to the shared mailbox', `<h1 id="result" data-status="mailbox_access_denied">No access to the shared mailbox</h1><p class="error">${escapeHtml(outcome.detail ?? 'The account you signed in with cannot open this mailbox.')}</p><p>Nothing was stored.</p>${again}`, opts);
    case 'error':
      return hostedPageLayout('Could not connect', `<h1 id="result" data-status="error">Could not connect</h1><p class="error">${escapeHtml(outcome.detail ?? 'Something went wrong while connecting.')}</p><p>Nothing was changed.</p>${again}`, opts);
  }
}

export function unavailablePage(provider: ProviderName): string {
  const name = provider === 'google' ? 'Google' : 'Microsoft';
  return hostedPageLayout(`${name} is not reachable`, `<h1 id="unavailable">${escapeHtml(name)} is not reachable right now</h1><p>The sign-in could not be started. Nothing was changed. Please try again in a few minutes.</p>`);
}

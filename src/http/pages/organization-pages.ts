import type { CallbackOutcome } from '../../organizations/organization-install.service.js';
import { NO_BRANDING, type PageBranding } from '../../tenancy/tenant-branding.js';
import { escapeHtml, hostedPageLayout as layout } from './connect-pages.js';

/** How the pages name the tenant (the helpdesk): its display name, or "your helpdesk". */
function helpdesk(b: PageBranding, capital = false): string {
  return b.displayName ? escapeHtml(b.displayName) : capital ? 'Your helpdesk' : 'your helpdesk';
}

/**
 * The hosted page an organization's administrator opens (issue 15 item 5, Limited Use): exactly
 * which mailboxes the connector reads, and what the permissions would allow on their own. Branded
 * like the customer's connect pages (the tenant's display name, logo and support link).
 */
export function adminConsentPage(continueUrl: string, branding: PageBranding = NO_BRANDING): string {
  const to = branding.displayName ? ` to ${escapeHtml(branding.displayName)}` : '';
  return layout(
    `Connect your organization’s mailboxes${branding.displayName ? ` to ${branding.displayName}` : ''}`,
    `<h1>Connect your organization’s mailboxes${to}</h1>
<p>${helpdesk(branding, true)} asks an administrator of your organization to install the mailbox connector, so that email sent to the mailboxes it adds becomes tickets and agents can reply from them.</p>
<div class="card" id="what-we-read">
<p>Microsoft will ask you, as an administrator, to grant two <b>application permissions</b> for your organization:</p>
<ul><li><b>Read mail in all mailboxes</b> (<code>Mail.Read</code>)</li><li><b>Send mail as any user</b> (<code>Mail.Send</code>)</li></ul>
<p><b>The connector reads and sends only from the mailboxes ${helpdesk(branding)} adds by address</b> — one at a time, each recorded in an audit log — and refuses every other mailbox. Removing a mailbox, or uninstalling, deletes everything the connector stored from it.</p>
<p>Microsoft’s permissions on their own reach every mailbox. We recommend restricting the app to the added mailboxes with an Exchange Online <b>application access policy</b> (<code>New-ApplicationAccessPolicy -AccessRight RestrictAccess</code>) or RBAC for applications; the connector checks the restriction and warns ${helpdesk(branding)} when it is missing.</p>
</div>
<p>First sign in with your Microsoft work account, so the connector knows which organization you administer; Microsoft then asks you to grant the permissions for that organization.</p>
<p><a class="button" id="continue" href="${escapeHtml(continueUrl)}">Sign in with Microsoft</a></p>
<p class="muted">Only a Global Administrator or Privileged Role Administrator of your organization can grant these permissions.</p>`,
    { branding },
  );
}

export function installClosedPage(): string {
  return layout('Link not valid', `<h1>This link is not valid any more</h1><p>It expired or was already used. Ask your helpdesk to start the installation again.</p>`);
}

export function installResultPage(outcome: Exclude<CallbackOutcome, { kind: 'redirect' }>, branding: PageBranding = NO_BRANDING): string {
  if (outcome.kind === 'installed') {
    return layout(
      'Installed',
      `<h1 id="result">Installed for your organization</h1><p>${helpdesk(branding, true)} can now add mailboxes by address. Nothing is read until a mailbox is added.</p>` +
        (outcome.install.warnings.includes('app_access_unrestricted') ? `<p class="error" id="warning">The app can read mailboxes it was not given. Restrict it with an application access policy.</p>` : ''),
      { branding },
    );
  }
  return layout('Not installed', `<h1 id="result">Not installed</h1><p class="error">${escapeHtml(outcome.message)}</p>`, { branding });
}

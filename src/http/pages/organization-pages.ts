import type { CallbackOutcome } from '../../organizations/organization-install.service.js';
import { escapeHtml } from './connect-pages.js';

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1f2328;line-height:1.5}
h1{font-size:1.5rem}.card{border:1px solid #d0d7de;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}
.button{display:inline-block;background:#0969da;color:#fff;padding:.6rem 1rem;border-radius:6px;text-decoration:none;font-weight:600}
.muted{color:#59636e;font-size:.9rem}.error{color:#b42318}
</style></head><body><main>${body}</main></body></html>`;
}

/**
 * The hosted page an organization's administrator opens (issue 15 item 5, Limited Use): exactly
 * which mailboxes the connector reads, and what the permissions would allow on their own.
 */
export function adminConsentPage(adminConsentUrl: string): string {
  return layout(
    'Install for your organization',
    `<h1>Install the mailbox connector for your organization</h1>
<div class="card" id="what-we-read">
<p>Microsoft will ask you, as an administrator, to grant two <b>application permissions</b> for your organization:</p>
<ul><li><b>Read mail in all mailboxes</b> (<code>Mail.Read</code>)</li><li><b>Send mail as any user</b> (<code>Mail.Send</code>)</li></ul>
<p><b>The connector reads and sends only from the mailboxes your helpdesk adds by address</b> — one at a time, each recorded in an audit log — and refuses every other mailbox. Removing a mailbox, or uninstalling, deletes everything the connector stored from it.</p>
<p>Microsoft’s permissions on their own reach every mailbox. We recommend restricting the app to the added mailboxes with an Exchange Online <b>application access policy</b> (<code>New-ApplicationAccessPolicy -AccessRight RestrictAccess</code>) or RBAC for applications; the connector checks the restriction and warns your helpdesk when it is missing.</p>
</div>
<p><a class="button" id="continue" href="${escapeHtml(adminConsentUrl)}">Continue to Microsoft</a></p>
<p class="muted">Only an administrator of your organization can grant these permissions.</p>`,
  );
}

export function installClosedPage(): string {
  return layout('Link not valid', `<h1>This link is not valid any more</h1><p>It expired or was already used. Ask your helpdesk to start the installation again.</p>`);
}

export function installResultPage(outcome: CallbackOutcome): string {
  if (outcome.kind === 'installed') {
    return layout(
      'Installed',
      `<h1 id="result">Installed for your organization</h1><p>The helpdesk can now add mailboxes by address. Nothing is read until a mailbox is added.</p>` +
        (outcome.install.warnings.includes('app_access_unrestricted') ? `<p class="error" id="warning">The app can read mailboxes it was not given. Restrict it with an application access policy.</p>` : ''),
    );
  }
  return layout('Not installed', `<h1 id="result">Not installed</h1><p class="error">${escapeHtml(outcome.message)}</p>`);
}

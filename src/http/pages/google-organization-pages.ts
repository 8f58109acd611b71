import { GOOGLE_DELEGATED_SCOPES } from '../../providers/google/google-delegated-access.js';
import { NO_BRANDING, type PageBranding } from '../../tenancy/tenant-branding.js';
import { escapeHtml, hostedPageLayout as layout } from './connect-pages.js';

/** Where the upload form posts (the state travels in the form body, never in this URL). */
export const GOOGLE_UPLOAD_PATH = '/organization-install/google';

/**
 * Served as KEY_FILE_SCRIPT_PATH: the "choose the key file" button reads the file in the browser
 * into the key field (nothing is uploaded until the form is posted). Without script the button
 * stays hidden and the key is pasted. Our own file, so the CSP stays `script-src 'self'`.
 */
export const KEY_FILE_SCRIPT_PATH = '/organization-install/assets/key-file.js';
export const KEY_FILE_SCRIPT = `(function () {
  var picker = document.getElementById('key-file');
  var field = document.getElementById('serviceAccountKey');
  var note = document.getElementById('key-file-note');
  if (!picker || !field || !picker.parentElement) return;
  picker.parentElement.hidden = false;
  picker.addEventListener('change', function () {
    var file = picker.files && picker.files[0];
    if (!file) return;
    if (file.size > 16000) { note.textContent = 'This file is too large to be a service-account key.'; return; }
    file.text().then(function (text) { field.value = text; note.textContent = 'Key file read: ' + file.name; });
  });
})();
`;

/** The line the administrator pastes into the Admin console's "OAuth scopes" field. */
export const DELEGATION_SCOPES_LINE = GOOGLE_DELEGATED_SCOPES.join(',');

function helpdesk(b: PageBranding, capital = false): string {
  return b.displayName ? escapeHtml(b.displayName) : capital ? 'Your helpdesk' : 'your helpdesk';
}

export interface GoogleUploadForm {
  state: string;
  /** The domain the helpdesk named when it started the install, if any. */
  domain: string | null;
  /** The verify address typed before (re-shown after a refusal); the key is never re-shown. */
  verifyAddress?: string;
  /** A refusal of the last attempt, in plain words. */
  error?: { reason: string; message: string };
}

/**
 * The hosted page a Google Workspace administrator opens from `consentUrl` (issue 15 items 3, 5):
 * the Limited Use statement, how to create the service account, its domain-wide delegation and
 * its JSON key, then a form to upload the key: pasted into a textarea, or read from the chosen file
 * by our own script (KEY_FILE_SCRIPT) into it; the file input has no name, so only the field is posted.
 */
export function googleUploadPage(form: GoogleUploadForm, branding: PageBranding = NO_BRANDING): string {
  const to = branding.displayName ? ` to ${escapeHtml(branding.displayName)}` : '';
  const domain = form.domain ? `<b>${escapeHtml(form.domain)}</b>` : 'your Workspace domain';
  const error = form.error
    ? `<div class="card" id="refusal" role="alert"><p class="error"><b>Not installed yet.</b> ${escapeHtml(form.error.message)}</p><p>Fix this and upload the key again below (this link stays valid until it expires).</p></div>`
    : '';
  return layout(
    `Connect your Google Workspace mailboxes${branding.displayName ? ` to ${branding.displayName}` : ''}`,
    `<h1>Connect your Google Workspace mailboxes${to}</h1>
${error}
<p>${helpdesk(branding, true)} asks an administrator of your Google Workspace to install the mailbox connector, so that email sent to the mailboxes it adds becomes tickets and agents can reply from them.</p>
<div class="card" id="what-we-read">
<p>You give the connector a <b>service account</b> of your own with <b>domain-wide delegation</b> of exactly two Gmail scopes:</p>
<ul><li><b>Read email</b> (<code>https://www.googleapis.com/auth/gmail.readonly</code>)</li><li><b>Send email</b> (<code>https://www.googleapis.com/auth/gmail.send</code>)</li></ul>
<p><b>The connector reads and sends only from the mailboxes ${helpdesk(branding)} adds by address</b> in ${domain} — one at a time, each recorded in an audit log — and never uses the key for any other user. Removing a mailbox, or uninstalling, deletes everything the connector stored from it and the stored key.</p>
<p>Domain-wide delegation on its own reaches every user of the domain: Google cannot limit it to some users. The key is stored only encrypted, is never shown again, and you can delete it in Google Cloud at any time to stop all access.</p>
</div>
<h2>Steps</h2>
<ol id="steps">
<li>In the Google Cloud console, in a project of your organization, enable the <b>Gmail API</b> (APIs &amp; Services → Library).</li>
<li>Create a <b>service account</b> (IAM &amp; Admin → Service accounts → Create service account). It needs no role in the project.</li>
<li>Open the service account and copy its <b>Unique ID</b> (the OAuth 2.0 client ID; it is also <code>client_id</code> in the key file).</li>
<li>In the Google <b>Admin console</b> go to <b>Security → API controls → Domain-wide delegation</b>, choose <b>Add new</b>, paste the client ID, and in <b>OAuth scopes</b> enter exactly:<br><code id="scopes-line">${escapeHtml(DELEGATION_SCOPES_LINE)}</code><br>then <b>Authorize</b>. Only a super administrator can do this.</li>
<li>Back on the service account: <b>Keys → Add key → Create new key → JSON</b>. Your browser downloads the key file.</li>
<li>Choose the key file below (or open it in a text editor and copy all of it into the key field), give the address of a user of ${domain} (for example the first mailbox ${helpdesk(branding)} will add), and install. Then delete the downloaded file.</li>
</ol>
<form method="post" action="${GOOGLE_UPLOAD_PATH}" id="upload" autocomplete="off">
<input type="hidden" name="state" value="${escapeHtml(form.state)}">
<p hidden><label for="key-file"><b>Choose the downloaded key file</b> (read here, in your browser)</label><br>
<input type="file" id="key-file" accept=".json,application/json"> <span id="key-file-note" role="status"></span></p>
<p><label for="serviceAccountKey"><b>Service-account JSON key</b> (the whole file, starting with <code>{</code>)</label><br>
<textarea id="serviceAccountKey" name="serviceAccountKey" rows="10" cols="60" required spellcheck="false" autocapitalize="off" maxlength="16000"></textarea></p>
<p><label for="verifyAddress"><b>A user of ${form.domain ? escapeHtml(form.domain) : 'the domain'}</b> (the delegation is checked with a token for this user)</label><br>
<input id="verifyAddress" name="verifyAddress" type="email" required maxlength="320" size="40" value="${escapeHtml(form.verifyAddress ?? '')}"></p>
<p><button class="button" id="install" type="submit">Check and install</button></p>
</form>
<p class="muted">The connector checks the key by asking Google for a token for that user with exactly the two scopes above; nothing is read from the mailbox but its address.</p>`,
    { branding, script: KEY_FILE_SCRIPT_PATH },
  );
}

export function googleInstalledPage(domain: string | null, branding: PageBranding = NO_BRANDING): string {
  return layout(
    'Installed',
    `<h1 id="result" data-status="installed">Installed for ${domain ? escapeHtml(domain) : 'your organization'}</h1><p>${helpdesk(branding, true)} can now add mailboxes by address. Nothing is read until a mailbox is added.</p>
<p>You can delete the downloaded key file now: the connector keeps its own encrypted copy. Deleting the key in Google Cloud, or the domain-wide delegation in the Admin console, stops all access.</p>`,
    { branding },
  );
}

export function googleFormTooLargePage(): string {
  return layout('Not installed', `<h1 id="result" data-status="too_large">Not installed</h1><p class="error">The form was too large. Paste only the service-account JSON key file (about 2.5 KB), then try again from the link you were given.</p>`);
}

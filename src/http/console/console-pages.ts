/**
 * The ops console's pages: server-rendered HTML, no script. Every page is built with the `html`
 * tagged template, which escapes every interpolated value unless it is already `Html` (a
 * fragment built the same way): nothing reaches a page unescaped by forgetting to escape it.
 *
 * What the pages show is what the ops views return (src/bootstrap/ops-views.module.ts): ids,
 * states, times, counts and error codes — never a mailbox address, a correspondent, a subject or
 * any other mail content.
 */

export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ESCAPES[c] ?? c);
}

function render(v: unknown): string {
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === null || v === undefined || v === false) return '';
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new Html(out);
}

export interface PageChrome {
  title: string;
  /** Set when signed in: the nav and the sign-out form (with its CSRF token) are shown. */
  csrf?: string;
  current?: 'tenants' | 'mailboxes';
}

export function layout(chrome: PageChrome, body: Html): string {
  const nav = chrome.csrf
    ? html`<nav aria-label="Console"><ul>
<li><a href="/admin/tenants"${chrome.current === 'tenants' ? html` aria-current="page"` : ''}>Tenants</a></li>
<li><a href="/admin/mailboxes"${chrome.current === 'mailboxes' ? html` aria-current="page"` : ''}>Mailboxes</a></li>
</ul></nav>
<form method="post" action="/admin/logout"><input type="hidden" name="_csrf" value="${chrome.csrf}"><button type="submit" class="secondary">Sign out</button></form>`
    : '';
  return `<!doctype html>\n${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${chrome.title} · Mailbox connector ops</title>
<link rel="stylesheet" href="/admin/assets/console.css"></head>
<body><a class="skip" href="#main">Skip to content</a>
<header><a class="brand" href="/admin">Mailbox connector ops</a>${nav}</header>
<main id="main">${body}</main></body></html>`.value}`;
}

const when = (iso: string | null | undefined): Html => (iso ? html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>` : html`<span class="muted">never</span>`);

export function duration(seconds: number | null): string {
  if (seconds === null) return '—';
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

function statusClass(value: string): string {
  if (['active', 'ok', 'done', 'completed', 'revoked', 'idle', 'enabled'].includes(value)) return 'status-ok';
  if (['reauth_required', 'expired', 'failed', 'error', 'dead', 'purged', 'disabled'].includes(value)) return 'status-bad';
  return 'status-warn';
}
const badge = (value: string): Html => html`<span class="${statusClass(value)}">${value}</span>`;

export function loginPage(opts: { error?: string; next?: string }): string {
  return layout(
    { title: 'Sign in' },
    html`<h1>Sign in to the ops console</h1>
${opts.error ? html`<p class="error" role="alert" id="login-error">${opts.error}</p>` : ''}
<form method="post" action="/admin/login">
<label for="apiKey">Admin API key</label>
<p class="hint" id="apiKey-hint">An ops key from <code>mailbox-connector api-keys create --admin</code> (starts with <code>mbc_admin_</code>). It is checked once; the console then uses a session.</p>
<input type="password" id="apiKey" name="apiKey" required autocomplete="off" spellcheck="false" aria-describedby="apiKey-hint${opts.error ? ' login-error' : ''}"${opts.error ? html` aria-invalid="true"` : ''}>
${opts.next ? html`<input type="hidden" name="next" value="${opts.next}">` : ''}
<p><button type="submit">Sign in</button></p>
</form>`,
  );
}

export interface TenantOverview {
  tenantId: string;
  name: string;
  retentionDays: number | null;
  createdAt: string;
  mailboxes: Record<string, number>;
  /** Branding of the hosted connect pages (docs/connect.md); null or absent = not set. */
  displayName?: string | null;
  logoUrl?: string | null;
  supportUrl?: string | null;
}

/**
 * The tenant's hosted-page branding as text: the console shows the URLs, it never loads the logo
 * (its CSP allows images from itself only, and a tenant-chosen URL is not the operator's to fetch).
 */
function brandingFacts(t: TenantOverview): Html {
  const notSet = html`<span class="muted">not set</span>`;
  return html`<dt>Hosted pages name</dt><dd>${t.displayName ?? notSet}${t.displayName ? '' : html` <span class="muted">(pages say “your helpdesk”)</span>`}</dd>
<dt>Hosted pages logo</dt><dd>${t.logoUrl ? html`<code>${t.logoUrl}</code>` : notSet}</dd>
<dt>Support link</dt><dd>${t.supportUrl ? html`<code>${t.supportUrl}</code>` : notSet}</dd>`;
}

export function tenantsPage(csrf: string, tenants: TenantOverview[]): string {
  const rows = tenants.map(
    (t) => html`<tr><td><a href="/admin/tenants/${encodeURIComponent(t.tenantId)}">${t.name}</a><br><span class="id">${t.tenantId}</span></td>
<td>${t.mailboxes.active ?? 0}</td><td>${t.mailboxes.reauth_required ?? 0}</td><td>${t.mailboxes.disconnecting ?? 0}</td>
<td>${t.retentionDays === null ? html`<span class="muted">keep</span>` : `${t.retentionDays} days`}</td><td>${when(t.createdAt)}</td>
<td><a href="/admin/mailboxes?tenantId=${encodeURIComponent(t.tenantId)}">Mailboxes<span class="skip"> of ${t.name}</span></a></td></tr>`,
  );
  return layout(
    { title: 'Tenants', csrf, current: 'tenants' },
    html`<h1>Tenants</h1>
${tenants.length === 0 ? html`<p>No tenants yet. Create one with <code>mailbox-connector tenants create --name …</code>.</p>` : html`<table>
<caption class="muted">${tenants.length} tenant${tenants.length === 1 ? '' : 's'}</caption>
<thead><tr><th scope="col">Tenant</th><th scope="col">Active mailboxes</th><th scope="col">Need reconnect</th><th scope="col">Disconnecting</th><th scope="col">Retention</th><th scope="col">Created</th><th scope="col"><span class="skip">Links</span></th></tr></thead>
<tbody>${rows}</tbody></table>`}`,
  );
}

export interface EndpointOverview {
  endpointId: string;
  url: string;
  enabled: boolean;
  disabledReason: string | null;
  previousSecretExpiresAt: string | null;
  deadDeliveries: number;
  createdAt: string;
}

export function tenantPage(csrf: string, tenant: TenantOverview, endpoints: EndpointOverview[]): string {
  const rows = endpoints.map(
    (e) => html`<tr><td><span class="id">${e.endpointId}</span></td><td>${e.url}</td>
<td>${e.enabled ? badge('enabled') : html`${badge('disabled')}${e.disabledReason ? html`<br><span class="muted">${e.disabledReason}</span>` : ''}`}</td>
<td>${e.deadDeliveries}</td><td>${e.previousSecretExpiresAt ? html`previous secret valid until ${when(e.previousSecretExpiresAt)}` : html`<span class="muted">—</span>`}</td>
<td><form method="post" action="/admin/endpoints/${encodeURIComponent(e.endpointId)}/rotate-secret" class="inline">
<input type="hidden" name="_csrf" value="${csrf}"><button type="submit" class="secondary" aria-label="Rotate secret of ${e.endpointId}">Rotate secret</button></form></td></tr>`,
  );
  return layout(
    { title: tenant.name, csrf, current: 'tenants' },
    html`<h1>Tenant ${tenant.name}</h1>
<dl class="facts"><dt>Id</dt><dd class="id">${tenant.tenantId}</dd>
<dt>Mailboxes</dt><dd>${tenant.mailboxes.active ?? 0} active, ${tenant.mailboxes.reauth_required ?? 0} need reconnect, ${tenant.mailboxes.disconnecting ?? 0} disconnecting · <a href="/admin/mailboxes?tenantId=${encodeURIComponent(tenant.tenantId)}">list them</a></dd>
<dt>Retention</dt><dd>${tenant.retentionDays === null ? 'messages are kept' : `${tenant.retentionDays} days`}</dd>
${brandingFacts(tenant)}
<dt>Created</dt><dd>${when(tenant.createdAt)}</dd></dl>
<p class="hint">The tenant sets its branding with <code>PATCH /v1/settings</code>; an operator with <code>mailbox-connector tenants update ${tenant.tenantId} --display-name … --logo-url … --support-url …</code>.</p>
<h2>Webhook endpoints</h2>
${endpoints.length === 0 ? html`<p>This tenant has no webhook endpoint.</p>` : html`<p class="hint">Rotating issues a new signing secret, shown once on the next page; the previous secret keeps signing for 24 hours, so pass the new one to the tenant within that time.</p>
<table><thead><tr><th scope="col">Endpoint</th><th scope="col">URL (without query)</th><th scope="col">State</th><th scope="col">Dead deliveries</th><th scope="col">Rotation</th><th scope="col"><span class="skip">Actions</span></th></tr></thead>
<tbody>${rows}</tbody></table>`}`,
  );
}

export interface MailboxHealthRow {
  mailboxId: string;
  tenantId: string;
  provider: string;
  status: string;
  statusReason: string | null;
  syncState: string;
  syncError: string | null;
  lastSyncedAt: string | null;
  syncLagSeconds: number | null;
  push: { health: string; lastPushAt: string | null; expiresAt: string | null };
  events: { pending: number; dead: number };
}

const STATUSES = ['active', 'reauth_required', 'disconnecting', 'purged'];

export function mailboxesPage(csrf: string, data: { mailboxes: MailboxHealthRow[]; nextAfterId: string | null }, filter: { tenantId?: string; status?: string }, tenants: TenantOverview[]): string {
  const tenantName = new Map(tenants.map((t) => [t.tenantId, t.name]));
  const rows = data.mailboxes.map(
    (m) => html`<tr><td><a href="/admin/mailboxes/${encodeURIComponent(m.mailboxId)}" class="id">${m.mailboxId}</a></td>
<td>${tenantName.get(m.tenantId) ?? m.tenantId}</td><td>${m.provider}</td>
<td>${badge(m.status)}${m.statusReason ? html`<br><span class="muted">${m.statusReason}</span>` : ''}</td>
<td>${badge(m.syncState)}${m.syncError ? html`<br><code>${m.syncError}</code>` : ''}</td>
<td>${when(m.lastSyncedAt)}</td><td>${duration(m.syncLagSeconds)}</td>
<td>${badge(m.push.health)}${m.push.lastPushAt ? html`<br><span class="muted">last ${when(m.push.lastPushAt)}</span>` : ''}</td>
<td>${m.events.pending}</td><td>${m.events.dead ? html`<span class="status-bad">${m.events.dead}</span>` : '0'}</td></tr>`,
  );
  const query = (afterId: string): string => {
    const q = new URLSearchParams();
    if (filter.tenantId) q.set('tenantId', filter.tenantId);
    if (filter.status) q.set('status', filter.status);
    q.set('afterId', afterId);
    return `/admin/mailboxes?${q.toString()}`;
  };
  return layout(
    { title: 'Mailboxes', csrf, current: 'mailboxes' },
    html`<h1>Mailboxes</h1>
<form method="get" action="/admin/mailboxes" class="filters">
<div><label for="f-tenant">Tenant</label><select id="f-tenant" name="tenantId"><option value="">All tenants</option>${tenants.map((t) => html`<option value="${t.tenantId}"${filter.tenantId === t.tenantId ? html` selected` : ''}>${t.name}</option>`)}</select></div>
<div><label for="f-status">Status</label><select id="f-status" name="status"><option value="">Any status</option>${STATUSES.map((s) => html`<option value="${s}"${filter.status === s ? html` selected` : ''}>${s}</option>`)}</select></div>
<div><button type="submit">Filter</button></div>
</form>
${data.mailboxes.length === 0 ? html`<p>No mailbox matches.</p>` : html`<table>
<caption class="muted">Sync lag: time since the last completed sync. Push: the Gmail watch or Graph subscription. Pending and dead count webhook deliveries of the mailbox's events.</caption>
<thead><tr><th scope="col">Mailbox</th><th scope="col">Tenant</th><th scope="col">Provider</th><th scope="col">Status</th><th scope="col">Sync</th><th scope="col">Last sync</th><th scope="col">Sync lag</th><th scope="col">Push</th><th scope="col">Pending events</th><th scope="col">Dead events</th></tr></thead>
<tbody>${rows}</tbody></table>`}
${data.nextAfterId ? html`<p><a href="${query(data.nextAfterId)}">Next page</a></p>` : ''}`,
  );
}

export interface MailboxInspection {
  mailbox: (MailboxHealthRow & { grantedScopes: string[]; backfillCompletedAt: string | null; createdAt: string }) | null;
  tenantId: string | null;
  syncHistory: Array<{ jobId: string; trigger: string | null; state: string; outcome: string; reason: string | null; detail: Record<string, unknown> | null; attempt: number; queuedAt: string; startedAt: string | null; finishedAt: string | null; durationMs: number | null }>;
  errors: Array<{ at: string | null; source: string; code: string; ref: string | null }>;
  purges: Array<{ id: string; trigger: string; reason: string | null; status: string; steps: string[]; counts: Record<string, number | string>; revoke: { status: string; attempts: number; error: string | null; retryPending: boolean }; startedAt: string; completedAt: string | null }>;
}

export const NOTICES: Record<string, (n: string | undefined) => string> = {
  resync_queued: () => 'A sync of this mailbox is queued.',
  resync_not_active: () => 'Nothing queued: only an active mailbox syncs.',
  replayed: (n) => `Dead deliveries queued again: ${n ?? '0'}.`,
  revoked: () => 'Revocation started: sync stopped, the grant is being revoked and the data purged. The purge receipt is below.',
};

export function mailboxPage(csrf: string, mailboxId: string, data: MailboxInspection, notice?: string): string {
  const m = data.mailbox;
  const facts = m
    ? html`<dl class="facts"><dt>Tenant</dt><dd><a href="/admin/tenants/${encodeURIComponent(m.tenantId)}" class="id">${m.tenantId}</a></dd>
<dt>Provider</dt><dd>${m.provider}</dd>
<dt>Status</dt><dd>${badge(m.status)}${m.statusReason ? html` — ${m.statusReason}` : ''}</dd>
<dt>Sync</dt><dd>${badge(m.syncState)}${m.syncError ? html` — <code>${m.syncError}</code>` : ''}</dd>
<dt>Last sync</dt><dd>${when(m.lastSyncedAt)} (lag ${duration(m.syncLagSeconds)})</dd>
<dt>Backfill completed</dt><dd>${when(m.backfillCompletedAt)}</dd>
<dt>Push</dt><dd>${badge(m.push.health)}; last notification ${when(m.push.lastPushAt)}; expires ${when(m.push.expiresAt)}</dd>
<dt>Webhook deliveries</dt><dd>${m.events.pending} pending, ${m.events.dead} dead</dd>
<dt>Granted scopes</dt><dd>${m.grantedScopes.map((s) => html`<code>${s}</code> `)}</dd>
<dt>Connected</dt><dd>${when(m.createdAt)}</dd></dl>`
    : html`<p>This mailbox no longer exists (it was purged). Its purge receipt is below.</p>`;
  const actions =
    m && m.status !== 'purged'
      ? html`<h2>Actions</h2><div class="actions">
${m.status === 'active' ? html`<form method="post" action="/admin/mailboxes/${encodeURIComponent(mailboxId)}/resync" class="inline"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit">Resync now</button></form>` : ''}
${m.events.dead ? html`<form method="post" action="/admin/mailboxes/${encodeURIComponent(mailboxId)}/replay-dead" class="inline"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit">Replay ${m.events.dead} dead deliver${m.events.dead === 1 ? 'y' : 'ies'}</button></form>` : ''}
${m.status !== 'disconnecting' ? html`<a class="button danger" id="revoke" href="/admin/mailboxes/${encodeURIComponent(mailboxId)}/revoke">Revoke…</a>` : ''}
</div>`
      : '';
  const history = data.syncHistory.map(
    (r) => html`<tr><td>${when(r.queuedAt)}</td><td>${r.trigger ?? '—'}</td><td>${badge(r.outcome)}${r.reason ? html`<br><span class="muted">${r.reason}</span>` : ''}</td>
<td>${r.detail ? Object.entries(r.detail).map(([k, v]) => html`${k} ${String(v)}<br>`) : '—'}</td><td>${r.attempt}</td><td>${r.durationMs === null ? '—' : `${r.durationMs} ms`}</td></tr>`,
  );
  const errors = data.errors.map((e) => html`<tr><td>${when(e.at)}</td><td>${e.source}</td><td><code>${e.code}</code></td><td class="id">${e.ref ?? ''}</td></tr>`);
  const purges = data.purges.map(
    (p) => html`<section aria-labelledby="purge-${p.id}"><h3 id="purge-${p.id}">Purge <span class="id">${p.id}</span></h3>
<dl class="facts"><dt>Status</dt><dd>${badge(p.status)}</dd><dt>Trigger</dt><dd>${p.trigger}${p.reason ? html` — ${p.reason}` : ''}</dd>
<dt>Started</dt><dd>${when(p.startedAt)}</dd><dt>Completed</dt><dd>${when(p.completedAt)}</dd>
<dt>Steps</dt><dd>${p.steps.join(', ') || '—'}</dd>
<dt>Deleted</dt><dd>${Object.entries(p.counts).map(([k, v]) => html`${k} ${String(v)}; `) || '—'}</dd>
<dt>Grant revocation</dt><dd>${badge(p.revoke.status)} after ${p.revoke.attempts} attempt${p.revoke.attempts === 1 ? '' : 's'}${p.revoke.error ? html` — <code>${p.revoke.error}</code>` : ''}${p.revoke.retryPending ? ' (retry pending)' : ''}</dd></dl></section>`,
  );
  const text = notice ? NOTICES[notice.split(':')[0]!]?.(notice.split(':')[1]) : undefined;
  return layout(
    { title: `Mailbox ${mailboxId}`, csrf, current: 'mailboxes' },
    html`<h1>Mailbox <span class="id">${mailboxId}</span></h1>
${text ? html`<p class="notice" role="status">${text}</p>` : ''}
${facts}${actions}
<h2>Sync history</h2>
${history.length ? html`<table><caption class="muted">The last ${history.length} sync jobs (the job queue keeps 7 days).</caption><thead><tr><th scope="col">Queued</th><th scope="col">Trigger</th><th scope="col">Outcome</th><th scope="col">Counts</th><th scope="col">Attempt</th><th scope="col">Took</th></tr></thead><tbody>${history}</tbody></table>` : html`<p>No sync jobs in the last 7 days.</p>`}
<h2>Recent errors</h2>
${errors.length ? html`<table><caption class="muted">Codes only: never message content or a receiver's answer.</caption><thead><tr><th scope="col">When</th><th scope="col">Where</th><th scope="col">Code</th><th scope="col">Reference</th></tr></thead><tbody>${errors}</tbody></table>` : html`<p>No recent errors.</p>`}
<h2>Purge receipt</h2>
${purges.length ? purges : html`<p>This mailbox was never purged.</p>`}`,
  );
}

export function revokePage(csrf: string, mailboxId: string, opts: { error?: string; reason?: string } = {}): string {
  return layout(
    { title: `Revoke ${mailboxId}`, csrf, current: 'mailboxes' },
    html`<h1>Revoke mailbox <span class="id">${mailboxId}</span></h1>
<p>Revoking stops sync, revokes the grant at the provider and purges every message, attachment and event of this mailbox (crypto-shredding). It cannot be undone: the customer must connect the mailbox again. The tenant gets a <code>mailbox.disconnected</code> event and the reason is kept in the purge receipt and the audit log.</p>
${opts.error ? html`<p class="error" role="alert" id="reason-error">${opts.error}</p>` : ''}
<form method="post" action="/admin/mailboxes/${encodeURIComponent(mailboxId)}/revoke">
<input type="hidden" name="_csrf" value="${csrf}">
<label for="reason">Reason (required, 3 to 500 characters)</label>
<p class="hint" id="reason-hint">Say why, for the audit log and the receipt — a ticket reference, not mail content.</p>
<textarea id="reason" name="reason" required minlength="3" maxlength="500" aria-describedby="reason-hint${opts.error ? ' reason-error' : ''}"${opts.error ? html` aria-invalid="true"` : ''}>${opts.reason ?? ''}</textarea>
<div class="actions"><button type="submit" class="danger" id="confirm-revoke">Revoke and purge</button>
<a href="/admin/mailboxes/${encodeURIComponent(mailboxId)}">Cancel</a></div>
</form>`,
  );
}

export function secretPage(csrf: string, r: { endpointId: string; tenantId: string; secret: string; previousSecretExpiresAt: string | null }): string {
  return layout(
    { title: 'New signing secret', csrf, current: 'tenants' },
    html`<h1>New signing secret for <span class="id">${r.endpointId}</span></h1>
<p>This is the only time the secret is shown. Give it to the tenant over a channel you trust; deliveries are signed with both the new and the previous secret until ${when(r.previousSecretExpiresAt)}.</p>
<p class="secret" id="secret" aria-label="New signing secret">${r.secret}</p>
<p><a href="/admin/tenants/${encodeURIComponent(r.tenantId)}">Back to the tenant</a></p>`,
  );
}

export function errorPage(status: number, message: string, csrf?: string): string {
  const title = status === 404 ? 'Not found' : status === 403 ? 'Refused' : status === 429 ? 'Too many attempts' : status >= 500 ? 'Something went wrong' : 'Cannot do that';
  return layout({ title, ...(csrf ? { csrf } : {}) }, html`<h1>${title}</h1><p class="error" role="alert">${message}</p><p><a href="/admin">Back to the console</a></p>`);
}

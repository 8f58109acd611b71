// Organization install end to end (issue 15 items 2 and 5): the connector (SANDBOX=1, in-process
// Microsoft stand-in) through the real MSAL confidential client and Graph client — admin consent
// through the hosted page, mailboxes added by address, push with app-only subscriptions, a reply
// sent as the mailbox, a mailbox outside the organization's policy refused, the restriction probe,
// removal and uninstall purging.
import { randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveMicrosoftAdminConsent, approveMicrosoftConsent } from '../../src/sandbox/microsoft/approve-microsoft-consent.js';
import { SANDBOX_DIRECTORY_ROLES } from '../../src/sandbox/microsoft/sandbox-identity.handler.js';
import type { MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitUntil } from '../helpers/wait.js';

const SUPPORT = 'support@contoso.test';
const AGENT = 'agent@contoso.test';
const CEO = 'ceo@contoso.test';
const ADMIN = 'admin@contoso.test';

let svc: TestService;
let ms: MicrosoftSandbox;
let tenant: { tenantId: string; apiKey: string };

beforeAll(async () => {
  svc = await startTestService({ env: { SANDBOX: '1' } });
  ms = svc.services.access.settings.sandbox.microsoft!;
  for (const u of [ADMIN, AGENT, CEO]) ms.createUser(u);
  ms.setDirectoryRoles(ADMIN, [SANDBOX_DIRECTORY_ROLES.globalAdministrator]);
  ms.createSharedMailbox(SUPPORT, 'Contoso Support');
  tenant = await svc.createTenant();
}, 120_000);
afterAll(async () => {
  await svc?.close();
});

function decode(s: string): string {
  return s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

function question(to: string, subject: string): Buffer {
  return Buffer.from(`From: Customer <c@fabrikam.test>\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <q.${randomBytes(4).toString('hex')}@fabrikam.test>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\nHello\r\n`);
}

/** The hosted page's Continue link: the administrator's Microsoft sign-in; returns the connector's answer to its redirect. */
async function signInThroughPage(consentUrl: string, email: string): Promise<Response> {
  const html = await (await fetch(consentUrl)).text();
  const href = decode(/id="continue" href="([^"]+)"/.exec(html)?.[1] ?? '');
  const back = await approveMicrosoftConsent(href, { email });
  return fetch(back, { redirect: 'manual' });
}

async function purgeDone(purgeId: string): Promise<void> {
  await waitUntil(`purge ${purgeId} completed`, async () => (await svc.api(tenant.apiKey, 'GET', `/v1/purges/${purgeId}`)).body.status === 'completed', { timeoutMs: 90_000 });
}

describe('Microsoft organization install through the API, the hosted page and the stand-in', () => {
  let installId = '';
  const mailboxes: Record<string, string> = {};

  it('admin consent through the hosted page records the install for the tenant; with no access policy the probe reports the app unrestricted', async () => {
    const created = await svc.api(tenant.apiKey, 'POST', '/v1/organization-installs', { provider: 'microsoft', probeAddress: CEO });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.install).toMatchObject({ status: 'pending', provider: 'microsoft', directoryId: null });
    installId = created.body.install.id;

    const page = await fetch(created.body.consentUrl);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('only from the mailboxes your helpdesk adds by address');
    const href = decode(/id="continue" href="([^"]+)"/.exec(html)?.[1] ?? '');
    // Step 1: the administrator signs in (authorization code + PKCE, openid profile, organizations authority).
    const signIn = new URL(href);
    expect(signIn.pathname).toBe('/organizations/oauth2/v2.0/authorize');
    expect(signIn.searchParams.get('code_challenge_method')).toBe('S256');
    expect(signIn.searchParams.get('nonce')).toBeTruthy();
    const signedIn = await fetch(await approveMicrosoftConsent(href, { email: ADMIN }), { redirect: 'manual' });
    expect(signedIn.status).toBe(302);
    // Step 2: only then Microsoft's admin consent, for the directory of the verified ID token.
    const consentAt = new URL(signedIn.headers.get('location')!);
    expect(consentAt.pathname).toBe(`/${ms.tenantId}/v2.0/adminconsent`);
    // The hosted link is spent once the sign-in is verified.
    expect((await fetch(created.body.consentUrl)).status).toBe(404);

    const back = await approveMicrosoftAdminConsent(consentAt.toString(), { email: ADMIN });
    expect(back.origin).toBe(svc.url);
    const done = await fetch(back, { redirect: 'manual' });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Installed for your organization');
    // The single-use state is spent: the same redirect again installs nothing.
    expect((await fetch(back, { redirect: 'manual' })).status).toBe(400);

    const install = (await svc.api(tenant.apiKey, 'GET', `/v1/organization-installs/${installId}`)).body;
    expect(install).toMatchObject({ status: 'active', directoryId: ms.tenantId, accessCheck: 'unrestricted', mailboxCount: 0 });
    expect([...install.grantedPermissions].sort()).toEqual(['Mail.Read', 'Mail.Send']);
    expect(install.warnings).toContain('app_access_unrestricted');
    const audit = await svc.core.prisma.auditEntry.findMany({ where: { targetId: installId }, orderBy: { seq: 'asc' } });
    expect(audit.map((a) => a.action)).toEqual(['organization_install.started', 'organization_install.admin_verified', 'organization_install.installed', 'organization_install.access_checked']);
  });

  it('once the organization restricts the app, the probe says restricted; a mailbox outside the policy is refused; added ones get app-only subscriptions', async () => {
    ms.setApplicationAccessPolicy(ms.clients[0]!.clientId, [SUPPORT, AGENT]);
    const checked = await svc.api(tenant.apiKey, 'POST', `/v1/organization-installs/${installId}/access-check`, {});
    expect(checked.status, JSON.stringify(checked.body)).toBe(200);
    expect(checked.body).toMatchObject({ accessCheck: 'restricted', warnings: [] });

    // The daily re-check notices an organization that drops its policy again.
    ms.setApplicationAccessPolicy(ms.clients[0]!.clientId, null);
    await svc.core.jobs.enqueue('organizations.access-check', {});
    await waitUntil('the daily probe ran', async () => ((await svc.api(tenant.apiKey, 'GET', `/v1/organization-installs/${installId}`)).body.accessCheck === 'unrestricted' ? true : undefined), { timeoutMs: 90_000 });
    ms.setApplicationAccessPolicy(ms.clients[0]!.clientId, [SUPPORT, AGENT]);

    const refused = await svc.api(tenant.apiKey, 'POST', `/v1/organization-installs/${installId}/mailboxes`, { address: CEO });
    expect(refused.status).toBe(400);
    expect(refused.body.error.details).toEqual({ reason: 'mailbox_not_accessible' });

    for (const address of [SUPPORT, AGENT]) {
      const added = await svc.api(tenant.apiKey, 'POST', `/v1/organization-installs/${installId}/mailboxes`, { address });
      expect(added.status, JSON.stringify(added.body)).toBe(201);
      mailboxes[address] = added.body.mailboxId;
    }
    const again = await svc.api(tenant.apiKey, 'POST', `/v1/organization-installs/${installId}/mailboxes`, { address: SUPPORT });
    expect(again.body.error.details).toEqual({ reason: 'mailbox_exists' });

    const rows = await svc.core.prisma.mailbox.findMany({ where: { organizationInstallId: installId } });
    expect(rows.map((r) => r.access)).toEqual(['organization', 'organization']);
    // The address and the credential are ciphertext; the credential names no secret.
    for (const r of rows) expect(Buffer.from(r.addressEnc).toString('latin1')).not.toContain('contoso');

    for (const address of [SUPPORT, AGENT]) {
      await waitUntil(`subscription for ${address}`, () => ms.subscriptions().find((s) => s.email === address && !s.deleted), { timeoutMs: 90_000 });
    }
    const sub = ms.subscriptions().find((s) => s.email === SUPPORT)!;
    expect(sub.resource).toBe(`/users/${encodeURIComponent(SUPPORT)}/mailFolders('inbox')/messages`);
    const audit = await svc.core.prisma.auditEntry.findMany({ where: { action: 'organization_install.mailbox_added' } });
    expect(audit.map((a) => a.targetId).sort()).toEqual(Object.values(mailboxes).sort());
  });

  it('push ingests mail of an added mailbox only, and a reply goes out as that mailbox', async () => {
    await ms.deliver(CEO, question(CEO, 'Board minutes'));
    const delivered = await ms.deliver(SUPPORT, question(SUPPORT, 'Where is my order'));
    const supportId = mailboxes[SUPPORT]!;
    const listed = await waitUntil(
      'the pushed message ingested',
      async () => {
        const r = await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${supportId}/messages`);
        return r.body.data?.length ? r.body.data : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(ms.notificationAttempts().some((a) => a.kind === 'change' && a.outcome === 202)).toBe(true);
    const all = await svc.core.prisma.message.findMany({ where: { tenantId: tenant.tenantId } });
    expect(new Set(all.map((m) => m.mailboxId))).toEqual(new Set([supportId]));

    const res = await svc.api(tenant.apiKey, 'POST', `/v1/messages/${listed[0].id}/reply`, { text: 'On its way.' }, { 'idempotency-key': randomBytes(8).toString('hex') });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const out = await waitUntil(
      'the reply sent',
      async () => {
        const o = (await svc.api(tenant.apiKey, 'GET', `/v1/outbound/${res.body.outboundId}`)).body;
        return o.status === 'sent' || o.status === 'failed' ? o : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(out.status, JSON.stringify(out)).toBe('sent');
    const sent = ms.sentMessages(SUPPORT);
    expect(sent).toHaveLength(1);
    // Replied on the original (POST /users/{support}/messages/{id}/reply, app role Mail.Send): its conversation.
    expect(sent[0]).toMatchObject({ via: 'reply', conversationId: delivered.conversationId });
    const parsed = await simpleParser(sent[0]!.mime);
    expect(parsed.from?.value[0]?.address).toBe(SUPPORT);
    expect(parsed.inReplyTo).toBeTruthy();
  });

  it('a mailbox the organization takes out of its policy goes reauth_required once; added again after it is back, the same record is active', async () => {
    const agentId = mailboxes[AGENT]!;
    const clientId = ms.clients[0]!.clientId;
    ms.setApplicationAccessPolicy(clientId, [SUPPORT]);
    await ms.deliver(AGENT, question(AGENT, 'Refund'));
    expect((await svc.api(tenant.apiKey, 'POST', `/v1/mailboxes/${agentId}/resync`, {})).status).toBeLessThan(300);
    const flagged = await waitUntil(
      'the mailbox flagged',
      async () => {
        const m = (await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${agentId}`)).body;
        return m.status === 'reauth_required' ? m : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(flagged.statusReason).toContain('no longer lets the app read this mailbox');
    expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: agentId, type: 'mailbox.reauth_required' } })).toBe(1);

    ms.setApplicationAccessPolicy(clientId, [SUPPORT, AGENT]);
    const back = await svc.api(tenant.apiKey, 'POST', `/v1/organization-installs/${installId}/mailboxes`, { address: AGENT });
    expect(back.status, JSON.stringify(back.body)).toBe(201);
    expect(back.body.mailboxId).toBe(agentId);
    expect((await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${agentId}`)).body.status).toBe('active');
    expect(await svc.core.prisma.auditEntry.count({ where: { action: 'organization_install.mailbox_reactivated', targetId: agentId } })).toBe(1);
  });

  it('removing one mailbox deletes its subscription and purges it; uninstall purges every remaining mailbox', async () => {
    const agentId = mailboxes[AGENT]!;
    const removed = await svc.api(tenant.apiKey, 'DELETE', `/v1/organization-installs/${installId}/mailboxes/${agentId}`);
    expect(removed.status, JSON.stringify(removed.body)).toBe(202);
    await purgeDone(removed.body.purgeId);
    expect(ms.subscriptions().find((s) => s.email === AGENT)).toMatchObject({ deleted: true, removedBy: 'client' });

    const un = await svc.api(tenant.apiKey, 'DELETE', `/v1/organization-installs/${installId}`);
    expect(un.status).toBe(202);
    expect(un.body.purgeIds).toHaveLength(1);
    await purgeDone(un.body.purgeIds[0]);
    expect(ms.subscriptions().find((s) => s.email === SUPPORT)).toMatchObject({ deleted: true, removedBy: 'client' });
    expect(await svc.core.prisma.message.count({ where: { tenantId: tenant.tenantId } })).toBe(0);
    const install = (await svc.api(tenant.apiKey, 'GET', `/v1/organization-installs/${installId}`)).body;
    expect(install).toMatchObject({ status: 'uninstalled', mailboxCount: 0 });
    const removals = await svc.core.prisma.auditEntry.findMany({ where: { action: { in: ['organization_install.mailbox_removed', 'organization_install.uninstalled'] } } });
    expect(removals.map((a) => a.action).sort()).toEqual(['organization_install.mailbox_removed', 'organization_install.mailbox_removed', 'organization_install.uninstalled']);
    // Adding to an uninstalled install is refused.
    const late = await svc.api(tenant.apiKey, 'POST', `/v1/organization-installs/${installId}/mailboxes`, { address: AGENT });
    expect(late.body.error.details).toEqual({ reason: 'install_not_active' });
    expect(svc.logs.join('\n')).not.toContain(CEO);
  });
});

describe('a forged admin-consent redirect', () => {
  const forged = (state: string, tenantId = ms.tenantId) => `${svc.url}/oauth/microsoft/admin-consent?admin_consent=True&tenant=${tenantId}&state=${encodeURIComponent(state)}`;

  it('cannot claim a directory that consented outside the connector: without the administrator’s verified sign-in the redirect installs nothing', async () => {
    // The organization consented to the app elsewhere (e.g. in the Entra portal): app tokens for it exist.
    ms.grantAdminConsent(ms.clients[0]!.clientId);
    const attacker = await svc.createTenant();
    const mine = await svc.api(attacker.apiKey, 'POST', '/v1/organization-installs', { provider: 'microsoft' });
    // No one signed in: the redirect is typed by hand with the hosted link's state, naming the consented directory.
    const res = await fetch(forged(new URL(mine.body.consentUrl).searchParams.get('state')!));
    expect(res.status).toBe(400);
    const install = (await svc.api(attacker.apiKey, 'GET', `/v1/organization-installs/${mine.body.install.id}`)).body;
    expect(install).toMatchObject({ status: 'failed', statusReason: 'admin_not_verified', directoryId: null });
  });

  it('after the sign-in, a consent redirect naming another directory than the verified one fails (tenant_mismatch)', async () => {
    const other = await svc.createTenant();
    const created = await svc.api(other.apiKey, 'POST', '/v1/organization-installs', { provider: 'microsoft' });
    const signedIn = await signInThroughPage(created.body.consentUrl, ADMIN);
    expect(signedIn.status).toBe(302);
    const consentState = new URL(signedIn.headers.get('location')!).searchParams.get('state')!;
    const res = await fetch(forged(consentState, '11111111-2222-4333-8444-555555555555'));
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('another organization');
    const install = (await svc.api(other.apiKey, 'GET', `/v1/organization-installs/${created.body.install.id}`)).body;
    expect(install).toMatchObject({ status: 'failed', statusReason: 'tenant_mismatch', directoryId: null });
  });

  it('a signed-in user who is not a Global or Privileged Role Administrator goes no further', async () => {
    const other = await svc.createTenant();
    const created = await svc.api(other.apiKey, 'POST', '/v1/organization-installs', { provider: 'microsoft' });
    const res = await signInThroughPage(created.body.consentUrl, AGENT);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('Only a Global Administrator or Privileged Role Administrator');
    const install = (await svc.api(other.apiKey, 'GET', `/v1/organization-installs/${created.body.install.id}`)).body;
    expect(install).toMatchObject({ status: 'failed', statusReason: 'not_an_administrator' });
    // The sign-in redirect is single use.
    expect((await fetch(created.body.consentUrl)).status).toBe(404);
  });

  it('an Entra app that does not send directory roles (no wids in the ID token) cannot tell an administrator: nothing goes further (admin_role_unknown)', async () => {
    const client = ms.clients[0]!;
    ms.registerClient({ ...client, groupMembershipClaims: 'None' });
    try {
      const other = await svc.createTenant();
      const created = await svc.api(other.apiKey, 'POST', '/v1/organization-installs', { provider: 'microsoft' });
      const res = await signInThroughPage(created.body.consentUrl, ADMIN);
      expect(res.status).toBe(400);
      expect(await res.text()).toContain('did not say which administrator roles you hold');
      const install = (await svc.api(other.apiKey, 'GET', `/v1/organization-installs/${created.body.install.id}`)).body;
      expect(install).toMatchObject({ status: 'failed', statusReason: 'admin_role_unknown' });
    } finally {
      ms.registerClient(client);
    }
  });

  it('one directory serves one tenant: its administrator installing it for a second helpdesk account is refused', async () => {
    const first = await svc.createTenant();
    const a = await svc.api(first.apiKey, 'POST', '/v1/organization-installs', { provider: 'microsoft' });
    const s1 = await signInThroughPage(a.body.consentUrl, ADMIN);
    expect((await fetch(await approveMicrosoftAdminConsent(s1.headers.get('location')!, { email: ADMIN }), { redirect: 'manual' })).status).toBe(200);

    const second = await svc.createTenant();
    const b = await svc.api(second.apiKey, 'POST', '/v1/organization-installs', { provider: 'microsoft' });
    const s2 = await signInThroughPage(b.body.consentUrl, ADMIN);
    expect((await fetch(await approveMicrosoftAdminConsent(s2.headers.get('location')!, { email: ADMIN }), { redirect: 'manual' })).status).toBe(400);
    const install = (await svc.api(second.apiKey, 'GET', `/v1/organization-installs/${b.body.install.id}`)).body;
    expect(install).toMatchObject({ status: 'failed', statusReason: 'directory_installed_elsewhere', directoryId: null });
  });
});

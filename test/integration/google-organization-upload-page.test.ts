// The hosted Google Workspace key-upload page (issue 15 items 3, 5, 6): the helpdesk starts a
// Google install without a key and gets `consentUrl`; the Workspace administrator uploads the
// service-account key on that page (the key never passes through the helpdesk). The connector
// (SANDBOX=1, in-process Google stand-in) checks it with the same strategy as the API path, through
// the real google-auth-library JWT client and Gmail client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GOOGLE_DELEGATED_SCOPES } from '../../src/providers/google/google-delegated-access.js';
import type { GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import type { ServiceAccountKeyFile } from '../../src/sandbox/google/google-service-accounts.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

const DOMAIN = 'upload.test';
const SUPPORT = `support@${DOMAIN}`;
const SCOPES = [...GOOGLE_DELEGATED_SCOPES];

let svc: TestService;
let gs: GoogleSandbox;
let tenant: { tenantId: string; apiKey: string };
let sa: ServiceAccountKeyFile;

const start = (body: Record<string, unknown> = {}) => svc.api(tenant.apiKey, 'POST', '/v1/organization-installs', { provider: 'google', ...body });
const stateOf = (consentUrl: string) => new URL(consentUrl).searchParams.get('state')!;

async function upload(fields: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; html: string }> {
  const r = await fetch(`${svc.url}/organization-install/google`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: svc.url, ...headers },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: r.status, html: await r.text() };
}

async function statusOf(installId: string): Promise<string> {
  return (await svc.api(tenant.apiKey, 'GET', `/v1/organization-installs/${installId}`)).body.status as string;
}

beforeAll(async () => {
  svc = await startTestService({ env: { SANDBOX: '1' }, workers: false });
  gs = svc.services.access.settings.sandbox.google!;
  gs.createUser(SUPPORT);
  sa = await gs.createServiceAccount({ name: 'upload-page' });
  gs.delegateDomainWide(DOMAIN, sa.client_id, SCOPES);
  tenant = await svc.createTenant({ name: 'Upload Helpdesk' });
}, 120_000);
afterAll(async () => {
  await svc?.close();
});

describe('hosted Google Workspace key upload', () => {
  it('starting without a key gives a pending install and a single-use hosted page with the Limited Use statement, the steps and the exact scopes', async () => {
    const created = await start({ domain: DOMAIN });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.install).toMatchObject({ provider: 'google', status: 'pending' });
    expect(new Date(created.body.expiresAt).getTime() - Date.now()).toBeGreaterThan(59 * 60_000);
    expect(created.body.consentUrl).toMatch(/\/organization-install\/google\?state=/);
    // The state is stored only as its hash.
    const row = await svc.core.prisma.organizationInstall.findUniqueOrThrow({ where: { id: created.body.install.id } });
    expect(row.stateHash).not.toBe(stateOf(created.body.consentUrl));

    const page = await fetch(created.body.consentUrl);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('Security → API controls → Domain-wide delegation');
    expect(html).toContain('https://www.googleapis.com/auth/gmail.readonly,https://www.googleapis.com/auth/gmail.send');
    expect(html).toContain(`only from the mailboxes your helpdesk adds by address</b> in <b>${DOMAIN}</b>`);
    // Only our own script file (the key-file picker); no inline script.
    expect(html.match(/<script[^>]*>/g)).toEqual(['<script src="/organization-install/assets/key-file.js" defer>']);

    // A key with a verifyAddress is the API path; one without the other is refused.
    const keyAlone = await start({ serviceAccountKey: sa });
    expect(keyAlone.status).toBe(400);
    expect(keyAlone.body.error).toMatchObject({ code: 'validation_error', details: { field: 'verifyAddress' } });
    expect(JSON.stringify(keyAlone.body)).not.toContain('PRIVATE KEY');
    const addressAlone = await start({ verifyAddress: SUPPORT });
    expect(addressAlone.body.error).toMatchObject({ code: 'validation_error', details: { field: 'serviceAccountKey' } });
    expect(await svc.core.prisma.organizationInstall.count({ where: { tenantId: tenant.tenantId } })).toBe(1);
  });

  it('a bad key or a missing delegation shows the reason and the form again, the install stays pending; a good key activates it and spends the link; the key is never echoed, logged or stored in plaintext', async () => {
    const created = await start();
    const installId = created.body.install.id as string;
    const state = stateOf(created.body.consentUrl);

    const malformed = await upload({ state, serviceAccountKey: '{"type":"authorized_user"}', verifyAddress: SUPPORT });
    expect(malformed.status).toBe(400);
    expect(malformed.html).toContain('serviceAccountKey is not a service-account JSON key');
    expect(malformed.html).toContain('id="upload"');
    expect(await statusOf(installId)).toBe('pending');

    const undelegated = await gs.createServiceAccount({ name: 'upload-undelegated' });
    const refused = await upload({ state, serviceAccountKey: JSON.stringify(undelegated), verifyAddress: SUPPORT });
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('Security → API controls → Domain-wide delegation');
    expect(refused.html).toContain(`value="${SUPPORT}"`);
    expect(refused.html).not.toContain('PRIVATE KEY');
    expect(refused.html).not.toContain(undelegated.private_key_id);
    expect(await statusOf(installId)).toBe('pending');

    const ok = await upload({ state, serviceAccountKey: JSON.stringify(sa), verifyAddress: SUPPORT });
    expect(ok.status, ok.html).toBe(200);
    expect(ok.html).toContain(`Installed for ${DOMAIN}`);
    expect(ok.html).not.toContain('PRIVATE KEY');
    const install = (await svc.api(tenant.apiKey, 'GET', `/v1/organization-installs/${installId}`)).body;
    expect(install).toMatchObject({ status: 'active', directoryId: DOMAIN });
    expect([...install.grantedPermissions].sort()).toEqual([...SCOPES].sort());

    // Single use: the link is spent, for the page and the form.
    expect((await fetch(created.body.consentUrl)).status).toBe(404);
    expect((await upload({ state, serviceAccountKey: JSON.stringify(sa), verifyAddress: SUPPORT })).status).toBe(404);

    // The install works: a mailbox is added with the uploaded key.
    const added = await svc.api(tenant.apiKey, 'POST', `/v1/organization-installs/${installId}/mailboxes`, { address: SUPPORT });
    expect(added.status, JSON.stringify(added.body)).toBe(201);

    const row = await svc.core.prisma.organizationInstall.findUniqueOrThrow({ where: { id: installId } });
    expect(row.stateHash).toBeNull();
    const stored = Buffer.from(row.credentialEnc!).toString('latin1');
    const keyLine = sa.private_key.split('\n')[1]!.slice(0, 40);
    for (const secretPart of ['PRIVATE KEY', keyLine, sa.client_email]) expect(stored).not.toContain(secretPart);
    const logs = svc.logs.join('\n');
    for (const secretPart of ['PRIVATE KEY', keyLine, undelegated.private_key.split('\n')[1]!.slice(0, 40), state]) expect(logs).not.toContain(secretPart);
    const audit = await svc.core.prisma.auditEntry.findMany({ where: { targetId: installId } });
    expect(audit.map((a) => a.action).sort()).toEqual(['organization_install.installed', 'organization_install.started']);
    expect(JSON.stringify(audit.map((a) => a.metadata))).not.toContain('PRIVATE KEY');
  });

  it('an expired link, an unknown state, a cross-site post, a form over 16 KB, a domain the helpdesk did not name and a domain already installed are refused', async () => {
    const created = await start({ domain: 'other.test' });
    const state = stateOf(created.body.consentUrl);
    // The helpdesk named other.test: a key proven for upload.test is refused there.
    const outside = await upload({ state, serviceAccountKey: JSON.stringify(sa), verifyAddress: SUPPORT });
    expect(outside.status).toBe(400);
    expect(outside.html).toContain('verifyAddress must be an address of other.test');

    const crossSite = await upload({ state, serviceAccountKey: JSON.stringify(sa), verifyAddress: SUPPORT }, { origin: 'https://attacker.example' });
    expect(crossSite.status).toBe(403);
    const tooLarge = await upload({ state, serviceAccountKey: 'x'.repeat(20_000), verifyAddress: SUPPORT });
    expect(tooLarge.status).toBe(413);
    expect((await upload({ state: 'A'.repeat(43), serviceAccountKey: '{}', verifyAddress: SUPPORT })).status).toBe(404);

    // The domain installed by the previous test: a second link for it is refused on the page, and stays usable.
    const second = await start();
    const duplicate = await upload({ state: stateOf(second.body.consentUrl), serviceAccountKey: JSON.stringify(sa), verifyAddress: SUPPORT });
    expect(duplicate.status).toBe(400);
    expect(duplicate.html).toContain(`${DOMAIN} is already installed for this helpdesk`);
    expect(await statusOf(second.body.install.id)).toBe('pending');
    expect((await fetch(second.body.consentUrl)).status).toBe(200);

    await svc.core.prisma.organizationInstall.update({ where: { id: created.body.install.id }, data: { consentExpiresAt: new Date(Date.now() - 1000) } });
    expect((await fetch(created.body.consentUrl)).status).toBe(404);
    const expired = await upload({ state, serviceAccountKey: JSON.stringify(sa), verifyAddress: SUPPORT });
    expect(expired.status).toBe(404);
    expect(expired.html).toContain('This link is not valid any more');
    expect(await statusOf(created.body.install.id)).toBe('pending');
  });
});

describe('hosted Google Workspace key upload: abuse limit', () => {
  let limited: TestService;
  afterAll(async () => {
    await limited?.close();
  });

  it('the page and its form share the per-IP budget of the OAuth callbacks (RATE_LIMIT_OAUTH_CALLBACKS): over it, 429 with Retry-After', async () => {
    limited = await startTestService({ workers: false, env: { SANDBOX: '1', RATE_LIMIT_OAUTH_CALLBACKS: '3/15m' } });
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await fetch(`${limited.url}/organization-install/google?state=${'A'.repeat(43)}`)).status);
    const post = await fetch(`${limited.url}/organization-install/google`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ state: 'A'.repeat(43), serviceAccountKey: '{}', verifyAddress: 'a@b.test' }).toString() });
    statuses.push(post.status);
    const over = await fetch(`${limited.url}/organization-install/google?state=${'A'.repeat(43)}`);
    statuses.push(over.status);
    expect(statuses).toEqual([404, 404, 404, 429]);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
  }, 60_000);
});

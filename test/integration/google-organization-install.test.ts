// Google Workspace organization install end to end (issue 15 item 3): the connector (SANDBOX=1,
// in-process Google stand-in) through the real google-auth-library JWT client (`sub` = the
// mailbox) and the real Gmail client — a service-account key with domain-wide delegation posted
// through the API, proven, stored encrypted; mailboxes added by address; Pub/Sub push per mailbox;
// a reply sent as the mailbox; an address not added never synced; revoked delegation; removal and
// uninstall purging.
import { randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GOOGLE_DELEGATED_SCOPES } from '../../src/providers/google/google-delegated-access.js';
import type { GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import type { ServiceAccountKeyFile } from '../../src/sandbox/google/google-service-accounts.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitUntil } from '../helpers/wait.js';

const DOMAIN = 'acme.test';
const SUPPORT = `support@${DOMAIN}`;
const BILLING = `billing@${DOMAIN}`;
const CEO = `ceo@${DOMAIN}`;
const SCOPES = [...GOOGLE_DELEGATED_SCOPES];

let svc: TestService;
let gs: GoogleSandbox;
let tenant: { tenantId: string; apiKey: string };
let sa: ServiceAccountKeyFile;

function question(to: string, subject: string): Buffer {
  return Buffer.from(
    `From: Customer <c@fabrikam.test>\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <q.${randomBytes(4).toString('hex')}@fabrikam.test>\r\nDate: ${new Date().toUTCString()}\r\n\r\nHello\r\n`,
  );
}

const install = (body: Record<string, unknown>) => svc.api(tenant.apiKey, 'POST', '/v1/organization-installs', { provider: 'google', ...body });
const addMailbox = (installId: string, address: string) => svc.api(tenant.apiKey, 'POST', `/v1/organization-installs/${installId}/mailboxes`, { address });

async function purgeDone(purgeId: string): Promise<void> {
  await waitUntil(`purge ${purgeId} completed`, async () => (await svc.api(tenant.apiKey, 'GET', `/v1/purges/${purgeId}`)).body.status === 'completed', { timeoutMs: 90_000 });
}

beforeAll(async () => {
  svc = await startTestService({ env: { SANDBOX: '1' } });
  gs = svc.services.access.settings.sandbox.google!;
  for (const u of [SUPPORT, BILLING, CEO, 'someone@other.test']) gs.createUser(u);
  const pubsub = svc.services.access.settings.google!.pubsub;
  gs.configurePush({ endpoint: `${svc.url}/push/google`, audience: pubsub.audience, serviceAccountEmail: pubsub.serviceAccount! });
  sa = await gs.createServiceAccount({ name: 'helpdesk-connector' });
  gs.delegateDomainWide(DOMAIN, sa.client_id, SCOPES);
  tenant = await svc.createTenant();
}, 120_000);
afterAll(async () => {
  await svc?.close();
});

describe('Google Workspace organization install through the API and the stand-in', () => {
  let installId = '';
  const mailboxes: Record<string, string> = {};

  it('refuses a malformed key, a foreign token_uri, a missing or partial delegation, an unknown user and a deleted key, each with its reason', async () => {
    const reason = async (body: Record<string, unknown>) => {
      const r = await install(body);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(JSON.stringify(r.body)).not.toContain('PRIVATE KEY');
      return r.body.error.details?.reason as string;
    };
    expect(await reason({ serviceAccountKey: { ...sa, type: 'authorized_user' }, verifyAddress: SUPPORT })).toBe('key_malformed');
    expect(await reason({ serviceAccountKey: { ...sa, private_key: 'not a key' }, verifyAddress: SUPPORT })).toBe('key_malformed');
    expect(await reason({ serviceAccountKey: 'not json', verifyAddress: SUPPORT })).toBe('key_malformed');
    expect(await reason({ serviceAccountKey: { ...sa, token_uri: 'https://attacker.example/token' }, verifyAddress: SUPPORT })).toBe('token_uri_not_allowed');
    expect(await reason({ serviceAccountKey: sa, verifyAddress: 'someone@other.test', domain: DOMAIN })).toBe('address_outside_domain');

    const undelegated = await gs.createServiceAccount({ name: 'undelegated' });
    expect(await reason({ serviceAccountKey: undelegated, verifyAddress: SUPPORT })).toBe('delegation_not_granted');
    const narrow = await gs.createServiceAccount({ name: 'narrow' });
    gs.delegateDomainWide(DOMAIN, narrow.client_id, [SCOPES[0]!]);
    expect(await reason({ serviceAccountKey: narrow, verifyAddress: SUPPORT })).toBe('scopes_missing');
    expect(await reason({ serviceAccountKey: sa, verifyAddress: `nobody@${DOMAIN}` })).toBe('user_not_found');
    const deleted = await gs.createServiceAccount({ name: 'deleted-key' });
    gs.delegateDomainWide(DOMAIN, deleted.client_id, SCOPES);
    gs.deleteServiceAccountKey(deleted.client_email, deleted.private_key_id);
    expect(await reason({ serviceAccountKey: deleted, verifyAddress: SUPPORT })).toBe('key_invalid');
    expect(await svc.core.prisma.organizationInstall.count({ where: { tenantId: tenant.tenantId } })).toBe(0);
  });

  it('a proven key makes an active install at once; the key is stored only encrypted and never returned; the install always warns about domain-wide reach', async () => {
    const created = await install({ serviceAccountKey: JSON.stringify(sa), verifyAddress: SUPPORT });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.consentUrl).toBeUndefined();
    expect(created.body.install).toMatchObject({ provider: 'google', status: 'active', directoryId: DOMAIN, mailboxCount: 0, accessCheck: 'unrestricted' });
    expect([...created.body.install.grantedPermissions].sort()).toEqual([...SCOPES].sort());
    expect(created.body.install.warnings).toEqual(expect.arrayContaining(['domain_wide_delegation', 'app_access_unrestricted']));
    expect(created.body.install.warnings).not.toContain('broader_scopes_delegated');
    installId = created.body.install.id;
    for (const body of [created.body, (await svc.api(tenant.apiKey, 'GET', `/v1/organization-installs/${installId}`)).body, (await svc.api(tenant.apiKey, 'GET', '/v1/organization-installs')).body]) {
      const text = JSON.stringify(body);
      expect(text).not.toContain('PRIVATE KEY');
      expect(text).not.toContain(sa.private_key_id);
    }
    const row = await svc.core.prisma.organizationInstall.findUniqueOrThrow({ where: { id: installId } });
    expect(row.credentialEnc).not.toBeNull();
    const stored = Buffer.from(row.credentialEnc!).toString('latin1');
    for (const secretPart of ['PRIVATE KEY', sa.private_key.split('\n')[1]!.slice(0, 40), sa.client_email]) expect(stored).not.toContain(secretPart);
    const audit = await svc.core.prisma.auditEntry.findMany({ where: { targetId: installId } });
    expect(audit.map((a) => a.action)).toEqual(['organization_install.installed']);
    expect(JSON.stringify(audit[0]!.metadata)).not.toContain('PRIVATE KEY');

    // The same domain twice for one tenant is refused.
    const again = await install({ serviceAccountKey: sa, verifyAddress: BILLING });
    expect(again.body.error.details).toEqual({ reason: 'already_installed' });

    // Google cannot restrict delegation to some users: the Microsoft-style probe does not apply.
    const probe = await svc.api(tenant.apiKey, 'POST', `/v1/organization-installs/${installId}/access-check`, {});
    expect(probe.body.error.details).toEqual({ reason: 'not_supported_for_google' });
  });

  it('adds mailboxes by address in the domain only; each gets its own watch; the credential names the install, not the key', async () => {
    const outside = await addMailbox(installId, 'someone@other.test');
    expect(outside.body.error.details).toEqual({ reason: 'address_outside_domain' });
    const unknown = await addMailbox(installId, `nobody@${DOMAIN}`);
    expect(unknown.body.error.details).toEqual({ reason: 'user_not_found' });
    for (const address of [SUPPORT, BILLING]) {
      const added = await addMailbox(installId, address);
      expect(added.status, JSON.stringify(added.body)).toBe(201);
      mailboxes[address] = added.body.mailboxId;
    }
    expect((await addMailbox(installId, SUPPORT)).body.error.details).toEqual({ reason: 'mailbox_exists' });
    const rows = await svc.core.prisma.mailbox.findMany({ where: { organizationInstallId: installId } });
    expect(rows.map((r) => [r.provider, r.access])).toEqual([
      ['google', 'organization'],
      ['google', 'organization'],
    ]);
    for (const r of rows) {
      const credential = await svc.services.access.vault.credential(r.id);
      expect(credential?.credential).toMatchObject({ provider: 'google', kind: 'organization', installId });
      expect(JSON.stringify(credential)).not.toContain('PRIVATE KEY');
      expect(Buffer.from(r.credentialEnc!).toString('latin1')).not.toContain(DOMAIN);
    }
    for (const address of [SUPPORT, BILLING]) {
      await waitUntil(`watch for ${address}`, () => gs.watches().find((w) => w.email === address && w.active), { timeoutMs: 90_000 });
    }
    expect(gs.watches().some((w) => w.email === CEO)).toBe(false);
    const audit = await svc.core.prisma.auditEntry.findMany({ where: { action: 'organization_install.mailbox_added' } });
    expect(audit.map((a) => a.targetId).sort()).toEqual(Object.values(mailboxes).sort());
  });

  it('a push brings mail of an added mailbox as message.received; an address not added is never read; a reply goes out as the mailbox', async () => {
    gs.deliver(CEO, question(CEO, 'Board minutes'));
    gs.deliver(SUPPORT, question(SUPPORT, 'Where is my order'));
    const supportId = mailboxes[SUPPORT]!;
    const listed = await waitUntil(
      'the pushed message ingested',
      async () => {
        const r = await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${supportId}/messages`);
        return r.body.data?.length ? r.body.data : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(gs.pushes().some((p) => p.emailAddress === SUPPORT)).toBe(true);
    expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: supportId, type: 'message.received' } })).toBe(1);
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
    const sent = gs.sent(SUPPORT);
    expect(sent).toHaveLength(1);
    const parsed = await simpleParser(sent[0]!.raw);
    expect(parsed.from?.value[0]?.address).toBe(SUPPORT);
    expect(parsed.inReplyTo).toBeTruthy();
  });

  it('revoked delegation puts the mailboxes reauth_required with a clear reason, one event each; delegated again, adding the address reactivates it', async () => {
    gs.revokeDomainWideDelegation(DOMAIN, sa.client_id);
    // Access tokens already issued stop working too (as when Google drops a revoked delegation's tokens).
    for (const address of [SUPPORT, BILLING]) gs.revokeUserGrants(address, sa.client_id);
    for (const address of [SUPPORT, BILLING]) {
      const id = mailboxes[address]!;
      expect((await svc.api(tenant.apiKey, 'POST', `/v1/mailboxes/${id}/resync`, {})).status).toBeLessThan(300);
      const flagged = await waitUntil(
        `${address} flagged`,
        async () => {
          const m = (await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${id}`)).body;
          return m.status === 'reauth_required' ? m : undefined;
        },
        { timeoutMs: 90_000 },
      );
      expect(flagged.statusReason).toContain('delegation_not_granted');
      expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: id, type: 'mailbox.reauth_required' } })).toBe(1);
    }
    expect((await addMailbox(installId, BILLING)).body.error.details).toEqual({ reason: 'delegation_not_granted' });

    gs.delegateDomainWide(DOMAIN, sa.client_id, SCOPES);
    const back = await addMailbox(installId, BILLING);
    expect(back.status, JSON.stringify(back.body)).toBe(201);
    expect(back.body.mailboxId).toBe(mailboxes[BILLING]);
    expect((await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${mailboxes[BILLING]}`)).body.status).toBe('active');
  });

  it('rotates the key to a new key of the same service account once proven; a key of another service account is refused', async () => {
    const rotated = await gs.createServiceAccount({ name: 'helpdesk-connector' });
    expect(rotated.client_id).toBe(sa.client_id);
    const other = await gs.createServiceAccount({ name: 'another-connector' });
    gs.delegateDomainWide(DOMAIN, other.client_id, SCOPES);
    const refused = await svc.api(tenant.apiKey, 'PUT', `/v1/organization-installs/${installId}/service-account-key`, { serviceAccountKey: other, verifyAddress: SUPPORT });
    expect(refused.body.error.details).toEqual({ reason: 'service_account_mismatch' });
    const res = await svc.api(tenant.apiKey, 'PUT', `/v1/organization-installs/${installId}/service-account-key`, { serviceAccountKey: rotated, verifyAddress: SUPPORT });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(JSON.stringify(res.body)).not.toContain('PRIVATE KEY');
    const audit = await svc.core.prisma.auditEntry.findFirstOrThrow({ where: { action: 'organization_install.key_rotated', targetId: installId } });
    expect(audit.metadata).toMatchObject({ keyId: rotated.private_key_id, previousKeyId: sa.private_key_id });
    // The old key can go: the stored one is the new key.
    gs.deleteServiceAccountKey(sa.client_email, sa.private_key_id);
    const key = await svc.services.access.organizations.google!.key(installId);
    expect(key?.private_key_id).toBe(rotated.private_key_id);
    // A token signed with the old key (still cached by the token kind) is refused: the kind reads
    // the stored key again and the mailbox stays active.
    expect(await svc.services.access.vault.confirmAuthFailure(mailboxes[BILLING]!)).toBe('grant_valid');
    expect((await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${mailboxes[BILLING]}`)).body.status).toBe('active');
    sa = rotated;
  });

  it('removing a mailbox stops its watch and purges it; uninstall stops the rest, purges every mailbox and deletes the key', async () => {
    const billingId = mailboxes[BILLING]!;
    await waitUntil('billing watch renewed', () => gs.watches().find((w) => w.email === BILLING && w.active), { timeoutMs: 90_000 });
    const removed = await svc.api(tenant.apiKey, 'DELETE', `/v1/organization-installs/${installId}/mailboxes/${billingId}`);
    expect(removed.status, JSON.stringify(removed.body)).toBe(202);
    await purgeDone(removed.body.purgeId);
    expect(gs.watches().find((w) => w.email === BILLING)?.active).toBe(false);

    const un = await svc.api(tenant.apiKey, 'DELETE', `/v1/organization-installs/${installId}`);
    expect(un.status).toBe(202);
    expect(un.body.purgeIds).toHaveLength(1);
    await purgeDone(un.body.purgeIds[0]);
    expect(await svc.core.prisma.message.count({ where: { tenantId: tenant.tenantId } })).toBe(0);
    expect(gs.watches().filter((w) => w.email === SUPPORT).map((w) => w.active)).not.toContain(true);
    const after = (await svc.api(tenant.apiKey, 'GET', `/v1/organization-installs/${installId}`)).body;
    expect(after).toMatchObject({ status: 'uninstalled', mailboxCount: 0, warnings: [] });
    expect((await svc.core.prisma.organizationInstall.findUniqueOrThrow({ where: { id: installId } })).credentialEnc).toBeNull();
    const removals = await svc.core.prisma.auditEntry.findMany({ where: { action: { in: ['organization_install.mailbox_removed', 'organization_install.uninstalled'] } } });
    expect(removals.map((a) => a.action).sort()).toEqual(['organization_install.mailbox_removed', 'organization_install.mailbox_removed', 'organization_install.uninstalled']);
    expect((await addMailbox(installId, SUPPORT)).body.error.details).toEqual({ reason: 'install_not_active' });

    const logs = svc.logs.join('\n');
    for (const secretPart of ['PRIVATE KEY', sa.private_key.split('\n')[1]!.slice(0, 40), sa.private_key_id]) expect(logs).not.toContain(secretPart);
    expect(logs).not.toContain(CEO);
  });
});

describe('a delegation broader than gmail.readonly + gmail.send', () => {
  it('installs, but the install says which broader scope the key also reaches; a key deleted at Google puts its mailbox reauth_required', async () => {
    const other = await svc.createTenant();
    const broad = await gs.createServiceAccount({ name: 'broad-connector' });
    gs.delegateDomainWide(DOMAIN, broad.client_id, [...SCOPES, 'https://mail.google.com/']);
    const r = await svc.api(other.apiKey, 'POST', '/v1/organization-installs', { provider: 'google', serviceAccountKey: broad, verifyAddress: CEO, domain: DOMAIN });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.install.grantedPermissions).toContain('https://mail.google.com/');
    expect(r.body.install.warnings).toEqual(expect.arrayContaining(['domain_wide_delegation', 'broader_scopes_delegated']));
    // The mailbox tokens still ask for exactly the two scopes.
    const added = await svc.api(other.apiKey, 'POST', `/v1/organization-installs/${r.body.install.id}/mailboxes`, { address: CEO });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    const token = await svc.services.access.vault.accessToken(added.body.mailboxId);
    const info = await fetch(`${gs.url}/tokeninfo?access_token=${encodeURIComponent(token)}`).then((x) => x.json() as Promise<{ scope?: string }>);
    expect(info.scope?.split(' ').sort()).toEqual([...SCOPES].sort());

    // The administrator deletes the key at Google: the mailbox goes reauth_required (key_invalid), once —
    // whether the refusal meets the first sync's reads or its users.watch (both re-check the grant).
    gs.deleteServiceAccountKey(broad.client_email, broad.private_key_id);
    gs.revokeUserGrants(CEO, broad.client_id);
    expect((await svc.api(other.apiKey, 'POST', `/v1/mailboxes/${added.body.mailboxId}/resync`, {})).status).toBeLessThan(300);
    const flagged = await waitUntil(
      'the mailbox flagged',
      async () => {
        const m = (await svc.api(other.apiKey, 'GET', `/v1/mailboxes/${added.body.mailboxId}`)).body;
        return m.status === 'reauth_required' ? m : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(flagged.statusReason).toContain('key_invalid');
    expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: added.body.mailboxId, type: 'mailbox.reauth_required' } })).toBe(1);
  }, 120_000);
});

// A refused watch / subscription renewal confirms a revoked grant (watch.service + the token
// vault's confirmAuthFailure), end to end: the real service (SANDBOX=1, pg-boss workers, real
// Postgres or the embedded database), mailboxes connected through the hosted consent flow, the
// real Gmail client against a Google stand-in (its own clock, to expire access tokens at Google
// only) and the real Graph client against the Microsoft stand-in. The renewal is made due in the
// database and the `sync.renew-watches` job queues it, as the hourly schedule does.
//
// Revoked while the vault still holds an unexpired access token: users.watch / the subscription
// PATCH answers 401, the vault's forced refresh is refused → reauth_required with one event, at
// this sync (not when the cached token lapses, up to an hour later). Control: the access token
// merely expired at the provider (grant fine) → the forced refresh works, the renewal is retried
// once and succeeds, the mailbox stays active with no event. Organization mailboxes alike: a
// Google install whose key was deleted (key_invalid); a Microsoft install whose admin consent was
// revoked (admin_consent_missing); and a Microsoft mailbox taken out of the application access
// policy, where the app grant is valid: the refused renewal no longer stops the sync, whose read
// then flags the mailbox (organization_access_denied).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GOOGLE_DELEGATED_SCOPES } from '../../src/providers/google/google-delegated-access.js';
import { approveMicrosoftAdminConsent, approveMicrosoftConsent } from '../../src/sandbox/microsoft/approve-microsoft-consent.js';
import { SANDBOX_DIRECTORY_ROLES } from '../../src/sandbox/microsoft/sandbox-identity.handler.js';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import type { MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitUntil } from '../helpers/wait.js';
import { connectMailbox, eventsOf, type Provider } from './connect-helpers.js';

const HOUR = 3_600_000;
const RETURN_ORIGIN = 'https://helpdesk.example.com';

/** The Google stand-in's clock runs `skewMs` ahead of the connector's: its access tokens expire early. */
const googleClock = { skewMs: 0 };
let google: GoogleSandbox;
let ms: MicrosoftSandbox;
let svc: TestService;
let tenant: { tenantId: string; apiKey: string };

beforeAll(async () => {
  google = await startGoogleSandbox({ port: 0, now: () => Date.now() + googleClock.skewMs });
  svc = await startTestService({ env: { SANDBOX: '1', SANDBOX_GOOGLE_URL: google.url } });
  ms = svc.services.access.settings.sandbox.microsoft!;
  tenant = await svc.createTenant({ name: 'watchfix', allowedReturnOrigins: [RETURN_ORIGIN] });
}, 120_000);
afterAll(async () => {
  await svc?.close();
  await google?.close();
});

const row = (id: string) => svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id } });

async function connect(provider: Provider, email: string): Promise<string> {
  const { result } = await connectMailbox(svc, tenant.apiKey, provider, email, { returnUrl: `${RETURN_ORIGIN}/done` });
  const back = new URL(result.location!);
  expect(back.searchParams.get('status')).toBe('connected');
  return back.searchParams.get('mailbox_id')!;
}

/** The connect's sync finished and started the push channel (a Gmail watch / a Graph subscription). */
async function watched(id: string) {
  return waitUntil(`first sync of ${id} done with its push channel`, async () => {
    const m = await row(id);
    return m.backfillCompletedAt && m.lastSyncedAt && m.pushRenewAt && (m.watchExpiresAt || m.subscriptionId) ? m : undefined;
  }, { timeoutMs: 60_000 });
}

/** Make the renewal due (its stored time has come) and run the renewal schedule's job. */
async function renewalRuns(id: string): Promise<void> {
  await svc.core.prisma.mailbox.update({ where: { id }, data: { pushRenewAt: new Date(Date.now() - 60_000) } });
  await svc.core.jobs.enqueue('sync.renew-watches', {});
}

async function flagged(id: string) {
  return waitUntil(`mailbox ${id} reauth_required`, async () => {
    const m = (await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${id}`)).body;
    return m.status === 'reauth_required' ? (m as { status: string; statusReason: string }) : undefined;
  }, { timeoutMs: 60_000 });
}

/** The renewal went through: a new renewal time in the future, and the mailbox synced after it. */
async function renewed(id: string, before: Date) {
  return waitUntil(`push channel of ${id} renewed`, async () => {
    const m = await row(id);
    return m.pushRenewAt && m.pushRenewAt.getTime() > Date.now() && m.lastSyncedAt && m.lastSyncedAt > before ? m : undefined;
  }, { timeoutMs: 60_000 });
}

describe('Gmail: users.watch answers 401 on a due renewal', () => {
  it('revoked at Google while the vault holds an unexpired token: reauth_required at this sync, one event, a reason naming the refusal', async () => {
    const email = 'revoked@acme.test';
    const id = await connect('google', email);
    const before = await watched(id);
    const vault = svc.services.access.vault;
    const cached = await vault.accessToken(id);
    google.revokeUserGrants(email);
    // The vault would still hand out its cached token for up to an hour.
    expect(await vault.accessToken(id)).toBe(cached);
    await renewalRuns(id);
    const m = await flagged(id);
    expect(m.statusReason).toMatch(/google refused the stored grant/i);
    expect(await eventsOf(svc, id, 'mailbox.reauth_required')).toHaveLength(1);
    // The watch itself was refused: the one Google holds is still the first.
    expect((await row(id)).watchExpiresAt).toEqual(before.watchExpiresAt);
    expect(svc.logs.join('\n')).not.toContain(cached);
  }, 120_000);

  it('control: the access token only expired at Google (grant fine): the watch is renewed after one refresh, the mailbox stays active', async () => {
    const email = 'expired@acme.test';
    const id = await connect('google', email);
    const before = await watched(id);
    const watchAt = () => google.watches().find((w) => w.email === email && w.active)?.createdAt;
    const watchedAt = watchAt();
    const cached = await svc.services.access.vault.accessToken(id);
    // Google's clock passes the token's hour; the vault's does not: it still hands the token out.
    googleClock.skewMs = 2 * HOUR;
    try {
      await renewalRuns(id);
      const after = await renewed(id, before.lastSyncedAt!);
      // Google took the watch again (at its skewed time) and the connector stored what it granted.
      expect(watchAt()).toBeGreaterThan(watchedAt!);
      expect(after.watchExpiresAt!.getTime()).toBeGreaterThan(before.watchExpiresAt!.getTime());
      expect(await svc.services.access.vault.accessToken(id)).not.toBe(cached);
    } finally {
      googleClock.skewMs = 0;
    }
    expect((await row(id)).status).toBe('active');
    expect(await eventsOf(svc, id, 'mailbox.reauth_required')).toHaveLength(0);
  }, 120_000);
});

describe('Graph: the subscription renewal answers 401', () => {
  it('revoked at Microsoft while the vault holds an unexpired token: reauth_required at this sync, one event', async () => {
    const email = 'revoked@contoso.test';
    const id = await connect('microsoft', email);
    const before = await watched(id);
    ms.revokeGrants(email, { invalidateAccessTokens: true });
    await renewalRuns(id);
    const m = await flagged(id);
    expect(m.statusReason).toMatch(/microsoft refused the stored grant/i);
    expect(await eventsOf(svc, id, 'mailbox.reauth_required')).toHaveLength(1);
    expect((await row(id)).subscriptionExpiresAt).toEqual(before.subscriptionExpiresAt);
  }, 120_000);

  it('control: the access token only expired at Microsoft: the subscription is renewed, the mailbox stays active', async () => {
    const email = 'expired@contoso.test';
    const id = await connect('microsoft', email);
    const before = await watched(id);
    ms.expireAccessTokens(email);
    await renewalRuns(id);
    const after = await renewed(id, before.lastSyncedAt!);
    expect(after.subscriptionId).toBe(before.subscriptionId);
    expect(after.status).toBe('active');
    expect(await eventsOf(svc, id, 'mailbox.reauth_required')).toHaveLength(0);
  }, 120_000);
});

describe('Google organization install: a deleted key found at the watch renewal', () => {
  it('the key deleted and the delegated tokens revoked while one is cached: reauth_required (key_invalid) at this sync, one event', async () => {
    const DOMAIN = 'org.test';
    const address = `support@${DOMAIN}`;
    google.createUser(address);
    const sa = await google.createServiceAccount({ name: 'watchfix-org' });
    google.delegateDomainWide(DOMAIN, sa.client_id, [...GOOGLE_DELEGATED_SCOPES]);
    const created = await svc.api(tenant.apiKey, 'POST', '/v1/organization-installs', { provider: 'google', serviceAccountKey: sa, verifyAddress: address });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const added = await svc.api(tenant.apiKey, 'POST', `/v1/organization-installs/${created.body.install.id}/mailboxes`, { address });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    const id = added.body.mailboxId as string;
    await watched(id);
    const cached = await svc.services.access.vault.accessToken(id);
    google.deleteServiceAccountKey(sa.client_email, sa.private_key_id);
    google.revokeUserGrants(address, sa.client_id);
    expect(await svc.services.access.vault.accessToken(id)).toBe(cached);
    await renewalRuns(id);
    const m = await flagged(id);
    expect(m.statusReason).toContain('key_invalid');
    expect(await eventsOf(svc, id, 'mailbox.reauth_required')).toHaveLength(1);
  }, 120_000);
});

// Last: revoking the admin consent stops the stand-in's one app for every later case.
describe('Microsoft organization install: the app-only subscription renewal refused', () => {
  const ADMIN = 'admin@contoso.test';
  const SUPPORT = 'support@contoso.test';
  const AGENT = 'agent@contoso.test';
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    ms.createUser(ADMIN);
    ms.createUser(AGENT);
    ms.setDirectoryRoles(ADMIN, [SANDBOX_DIRECTORY_ROLES.globalAdministrator]);
    ms.createSharedMailbox(SUPPORT, 'Contoso Support');
    const created = await svc.api(tenant.apiKey, 'POST', '/v1/organization-installs', { provider: 'microsoft', probeAddress: AGENT });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const html = await (await fetch(created.body.consentUrl)).text();
    const href = (/id="continue" href="([^"]+)"/.exec(html)?.[1] ?? '').replace(/&amp;/g, '&');
    const signedIn = await fetch(await approveMicrosoftConsent(href, { email: ADMIN }), { redirect: 'manual' });
    const done = await fetch(await approveMicrosoftAdminConsent(signedIn.headers.get('location')!, { email: ADMIN }), { redirect: 'manual' });
    expect(done.status).toBe(200);
    ms.setApplicationAccessPolicy(ms.clients[0]!.clientId, [SUPPORT, AGENT]);
    for (const address of [SUPPORT, AGENT]) {
      const added = await svc.api(tenant.apiKey, 'POST', `/v1/organization-installs/${created.body.install.id}/mailboxes`, { address });
      expect(added.status, JSON.stringify(added.body)).toBe(201);
      ids[address] = added.body.mailboxId as string;
      await watched(ids[address]!);
    }
  }, 120_000);

  it('taken out of the application access policy: the renewal is refused with a valid app grant, the sync goes on and its read flags the mailbox (organization_access_denied), one event', async () => {
    const id = ids[AGENT]!;
    ms.setApplicationAccessPolicy(ms.clients[0]!.clientId, [SUPPORT]);
    await renewalRuns(id);
    const m = await flagged(id);
    expect(m.statusReason).toMatch(/no longer lets the app read this mailbox/);
    const events = await eventsOf(svc, id, 'mailbox.reauth_required');
    expect(events).toHaveLength(1);
    expect((await row(ids[SUPPORT]!)).status).toBe('active');
  }, 120_000);

  it('admin consent revoked while the app token is cached: reauth_required at this sync, one event', async () => {
    const id = ids[SUPPORT]!;
    const cached = await svc.services.access.vault.accessToken(id);
    ms.revokeAdminConsent(ms.clients[0]!.clientId);
    expect(await svc.services.access.vault.accessToken(id)).toBe(cached);
    await renewalRuns(id);
    const m = await flagged(id);
    expect(m.statusReason).toContain('admin_consent_missing');
    expect(await eventsOf(svc, id, 'mailbox.reauth_required')).toHaveLength(1);
  }, 120_000);
});

// The organization_install.access_changed webhook: a tenant-level event (no mailbox) when the
// restriction probe's verdict changes — the app became able to read a mailbox it was not given, or
// is restricted again. Signed like every webhook (Standard Webhooks), delivered once per change
// (a repeated verdict, or a failed probe in between, sends nothing), without any address.
// SANDBOX=1: the real MSAL confidential client and Graph client against the Microsoft stand-in.
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveMicrosoftAdminConsent, approveMicrosoftConsent } from '../../src/sandbox/microsoft/approve-microsoft-consent.js';
import type { MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { SANDBOX_DIRECTORY_ROLES } from '../../src/sandbox/microsoft/sandbox-identity.handler.js';
import { webhooksSettled } from '../helpers/settled.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { startReceiver, waitFor } from './webhooks-seed.js';

const ADMIN = 'admin@contoso.test';
const CEO = 'ceo@contoso.test';
const SUPPORT = 'support@contoso.test';
let svc: TestService;
let ms: MicrosoftSandbox;

beforeAll(async () => {
  svc = await startTestService({ env: { SANDBOX: '1' } });
  ms = svc.services.access.settings.sandbox.microsoft!;
  for (const u of [ADMIN, CEO]) ms.createUser(u);
  ms.createSharedMailbox(SUPPORT, 'Contoso Support');
  ms.setDirectoryRoles(ADMIN, [SANDBOX_DIRECTORY_ROLES.globalAdministrator]);
}, 120_000);
afterAll(async () => {
  await svc?.close();
});

function decode(s: string): string {
  return s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

describe('organization_install.access_changed webhook', () => {
  it('is delivered signed, once per change of the verdict: unrestricted after the consent, restricted once the organization applies a policy', async () => {
    const rx = await startReceiver();
    try {
      const t = await svc.createTenant();
      const endpoint = await svc.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url: rx.url, events: ['organization_install.access_changed'] });
      expect(endpoint.status, JSON.stringify(endpoint.body)).toBe(201);
      const secret = endpoint.body.secret as string;
      const changes = () =>
        rx.received
          .map((r) => new Webhook(secret).verify(r.body, r.headers) as { id: string; type: string; mailboxId: string | null; tenantId: string; data: Record<string, unknown> })
          .filter((b) => b.type === 'organization_install.access_changed');

      // Install through the hosted page (administrator sign-in, then admin consent); no access policy yet.
      const created = await svc.api(t.apiKey, 'POST', '/v1/organization-installs', { provider: 'microsoft', probeAddress: CEO });
      const installId = created.body.install.id as string;
      const html = await (await fetch(created.body.consentUrl)).text();
      const signedIn = await fetch(await approveMicrosoftConsent(decode(/id="continue" href="([^"]+)"/.exec(html)![1]!), { email: ADMIN }), { redirect: 'manual' });
      expect(signedIn.status).toBe(302);
      const done = await fetch(await approveMicrosoftAdminConsent(signedIn.headers.get('location')!, { email: ADMIN }), { redirect: 'manual' });
      expect(done.status).toBe(200);

      // 1. The probe after the consent: unrestricted → one event with the warning.
      await waitFor(() => changes().length >= 1, 20_000, 'the unrestricted event');
      const first = changes()[0]!;
      expect(first).toMatchObject({ type: 'organization_install.access_changed', tenantId: t.tenantId, mailboxId: null });
      expect(first.data).toEqual({ installId, provider: 'microsoft', accessCheck: 'unrestricted', warnings: ['app_access_unrestricted'] });
      // No address (the probe's or any mailbox's) in the body.
      expect(rx.received.every((r) => !r.body.includes('@'))).toBe(true);

      // 2. The same verdict again (daily job or on demand), and a failed probe in between: nothing new.
      expect((await svc.api(t.apiKey, 'POST', `/v1/organization-installs/${installId}/access-check`, {})).body.accessCheck).toBe('unrestricted');
      expect((await svc.api(t.apiKey, 'POST', `/v1/organization-installs/${installId}/access-check`, { probeAddress: 'nobody@contoso.test' })).body.accessCheck).toBe('failed');
      expect((await svc.api(t.apiKey, 'POST', `/v1/organization-installs/${installId}/access-check`, { probeAddress: CEO })).body.accessCheck).toBe('unrestricted');
      await webhooksSettled(svc.core, { tenantId: t.tenantId });
      expect(changes()).toHaveLength(1);

      // 3. The organization restricts the app: restricted → one event, no warning; repeated → nothing.
      ms.setApplicationAccessPolicy(ms.clients[0]!.clientId, [SUPPORT]);
      expect((await svc.api(t.apiKey, 'POST', `/v1/organization-installs/${installId}/access-check`, {})).body.accessCheck).toBe('restricted');
      await waitFor(() => changes().length >= 2, 20_000, 'the restricted event');
      expect(changes()[1]!.data).toEqual({ installId, provider: 'microsoft', accessCheck: 'restricted', warnings: [] });
      expect((await svc.api(t.apiKey, 'POST', `/v1/organization-installs/${installId}/access-check`, {})).body.accessCheck).toBe('restricted');
      await webhooksSettled(svc.core, { tenantId: t.tenantId });
      expect(changes()).toHaveLength(2);
      // Each delivery once (no retries: the receiver answered 204).
      expect(new Set(changes().map((c) => c.id)).size).toBe(2);
      // The events are in the tenant's event log too, tenant-level.
      const listed = await svc.api(t.apiKey, 'GET', '/v1/events?type=organization_install.access_changed');
      expect(listed.status, JSON.stringify(listed.body)).toBe(200);
      expect((listed.body.data as Array<{ id: string; mailboxId: string | null }>).map((e) => e.id).sort()).toEqual(changes().map((c) => c.id).sort());
    } finally {
      ms.setApplicationAccessPolicy(ms.clients[0]!.clientId, null);
      await rx.close();
    }
  });
});

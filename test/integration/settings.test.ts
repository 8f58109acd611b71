// GET/PATCH /v1/settings: a tenant turns remote images in safeHtml off itself, with its API key;
// the change applies to mail already stored, is audited, and touches no other tenant.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { seedMailbox, seedMessage } from './webhooks-seed.js';

let svc: TestService;
let a: { tenantId: string; apiKey: string; apiKeyId: string };
let b: { tenantId: string; apiKey: string; apiKeyId: string };
const UNBRANDED = { displayName: null, logoUrl: null, supportUrl: null };
const HTML = '<p>Newsletter</p><img src="https://tracker.example/open.gif?u=7" width="1" height="1"><img src="cid:logo@x">';

beforeAll(async () => {
  svc = await startTestService({ workers: false });
  a = await svc.createTenant();
  b = await svc.createTenant();
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

describe('tenant settings', () => {
  it('turns remote images off for this tenant’s stored mail, audited, and for no other tenant', async () => {
    const mine = await seedMessage(svc.core, a.tenantId, (await seedMailbox(svc.core, a.tenantId)).id, { html: HTML });
    const theirs = await seedMessage(svc.core, b.tenantId, (await seedMailbox(svc.core, b.tenantId)).id, { html: HTML });
    expect((await svc.api(a.apiKey, 'GET', '/v1/settings')).body).toEqual({ object: 'settings', blockRemoteImages: false, ...UNBRANDED });
    const before = await svc.api(a.apiKey, 'GET', `/v1/messages/${mine.id}`);
    expect(before.body.safeHtml).toContain(' src="https://tracker.example/open.gif?u=7"');

    const set = await svc.api(a.apiKey, 'PATCH', '/v1/settings', { blockRemoteImages: true });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({ object: 'settings', blockRemoteImages: true, ...UNBRANDED });
    expect((await svc.api(a.apiKey, 'GET', '/v1/settings')).body.blockRemoteImages).toBe(true);

    const after = await svc.api(a.apiKey, 'GET', `/v1/messages/${mine.id}`);
    expect(after.body.safeHtml).toBe('<p>Newsletter</p><img width="1" height="1" data-blocked-src="https://tracker.example/open.gif?u=7" /><img src="cid:logo@x" />');
    expect(after.body.html).toBe(HTML);
    // The other tenant is untouched.
    expect((await svc.api(b.apiKey, 'GET', '/v1/settings')).body.blockRemoteImages).toBe(false);
    expect((await svc.api(b.apiKey, 'GET', `/v1/messages/${theirs.id}`)).body.safeHtml).toContain(' src="https://tracker.example/open.gif?u=7"');

    const audit = await svc.api(a.apiKey, 'GET', '/v1/audit?limit=100');
    expect(audit.body.data.find((e: { action: string }) => e.action === 'tenant.settings_updated')).toMatchObject({
      actorType: 'api_key',
      actorId: a.apiKeyId,
      targetId: a.tenantId,
      metadata: { fields: ['blockRemoteImages'], blockRemoteImages: true },
    });

    // An empty patch changes nothing.
    expect((await svc.api(a.apiKey, 'PATCH', '/v1/settings', {})).body.blockRemoteImages).toBe(true);
  });

  it('refuses bad input and missing keys', async () => {
    const wrongType = await svc.api(a.apiKey, 'PATCH', '/v1/settings', { blockRemoteImages: 'yes' });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.code).toBe('validation_error');
    const unknown = await svc.api(a.apiKey, 'PATCH', '/v1/settings', { retentionDays: 1 });
    expect(unknown.status).toBe(400);
    expect((await fetch(`${svc.url}/v1/settings`)).status).toBe(401);
  });
});

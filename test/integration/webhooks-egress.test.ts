import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateWebhookSecret } from '../../src/webhooks/webhook-secret.js';
import { ENDPOINT_SECRET_AAD } from '../../src/webhooks/webhook-endpoint.service.js';
import { newId } from '../../src/storage/ids.js';
import { embeddedRun } from '../helpers/requirements.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { emit, seedMailbox, startReceiver, waitFor } from './webhooks-seed.js';

// No development allow-list: the service behaves as it does in production for addresses.
let svc: TestService;
beforeAll(async () => {
  svc = await startTestService({ env: { WEBHOOK_ALLOWED_HOSTS: '', WEBHOOK_RETRY_SCHEDULE_MS: '60000' } });
});
afterAll(async () => {
  await svc?.close();
});

describe('egress rules for webhook URLs', () => {
  it.each([
    ['http://127.0.0.1:8080/hooks', 'loopback'],
    ['http://localhost:8080/hooks', 'loopback'],
    ['http://10.1.2.3/hooks', 'private'],
    ['http://172.16.0.1/hooks', 'private'],
    ['http://192.168.1.1/hooks', 'private'],
    ['http://169.254.169.254/latest/meta-data', 'link_local'],
    ['http://[::1]/hooks', 'loopback'],
    ['http://[fc00::1]/hooks', 'unique_local'],
    ['http://[::ffff:127.0.0.1]/hooks', 'ipv4_mapped'],
  ])('refuses %s at registration (%s)', async (url, category) => {
    const t = await svc.createTenant();
    const res = await svc.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url });
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ code: 'url_not_allowed', details: { reason: 'forbidden_address', category } });
    expect((await svc.api(t.apiKey, 'GET', '/v1/webhook-endpoints')).body.data).toEqual([]);
  });

  it('refuses a forbidden URL on update, and credentials in a URL', async () => {
    const t = await svc.createTenant();
    const res = await svc.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url: 'https://user:pw@example.com/hooks' });
    expect(res.status).toBe(422);
    expect(res.body.error.details.reason).toBe('credentials_in_url');
    // An endpoint that exists (written directly, as if registered before a policy change)…
    const id = await insertEndpoint(t.tenantId, 'https://93.184.216.34/hooks');
    const patch = await svc.api(t.apiKey, 'PATCH', `/v1/webhook-endpoints/${id}`, { url: 'http://10.0.0.5/hooks' });
    expect(patch.status).toBe(422);
    expect((await svc.api(t.apiKey, 'GET', `/v1/webhook-endpoints/${id}`)).body.url).toBe('https://93.184.216.34/hooks');
  });

  it('checks the URL again before every attempt: a URL that became forbidden is never contacted', async () => {
    const rx = await startReceiver();
    try {
      const t = await svc.createTenant();
      await insertEndpoint(t.tenantId, rx.url); // 127.0.0.1: allowed once, not any more
      const mbx = await seedMailbox(svc.core, t.tenantId);
      const [ev] = await emit(svc.core, [{ tenantId: t.tenantId, mailboxId: mbx.id, type: 'mailbox.connected' }]);
      const e = await waitFor(async () => {
        const r = await svc.api(t.apiKey, 'GET', `/v1/events/${ev!.id}`);
        return r.body.deliveries?.[0]?.status === 'failed' ? r.body : undefined;
      }, 15_000, 'first attempt failed');
      expect(e.deliveries[0].attemptLog[0].error).toContain('egress_denied:forbidden_address');
      expect(e.deliveries[0].attemptLog).toHaveLength(1);
      expect(rx.received).toHaveLength(0);
    } finally {
      await rx.close();
    }
  });
});

describe.skipIf(embeddedRun('webhook egress in production'))('in production', () => {
  it('requires https even for an allow-listed host', async () => {
    const prod = await startTestService({ workers: false, env: { NODE_ENV: 'production', PUBLIC_URL: 'https://connector.example.com', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' } });
    try {
      const t = await prod.createTenant();
      const res = await prod.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9999/hooks' });
      expect(res.status).toBe(422);
      expect(res.body.error.details.reason).toBe('https_required');
    } finally {
      await prod.close();
    }
  });
});

async function insertEndpoint(tenantId: string, url: string): Promise<string> {
  const id = newId('webhookEndpoint');
  const secretEnc = await svc.core.dataKeys.encryptFor({ type: 'tenant', id: tenantId }, generateWebhookSecret(), ENDPOINT_SECRET_AAD(id));
  await svc.core.prisma.webhookEndpoint.create({ data: { id, tenantId, url, secretEnc: new Uint8Array(secretEnc) } });
  return id;
}

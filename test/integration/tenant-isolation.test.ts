import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { emit, seedMailbox, seedMessage, startReceiver, waitFor } from './webhooks-seed.js';

let svc: TestService;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let a: { tenantId: string; apiKey: string; apiKeyId: string };
let b: { tenantId: string; apiKey: string; apiKeyId: string };
const ids: Record<string, string> = {};

beforeAll(async () => {
  svc = await startTestService();
  rx = await startReceiver();
  a = await svc.createTenant({ name: 'A' });
  b = await svc.createTenant({ name: 'B' });
  const ep = await svc.api(a.apiKey, 'POST', '/v1/webhook-endpoints', { url: rx.url });
  ids.endpoint = ep.body.id;
  ids.mailbox = (await seedMailbox(svc.core, a.tenantId)).id;
  const msg = await seedMessage(svc.core, a.tenantId, ids.mailbox, { attachments: [{ filename: 'a.pdf', bytes: Buffer.from('A-only'), scanStatus: 'clean' }] });
  ids.message = msg.id;
  ids.attachment = msg.attachmentIds[0]!;
  ids.event = (await emit(svc.core, [{ tenantId: a.tenantId, mailboxId: ids.mailbox, type: 'message.received', refs: { messageId: msg.id } }]))[0]!.id;
  // Tenant A's own delivery decrypts A's message in the background; let it finish first.
  await waitFor(async () => (await svc.api(a.apiKey, 'GET', `/v1/events/${ids.event}`)).body.status === 'delivered', 15_000, 'A delivered');
});
afterAll(async () => {
  await rx?.close();
  await svc?.close();
});

describe('tenant isolation', () => {
  it('another tenant’s ids are 404 everywhere, and nothing of theirs is decrypted', async () => {
    const decrypt = vi.spyOn(svc.core.dataKeys, 'decryptFor');
    const requests: Array<[string, string, unknown?]> = [
      ['GET', `/v1/mailboxes/${ids.mailbox}`],
      ['GET', `/v1/mailboxes/${ids.mailbox}/messages`],
      ['GET', `/v1/messages/${ids.message}`],
      ['GET', `/v1/attachments/${ids.attachment}/content`],
      ['GET', `/v1/webhook-endpoints/${ids.endpoint}`],
      ['PATCH', `/v1/webhook-endpoints/${ids.endpoint}`, { enabled: false }],
      ['POST', `/v1/webhook-endpoints/${ids.endpoint}/rotate-secret`],
      ['DELETE', `/v1/webhook-endpoints/${ids.endpoint}`],
      ['GET', `/v1/events/${ids.event}`],
      ['POST', `/v1/events/${ids.event}/replay`, {}],
    ];
    try {
      for (const [method, path, body] of requests) {
        const res = await svc.api(b.apiKey, method, path, body);
        expect({ path, method, status: res.status }).toEqual({ path, method, status: 404 });
        expect(res.body.error.code).toBe('not_found');
      }
      const touched = decrypt.mock.calls.filter(([owner]) => owner.id === ids.mailbox || owner.id === a.tenantId);
      expect(touched).toEqual([]);
    } finally {
      decrypt.mockRestore();
    }
    // Lists show only the caller's own things.
    expect((await svc.api(b.apiKey, 'GET', '/v1/events')).body.data).toEqual([]);
    expect((await svc.api(b.apiKey, 'GET', '/v1/webhook-endpoints')).body.data).toEqual([]);
    expect((await svc.api(b.apiKey, 'GET', `/v1/events?mailboxId=${ids.mailbox}`)).body.data).toEqual([]);
    const audit = (await svc.api(b.apiKey, 'GET', '/v1/audit')).body.data as Array<{ targetId: string }>;
    expect(audit.some((e) => Object.values(ids).includes(e.targetId))).toBe(false);
    // And tenant A still has everything, untouched.
    expect((await svc.api(a.apiKey, 'GET', `/v1/webhook-endpoints/${ids.endpoint}`)).body.enabled).toBe(true);
    expect((await svc.api(a.apiKey, 'GET', `/v1/messages/${ids.message}`)).status).toBe(200);
  });
});

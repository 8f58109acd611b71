import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAILBOX_ADDRESS_AAD } from '../../src/mailboxes/message-content.js';
import { newId } from '../../src/storage/ids.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

// User mistakes over HTTP answer a 4xx with a stable code, never a 500 (issue 11, item 8).
describe('HTTP answers for user mistakes', () => {
  let svc: TestService;
  let tenant: { tenantId: string; apiKey: string };
  let adminKey: string;

  async function addMailbox(address: string): Promise<string> {
    const id = newId('mailbox');
    await svc.core.prisma.mailbox.create({
      data: {
        id,
        tenantId: tenant.tenantId,
        provider: 'google',
        addressEnc: new Uint8Array(await svc.core.dataKeys.encryptFor({ type: 'mailbox', id }, address, MAILBOX_ADDRESS_AAD(id))),
        addressIndex: svc.core.blindIndex.emailIndex(address),
      },
    });
    return id;
  }

  beforeAll(async () => {
    svc = await startTestService({ workers: false });
    tenant = await svc.createTenant({ name: 'errors' });
    adminKey = (await svc.core.apiKeys.issue({ admin: true })).key;
  }, 120_000);
  afterAll(async () => svc?.close());

  it('answers 400 validation_error for a NUL byte in any path parameter, on every route', async () => {
    const withParams = svc.service.routes.routes.filter((r) => r.path.includes(':'));
    expect(withParams.length).toBeGreaterThan(10);
    const answers: string[] = [];
    for (const route of withParams) {
      const url = route.path.replace(/:[A-Za-z0-9_]+/g, 'mbx_x%00y');
      const key = route.auth === 'admin' ? adminKey : tenant.apiKey;
      const res = await fetch(`${svc.url}${url}`, {
        method: route.method.toUpperCase(),
        redirect: 'manual',
        headers: { ...(route.auth === 'none' ? {} : { authorization: `Bearer ${key}` }), ...(route.method === 'get' ? {} : { 'content-type': 'application/json' }) },
        ...(route.method === 'get' ? {} : { body: '{}' }),
      });
      const body = (await res.json().catch(() => ({}))) as { error?: { code?: string } };
      answers.push(`${route.method.toUpperCase()} ${route.path} → ${res.status} ${body.error?.code ?? ''}`);
    }
    expect(answers).toEqual(withParams.map((r) => `${r.method.toUpperCase()} ${r.path} → 400 validation_error`));
    // Nothing reached the error log as an unhandled failure.
    expect(svc.logs.filter((l) => l.includes('unhandled error'))).toEqual([]);
  });

  it('answers 400 for a NUL byte in a query parameter (threadKey)', async () => {
    const mailboxId = await addMailbox('nul@example.test');
    const res = await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${mailboxId}/messages?threadKey=thr_%00`);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'validation_error', details: { field: 'threadKey', location: 'query parameter' } });
    const fine = await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${mailboxId}/messages?threadKey=thr_none`);
    expect(fine.status).toBe(200);
  });

  it('answers 400 for a NUL byte anywhere in a JSON body, and stores nothing', async () => {
    const before = (await svc.core.tenants.list()).length;
    const res = await svc.api(adminKey, 'POST', '/v1/admin/ops/tenants.create', { name: 'nul\u0000name' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'validation_error', details: { field: 'name', location: 'body' } });
    const nested = await svc.api(adminKey, 'POST', '/v1/admin/ops/tenants.create', { name: 'ok', allowedReturnOrigins: ['https://a.example', 'https://b.example/\u0000'] });
    expect(nested.status).toBe(400);
    expect(nested.body.error.details).toEqual({ field: 'allowedReturnOrigins.1', location: 'body' });
    expect((await svc.core.tenants.list()).length).toBe(before);
    expect(svc.logs.filter((l) => l.includes('unhandled error'))).toEqual([]);
  });

  it('answers 404 not_found for mailboxes.resync of an unknown mailbox over the admin API', async () => {
    const res = await svc.api(adminKey, 'POST', '/v1/admin/ops/mailboxes.resync', { mailboxId: 'mbx_does_not_exist' });
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'not_found', message: 'mailbox not found' });
  });

  it('answers 404 not_found for a missing mailbox in every ops command that names one, and on the disconnect routes', async () => {
    // Valid values for the other fields a command requires, so that only the mailbox is missing.
    const filler: Record<string, unknown> = { reason: 'ticket OPS-14: checking a missing mailbox', ticket: 'OPS-14' };
    const named = svc.service.ops.filter((c) => {
      const shape = (c.input as { shape?: Record<string, { safeParse(v: unknown): { success: boolean } }> }).shape;
      return shape?.mailboxId !== undefined && !shape.mailboxId.safeParse(undefined).success;
    });
    expect(named.map((c) => c.name).sort()).toEqual(['breakGlass.open', 'events.replayDead', 'mailboxes.inspect', 'mailboxes.resync', 'mailboxes.revoke']);
    const missing = newId('mailbox');
    for (const cmd of named) {
      const shape = (cmd.input as unknown as { shape: Record<string, unknown> }).shape;
      const input = Object.fromEntries(Object.keys(shape).filter((k) => k in filler).map((k) => [k, filler[k]]));
      const res = await svc.api(adminKey, 'POST', `/v1/admin/ops/${cmd.name}`, { ...input, mailboxId: missing });
      expect({ command: cmd.name, status: res.status, code: res.body.error?.code }).toEqual({ command: cmd.name, status: 404, code: 'not_found' });
    }
    const revoke = await svc.api(adminKey, 'POST', `/v1/admin/mailboxes/${missing}/revoke`, { reason: 'ticket OPS-14' });
    expect({ status: revoke.status, code: revoke.body.error?.code }).toEqual({ status: 404, code: 'not_found' });
    const disconnect = await svc.api(tenant.apiKey, 'DELETE', `/v1/mailboxes/${missing}`);
    expect({ status: disconnect.status, code: disconnect.body.error?.code }).toEqual({ status: 404, code: 'not_found' });
    expect(svc.logs.filter((l) => l.includes('unhandled error'))).toEqual([]);
  });

  it('lists a mailbox whose data key was destroyed (row restored after its purge) with address null, not a 500', async () => {
    const kept = await addMailbox('kept@example.test');
    const shredded = await addMailbox('shredded@example.test');
    expect(await svc.core.dataKeys.destroy({ type: 'mailbox', id: shredded })).toBe(true);

    const list = await svc.api(tenant.apiKey, 'GET', '/v1/mailboxes?limit=100');
    expect(list.status).toBe(200);
    const byId = new Map((list.body.data as Array<{ id: string; address: string | null; status: string }>).map((m) => [m.id, m]));
    expect(byId.get(kept)?.address).toBe('kept@example.test');
    expect(byId.get(shredded)).toMatchObject({ address: null, status: 'active' });

    const one = await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${shredded}`);
    expect(one.status).toBe(200);
    expect(one.body.address).toBeNull();
  });
});

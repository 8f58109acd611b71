import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAILBOX_ADDRESS_AAD } from '../../src/mailboxes/message-content.js';
import { newId } from '../../src/storage/ids.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitUntil } from '../helpers/wait.js';

describe('API authentication, tenant isolation and error format', () => {
  let svc: TestService;
  let a: { tenantId: string; apiKey: string; apiKeyId: string };
  let b: { tenantId: string; apiKey: string; apiKeyId: string };
  let bMailboxId: string;
  let adminKey: string;

  beforeAll(async () => {
    svc = await startTestService({ workers: false });
    a = await svc.createTenant({ name: 'A' });
    b = await svc.createTenant({ name: 'B' });
    adminKey = (await svc.core.apiKeys.issue({ admin: true })).key;
    bMailboxId = newId('mailbox');
    await svc.core.prisma.mailbox.create({
      data: {
        id: bMailboxId,
        tenantId: b.tenantId,
        provider: 'google',
        addressEnc: new Uint8Array(await svc.core.dataKeys.encryptFor({ type: 'mailbox', id: bMailboxId }, 'owner@b.example', MAILBOX_ADDRESS_AAD(bMailboxId))),
        addressIndex: svc.core.blindIndex.emailIndex('owner@b.example'),
      },
    });
  }, 120_000);
  afterAll(async () => svc?.close());

  it('answers 401 with the error format for a missing, malformed, unknown or revoked key', async () => {
    const missing = await fetch(`${svc.url}/v1/mailboxes`);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ error: { code: 'unauthorized', message: expect.any(String), requestId: expect.any(String) } });
    expect((await svc.api('not-a-key', 'GET', '/v1/mailboxes')).status).toBe(401);
    const basic = await fetch(`${svc.url}/v1/mailboxes`, { headers: { authorization: `Basic ${a.apiKey}` } });
    expect(basic.status).toBe(401);
    // Well-formed (right prefix, length and checksum) but never issued.
    const { generateToken } = await import('../../src/crypto/secret-compare.js');
    expect((await svc.api(generateToken('mbc_live_'), 'GET', '/v1/mailboxes')).status).toBe(401);
    const extra = await svc.core.apiKeys.issue({ tenantId: a.tenantId, name: 'to revoke' });
    expect((await svc.api(extra.key, 'GET', '/v1/mailboxes')).status).toBe(200);
    await svc.core.apiKeys.revoke(extra.record.id, a.tenantId);
    expect((await svc.api(extra.key, 'GET', '/v1/mailboxes')).status).toBe(401);
  });

  it('never shows one tenant another tenant’s mailbox: 404, nothing decrypted', async () => {
    const own = await svc.api(b.apiKey, 'GET', `/v1/mailboxes/${bMailboxId}`);
    expect(own.status).toBe(200);
    expect(own.body.address).toBe('owner@b.example');
    const other = await svc.api(a.apiKey, 'GET', `/v1/mailboxes/${bMailboxId}`);
    expect(other.status).toBe(404);
    expect(JSON.stringify(other.body)).not.toContain('owner@b.example');
    const list = await svc.api(a.apiKey, 'GET', '/v1/mailboxes');
    expect(list.body.data).toEqual([]);
  });

  it('keeps admin keys off tenant data and tenant keys off the admin API (403)', async () => {
    expect((await svc.api(adminKey, 'GET', '/v1/mailboxes')).status).toBe(403);
    expect((await svc.api(a.apiKey, 'POST', '/v1/admin/ops/tenants.list', {})).status).toBe(403);
    const ok = await svc.api(adminKey, 'POST', '/v1/admin/ops/tenants.list', {});
    expect(ok.status).toBe(200);
    expect(ok.body.result.map((t: { tenantId: string }) => t.tenantId)).toEqual(expect.arrayContaining([a.tenantId, b.tenantId]));
    // Every ops action is audited, read-only ones included.
    const entries = await svc.core.prisma.auditEntry.findMany({ where: { action: 'ops.command' } });
    expect(entries.some((e) => (e.metadata as { command?: string }).command === 'tenants.list' && (e.metadata as { outcome?: string }).outcome === 'ok')).toBe(true);
  });

  it('rejects malformed JSON, oversized bodies and unknown fields with a clear 4xx and no state change', async () => {
    const before = (await svc.core.tenants.list()).length;
    const bad = await svc.api(adminKey, 'POST', '/v1/admin/ops/tenants.create', '{"name": ');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_json');
    const big = await svc.api(adminKey, 'POST', '/v1/admin/ops/tenants.create', { name: 'x'.repeat(2 * 1024 * 1024) });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('payload_too_large');
    const unknown = await svc.api(adminKey, 'POST', '/v1/admin/ops/tenants.create', { name: 'ok', colour: 'blue' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('validation_error');
    expect(unknown.body.error.message).toContain('colour');
    // details.field names the unknown field itself, not just "body".
    expect(unknown.body.error.details).toEqual({ field: 'colour', location: 'body' });
    expect((await svc.core.tenants.list()).length).toBe(before);
  });

  it('answers unknown routes and bad cursors as JSON errors', async () => {
    const r = await svc.api(a.apiKey, 'GET', '/v1/nope');
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('route_not_found');
    const c = await svc.api(a.apiKey, 'GET', '/v1/mailboxes?cursor=garbage');
    expect(c.status).toBe(400);
    expect(c.body.error.code).toBe('invalid_cursor');
  });

  it('serves health, readiness, metrics and an OpenAPI document', async () => {
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    const ready = (await (await fetch(`${svc.url}/readyz`)).json()) as { checks: Record<string, { status: string }> };
    expect(ready.checks.database!.status).toBe('ok');
    expect(ready.checks.queue!.status).toBe('ok');
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toContain('mbc_http_request_duration_seconds');
    const doc = (await (await fetch(`${svc.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, { operationId: string }>> };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/v1/mailboxes/{id}']!.get!.operationId).toBe('getMailbox');
  });

  it('keeps bearer tokens and mail-like bodies out of the logs', async () => {
    const subject = 'Quarterly payroll for jane.doe@customer.example';
    const body = { name: subject, text: 'Dear Jane, your salary is 123456', html: '<p>secret body phrase</p>' };
    await svc.api(adminKey, 'POST', '/v1/admin/ops/tenants.create', body);
    await svc.api(a.apiKey, 'GET', '/v1/mailboxes?cursor=bad');
    const all = svc.logs.join('\n');
    expect(svc.logs.length).toBeGreaterThan(5);
    for (const secret of [a.apiKey, adminKey, subject, 'jane.doe@customer.example', 'salary is 123456', 'secret body phrase']) {
      expect(all).not.toContain(secret);
    }
    // The logger's own redaction net catches content fields even when code logs them by mistake.
    svc.core.logger.info({ subject, text: 'body text here', token: a.apiKey, nested: { html: '<b>x</b>' } }, 'careless log');
    await waitUntil('the careless log line', () => svc.logs.some((l) => l.includes('careless log')));
    const after = svc.logs.join('\n');
    expect(after).toContain('careless log');
    expect(after).not.toContain('body text here');
    expect(after).not.toContain(a.apiKey);
    expect(after).not.toContain('<b>x</b>');
  });
});

// GDPR access and erasure by address across a tenant's mailboxes, through the blind index.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lifecycleModule } from '../../src/bootstrap/lifecycle.module.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { seedMailbox } from './purge-seed.fixture.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService({ modules: async (core, services) => [tenancyModule(core), lifecycleModule(core, services)] });
}, 60_000);
afterAll(async () => svc?.close());

describe('data-subject requests', () => {
  it('export returns everything from or to the address across the tenant’s mailboxes; erase deletes exactly that; another tenant is untouched', async () => {
    const core = svc.core;
    const t = await svc.createTenant();
    const other = await svc.createTenant();
    const subject = 'Jane.Doe@Example.org';
    const sales = await seedMailbox(core, {
      tenantId: t.tenantId,
      address: 'sales@acme.example',
      messages: [
        { from: 'jane.doe@example.org', to: ['sales@acme.example'], subject: 'quote please', text: 'Jane asks for a quote', attachments: [{ filename: 'spec.pdf', content: Buffer.from('%PDF spec'), contentType: 'application/pdf' }] },
        { from: 'bob@example.net', to: ['sales@acme.example'], subject: 'unrelated', text: 'Bob writes' },
      ],
    });
    const support = await seedMailbox(core, {
      tenantId: t.tenantId,
      address: 'support@acme.example',
      messages: [{ from: 'agent@acme.example', to: ['bob@example.net'], cc: ['jane.doe@example.org'], subject: 'cc to jane', text: 'Jane in cc' }],
    });
    const foreign = await seedMailbox(core, {
      tenantId: other.tenantId,
      address: 'info@other.example',
      messages: [{ from: 'jane.doe@example.org', to: ['info@other.example'], subject: 'other tenant', text: 'Jane elsewhere' }],
    });

    const exp = await svc.api(t.apiKey, 'GET', `/v1/data-subjects/export?email=${encodeURIComponent(subject)}`);
    expect(exp.status).toBe(200);
    expect(exp.headers.get('cache-control')).toBe('no-store');
    expect(exp.body.object).toBe('data_subject_export');
    const byId = new Map((exp.body.messages as Array<{ id: string }>).map((m) => [m.id, m]));
    expect([...byId.keys()].sort()).toEqual([sales.messageIds[0], support.messageIds[0]].sort());
    expect(byId.get(sales.messageIds[0]!)).toMatchObject({
      mailboxId: sales.mailboxId,
      roles: ['from'],
      content: { subject: 'quote please', text: 'Jane asks for a quote', from: { address: 'jane.doe@example.org' } },
      attachments: [{ filename: 'spec.pdf', contentType: 'application/pdf', scanStatus: 'clean' }],
    });
    expect(byId.get(support.messageIds[0]!)).toMatchObject({ roles: ['cc'], content: { subject: 'cc to jane' } });
    expect(JSON.stringify(exp.body)).not.toContain('Jane elsewhere');

    // Validation and isolation.
    expect((await svc.api(t.apiKey, 'GET', '/v1/data-subjects/export?email=not-an-address')).status).toBe(400);
    const otherExport = await svc.api(other.apiKey, 'GET', `/v1/data-subjects/export?email=${encodeURIComponent(subject)}`);
    expect((otherExport.body.messages as Array<{ id: string }>).map((m) => m.id)).toEqual([foreign.messageIds[0]]);

    const erase = await svc.api(t.apiKey, 'POST', '/v1/data-subjects/erase', { email: subject });
    expect(erase.status).toBe(200);
    expect(erase.body).toEqual({ object: 'data_subject_erasure', messages: 2, attachments: 1, blobs: 3, messageAddresses: 5, threadRefs: 2 });
    expect(await core.prisma.message.findMany({ where: { tenantId: t.tenantId }, select: { id: true } })).toEqual([{ id: sales.messageIds[1] }]);
    expect(await core.prisma.blob.count({ where: { id: { in: [...sales.blobIds.slice(0, 2), ...support.blobIds] } } })).toBe(0);
    expect(await core.prisma.blob.count({ where: { id: sales.blobIds[2] } })).toBe(1);
    expect(await core.prisma.message.count({ where: { mailboxId: foreign.mailboxId } })).toBe(1);
    const after = await svc.api(t.apiKey, 'GET', `/v1/data-subjects/export?email=${encodeURIComponent(subject)}`);
    expect(after.body.messages).toEqual([]);

    // Both audited, with the address's blind index, never the address itself.
    const audit = await core.prisma.auditEntry.findMany({ where: { tenantId: t.tenantId, action: { startsWith: 'data_subject.' } }, orderBy: { seq: 'asc' } });
    expect(audit.map((e) => e.action)).toEqual(['data_subject.exported', 'data_subject.erased', 'data_subject.exported']);
    expect(audit[1]).toMatchObject({ actorType: 'api_key', actorId: t.apiKeyId, targetId: core.blindIndex.emailIndex(subject) });
    expect(JSON.stringify(audit.map(({ seq: _seq, ...e }) => e)).toLowerCase()).not.toContain('jane');
    expect(svc.logs.join('\n')).not.toContain('Jane asks');
  }, 60_000);
});

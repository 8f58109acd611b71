// Per-tenant retention: `retention run` (ops) and the scheduled job delete old mail with its
// attachments and blobs; recent mail and tenants without retention are untouched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lifecycleModule } from '../../src/bootstrap/lifecycle.module.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { seedMailbox, waitFor } from './purge-seed.fixture.js';

let svc: TestService;
const DAY = 86_400_000;

beforeAll(async () => {
  svc = await startTestService({ modules: async (core, services) => [tenancyModule(core), lifecycleModule(core, services)] });
}, 60_000);
afterAll(async () => svc?.close());

const msg = (subject: string, ageDays: number) => ({
  from: 'customer@example.org',
  to: ['help@example.com'],
  subject,
  text: `text of ${subject}`,
  receivedAt: new Date(Date.now() - ageDays * DAY),
  attachments: [{ filename: `${subject}.txt`, content: Buffer.from(subject) }],
});

describe('retention', () => {
  it('retention run deletes messages older than each tenant’s retention with attachments and blobs, reports counts, and leaves others alone', async () => {
    const core = svc.core;
    const admin = await core.apiKeys.issue({ admin: true });
    const short = await svc.createTenant({ name: 'short', retentionDays: 30 });
    const keepAll = await svc.createTenant({ name: 'keep' });
    const a = await seedMailbox(core, { tenantId: short.tenantId, address: 'help@example.com', messages: [msg('old-1', 45), msg('old-2', 31), msg('fresh', 2)] });
    const b = await seedMailbox(core, { tenantId: keepAll.tenantId, address: 'help@example.com', messages: [msg('ancient', 400), msg('fresh-b', 1)] });

    const res = await svc.api(admin.key, 'POST', '/v1/admin/ops/retention.run', {});
    expect(res.status).toBe(200);
    const mine = (res.body.result as Array<Record<string, unknown>>).find((r) => r.tenantId === short.tenantId);
    expect(mine).toMatchObject({ retentionDays: 30, messages: 2, attachments: 2, blobs: 4, messageAddresses: 4 });
    expect((res.body.result as Array<{ tenantId: string }>).some((r) => r.tenantId === keepAll.tenantId)).toBe(false);

    const left = await core.prisma.message.findMany({ where: { mailboxId: a.mailboxId } });
    expect(left.map((m) => m.id)).toEqual([a.messageIds[2]]);
    expect(await core.prisma.attachment.count({ where: { mailboxId: a.mailboxId } })).toBe(1);
    expect(await core.prisma.blob.count({ where: { mailboxId: a.mailboxId } })).toBe(2);
    expect(await core.prisma.blobChunk.count({ where: { blobId: { in: a.blobIds.slice(0, 4) } } })).toBe(0);
    expect(await core.prisma.messageAddress.count({ where: { messageId: { in: a.messageIds.slice(0, 2) } } })).toBe(0);
    // The other tenant keeps everything, however old.
    expect(await core.prisma.message.count({ where: { mailboxId: b.mailboxId } })).toBe(2);
    expect(await core.prisma.blob.count({ where: { mailboxId: b.mailboxId } })).toBe(4);

    const audit = await core.prisma.auditEntry.findFirstOrThrow({ where: { tenantId: short.tenantId, action: 'retention.applied' } });
    expect(audit).toMatchObject({ actorType: 'ops' });
    expect(audit.metadata).toMatchObject({ messages: 2, retentionDays: 30 });

    // Idempotent: a second run finds nothing more.
    const again = await svc.api(admin.key, 'POST', '/v1/admin/ops/retention.run', {});
    expect((again.body.result as Array<Record<string, unknown>>).find((r) => r.tenantId === short.tenantId)).toMatchObject({ messages: 0 });
  }, 60_000);

  it('the scheduled job applies the same rule', async () => {
    const core = svc.core;
    const t = await svc.createTenant({ retentionDays: 7 });
    const m = await seedMailbox(core, { tenantId: t.tenantId, address: 'ops@example.com', messages: [msg('stale', 8), msg('new', 1)] });
    await core.jobs.enqueue('retention.run', {});
    const audit = await waitFor(() => core.prisma.auditEntry.findFirst({ where: { tenantId: t.tenantId, action: 'retention.applied' } }), 20_000, 'retention job');
    expect(await core.prisma.message.count({ where: { mailboxId: m.mailboxId } })).toBe(1);
    expect(audit).toMatchObject({ actorType: 'system', actorId: 'retention' });
  }, 60_000);
});

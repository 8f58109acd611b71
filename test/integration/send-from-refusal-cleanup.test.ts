// Expired send-as refusals (send_from_refusals, docs/sending.md "Refusals are shared between
// processes") are deleted by the scheduled retention.run job; live ones stay.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lifecycleModule } from '../../src/bootstrap/lifecycle.module.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { SendFromRefusalRepository } from '../../src/storage/send-from-refusal.repository.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { seedMailbox } from './purge-seed.fixture.js';
import { waitUntil } from '../helpers/wait.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService({ modules: async (core, services) => [tenancyModule(core), lifecycleModule(core, services)] });
}, 60_000);
afterAll(async () => svc?.close());

describe('send_from_refusals cleanup', () => {
  it('the retention.run job deletes expired refusals and keeps the ones still in force', async () => {
    const core = svc.core;
    const t = await svc.createTenant();
    const { mailboxId } = await seedMailbox(core, { tenantId: t.tenantId, address: 'desk@contoso.test', messages: [] });
    const repo = new SendFromRefusalRepository(core.prisma);
    const now = Date.now();
    const expired = core.blindIndex.emailIndex('support@contoso.test');
    const live = core.blindIndex.emailIndex('billing@contoso.test');
    await repo.remember({ mailboxId, addressIndex: expired, reason: 'send_as_denied', expiresAt: new Date(now - 1_000), now: new Date(now - 601_000) });
    await repo.remember({ mailboxId, addressIndex: live, reason: 'alias_rewritten', expiresAt: new Date(now + 600_000), now: new Date(now) });
    // An expired row is not a refusal even before it is deleted.
    expect(await repo.find(mailboxId, expired, new Date())).toBeNull();

    await core.jobs.enqueue('retention.run', {});
    await waitUntil('expired refusal deleted', async () => (await core.prisma.sendFromRefusal.count({ where: { mailboxId, addressIndex: expired } })) === 0, { timeoutMs: 30_000 });
    expect(await core.prisma.sendFromRefusal.findMany({ where: { mailboxId }, select: { addressIndex: true, reason: true } })).toEqual([{ addressIndex: live, reason: 'alias_rewritten' }]);
  }, 60_000);
});

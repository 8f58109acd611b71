// Releasing the deliveries held after a restore (ops events.releaseHeld) wakes the webhook pump at
// once — as a commit of events does (the events-committed hook: this process's pump, and the other
// processes' through NOTIFY on Postgres) — instead of leaving them to the pump's 15 s safety tick.
// Real service (workers, pump, admin ops API), real database, a local receiver.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Core } from '../../src/bootstrap/core.js';
import { lifecycleModule } from '../../src/bootstrap/lifecycle.module.js';
import type { ServiceModule } from '../../src/bootstrap/module.js';
import type { ProcessServices } from '../../src/bootstrap/modules.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { webhooksModule } from '../../src/bootstrap/webhooks.module.js';
import { eventsCommittedHook, setEventsCommittedHook } from '../../src/events/events-committed.js';
import { HELD_AFTER_RESTORE } from '../../src/storage/restore.repository.js';
import { webhooksSettled } from '../helpers/settled.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { emit, seedMailbox, seedMessage, startReceiver, waitFor } from './webhooks-seed.js';

const modules = async (core: Core, services: ProcessServices): Promise<ServiceModule[]> => [tenancyModule(core), lifecycleModule(core, services), webhooksModule(core)];

let svc: TestService;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  receiver = await startReceiver();
  svc = await startTestService({ modules });
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await receiver?.close();
});

describe('events.releaseHeld', () => {
  it('wakes the webhook pump: the released delivery arrives well before the pump’s 15 s safety tick', async () => {
    const t = await svc.createTenant();
    expect((await svc.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url: receiver.url })).status).toBe(201);
    const mailbox = await seedMailbox(svc.core, t.tenantId);
    const msg = await seedMessage(svc.core, t.tenantId, mailbox.id, { subject: 'held one', text: 'body' });
    const [event] = await emit(svc.core, [{ tenantId: t.tenantId, mailboxId: mailbox.id, type: 'message.received', refs: { messageId: msg.id } }]);
    await waitFor(() => receiver.received.some((r) => r.headers['webhook-id'] === event!.id), 15_000, 'the event delivered');
    await webhooksSettled(svc.core);

    // As a restore leaves a delivery the restored database had not sent: held, not due.
    await svc.core.prisma.webhookDelivery.updateMany({ where: { eventId: event!.id }, data: { status: HELD_AFTER_RESTORE, nextAttemptAt: null } });
    const before = receiver.received.length;
    const wake = eventsCommittedHook(svc.core.jobs)!;
    let wakes = 0;
    setEventsCommittedHook(svc.core.jobs, (ids) => {
      if (ids.length === 0) wakes++;
      wake(ids);
    });

    const admin = (await svc.core.apiKeys.issue({ admin: true })).key;
    const released = Date.now();
    const res = await svc.api(admin, 'POST', '/v1/admin/ops/events.releaseHeld', {});
    expect(res.status).toBe(200);
    expect(res.body.result).toEqual({ held: 1, released: 1 });
    expect(wakes).toBe(1);
    // Delivered and settled within 5 s of the release: the tick alone would take up to 15 s.
    await webhooksSettled(svc.core, { timeoutMs: 5_000 });
    const again = receiver.received.slice(before).find((r) => r.headers['webhook-id'] === event!.id);
    expect(again).toBeDefined();
    expect(again!.at - released).toBeLessThan(5_000);
    expect(await svc.core.prisma.webhookDelivery.findFirstOrThrow({ where: { eventId: event!.id } })).toMatchObject({ status: 'delivered' });

    // Discarding wakes nobody: nothing became due.
    await svc.core.prisma.webhookDelivery.updateMany({ where: { eventId: event!.id }, data: { status: HELD_AFTER_RESTORE, nextAttemptAt: null } });
    const discarded = await svc.api(admin, 'POST', '/v1/admin/ops/events.releaseHeld', { discard: true });
    expect(discarded.body.result).toEqual({ held: 1, discarded: 1 });
    expect(wakes).toBe(1);
  }, 60_000);
});

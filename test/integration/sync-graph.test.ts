// Graph sync end to end: the real service (SANDBOX=1, real Postgres, pg-boss workers), a mailbox
// connected through MSAL consent, the Microsoft stand-in delivering mail, change notifications and
// lifecycle events to /push/microsoft[/lifecycle] through a real subscription.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { jobsSettled } from '../helpers/settled.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { connectMailbox } from './connect-helpers.js';

let svc: TestService;
let sb: MicrosoftSandbox;
let apiKey: string;
let n = 0;

function mime(subject: string): Buffer {
  n++;
  return Buffer.from(`From: Client ${n} <client${n}@fabrikam.test>\r\nTo: agent@contoso.test\r\nSubject: ${subject}\r\nMessage-ID: <ms${n}.${Date.now()}@fabrikam.test>\r\nDate: ${new Date().toUTCString()}\r\n\r\nBody of ${subject}\r\n`);
}

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    await new Promise((r) => setTimeout(r, 150));
    last = await fn();
  }
  return last;
}

const stored = (mailboxId: string) => svc.core.prisma.message.findMany({ where: { mailboxId }, select: { providerMessageId: true } });
const received = (mailboxId: string) => svc.core.prisma.outboxEvent.count({ where: { mailboxId, type: 'message.received' } });
const row = (mailboxId: string) =>
  svc.core.prisma.mailbox.findUniqueOrThrow({
    where: { id: mailboxId },
    select: { backfillCompletedAt: true, syncState: true, syncError: true, subscriptionId: true, clientStateEnc: true, syncCursor: true, lastPushAt: true },
  });

async function connect(email: string): Promise<string> {
  await connectMailbox(svc, apiKey, 'microsoft', email);
  const found = (await svc.core.prisma.mailbox.findMany({ where: { provider: 'microsoft' } })).find((r) => r.addressIndex === svc.core.blindIndex.emailIndex(email));
  if (!found) throw new Error('mailbox not created');
  await until('first sync', () => row(found.id), (m) => m.backfillCompletedAt !== null && m.syncState === 'idle' && m.subscriptionId !== null);
  return found.id;
}

beforeAll(async () => {
  svc = await startTestService({ env: { SANDBOX: '1', BACKFILL_DAYS: '7' } });
  sb = svc.services.access.settings.sandbox.microsoft!;
  ({ apiKey } = await svc.createTenant());
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

describe('Graph sync', () => {
  it('backfills the window, subscribes with an encrypted clientState, then syncs on change notifications', async () => {
    const email = 'agent1@contoso.test';
    sb.createUser(email);
    const day = 86_400_000;
    const recent = [];
    for (const i of [1, 2, 3]) recent.push((await sb.deliver(email, mime(`recent ${i}`), { receivedAt: new Date(Date.now() - i * day) })).id);
    const old = (await sb.deliver(email, mime('old'), { receivedAt: new Date(Date.now() - 20 * day) })).id;
    const mailboxId = await connect(email);
    const rows = await stored(mailboxId);
    expect(rows.map((r) => r.providerMessageId).sort()).toEqual([...recent].sort());
    expect(rows.some((r) => r.providerMessageId === old)).toBe(false);

    const mb = await row(mailboxId);
    const sub = sb.subscriptions().find((s) => s.id === mb.subscriptionId)!;
    expect(sub.notificationUrl).toBe(`${svc.url}/push/microsoft`);
    expect(sub.lifecycleNotificationUrl).toBe(`${svc.url}/push/microsoft/lifecycle`);
    expect(mb.clientStateEnc).not.toBeNull();
    expect(mb.syncCursor).toMatchObject({ v: 1, provider: 'microsoft' });

    const added = [(await sb.deliver(email, mime('new 1'))).id, (await sb.deliver(email, mime('new 2'))).id];
    const after = await until('notification sync', () => stored(mailboxId), (r) => r.length === 5);
    for (const id of added) expect(after.map((r) => r.providerMessageId)).toContain(id);
    expect(sb.notificationAttempts().some((a) => a.outcome === 202)).toBe(true);
    expect(await received(mailboxId)).toBe(5);
  }, 60_000);

  it('fetches the authority metadata once, not at every token acquisition (one MSAL application per call)', async () => {
    const email = 'agent-metadata@contoso.test';
    sb.createUser(email);
    const mailboxId = await connect(email);
    const afterConnect = sb.metadataRequests();
    for (const i of [1, 2, 3]) {
      // Each sync refreshes its token (as an hourly poll does) and reads cached ones otherwise.
      if (i > 1) sb.expireAccessTokens(email);
      await sb.deliver(email, mime(`metadata ${i}`));
      await until(`sync ${i}`, () => stored(mailboxId), (r) => r.length === i);
    }
    expect(sb.metadataRequests()).toBe(afterConnect);
  }, 60_000);

  for (const mode of ['gone', 'syncStateNotFound'] as const) {
    it(`recovers from an expired delta token (${mode}) by a receivedDateTime window: nothing lost, nothing doubled`, async () => {
      const email = `expire-${mode}@contoso.test`;
      sb.createUser(email);
      await sb.deliver(email, mime('before'));
      const mailboxId = await connect(email);
      expect((await stored(mailboxId)).length).toBe(1);
      sb.dropNotifications(2);
      const missed = [(await sb.deliver(email, mime('missed 1'))).id, (await sb.deliver(email, mime('missed 2'))).id];
      sb.expireDelta(email, mode);
      expect((await svc.api(apiKey, 'POST', `/v1/mailboxes/${mailboxId}/resync`)).status).toBe(202);
      const rows = await until('resync', () => stored(mailboxId), (r) => r.length === 3);
      for (const id of missed) expect(rows.map((r) => r.providerMessageId)).toContain(id);
      await until('idle', () => row(mailboxId), (m) => m.syncState === 'idle');
      expect(await received(mailboxId)).toBe(3);
      // The fresh delta link works for the next message.
      await sb.deliver(email, mime('after'));
      await svc.api(apiKey, 'POST', `/v1/mailboxes/${mailboxId}/resync`);
      await until('after resync', () => stored(mailboxId), (r) => r.length === 4);
      expect(await received(mailboxId)).toBe(4);
    }, 60_000);
  }

  it('answers the validation handshake with the decoded token as text/plain, never as HTML', async () => {
    const token = 'Validation: <script>alert(1)</script> & done';
    const res = await fetch(`${svc.url}/push/microsoft?validationToken=${encodeURIComponent(token)}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toBe(token);
  });

  it('drops notifications with a wrong clientState or unknown subscription (202, no sync)', async () => {
    const email = 'forged@contoso.test';
    sb.createUser(email);
    const mailboxId = await connect(email);
    await jobsSettled(svc.core, { key: mailboxId });
    await until('idle', () => row(mailboxId), (m) => m.syncState === 'idle');
    const before = await row(mailboxId);
    sb.dropNotifications(1); // the genuine notification for this mail never arrives
    await sb.deliver(email, mime('not announced'));
    const post = (body: unknown) => fetch(`${svc.url}/push/microsoft`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const forged = { value: [{ subscriptionId: before.subscriptionId, clientState: 'guessed-secret', changeType: 'created', resource: 'x' }] };
    expect((await post(forged)).status).toBe(202);
    expect((await post({ value: [{ subscriptionId: before.subscriptionId, changeType: 'created' }] })).status).toBe(202);
    expect((await post({ value: [{ subscriptionId: 'nope', clientState: 'x' }] })).status).toBe(202);
    expect((await fetch(`${svc.url}/push/microsoft/lifecycle`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: [{ subscriptionId: before.subscriptionId, clientState: 'guess', lifecycleEvent: 'subscriptionRemoved' }] }) })).status).toBe(202);
    // Notifications are checked and their syncs queued before the 202: a forged one that got
    // through would have left a sync of this mailbox to run.
    await jobsSettled(svc.core, { key: mailboxId });
    expect((await stored(mailboxId)).length).toBe(0);
    const after = await row(mailboxId);
    expect(after.lastPushAt?.getTime() ?? null).toBe(before.lastPushAt?.getTime() ?? null);
    expect(after.subscriptionId).toBe(before.subscriptionId);
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toMatch(/mbc_push_notifications_total\{provider="microsoft",outcome="client_state_mismatch"\} [2-9]/);
  }, 60_000);

  it('lifecycle: subscriptionRemoved recreates the subscription then syncs; missed syncs', async () => {
    const email = 'lifecycle@contoso.test';
    sb.createUser(email);
    const mailboxId = await connect(email);
    const first = (await row(mailboxId)).subscriptionId!;
    sb.dropNotifications(1);
    const id = (await sb.deliver(email, mime('while removed'))).id;
    sb.sendLifecycleNotification(first, 'subscriptionRemoved');
    const mb = await until('recreated', () => row(mailboxId), (m) => m.subscriptionId !== null && m.subscriptionId !== first && m.syncState === 'idle');
    expect(sb.subscriptions().find((s) => s.id === mb.subscriptionId)?.deleted).toBe(false);
    await until('synced after removal', () => stored(mailboxId), (r) => r.some((x) => x.providerMessageId === id));
    sb.dropNotifications(1);
    const id2 = (await sb.deliver(email, mime('missed'))).id;
    sb.sendLifecycleNotification(mb.subscriptionId!, 'missed');
    await until('synced after missed', () => stored(mailboxId), (r) => r.some((x) => x.providerMessageId === id2));
    expect(await received(mailboxId)).toBe(2);
  }, 60_000);
});

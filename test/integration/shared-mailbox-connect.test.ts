// A Microsoft 365 shared mailbox connected by one of its members (issue 15 item 1), end to end:
// the connect-session API with `mailbox`, the hosted page, the stand-in's consent screen, the
// callback's access check, the stored record (address = shared address, connectedBy = member),
// backfill and a poll through delta on /users/{address}/, a reply sent as the shared address
// (the real send worker and Graph client), the member removed → reauth_required with the reason
// in the API and the webhook event; and the refusals (google, bad address, outsider, unknown
// mailbox). The real service with SANDBOX=1 on the test's database (Postgres or embedded).
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobMap, JobName } from '../../src/jobs/job-map.js';
import type { MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { SyncStateRepository } from '../../src/storage/sync-state.repository.js';
import { SyncSchedulerService } from '../../src/sync/sync-scheduler.service.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitUntil } from '../helpers/wait.js';
import { access, connectMailbox, consent, createSession, deliverCallback, eventsOf, mailboxRows, startConsent } from './connect-helpers.js';

const SUPPORT = 'support@contoso.test';
const MEMBER = 'dana@contoso.test';
const GRAPH = 'https://graph.microsoft.com/';

let svc: TestService;
let ms: MicrosoftSandbox;
let tenant: { tenantId: string; apiKey: string };

function question(subject: string): Buffer {
  const id = `<${subject.replace(/\W+/g, '.')}.${Date.now()}@fabrikam.test>`;
  return Buffer.from(`From: Customer <c@fabrikam.test>\r\nTo: ${SUPPORT}\r\nSubject: ${subject}\r\nMessage-ID: ${id}\r\nDate: ${new Date().toUTCString()}\r\n\r\nHello, ${subject}\r\n`);
}

/** The real poll rule (sync.poll's selection and enqueue) run as if `aheadMs` had passed. */
async function pollAhead(aheadMs: number, jobs: ConstructorParameters<typeof SyncSchedulerService>[0]['jobs'] = svc.core.jobs): Promise<void> {
  await new SyncSchedulerService({ state: new SyncStateRepository(svc.core.prisma), jobs, clock: () => new Date(Date.now() + aheadMs), pollIntervalSeconds: 300, sharedPollIntervalSeconds: 60, googleWatchEnabled: false }).poll();
}

async function messagesOf(mailboxId: string): Promise<Array<{ id: string; subject: string | null }>> {
  const res = await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${mailboxId}/messages?limit=50`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.data as Array<{ id: string; subject: string | null }>;
}

beforeAll(async () => {
  svc = await startTestService({ env: { SANDBOX: '1' } });
  tenant = await svc.createTenant({ name: 'shared' });
  ms = (await access(svc)).settings.sandbox.microsoft!;
  ms.createSharedMailbox(SUPPORT, 'Contoso Support');
  ms.setSharedMember(SUPPORT, MEMBER, true);
}, 120_000);

afterAll(async () => {
  await svc?.close();
});

describe('Microsoft 365 shared mailbox, member consent (hosted flow, real MSAL + Graph client against the stand-in)', () => {
  it('connects, ingests by delta and poll, replies as the shared address, and goes reauth_required when the member loses access', async () => {
    await ms.deliver(SUPPORT, question('Where is my order'));
    await ms.deliver(MEMBER, question('The member’s own mail')); // never read

    const session = await createSession(svc, tenant.apiKey, { provider: 'microsoft', mailbox: SUPPORT });
    expect(session as unknown).toMatchObject({ provider: 'microsoft', mailboxId: null, mailbox: SUPPORT });
    // The hosted page names exactly the mailbox that will be read, and asks for the .Shared scopes.
    const page = await (await fetch(session.url)).text();
    expect(page).toContain(`<strong id="shared-mailbox">${SUPPORT}</strong>`);
    expect(page).toContain('Your own mailbox is not read');
    expect(page).toContain('Read the shared mailbox');

    const started = await startConsent(session.url, 'microsoft');
    const scopes = new URL(started.authorizeUrl).searchParams.get('scope') ?? '';
    expect(scopes).toContain(`${GRAPH}Mail.Read.Shared`);
    expect(scopes).toContain(`${GRAPH}Mail.Send.Shared`);
    const back = await consent('microsoft', started.authorizeUrl, { email: MEMBER });
    const result = await deliverCallback(back, started.cookie);
    expect(result.status, result.html).toBe(200);
    expect(result.html).toContain('data-status="connected"');
    expect(result.html).toContain(SUPPORT);

    const status = await svc.api(tenant.apiKey, 'GET', `/v1/connect-sessions/${session.id}`);
    expect(status.body).toMatchObject({ status: 'completed', result: 'connected', mailbox: SUPPORT });
    const mailboxId = status.body.resultMailboxId as string;

    const mailbox = await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${mailboxId}`);
    expect(mailbox.body).toMatchObject({ provider: 'microsoft', address: SUPPORT, access: 'shared_member', connectedBy: MEMBER, status: 'active' });
    // Stored encrypted: neither address is in a plaintext column.
    const [row] = await mailboxRows(svc, { id: mailboxId });
    expect(row!.addressIndex).toBe(svc.core.blindIndex.emailIndex(SUPPORT));
    expect(Buffer.from(row!.connectedByEnc!).toString('latin1')).not.toContain(MEMBER);

    // Backfill through delta on the shared mailbox; no push channel is attempted for it.
    const first = await waitUntil('backfill of the shared inbox', async () => {
      const m = await messagesOf(mailboxId);
      return m.length === 1 ? m : undefined;
    }, { timeoutMs: 60_000 });
    expect(first[0]!.subject).toBe('Where is my order');
    const [synced] = await mailboxRows(svc, { id: mailboxId });
    expect(synced!.syncCursor).toMatchObject({ provider: 'microsoft' });
    expect(JSON.stringify(synced!.syncCursor)).toContain(`/users/${encodeURIComponent(SUPPORT)}/`);
    expect(synced!.subscriptionId).toBeNull();
    expect(ms.subscriptions()).toHaveLength(0);

    // The poll rule: a shared mailbox is due after SHARED_MAILBOX_POLL_SECONDS (60 s less ≤ 20 %),
    // not after POLL_INTERVAL_SECONDS (300 s), and never for a subscription renewal.
    const queued: string[] = [];
    const capture = { enqueue: async <N extends JobName>(_n: N, p: JobMap[N]) => (queued.push((p as JobMap['sync.mailbox']).mailboxId), 'job') };
    await pollAhead(30_000, capture);
    expect(queued).not.toContain(mailboxId);
    await pollAhead(90_000, capture);
    expect(queued.filter((id) => id === mailboxId)).toHaveLength(1);
    expect((await new SyncStateRepository(svc.core.prisma).listRenewalDue({ now: new Date(Date.now() + 86_400_000), google: false }, undefined, 500)).map((m) => m.id)).not.toContain(mailboxId);

    // New mail arrives; the poll (real scheduler, real job queue) picks it up — with a token from a
    // forced refresh, which must keep the .Shared permissions the member granted.
    (await access(svc)).vault.invalidate(mailboxId);
    await ms.deliver(SUPPORT, question('Second question'));
    await pollAhead(90_000);
    const both = await waitUntil('the polled message', async () => {
      const m = await messagesOf(mailboxId);
      return m.length === 2 ? m : undefined;
    }, { timeoutMs: 60_000 });

    // A reply goes out as the shared address, into the shared mailbox's Sent Items.
    const target = both.find((m) => m.subject === 'Where is my order')!;
    const sent = await svc.api(tenant.apiKey, 'POST', `/v1/messages/${target.id}/reply`, { text: 'On its way.' }, { 'idempotency-key': `shared-${Date.now()}` });
    expect(sent.status, JSON.stringify(sent.body)).toBe(202);
    const outbox = await waitUntil('the reply at the stand-in', () => (ms.sentMessages(SUPPORT).length === 1 ? ms.sentMessages(SUPPORT) : undefined), { timeoutMs: 60_000 });
    const parsed = await simpleParser(outbox[0]!.mime);
    expect(parsed.from?.value[0]?.address).toBe(SUPPORT);
    expect(outbox[0]!.savedToSentItems).toBe(true);
    expect(ms.sentMessages(MEMBER)).toHaveLength(0);

    // The member is removed from the shared mailbox: the next sync turns the mailbox to
    // reauth_required with the reason, in the API and in one mailbox.reauth_required event.
    ms.setSharedMember(SUPPORT, MEMBER, false);
    await ms.deliver(SUPPORT, question('Third question'));
    expect((await svc.api(tenant.apiKey, 'POST', `/v1/mailboxes/${mailboxId}/resync`)).status).toBe(202);
    const lost = await waitUntil('reauth_required', async () => {
      const m = await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${mailboxId}`);
      return m.body.status === 'reauth_required' ? m.body : undefined;
    }, { timeoutMs: 60_000 });
    expect(lost.statusReason).toContain('shared_mailbox_access_denied');
    expect(await eventsOf(svc, mailboxId, 'mailbox.reauth_required')).toHaveLength(1);
    const audit = await svc.core.prisma.auditEntry.findMany({ where: { targetId: mailboxId, action: 'mailbox.reauth_required' } });
    expect(audit.map((a) => a.metadata)).toEqual([{ provider: 'microsoft', reason: 'shared_mailbox_access_denied' }]);

    // Another member reconnects the same record: same id and data, connectedBy updated.
    ms.setSharedMember(SUPPORT, 'erin@contoso.test', true);
    const re = await svc.api(tenant.apiKey, 'POST', `/v1/mailboxes/${mailboxId}/reconnect`, {});
    expect(re.status).toBe(201);
    expect(re.body.mailbox).toBe(SUPPORT);
    const reStarted = await startConsent(re.body.url, 'microsoft');
    expect(new URL(reStarted.authorizeUrl).searchParams.get('login_hint')).toBeNull();
    const reBack = await deliverCallback(await consent('microsoft', reStarted.authorizeUrl, { email: 'erin@contoso.test' }), reStarted.cookie);
    expect(reBack.html).toContain('data-status="connected"');
    const again = await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${mailboxId}`);
    expect(again.body).toMatchObject({ id: mailboxId, address: SUPPORT, access: 'shared_member', connectedBy: 'erin@contoso.test', status: 'active' });
    expect(await mailboxRows(svc, { tenantId: tenant.tenantId })).toHaveLength(1);
  }, 240_000);

  it('connecting the same shared mailbox again in the tenant renews the one record (the existing-mailbox rule)', async () => {
    const other = 'billing@contoso.test';
    ms.createSharedMailbox(other, 'Billing');
    ms.setSharedMember(other, 'finn@contoso.test', true);
    ms.setSharedMember(other, 'gus@contoso.test', true);
    const a = await connectMailbox(svc, tenant.apiKey, 'microsoft', 'finn@contoso.test', { mailbox: other });
    expect(a.result.html).toContain('data-status="connected"');
    const b = await connectMailbox(svc, tenant.apiKey, 'microsoft', 'gus@contoso.test', { mailbox: other });
    expect(b.result.html).toContain('data-status="connected"');
    const rows = await mailboxRows(svc, { addressIndex: svc.core.blindIndex.emailIndex(other) });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.access).toBe('shared_member');
    const events = await eventsOf(svc, rows[0]!.id, 'mailbox.connected');
    expect(events).toHaveLength(2);
    // The members' own mailboxes were never connected.
    expect(await mailboxRows(svc, { addressIndex: svc.core.blindIndex.emailIndex('finn@contoso.test') })).toHaveLength(0);

    // Disconnect purges it as any mailbox: the record and its data key go; the shared mailbox at
    // Microsoft is untouched (no per-app revoke for delegated grants).
    const del = await svc.api(tenant.apiKey, 'DELETE', `/v1/mailboxes/${rows[0]!.id}`);
    expect(del.status, JSON.stringify(del.body)).toBe(202);
    const receipt = await waitUntil('the purge', async () => {
      const r = (await svc.api(tenant.apiKey, 'GET', `/v1/purges/${del.body.purgeId as string}`)).body;
      return r?.status === 'completed' ? r : undefined;
    }, { timeoutMs: 60_000 });
    expect(receipt.mailboxId).toBe(rows[0]!.id);
    expect(await mailboxRows(svc, { id: rows[0]!.id })).toHaveLength(0);
    expect((await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${rows[0]!.id}`)).body.status).not.toBe('active');
  }, 120_000);

  it('refuses bad input at the API: google, a malformed address, mailbox with mailboxId', async () => {
    const google = await svc.api(tenant.apiKey, 'POST', '/v1/connect-sessions', { provider: 'google', mailbox: SUPPORT });
    expect(google.status).toBe(400);
    expect(google.body.error.code).toBe('validation_error');
    expect(google.body.error.message).toMatch(/microsoft only/);
    const none = await svc.api(tenant.apiKey, 'POST', '/v1/connect-sessions', { mailbox: SUPPORT });
    expect(none.status).toBe(400);
    for (const bad of ['support', 'support@', '<support@contoso.test>', 'a b@contoso.test', `${'x'.repeat(250)}@contoso.test`]) {
      const res = await svc.api(tenant.apiKey, 'POST', '/v1/connect-sessions', { provider: 'microsoft', mailbox: bad });
      expect(res.status, bad).toBe(400);
      expect(res.body.error.code).toBe('validation_error');
    }
    const both = await svc.api(tenant.apiKey, 'POST', '/v1/connect-sessions', { provider: 'microsoft', mailbox: SUPPORT, mailboxId: 'mbx_x' });
    expect(both.status).toBe(400);
  });

  it('stores nothing when the person who signed in is not a member, or the mailbox does not exist; the session can be tried again', async () => {
    const before = await svc.core.prisma.mailbox.count();
    const outsider = await connectMailbox(svc, tenant.apiKey, 'microsoft', 'eve@contoso.test', { mailbox: 'support@contoso.test' });
    expect(outsider.result.status).toBe(400);
    expect(outsider.result.html).toContain('data-status="mailbox_access_denied"');
    expect(outsider.result.html).toContain('not a member');
    expect(outsider.result.html).toContain('id="try-again"');
    const unknown = await connectMailbox(svc, tenant.apiKey, 'microsoft', 'eve@contoso.test', { mailbox: 'nobody@contoso.test' });
    expect(unknown.result.html).toContain('data-status="mailbox_access_denied"');
    expect(await svc.core.prisma.mailbox.count()).toBe(before);
    const s = await svc.api(tenant.apiKey, 'GET', `/v1/connect-sessions/${outsider.session.id}`);
    expect(s.body).toMatchObject({ status: 'failed', result: 'mailbox_access_denied' });
    // The same session again, now with a member: connected.
    ms.setSharedMember('support@contoso.test', 'eve@contoso.test', true);
    const retry = await startConsent(outsider.session.url, 'microsoft');
    const done = await deliverCallback(await consent('microsoft', retry.authorizeUrl, { email: 'eve@contoso.test' }), retry.cookie);
    expect(done.html).toContain('data-status="connected"');
  }, 120_000);
});

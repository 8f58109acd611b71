// Send-as addresses (issue 15 item 4), end to end: HTTP → send request (the alias checked against
// Gmail's users.settings.sendAs.list through the real @googleapis/gmail client) → outbound record →
// `send.outbound` worker → the Google stand-in over real HTTP, on a real database.
import { randomUUID } from 'node:crypto';
import { simpleParser, type AddressObject } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendModule } from '../../src/bootstrap/send.module.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { MAILBOX_ADDRESS_AAD, MESSAGE_CONTENT_AAD, encodeMessageContent, type MessageContent } from '../../src/mailboxes/message-content.js';
import { GOOGLE_SCOPES } from '../../src/oauth/scope-policy.js';
import { GmailAdapter } from '../../src/providers/google/gmail.adapter.js';
import { sandboxGoogleEndpoints } from '../../src/providers/google/google-endpoints.js';
import type { MailProvider } from '../../src/providers/mail-provider.port.js';
import { ProviderError } from '../../src/providers/provider-error.js';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { connectGoogleSandboxUser } from '../../src/sandbox/google/google-sandbox-connect.client.js';
import { newId } from '../../src/storage/ids.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { cleanScanner, outboundSettled } from '../helpers/outbound.js';

// Exactly what the connector asks a Google user for (openid, email, gmail.readonly, gmail.send):
// the send-as list must be readable with these, without a settings scope.
const CONNECTOR_SCOPES = GOOGLE_SCOPES.map((s) => s.scope);
const S = 'https://www.googleapis.com/auth/';

let svc: TestService;
let google: GoogleSandbox;
let tenant: { tenantId: string; apiKey: string };
const tokens = new Map<string, () => Promise<string>>();

async function providerFor(mailbox: { id: string; provider: 'google' | 'microsoft' }): Promise<MailProvider> {
  const accessToken = tokens.get(mailbox.id);
  if (!accessToken || mailbox.provider !== 'google') throw new Error(`no sandbox token for ${mailbox.id}`);
  return new GmailAdapter({ endpoints: sandboxGoogleEndpoints(google.url), accessToken });
}

beforeAll(async () => {
  google = await startGoogleSandbox();
  svc = await startTestService({
    modules: async (core, services) => [
      tenancyModule(core),
      sendModule(core, services, {
        providers: providerFor,
        scanner: cleanScanner,
        sender: { baseDelayMs: 50, maxDelayMs: 500 },
        // A miss asks Gmail again at once (default: at most every 30 s), so a test can verify an alias.
        sendAs: { missRefreshMs: 0 },
      }),
    ],
  });
  tenant = await svc.createTenant({ name: 'Acme support' });
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await google?.close();
});

async function connectGmail(address: string): Promise<string> {
  const user = await connectGoogleSandboxUser(google.endpoints, { email: address, scopes: CONNECTOR_SCOPES });
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
  tokens.set(id, async () => user.accessToken);
  return id;
}

let seq = 0;
/** A customer message delivered to the Gmail stand-in and stored as ingest leaves it. */
async function inbound(mailboxId: string, agent: string, subject = 'Order #1234 arrived damaged') {
  const internetMessageId = `<orig-${++seq}-${Date.now()}@customer.example>`;
  const raw = Buffer.from(
    [`From: Carla Customer <carla@customer.example>`, `To: ${agent}`, `Subject: ${subject}`, `Message-ID: ${internetMessageId}`, 'Date: Sat, 28 Nov 2026 09:00:00 +0000', 'Content-Type: text/plain; charset=utf-8', '', 'My order arrived damaged.', ''].join('\r\n'),
  );
  const stored = google.deliver(agent, raw);
  const messageId = newId('message');
  const content: MessageContent = {
    v: 1,
    internetMessageId,
    messageIdSynthetic: false,
    inReplyTo: null,
    references: [],
    from: { name: 'Carla Customer', address: 'carla@customer.example' },
    to: [{ name: null, address: agent }],
    cc: [],
    bcc: [],
    replyTo: [],
    subject,
    date: '2026-11-28T09:00:00.000Z',
    text: 'My order arrived damaged.',
    html: null,
    headers: {},
    autoReplyReason: null,
    bounceReason: null,
  };
  await svc.core.prisma.message.create({
    data: {
      id: messageId,
      tenantId: tenant.tenantId,
      mailboxId,
      providerMessageId: stored.id,
      providerThreadId: stored.threadId,
      messageIdIndex: svc.core.blindIndex.messageIdIndex(internetMessageId),
      threadKey: `gm:${stored.threadId}`,
      receivedAt: new Date('2026-11-28T09:00:00Z'),
      contentEnc: new Uint8Array(await svc.core.dataKeys.encryptFor({ type: 'mailbox', id: mailboxId }, encodeMessageContent(content), MESSAGE_CONTENT_AAD(messageId))),
    },
  });
  return { messageId, threadId: stored.threadId };
}

const reply = (messageId: string, body: unknown, key = randomUUID()) =>
  svc.api(tenant.apiKey, 'POST', `/v1/messages/${messageId}/reply`, body, { 'idempotency-key': key });

const settled = (outboundId: string): Promise<Record<string, unknown>> => outboundSettled(svc, tenant.apiKey, outboundId);

async function fromOf(raw: Buffer): Promise<{ name: string; address: string | undefined }> {
  const parsed = await simpleParser(raw);
  const from = (parsed.from as AddressObject).value[0]!;
  return { name: from.name, address: from.address };
}

async function outboundCount(): Promise<number> {
  return svc.core.prisma.outboundMessage.count({ where: { tenantId: tenant.tenantId } });
}

function countSendAsCalls(): { stop(): number } {
  let n = 0;
  const stop = google.observeQuota((c) => {
    if (c.method === 'settings.sendAs.list') n++;
  });
  return { stop: () => (stop(), n) };
}

describe('Gmail send-as list in the stand-in', () => {
  it('is readable with the connector’s scopes (gmail.readonly) and refused to gmail.send alone, as Google’s discovery document lists', async () => {
    const agent = 'scopes@acme.test';
    google.setSendAs(agent, { sendAsEmail: 'orders@acme.test', displayName: 'Acme Orders', verificationStatus: 'accepted' });
    google.setSendAs(agent, { sendAsEmail: 'billing@acme.test', verificationStatus: 'pending' });

    const full = await connectGoogleSandboxUser(google.endpoints, { email: agent, scopes: CONNECTOR_SCOPES });
    const adapter = new GmailAdapter({ endpoints: sandboxGoogleEndpoints(google.url), accessToken: async () => full.accessToken });
    expect(await adapter.listSendAs()).toEqual([
      { address: agent, displayName: undefined, isPrimary: true, verified: true },
      { address: 'orders@acme.test', displayName: 'Acme Orders', isPrimary: false, verified: true },
      { address: 'billing@acme.test', displayName: undefined, isPrimary: false, verified: false },
    ]);

    const sendOnly = await connectGoogleSandboxUser(google.endpoints, { email: agent, scopes: ['openid', 'email', `${S}gmail.send`] });
    const narrow = new GmailAdapter({ endpoints: sandboxGoogleEndpoints(google.url), accessToken: async () => sendOnly.accessToken });
    const err = await narrow.listSendAs().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).status).toBe(403);
  });
});

describe('replies and new messages from a send-as address', () => {
  it('a reply from a verified alias goes out with that From (and the alias’s display name), in the original thread, and reaches the customer', async () => {
    const agent = 'support@acme.test';
    google.setSendAs(agent, { sendAsEmail: 'orders@acme.test', displayName: 'Acme Orders', verificationStatus: 'accepted' });
    const customer = google.createUser('carla@customer.example');
    const before = customer.messages.size;
    const mailboxId = await connectGmail(agent);
    const original = await inbound(mailboxId, agent);

    const res = await reply(original.messageId, { text: 'A replacement is on its way.', from: 'Orders@Acme.test' });
    expect(res.status).toBe(202);
    const done = await settled(res.body.outboundId as string);
    expect(done).toMatchObject({ status: 'sent', providerThreadId: original.threadId });

    const sent = google.sent(agent);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.threadId).toBe(original.threadId);
    // Sent as the alias, spelled as Gmail lists it.
    expect(await fromOf(sent[0]!.raw)).toEqual({ name: 'Acme Orders', address: 'orders@acme.test' });
    // The customer's mailbox (also in the stand-in) received it from the alias.
    expect(customer.messages.size).toBe(before + 1);
    const received = [...customer.messages.values()].at(-1)!;
    expect(await fromOf(received.raw)).toEqual({ name: 'Acme Orders', address: 'orders@acme.test' });
    expect(received.normalizedSubject).toBe('order #1234 arrived damaged');
  });

  it('refuses a pending alias and an unknown address with 422 from_not_allowed; nothing is queued or sent, and the key can be used again', async () => {
    const agent = 'helpdesk@acme.test';
    google.setSendAs(agent, { sendAsEmail: 'billing@acme.test', verificationStatus: 'pending' });
    const mailboxId = await connectGmail(agent);
    const original = await inbound(mailboxId, agent);
    const queuedBefore = await outboundCount();

    const key = randomUUID();
    const pending = await reply(original.messageId, { text: 'Hello', from: { name: 'Billing', address: 'billing@acme.test' } }, key);
    expect(pending.status).toBe(422);
    expect(pending.body.error).toMatchObject({ code: 'from_not_allowed', details: { field: 'from', reason: 'alias_not_verified' } });
    expect(pending.body.error.message).toMatch(/not verified/);

    const unknown = await reply(original.messageId, { text: 'Hello', from: 'ceo@elsewhere.test' }, key);
    expect(unknown.status).toBe(422);
    expect(unknown.body.error).toMatchObject({ code: 'from_not_allowed', details: { field: 'from', reason: 'not_an_alias' } });
    // The refusal does not repeat the address.
    expect(JSON.stringify(unknown.body)).not.toContain('elsewhere.test');

    expect(await outboundCount()).toBe(queuedBefore);
    expect(google.sent(agent)).toHaveLength(0);

    // Nothing was stored under the key: the corrected request goes out from the mailbox itself.
    const fixed = await reply(original.messageId, { text: 'Hello' }, key);
    expect(fixed.status).toBe(202);
    expect(await settled(fixed.body.outboundId as string)).toMatchObject({ status: 'sent' });
    expect(await fromOf(google.sent(agent)[0]!.raw)).toEqual({ name: '', address: agent });
  });

  it('a new message from an alias verified after it was refused goes out (the list is read again on a miss)', async () => {
    const agent = 'sales@acme.test';
    google.setSendAs(agent, { sendAsEmail: 'offers@acme.test', displayName: 'Acme Offers', verificationStatus: 'pending' });
    const mailboxId = await connectGmail(agent);
    const send = (key = randomUUID()) =>
      svc.api(tenant.apiKey, 'POST', `/v1/mailboxes/${mailboxId}/send`, { to: 'lead@prospect.example', subject: 'Your quote', text: 'Attached below.', from: 'offers@acme.test', fromName: 'Sales team' }, { 'idempotency-key': key });

    const refused = await send();
    expect(refused.status).toBe(422);
    expect(refused.body.error.details).toEqual({ field: 'from', reason: 'alias_not_verified' });

    google.setSendAs(agent, { sendAsEmail: 'offers@acme.test', displayName: 'Acme Offers', verificationStatus: 'accepted' });
    const accepted = await send();
    expect(accepted.status).toBe(202);
    expect(await settled(accepted.body.outboundId as string)).toMatchObject({ status: 'sent' });
    // fromName wins over the alias's own display name.
    expect(await fromOf(google.sent(agent)[0]!.raw)).toEqual({ name: 'Sales team', address: 'offers@acme.test' });
  });

  it('the mailbox’s own address needs no look-up; an unreadable list is 503 send_as_unavailable and the same key succeeds later', async () => {
    const agent = 'ops@acme.test';
    google.setSendAs(agent, { sendAsEmail: 'status@acme.test', verificationStatus: 'accepted' });
    const mailboxId = await connectGmail(agent);
    const original = await inbound(mailboxId, agent);

    const calls = countSendAsCalls();
    const own = await reply(original.messageId, { text: 'Hi', from: 'OPS@acme.test' });
    expect(own.status).toBe(202);
    expect(calls.stop()).toBe(0);
    // Settled first, so the injected 503 below meets the send-as look-up and not this send.
    expect(await settled(own.body.outboundId as string)).toMatchObject({ status: 'sent' });
    expect(await fromOf(google.sent(agent)[0]!.raw)).toEqual({ name: '', address: agent });

    google.serverErrorNext(1, 503);
    const key = randomUUID();
    const unavailable = await reply(original.messageId, { text: 'Status update', from: 'status@acme.test' }, key);
    expect(unavailable.status).toBe(503);
    expect(unavailable.body.error.code).toBe('send_as_unavailable');
    const retried = await reply(original.messageId, { text: 'Status update', from: 'status@acme.test' }, key);
    expect(retried.status).toBe(202);
    expect(await settled(retried.body.outboundId as string)).toMatchObject({ status: 'sent' });
  });

  it('the stand-in, like Gmail, replaces a From that is not a verified alias with the account’s address', async () => {
    const agent = 'direct@acme.test';
    google.setSendAs(agent, { sendAsEmail: 'pending@acme.test', verificationStatus: 'pending' });
    const user = await connectGoogleSandboxUser(google.endpoints, { email: agent, scopes: CONNECTOR_SCOPES });
    const adapter = new GmailAdapter({ endpoints: sandboxGoogleEndpoints(google.url), accessToken: async () => user.accessToken });
    const mime = Buffer.from(['From: Someone <pending@acme.test>', 'To: x@example.com', 'Subject: hi', 'Message-ID: <direct-1@acme.test>', '', 'body', ''].join('\r\n'));
    await adapter.send({ mime, internetMessageId: '<direct-1@acme.test>' });
    expect(await fromOf(google.sent(agent)[0]!.raw)).toEqual({ name: 'Someone', address: agent });
  });
});

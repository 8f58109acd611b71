// Sending through the connected account (issue 7), end to end: HTTP → outbound record → pg-boss
// `send.outbound` worker → the real Gmail / Graph adapters (googleapis, Graph client) → the
// Google and Microsoft stand-ins over real HTTP, on a real database.
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendModule } from '../../src/bootstrap/send.module.js';
import { OutboxService } from '../../src/events/outbox.service.js';
import { PayloadBuilder } from '../../src/events/payload-builder.js';
import { IngestService } from '../../src/ingest/ingest.service.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { MAILBOX_ADDRESS_AAD, MESSAGE_CONTENT_AAD, encodeMessageContent, type MessageContent } from '../../src/mailboxes/message-content.js';
import { GmailAdapter } from '../../src/providers/google/gmail.adapter.js';
import { sandboxGoogleEndpoints } from '../../src/providers/google/google-endpoints.js';
import type { MailProvider } from '../../src/providers/mail-provider.port.js';
import { GRAPH_MAX_MIME_BYTES, GraphAdapter } from '../../src/providers/microsoft/graph.adapter.js';
import { sandboxMicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { connectGoogleSandboxUser } from '../../src/sandbox/google/google-sandbox-connect.client.js';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import type { Scanner } from '../../src/scan/scanner.port.js';
import { SimulatedCrash } from '../../src/send/outbound-sender.service.js';
import { BlobStore } from '../../src/storage/blob.store.js';
import { newId } from '../../src/storage/ids.js';
import { MessageReadRepository } from '../../src/storage/message-read.repository.js';
import { MessageWriteRepository } from '../../src/storage/message-write.repository.js';
import { MessageViewer } from '../../src/messages/message-view.js';
import { OutboxRepository } from '../../src/storage/outbox.repository.js';
import { jobsSettled } from '../helpers/settled.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

const GMAIL_SCOPES = ['openid', 'email', 'https://www.googleapis.com/auth/gmail.modify', 'https://www.googleapis.com/auth/gmail.send'];
const BODY_TEXT = 'We are sending a replacement today. Sorry for the trouble!';

let svc: TestService;
let google: GoogleSandbox;
let microsoft: MicrosoftSandbox;
let tenant: { tenantId: string; apiKey: string };
const tokens = new Map<string, () => Promise<string>>();
const scanned: string[] = [];
let crashNext = 0;

/** A strict fake: reads the whole stream like clamd would and calls everything clean (real clamd is in send-validation.test.ts). */
const cleanScanner: Scanner = {
  async scan(content: Readable, meta) {
    for await (const chunk of content) void chunk;
    scanned.push(meta?.filename ?? '');
    return { status: 'clean' };
  },
  async ping() {
    return true;
  },
};

async function providerFor(mailbox: { id: string; provider: 'google' | 'microsoft' }): Promise<MailProvider> {
  const accessToken = tokens.get(mailbox.id);
  if (!accessToken) throw new Error(`no sandbox token for ${mailbox.id}`);
  if (mailbox.provider === 'google') return new GmailAdapter({ endpoints: sandboxGoogleEndpoints(google.url), accessToken });
  // One in-adapter retry without sleeping, so 429 storms reach the job's own Retry-After handling.
  return new GraphAdapter({ endpoints: sandboxMicrosoftEndpoints(microsoft), accessToken, runner: { maxRetries: 1, sleep: async () => undefined } });
}

beforeAll(async () => {
  google = await startGoogleSandbox();
  microsoft = await startMicrosoftSandbox();
  svc = await startTestService({
    modules: async (core, services) => [
      tenancyModule(core),
      sendModule(core, services, {
        providers: providerFor,
        scanner: cleanScanner,
        // Fast backoff and a short lease keep retries and crash recovery within seconds.
        sender: { baseDelayMs: 50, maxDelayMs: 500, leaseMs: 1_000 },
        hooks: {
          async afterProviderAccepted() {
            if (crashNext > 0) {
              crashNext--;
              throw new SimulatedCrash('worker killed after the provider accepted the message');
            }
          },
        },
      }),
    ],
  });
  tenant = await svc.createTenant({ name: 'Acme support' });
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await google?.close();
  await microsoft?.close();
});

// ---------------------------------------------------------------------------------------------
// Seeding: a connected mailbox and an ingested inbound message, as connect + ingest leave them.

async function seedMailbox(provider: 'google' | 'microsoft', address: string, token: () => Promise<string>): Promise<string> {
  const id = newId('mailbox');
  await svc.core.prisma.mailbox.create({
    data: {
      id,
      tenantId: tenant.tenantId,
      provider,
      addressEnc: new Uint8Array(await svc.core.dataKeys.encryptFor({ type: 'mailbox', id }, address, MAILBOX_ADDRESS_AAD(id))),
      addressIndex: svc.core.blindIndex.emailIndex(address),
    },
  });
  tokens.set(id, token);
  return id;
}

async function connectGmail(address: string): Promise<string> {
  const user = await connectGoogleSandboxUser(google.endpoints, { email: address, scopes: GMAIL_SCOPES });
  return seedMailbox('google', address, async () => user.accessToken);
}

async function connectOutlook(address: string): Promise<string> {
  microsoft.createUser(address);
  const token = microsoft.issueAccessToken(address);
  return seedMailbox('microsoft', address, async () => token);
}

interface Original {
  messageId: string;
  internetMessageId: string;
  providerMessageId: string;
  providerThreadId: string;
  threadKey: string;
  subject: string;
}

function inboundMime(agent: string, internetMessageId: string, subject: string): Buffer {
  return Buffer.from(
    [
      'From: Carla Customer <carla@customer.example>',
      'Reply-To: Carla <carla+replies@customer.example>',
      `To: ${agent}`,
      `Subject: ${subject}`,
      `Message-ID: ${internetMessageId}`,
      'In-Reply-To: <root-0@customer.example>',
      'References: <root-0@customer.example>',
      'Date: Sat, 28 Nov 2026 09:00:00 +0000',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'My order arrived damaged.',
      '',
    ].join('\r\n'),
  );
}

async function storeInbound(mailboxId: string, agent: string, at: { providerMessageId: string; providerThreadId: string }, internetMessageId: string, subject: string): Promise<Original> {
  const messageId = newId('message');
  const threadKey = `thr_${randomUUID()}`;
  const content: MessageContent = {
    v: 1,
    internetMessageId,
    messageIdSynthetic: false,
    inReplyTo: '<root-0@customer.example>',
    references: ['<root-0@customer.example>'],
    from: { name: 'Carla Customer', address: 'carla@customer.example' },
    to: [{ name: null, address: agent }],
    cc: [],
    bcc: [],
    replyTo: [{ name: 'Carla', address: 'carla+replies@customer.example' }],
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
      providerMessageId: at.providerMessageId,
      providerThreadId: at.providerThreadId,
      messageIdIndex: svc.core.blindIndex.messageIdIndex(internetMessageId),
      threadKey,
      receivedAt: new Date('2026-11-28T09:00:00Z'),
      contentEnc: new Uint8Array(await svc.core.dataKeys.encryptFor({ type: 'mailbox', id: mailboxId }, encodeMessageContent(content), MESSAGE_CONTENT_AAD(messageId))),
    },
  });
  return { messageId, internetMessageId, threadKey, subject, ...at };
}

let seq = 0;
async function gmailInbound(mailboxId: string, agent: string, subject = 'Order #1234 arrived damaged'): Promise<Original> {
  const mid = `<orig-${++seq}-${Date.now()}@customer.example>`;
  const stored = google.deliver(agent, inboundMime(agent, mid, subject));
  return storeInbound(mailboxId, agent, { providerMessageId: stored.id, providerThreadId: stored.threadId }, mid, subject);
}

async function outlookInbound(mailboxId: string, agent: string, subject = 'Invoice question'): Promise<Original> {
  const mid = `<orig-${++seq}-${Date.now()}@customer.example>`;
  const delivered = await microsoft.deliver(agent, inboundMime(agent, mid, subject));
  return storeInbound(mailboxId, agent, { providerMessageId: delivered.id, providerThreadId: delivered.conversationId }, mid, subject);
}

// ---------------------------------------------------------------------------------------------

function reply(messageId: string, body: unknown, key: string | undefined = randomUUID()) {
  return svc.api(tenant.apiKey, 'POST', `/v1/messages/${messageId}/reply`, body, key === undefined ? {} : { 'idempotency-key': key });
}

async function settled(outboundId: string, timeoutMs = 90_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await svc.api(tenant.apiKey, 'GET', `/v1/outbound/${outboundId}`);
    expect(res.status).toBe(200);
    if (res.body.status === 'sent' || res.body.status === 'failed') return res.body as Record<string, unknown>;
    if (Date.now() > deadline) throw new Error(`outbound ${outboundId} still ${res.body.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function eventsFor(outboundId: string): Promise<Array<{ id: string; type: string; dataEnc: Uint8Array | null }>> {
  const rows = await svc.core.prisma.outboxEvent.findMany({ where: { tenantId: tenant.tenantId }, orderBy: { seq: 'asc' } });
  return rows.filter((r) => (r.refs as { outboundId?: string }).outboundId === outboundId);
}

async function generatedMessageId(outboundId: string): Promise<string> {
  const row = await svc.core.prisma.outboundMessage.findUniqueOrThrow({ where: { id: outboundId } });
  return row.messageIdIndex;
}

function gmailSentWithIndex(agent: string, index: string) {
  return google.sent(agent).filter((s) => {
    const mid = /^Message-ID:\s*(<[^>]+>)/im.exec(s.raw.toString('utf8'))?.[1];
    return mid !== undefined && svc.core.blindIndex.messageIdIndex(mid) === index;
  });
}

function graphSentWithIndex(agent: string, index: string) {
  return microsoft.sentMessages(agent).filter((s) => svc.core.blindIndex.messageIdIndex(s.internetMessageId) === index);
}

describe('replies through Gmail', () => {
  it('lands in the original Gmail thread with In-Reply-To/References, Reply-To honoured, and emits message.sent once', async () => {
    const agent = 'support@acme.test';
    const mailboxId = await connectGmail(agent);
    const original = await gmailInbound(mailboxId, agent);

    const res = await reply(original.messageId, { text: BODY_TEXT, cc: ['Team Lead <lead@acme.test>'], fromName: 'Acme Support' });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ outboundId: expect.stringMatching(/^out_/), status: 'queued' });
    const outboundId = res.body.outboundId as string;
    expect(res.headers.get('location')).toBe(`/v1/outbound/${outboundId}`);

    const done = await settled(outboundId);
    expect(done).toMatchObject({ id: outboundId, status: 'sent', failure: null, messageId: original.messageId, mailboxId, threadKey: original.threadKey, providerThreadId: original.providerThreadId });
    expect(done.providerMessageId).toEqual(expect.any(String));

    const sent = google.sent(agent);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.id).toBe(done.providerMessageId);
    expect(sent[0]!.requestedThreadId).toBe(original.providerThreadId);
    expect(sent[0]!.threadId).toBe(original.providerThreadId);
    const parsed = await simpleParser(sent[0]!.raw);
    expect(parsed.inReplyTo).toBe(original.internetMessageId);
    expect(parsed.references).toEqual(['<root-0@customer.example>', original.internetMessageId]);
    expect(parsed.subject).toBe('Re: Order #1234 arrived damaged');
    expect(parsed.from?.value).toEqual([{ name: 'Acme Support', address: agent }]);
    expect((Array.isArray(parsed.to) ? parsed.to[0] : parsed.to)?.value).toEqual([{ name: 'Carla', address: 'carla+replies@customer.example' }]);
    expect(parsed.text?.trim()).toBe(BODY_TEXT);
    // The Message-ID sent is the one recorded (as a blind index) before the send: sync can recognise it.
    expect(svc.core.blindIndex.messageIdIndex(parsed.messageId!)).toBe(await generatedMessageId(outboundId));

    const events = await eventsFor(outboundId);
    expect(events.map((e) => e.type)).toEqual(['message.sent']);
    // The webhook body the ticket service receives for it (built at delivery time).
    const payloads = new PayloadBuilder({ messages: new MessageReadRepository(svc.core.prisma), mailboxes: svc.core.mailboxes, viewer: new MessageViewer(svc.core.dataKeys), dataKeys: svc.core.dataKeys });
    const built = await payloads.build(await svc.core.prisma.outboxEvent.findUniqueOrThrow({ where: { id: events[0]!.id } }));
    expect(built).toMatchObject({
      kind: 'ready',
      body: { type: 'message.sent', mailboxId, data: { outboundId, replyToMessageId: original.messageId, status: 'sent', threadKey: original.threadKey, providerMessageId: done.providerMessageId, failure: null } },
    });

    // Audited with the API key, as ids and counts only.
    const audit = await svc.core.prisma.auditEntry.findFirstOrThrow({ where: { action: 'message.reply_queued', targetId: outboundId } });
    expect(audit).toMatchObject({ tenantId: tenant.tenantId, actorType: 'api_key', metadata: { mailboxId, messageId: original.messageId, recipients: 2, attachments: 0 } });

    // Nothing readable at rest or in the logs.
    const row = await svc.core.prisma.outboundMessage.findUniqueOrThrow({ where: { id: outboundId } });
    expect(Buffer.from(row.contentEnc).includes('damaged')).toBe(false);
    const chunks = await svc.core.prisma.blobChunk.findMany({ where: { blob: { mailboxId, kind: 'outbound_mime' } } });
    expect(chunks.length).toBeGreaterThan(0);
    for (const c of chunks) expect(Buffer.from(c.dataEnc).includes('replacement')).toBe(false);
    const logText = svc.logs.join('\n');
    expect(logText).not.toContain('replacement today');
    expect(logText).not.toContain('carla+replies');
  }, 150_000);

  it('answers every retry of one Idempotency-Key with the same record and sends exactly one message', async () => {
    const agent = 'retries@acme.test';
    const mailboxId = await connectGmail(agent);
    const original = await gmailInbound(mailboxId, agent);
    const key = randomUUID();
    const body = { text: 'One reply only.', attachments: [{ filename: 'label.txt', contentType: 'text/plain', contentBase64: Buffer.from('return label').toString('base64') }] };

    // A client that times out and retries at once: concurrent requests with the same key.
    const burst = await Promise.all(Array.from({ length: 5 }, () => reply(original.messageId, body, key)));
    expect(burst.map((r) => r.status)).toEqual([202, 202, 202, 202, 202]);
    const ids = new Set(burst.map((r) => r.body.outboundId as string));
    expect(ids.size).toBe(1);
    const [outboundId] = [...ids] as [string];
    expect(burst.filter((r) => r.headers.get('idempotent-replayed') === 'true').length).toBe(4);

    expect(await settled(outboundId)).toMatchObject({ status: 'sent' });
    // Later retries (body keys in another order) replay the first answer verbatim.
    const later = await reply(original.messageId, { attachments: body.attachments, text: body.text }, key);
    expect(later.status).toBe(202);
    expect(later.body).toEqual(burst[0]!.body);

    const index = await generatedMessageId(outboundId);
    expect(gmailSentWithIndex(agent, index)).toHaveLength(1);
    expect(await svc.core.prisma.outboundMessage.count({ where: { tenantId: tenant.tenantId, idempotencyKey: key } })).toBe(1);
    expect((await eventsFor(outboundId)).filter((e) => e.type === 'message.sent')).toHaveLength(1);

    // The same key with another body, or for another message, is refused and sends nothing.
    const before = google.sent(agent).length;
    const changed = await reply(original.messageId, { ...body, text: 'A different reply.' }, key);
    expect(changed.status).toBe(409);
    expect(changed.body.error.code).toBe('idempotency_key_reuse');
    const other = await gmailInbound(mailboxId, agent, 'Another question');
    expect((await reply(other.messageId, body, key)).status).toBe(409);
    const asNew = await svc.api(tenant.apiKey, 'POST', `/v1/mailboxes/${mailboxId}/send`, { ...body, to: 'x@customer.example', subject: 'Hi' }, { 'idempotency-key': key });
    expect(asNew.status).toBe(409);
    // A refused request that had queued a send anyway would have run by now.
    await jobsSettled(svc.core, { names: ['send.outbound'] });
    expect(google.sent(agent).length).toBe(before);
    expect(scanned).toContain('label.txt');
  }, 150_000);

  it('sends exactly once when the worker dies after Gmail accepted the message', async () => {
    const agent = 'crash@acme.test';
    const mailboxId = await connectGmail(agent);
    const original = await gmailInbound(mailboxId, agent);
    crashNext = 1;
    const res = await reply(original.messageId, { text: 'Sent before the crash.' });
    const outboundId = res.body.outboundId as string;
    const done = await settled(outboundId);
    expect(crashNext).toBe(0);
    expect(done).toMatchObject({ status: 'sent', attempts: 2 });

    const index = await generatedMessageId(outboundId);
    const copies = gmailSentWithIndex(agent, index);
    expect(copies).toHaveLength(1);
    // Recorded from the copy found at the provider by its Message-ID.
    expect(done.providerMessageId).toBe(copies[0]!.id);
    expect(done.providerThreadId).toBe(original.providerThreadId);
    expect((await eventsFor(outboundId)).map((e) => e.type)).toEqual(['message.sent']);
  }, 150_000);

  it('rides out a 429 storm (Retry-After) and 5xx errors, then sends once', async () => {
    const agent = 'storm@acme.test';
    const mailboxId = await connectGmail(agent);
    const original = await gmailInbound(mailboxId, agent);

    google.rateLimitNext(3);
    const limited = await reply(original.messageId, { text: 'After the storm.' });
    const afterStorm = await settled(limited.body.outboundId as string);
    expect(afterStorm).toMatchObject({ status: 'sent' });
    expect(afterStorm.attempts as number).toBeGreaterThanOrEqual(2);
    expect(gmailSentWithIndex(agent, await generatedMessageId(limited.body.outboundId as string))).toHaveLength(1);

    google.serverErrorNext(3, 503);
    const flaky = await reply(original.messageId, { text: 'After the outage.' });
    const afterOutage = await settled(flaky.body.outboundId as string);
    expect(afterOutage).toMatchObject({ status: 'sent' });
    expect(gmailSentWithIndex(agent, await generatedMessageId(flaky.body.outboundId as string))).toHaveLength(1);
    expect((await eventsFor(flaky.body.outboundId as string)).map((e) => e.type)).toEqual(['message.sent']);
  }, 150_000);

  it('fails at once with message.send_failed and a reason when the grant was revoked', async () => {
    const agent = 'revoked@acme.test';
    const mailboxId = await connectGmail(agent);
    const original = await gmailInbound(mailboxId, agent);
    google.revokeUserGrants(agent);

    const res = await reply(original.messageId, { text: 'This cannot go out.' });
    const done = await settled(res.body.outboundId as string);
    expect(done).toMatchObject({ status: 'failed', attempts: 1, failure: { code: 'auth_revoked', reason: expect.stringMatching(/reconnect/) } });
    expect(done.sentAt).toBeNull();
    expect(google.sent(agent)).toHaveLength(0);

    const events = await eventsFor(res.body.outboundId as string);
    expect(events.map((e) => e.type)).toEqual(['message.send_failed']);
    const data = JSON.parse(
      (await svc.core.dataKeys.decryptFor({ type: 'tenant', id: tenant.tenantId }, events[0]!.dataEnc!, { table: 'outbox_events', column: 'dataEnc', rowId: events[0]!.id })).toString('utf8'),
    );
    expect(data).toMatchObject({ outboundId: res.body.outboundId, code: 'auth_revoked', reason: expect.any(String) });
  }, 150_000);

  it('sends a new message (not a reply) from the mailbox', async () => {
    const agent = 'new@acme.test';
    const mailboxId = await connectGmail(agent);
    const res = await svc.api(tenant.apiKey, 'POST', `/v1/mailboxes/${mailboxId}/send`, { to: ['dan@customer.example'], bcc: 'audit@acme.test', subject: 'Your ticket #88', html: '<p>Hello Dan</p>' }, { 'idempotency-key': randomUUID() });
    expect(res.status).toBe(202);
    const done = await settled(res.body.outboundId as string);
    expect(done).toMatchObject({ status: 'sent', kind: 'new', messageId: null, threadKey: null });
    const parsed = await simpleParser(google.sent(agent)[0]!.raw);
    expect(parsed.subject).toBe('Your ticket #88');
    expect(parsed.inReplyTo).toBeUndefined();
    // Gmail takes Bcc recipients from the header and strips it on delivery (provider_headers).
    expect((Array.isArray(parsed.bcc) ? parsed.bcc[0] : parsed.bcc)?.value[0]?.address).toBe('audit@acme.test');
  }, 150_000);
});

/** The sync room's ingest, as the sync job runs it when the sent copy shows up at the provider. */
async function ingestSentCopy(mailboxId: string, provider: 'google' | 'microsoft', providerMessageId: string) {
  const ingest = new IngestService({
    messages: new MessageWriteRepository(svc.core.prisma, svc.core.db),
    blobs: new BlobStore(svc.core.prisma, svc.core.dataKeys),
    dataKeys: svc.core.dataKeys,
    blindIndex: svc.core.blindIndex,
    outbox: new OutboxService({ repo: new OutboxRepository(svc.core.prisma), dataKeys: svc.core.dataKeys, clock: svc.core.clock }),
    jobs: null,
    scanner: { scanner: cleanScanner, configured: true },
    maxMessageBytes: 50 * 1024 * 1024,
    clock: svc.core.clock,
    logger: svc.core.logger,
  });
  const raw = await (await providerFor({ id: mailboxId, provider })).fetchRaw(providerMessageId);
  return ingest.ingest({ id: mailboxId, tenantId: tenant.tenantId, provider }, raw);
}

describe('the sent copy coming back through sync', () => {
  it('is stored as outbound in the original thread, linked to the outbound record, without message.received', async () => {
    const agent = 'loop@acme.test';
    const mailboxId = await connectGmail(agent);
    const original = await gmailInbound(mailboxId, agent);
    const res = await reply(original.messageId, { text: 'Looping back?' });
    const done = await settled(res.body.outboundId as string);
    expect(done.status).toBe('sent');

    const stored = await ingestSentCopy(mailboxId, 'google', done.providerMessageId as string);
    expect(stored).toMatchObject({ status: 'stored', direction: 'outbound', eventIds: [] });
    const row = await svc.core.prisma.message.findFirstOrThrow({ where: { mailboxId, outboundId: res.body.outboundId as string } });
    expect(row).toMatchObject({ direction: 'outbound', threadKey: original.threadKey, providerThreadId: original.providerThreadId });
    const received = await svc.core.prisma.outboxEvent.findMany({ where: { mailboxId, type: 'message.received' } });
    expect(received.filter((e) => (e.refs as { messageId?: string }).messageId === row.id)).toHaveLength(0);
  }, 150_000);
});

describe('replies through Microsoft Graph', () => {
  it('stays in the original conversation (reply with MIME, Mail.Send only: no draft) with In-Reply-To/References, message.sent once', async () => {
    const agent = 'agent@contoso.test';
    const mailboxId = await connectOutlook(agent);
    const original = await outlookInbound(mailboxId, agent);

    const res = await reply(original.messageId, { html: '<p>Your invoice is attached.</p>', text: 'Your invoice is attached.' });
    expect(res.status).toBe(202);
    const done = await settled(res.body.outboundId as string);
    expect(done).toMatchObject({ status: 'sent', messageId: original.messageId, providerThreadId: original.providerThreadId, threadKey: original.threadKey });

    const sent = microsoft.sentMessages(agent);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ via: 'reply', conversationId: original.providerThreadId, inReplyTo: original.internetMessageId, subject: 'Re: Invoice question' });
    // The connection holds Mail.Read + Mail.Send only; nothing was drafted (drafts need Mail.ReadWrite).
    expect(microsoft.mailbox(agent).filter((m) => m.isDraft)).toHaveLength(0);
    const parsed = await simpleParser(sent[0]!.mime);
    expect(parsed.references).toEqual(['<root-0@customer.example>', original.internetMessageId]);
    expect(svc.core.blindIndex.messageIdIndex(sent[0]!.internetMessageId)).toBe(await generatedMessageId(res.body.outboundId as string));
    expect((await eventsFor(res.body.outboundId as string)).map((e) => e.type)).toEqual(['message.sent']);
  }, 150_000);

  it('still sends a reply, with its threading headers, when the original is no longer addressable by its Graph id', async () => {
    const agent = 'moved@contoso.test';
    const mailboxId = await connectOutlook(agent);
    const original = await outlookInbound(mailboxId, agent, 'Moved away');
    // An agent moved or deleted the message in Outlook: reply on the stored id answers 404.
    expect(microsoft.deleteMessage(agent, original.providerMessageId)).toBe(true);
    const res = await reply(original.messageId, { text: 'Answer anyway.' });
    expect(await settled(res.body.outboundId as string)).toMatchObject({ status: 'sent', failure: null });
    const sent = microsoft.sentMessages(agent);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ via: 'sendMail', inReplyTo: original.internetMessageId, subject: 'Re: Moved away' });
    expect((await eventsFor(res.body.outboundId as string)).map((e) => e.type)).toEqual(['message.sent']);
  }, 150_000);

  it('refuses a message over Graph’s 4 MB request limit with 413 message_too_large up front: nothing queued, nothing sent', async () => {
    const agent = 'large@contoso.test';
    const mailboxId = await connectOutlook(agent);
    const original = await outlookInbound(mailboxId, agent, 'Scans please');
    const pdf = Buffer.alloc(3.5 * 1024 * 1024, 7);
    const res = await reply(original.messageId, { text: 'Scans attached.', attachments: [{ filename: 'scans.pdf', contentType: 'application/pdf', contentBase64: pdf.toString('base64') }] });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('message_too_large');
    expect(res.body.error.message).toMatch(/Microsoft Graph.*4 MB/);
    expect(res.body.error.details).toEqual({ limit: 'graph_request_4mb', maxMessageBytes: GRAPH_MAX_MIME_BYTES });
    expect(res.body.error.message).not.toContain('scans.pdf');
    expect(await svc.core.prisma.outboundMessage.count({ where: { mailboxId } })).toBe(0);
    const sendBox = await svc.api(tenant.apiKey, 'POST', `/v1/mailboxes/${mailboxId}/send`, { to: 'dan@customer.example', subject: 'Scans', text: 'Attached.', attachments: [{ filename: 'scans.pdf', contentType: 'application/pdf', contentBase64: pdf.toString('base64') }] }, { 'idempotency-key': randomUUID() });
    expect(sendBox.status).toBe(413);
    expect(await svc.core.prisma.outboundMessage.count({ where: { mailboxId } })).toBe(0);
    expect(microsoft.sentMessages(agent)).toHaveLength(0);
    // Just under the limit still goes out, in the conversation.
    const fits = Buffer.alloc(2 * 1024 * 1024, 7);
    const ok = await reply(original.messageId, { text: 'Scans attached.', attachments: [{ filename: 'scans.pdf', contentType: 'application/pdf', contentBase64: fits.toString('base64') }] });
    expect(ok.status).toBe(202);
    expect(await settled(ok.body.outboundId as string)).toMatchObject({ status: 'sent' });
    const [sent] = microsoft.sentMessages(agent);
    expect(sent).toMatchObject({ via: 'reply', conversationId: original.providerThreadId, inReplyTo: original.internetMessageId });
    expect(sent!.attachments).toEqual([{ name: 'scans.pdf', size: fits.length, sha256: expect.any(String) }]);
  }, 150_000);

  it('sends once when the worker dies after Graph accepted the message, and recovers from a 429 storm', async () => {
    const agent = 'crash@contoso.test';
    const mailboxId = await connectOutlook(agent);
    const original = await outlookInbound(mailboxId, agent);

    crashNext = 1;
    const crashed = await reply(original.messageId, { text: 'Crash-safe reply.' });
    const afterCrash = await settled(crashed.body.outboundId as string);
    expect(afterCrash).toMatchObject({ status: 'sent', attempts: 2 });
    expect(graphSentWithIndex(agent, await generatedMessageId(crashed.body.outboundId as string))).toHaveLength(1);

    microsoft.injectFault({ status: 429, count: 5, retryAfterSeconds: 1, pathIncludes: '/reply' });
    const limited = await reply(original.messageId, { text: 'Throttled reply.' });
    const afterStorm = await settled(limited.body.outboundId as string);
    expect(afterStorm).toMatchObject({ status: 'sent' });
    expect(afterStorm.attempts as number).toBeGreaterThanOrEqual(2);
    expect(graphSentWithIndex(agent, await generatedMessageId(limited.body.outboundId as string))).toHaveLength(1);
    expect((await eventsFor(limited.body.outboundId as string)).map((e) => e.type)).toEqual(['message.sent']);
  }, 150_000);

  it('fails with message.send_failed when the Microsoft grant was revoked', async () => {
    const agent = 'revoked@contoso.test';
    const mailboxId = await connectOutlook(agent);
    const original = await outlookInbound(mailboxId, agent);
    microsoft.revokeGrants(agent, { invalidateAccessTokens: true });
    const res = await reply(original.messageId, { text: 'Will not be sent.' });
    const done = await settled(res.body.outboundId as string);
    expect(done).toMatchObject({ status: 'failed', failure: { code: 'auth_revoked' } });
    expect(microsoft.sentMessages(agent)).toHaveLength(0);
    expect((await eventsFor(res.body.outboundId as string)).map((e) => e.type)).toEqual(['message.send_failed']);
  }, 150_000);
});

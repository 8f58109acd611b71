// Bad send requests (issue 7 "Bad input"): each gets a clear 4xx, leaves no outbound record and
// sends nothing. Attachments are scanned by a real clamd (EICAR) through the CLAMD_SOCKET setting.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendModule } from '../../src/bootstrap/send.module.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { MAILBOX_ADDRESS_AAD, MESSAGE_CONTENT_AAD, encodeMessageContent, type MessageContent } from '../../src/mailboxes/message-content.js';
import { GmailAdapter } from '../../src/providers/google/gmail.adapter.js';
import { sandboxGoogleEndpoints } from '../../src/providers/google/google-endpoints.js';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { connectGoogleSandboxUser } from '../../src/sandbox/google/google-sandbox-connect.client.js';
import { newId } from '../../src/storage/ids.js';
import { clamdUnavailableReason, disposeClamd, startClamd, type ClamdHandle } from '../helpers/clamd.js';
import { missing } from '../helpers/requirements.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { cleanScanner } from '../helpers/outbound.js';

// The EICAR test file, assembled from hex so this source is not itself flagged by scanners.
const EICAR = Buffer.from(
  '58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a',
  'hex',
);
const AGENT = 'desk@acme.test';

// Without clamd locally, a fake clean scanner stands in for the other tests; the EICAR test needs the real one.
const clamdMissing = clamdUnavailableReason();

let svc: TestService;
let google: GoogleSandbox;
let clamd: ClamdHandle | undefined;
let a: { tenantId: string; apiKey: string };
let b: { tenantId: string; apiKey: string };
let mailboxId: string;
let messageId: string;
let otherTenantMessageId: string;
let otherTenantMailboxId: string;

async function seedMailbox(tenantId: string, address: string, status = 'active'): Promise<string> {
  const id = newId('mailbox');
  await svc.core.prisma.mailbox.create({
    data: {
      id,
      tenantId,
      provider: 'google',
      status,
      addressEnc: new Uint8Array(await svc.core.dataKeys.encryptFor({ type: 'mailbox', id }, address, MAILBOX_ADDRESS_AAD(id))),
      addressIndex: svc.core.blindIndex.emailIndex(address),
    },
  });
  return id;
}

async function seedMessage(tenantId: string, mailbox: string, fromAddress = 'carla@customer.example'): Promise<string> {
  const id = newId('message');
  const content: MessageContent = {
    v: 1,
    internetMessageId: `<in-${randomUUID()}@customer.example>`,
    messageIdSynthetic: false,
    inReplyTo: null,
    references: [],
    from: { name: 'Carla', address: fromAddress },
    to: [{ name: null, address: AGENT }],
    cc: [],
    bcc: [],
    replyTo: [],
    subject: 'Broken zipper',
    date: '2026-11-28T10:00:00.000Z',
    text: 'Hello',
    html: null,
    headers: {},
    autoReplyReason: null,
    bounceReason: null,
  };
  await svc.core.prisma.message.create({
    data: {
      id,
      tenantId,
      mailboxId: mailbox,
      providerMessageId: `gm-${randomUUID()}`,
      threadKey: `thr_${randomUUID()}`,
      receivedAt: new Date(),
      contentEnc: new Uint8Array(await svc.core.dataKeys.encryptFor({ type: 'mailbox', id: mailbox }, encodeMessageContent(content), MESSAGE_CONTENT_AAD(id))),
    },
  });
  return id;
}

beforeAll(async () => {
  google = await startGoogleSandbox();
  const user = await connectGoogleSandboxUser(google.endpoints, { email: AGENT, scopes: ['openid', 'email', 'https://www.googleapis.com/auth/gmail.modify'] });
  if (!clamdMissing) clamd = await startClamd();
  svc = await startTestService({
    env: clamd ? { CLAMD_SOCKET: clamd.socket } : {},
    modules: async (core, services) => [
      tenancyModule(core),
      sendModule(core, services, {
        providers: async () => new GmailAdapter({ endpoints: sandboxGoogleEndpoints(google.url), accessToken: async () => user.accessToken }),
        // With clamd present the module builds its scanner from CLAMD_SOCKET, as in production.
        ...(clamd ? {} : { scanner: cleanScanner }),
        sender: { baseDelayMs: 50 },
      }),
    ],
  });
  a = await svc.createTenant({ name: 'A' });
  b = await svc.createTenant({ name: 'B' });
  mailboxId = await seedMailbox(a.tenantId, AGENT);
  messageId = await seedMessage(a.tenantId, mailboxId);
  otherTenantMailboxId = await seedMailbox(b.tenantId, 'desk@b.example');
  otherTenantMessageId = await seedMessage(b.tenantId, otherTenantMailboxId);
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await google?.close();
  if (clamd) await disposeClamd(clamd);
});

function post(path: string, body: unknown, opts: { key?: string | null; apiKey?: string } = {}) {
  const key = opts.key === undefined ? randomUUID() : opts.key;
  return svc.api(opts.apiKey ?? a.apiKey, 'POST', path, body, key === null ? {} : { 'idempotency-key': key });
}

async function expectRefused(res: { status: number; body: { error?: { code: string; message: string } } }, status: number, code: string): Promise<void> {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.error?.code).toBe(code);
  expect(res.body.error?.message).toEqual(expect.any(String));
}

async function nothingQueued(): Promise<void> {
  expect(await svc.core.prisma.outboundMessage.count()).toBe(0);
  expect(await svc.core.prisma.blob.count({ where: { kind: 'outbound_mime' } })).toBe(0);
  expect(google.sent()).toHaveLength(0);
}

const reply = (id = messageId) => `/v1/messages/${id}/reply`;

describe('send requests that must be refused before anything is queued', () => {
  it('requires an Idempotency-Key', async () => {
    await expectRefused(await post(reply(), { text: 'hi' }, { key: null }), 400, 'idempotency_key_required');
    await expectRefused(await post(reply(), { text: 'hi' }, { key: 'has space' }), 400, 'invalid_idempotency_key');
    await nothingQueued();
  });

  it('answers 404 for unknown and other tenants’ messages, mailboxes and outbound records', async () => {
    await expectRefused(await post(reply('msg_nope'), { text: 'hi' }), 404, 'not_found');
    await expectRefused(await post(reply(otherTenantMessageId), { text: 'hi' }), 404, 'not_found');
    await expectRefused(await post(`/v1/mailboxes/${otherTenantMailboxId}/send`, { to: 'x@customer.example', subject: 's', text: 'hi' }), 404, 'not_found');
    await expectRefused(await svc.api(a.apiKey, 'GET', '/v1/outbound/out_nope'), 404, 'not_found');
    await nothingQueued();
  });

  it('refuses CR/LF header injection in addresses, display names and the subject', async () => {
    const injected = [
      { text: 'hi', cc: ['ok@customer.example\r\nBcc: spy@evil.example'] },
      { text: 'hi', to: 'carla@customer.example\nBcc: spy@evil.example' },
      { text: 'hi', bcc: [{ name: 'Spy\r\nX-Evil: 1', address: 'spy@evil.example' }] },
      { text: 'hi', fromName: 'Acme\r\nBcc: spy@evil.example' },
    ];
    for (const body of injected) await expectRefused(await post(reply(), body), 400, 'validation_error');
    await expectRefused(await post(`/v1/mailboxes/${mailboxId}/send`, { to: 'dan@customer.example', subject: 'Hello\r\nBcc: spy@evil.example', text: 'hi' }), 400, 'validation_error');
    // The error names the field, never the value.
    const res = await post(reply(), { text: 'hi', cc: ['ok@customer.example\r\nBcc: spy@evil.example'] });
    expect(JSON.stringify(res.body)).not.toContain('spy@evil.example');
    await nothingQueued();
  });

  it('refuses invalid addresses, empty bodies, unknown fields and malformed attachments', async () => {
    await expectRefused(await post(reply(), { text: 'hi', to: ['not-an-address'] }), 400, 'validation_error');
    await expectRefused(await post(reply(), { text: 'hi', cc: 'a@b' }), 400, 'validation_error');
    await expectRefused(await post(reply(), { text: '   ', html: '' }), 400, 'validation_error');
    await expectRefused(await post(reply(), {}), 400, 'validation_error');
    await expectRefused(await post(reply(), { text: 'hi', priority: 'urgent' }), 400, 'validation_error');
    await expectRefused(await post(`/v1/mailboxes/${mailboxId}/send`, { to: [], subject: 'x', text: 'hi' }), 400, 'validation_error');
    await expectRefused(await post(`/v1/mailboxes/${mailboxId}/send`, { to: 'dan@customer.example', text: 'hi' }), 400, 'validation_error');
    await expectRefused(await post(reply(), { text: 'hi', attachments: [{ filename: 'a.txt', contentType: 'text/plain', contentBase64: 'not base64!' }] }), 400, 'validation_error');
    await expectRefused(await post(reply(), { text: 'hi', attachments: [{ filename: '../etc/passwd', contentType: 'text/plain', contentBase64: 'eA==' }] }), 400, 'validation_error');
    await expectRefused(await post(reply(), { text: 'hi', attachments: [{ filename: 'a.txt', contentType: 'text', contentBase64: 'eA==' }] }), 400, 'validation_error');
    await nothingQueued();
  });

  it('refuses a message over Gmail’s 35 MB with 413 message_too_large', async () => {
    const big = Buffer.alloc(26 * 1024 * 1024, 1).toString('base64');
    const res = await post(reply(), { text: 'hi', attachments: [{ filename: 'video.mp4', contentType: 'video/mp4', contentBase64: big }] });
    await expectRefused(res, 413, 'message_too_large');
    expect(res.body.error.message).toMatch(/35 MB/);
    await nothingQueued();
  }, 60_000);

  it('refuses sends from mailboxes that are not active with 409 mailbox_not_active', async () => {
    for (const status of ['reauth_required', 'disconnecting', 'purged']) {
      const inactive = await seedMailbox(a.tenantId, `${status}@acme.test`, status);
      const msg = await seedMessage(a.tenantId, inactive);
      const res = await post(reply(msg), { text: 'hi' });
      await expectRefused(res, 409, 'mailbox_not_active');
      expect(res.body.error.message).toContain(status);
      await expectRefused(await post(`/v1/mailboxes/${inactive}/send`, { to: 'dan@customer.example', subject: 's', text: 'hi' }), 409, 'mailbox_not_active');
    }
    await nothingQueued();
  });

  it('refuses a reply with no usable recipient', async () => {
    const noSender = await seedMessage(a.tenantId, mailboxId, 'broken address');
    await expectRefused(await post(reply(noSender), { text: 'hi' }), 422, 'no_recipients');
    await nothingQueued();
  });

  it.skipIf(missing('clamd', clamdMissing))('refuses an infected attachment (EICAR, real clamd) with 422 and the signature, then sends a clean one', async () => {
    const res = await post(reply(), {
      text: 'See attached',
      attachments: [
        { filename: 'notes.txt', contentType: 'text/plain', contentBase64: Buffer.from('fine').toString('base64') },
        { filename: 'invoice.com', contentType: 'application/octet-stream', contentBase64: EICAR.toString('base64') },
      ],
    });
    await expectRefused(res, 422, 'attachment_infected');
    expect(res.body.error.details).toMatchObject({ attachment: 1, signature: expect.stringMatching(/eicar/i) });
    await nothingQueued();

    // The control: the same path with a clean attachment is scanned, queued and sent.
    const ok = await post(reply(), { text: 'See attached', attachments: [{ filename: 'notes.txt', contentType: 'text/plain', contentBase64: Buffer.from('fine').toString('base64') }] });
    expect(ok.status).toBe(202);
    const deadline = Date.now() + 90_000;
    for (;;) {
      const status = (await svc.api(a.apiKey, 'GET', `/v1/outbound/${ok.body.outboundId}`)).body;
      if (status.status === 'sent') break;
      if (Date.now() > deadline) throw new Error(`clean reply not sent: ${JSON.stringify(status)}\n${svc.logs.filter((l) => /"level":(40|50)|job/.test(l)).slice(-15).join('\n')}`);
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(google.sent()).toHaveLength(1);
  }, 150_000);
});

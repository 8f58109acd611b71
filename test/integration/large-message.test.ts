// Large mail end to end through the streaming paths (issue 12 target 4): the real adapters and
// client libraries over real HTTP against the stand-ins, the full ingest, the encrypted chunked
// BlobStore built as the sync module builds it (chunk statements through the raw SQL executor:
// the pg driver on Postgres, PGlite on the embedded database). Runs on both databases.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Core } from '../../src/bootstrap/core.js';
import { MAILBOX_ADDRESS_AAD } from '../../src/mailboxes/message-content.js';
import type { MailProvider } from '../../src/providers/mail-provider.port.js';
import { GmailAdapter } from '../../src/providers/google/gmail.adapter.js';
import { sandboxGoogleEndpoints } from '../../src/providers/google/google-endpoints.js';
import { GraphAdapter } from '../../src/providers/microsoft/graph.adapter.js';
import { sandboxMicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { connectGoogleSandboxUser } from '../../src/sandbox/google/google-sandbox-connect.client.js';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { BlobStore } from '../../src/storage/blob.store.js';
import { newId } from '../../src/storage/ids.js';
import { startTestCore, type TestCore } from '../helpers/test-core.js';
import { ingestHarness } from './ingest-harness.js';

const MIB = 2 ** 20;
let svc: TestCore;
let google: GoogleSandbox;
let ms: MicrosoftSandbox;

beforeAll(async () => {
  svc = await startTestCore({ env: { MAX_MESSAGE_BYTES: String(64 * MIB) } });
  google = await startGoogleSandbox();
  ms = await startMicrosoftSandbox();
}, 120_000);
afterAll(async () => {
  await ms?.close();
  await google?.close();
  await svc?.close();
});

function message(attachment: Buffer, tag: string): Buffer {
  const b64 = attachment.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    [
      'From: Customer <customer@fabrikam.test>',
      'To: support@contoso.test',
      `Subject: ${tag}`,
      `Message-ID: <${tag}.${randomBytes(4).toString('hex')}@fabrikam.test>`,
      'Date: Mon, 2 Mar 2026 09:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain',
      '',
      'attached',
      '--b1',
      'Content-Type: application/octet-stream',
      'Content-Disposition: attachment; filename="data.bin"',
      'Content-Transfer-Encoding: base64',
      '',
      b64,
      '--b1--',
      '',
    ].join('\r\n'),
  );
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function ingestVia(core: Core, provider: MailProvider, providerMessageId: string, kind: 'google' | 'microsoft') {
  const blobs = new BlobStore(core.prisma, core.dataKeys, { sql: core.db.sql });
  const { ingest } = ingestHarness(core, { blobs });
  const tenant = await core.tenants.create({ name: `large-${kind}` });
  const id = newId('mailbox');
  await core.prisma.mailbox.create({
    data: {
      id,
      tenantId: tenant.id,
      provider: kind,
      addressEnc: new Uint8Array(await core.dataKeys.encryptFor({ type: 'mailbox', id }, `${kind}@contoso.test`, MAILBOX_ADDRESS_AAD(id))),
      addressIndex: core.blindIndex.emailIndex(`${kind}@contoso.test`),
    },
  });
  const raw = await provider.fetchRaw(providerMessageId);
  const result = await ingest.ingest(
    { id, tenantId: tenant.id, provider: kind },
    { providerMessageId: raw.providerMessageId, providerThreadId: raw.providerThreadId, raw: raw.raw, receivedAt: raw.receivedAt },
  );
  expect(result.status).toBe('stored');
  const stored = await core.prisma.message.findUniqueOrThrow({ where: { id: result.status === 'stored' ? result.messageId : '' }, include: { attachments: true } });
  expect(stored.attachments).toHaveLength(1);
  const content = await blobs.readAll(stored.attachments[0]!.blobId!);
  const blob = await core.prisma.blob.findUniqueOrThrow({ where: { id: stored.attachments[0]!.blobId! } });
  return { stored, content, blob, raw };
}

describe('large messages through the streaming fetch paths', () => {
  it('Gmail: an 8 MiB message (format=raw decoded as it streams) is stored with its attachment byte-identical', { timeout: 120_000 }, async () => {
    const email = 'large@acme.test';
    google.createUser(email);
    const attachment = randomBytes(6 * MIB);
    const internalDate = Date.UTC(2026, 2, 2, 9, 0, 5);
    const delivered = google.deliver(email, message(attachment, 'gmail-large'), { internalDate });
    const user = await connectGoogleSandboxUser(google.endpoints, { email, scopes: ['openid', 'email', 'https://www.googleapis.com/auth/gmail.modify'] });
    const adapter = new GmailAdapter({ endpoints: sandboxGoogleEndpoints(google.url), accessToken: async () => user.accessToken });
    const { stored, content, blob, raw } = await ingestVia(svc.core, adapter, delivered.id, 'google');
    expect(sha(content)).toBe(sha(attachment));
    expect(Number(blob.size)).toBe(attachment.length);
    expect(blob.chunks).toBe(6); // 1 MiB chunks, the last one sealed as last
    expect(raw.providerThreadId).toBe(delivered.threadId);
    expect(stored.receivedAt.getTime()).toBe(internalDate);
    expect(stored.oversize).toBe(false);
  });

  it('Graph: a 12 MiB attachment ($value streamed) is stored byte-identical', { timeout: 120_000 }, async () => {
    const email = 'large@contoso.test';
    ms.createUser(email);
    const attachment = randomBytes(12 * MIB);
    const delivered = await ms.deliver(email, message(attachment, 'graph-large'));
    const token = ms.issueAccessToken(email);
    const adapter = new GraphAdapter({ endpoints: sandboxMicrosoftEndpoints(ms), accessToken: async () => token });
    const { content, blob } = await ingestVia(svc.core, adapter, delivered.id, 'microsoft');
    expect(sha(content)).toBe(sha(attachment));
    expect(blob.chunks).toBe(12);
    expect(blob.complete).toBe(true);
  });
});

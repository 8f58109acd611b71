// Seeds mailboxes and mail straight into storage, encrypted exactly as ingest stores them
// (message-content.ts format and AAD helpers, mailbox DEK, blob store), so the lifecycle tests
// do not depend on the sync/ingest rooms being finished.
import type { Core } from '../../src/bootstrap/core.js';
import { ATTACHMENT_FILENAME_AAD, encodeMessageContent, MAILBOX_ADDRESS_AAD, MAILBOX_CREDENTIAL_AAD, MESSAGE_CONTENT_AAD, type MessageContent } from '../../src/mailboxes/message-content.js';
import { BlobStore } from '../../src/storage/blob.store.js';
import { newId } from '../../src/storage/ids.js';

export interface SeedMessage {
  from: string;
  to: string[];
  cc?: string[];
  subject: string;
  text: string;
  receivedAt?: Date;
  attachments?: Array<{ filename: string; content: Buffer; contentType?: string }>;
}

export interface SeededMailbox {
  mailboxId: string;
  messageIds: string[];
  attachmentIds: string[];
  blobIds: string[];
}

export async function seedMailbox(
  core: Core,
  input: {
    tenantId: string;
    provider?: 'google' | 'microsoft';
    address: string;
    /** Stored as the token vault does: `{v:1, provider, refreshToken | msalCache}`. */
    refreshToken?: string;
    msalCache?: string;
    status?: 'active' | 'reauth_required';
    reauthRequiredAt?: Date;
    subscriptionId?: string;
    messages?: SeedMessage[];
    /** Also write an outbound message, outbox event + delivery, thread refs, a connect session and a break-glass session. */
    extras?: boolean;
  },
): Promise<SeededMailbox> {
  const mailboxId = newId('mailbox');
  const provider = input.provider ?? 'google';
  const owner = { type: 'mailbox', id: mailboxId } as const;
  const credential =
    provider === 'google' && input.refreshToken
      ? JSON.stringify({ v: 1, provider: 'google', refreshToken: input.refreshToken })
      : provider === 'microsoft' && input.msalCache
        ? JSON.stringify({ v: 1, provider: 'microsoft', msalCache: input.msalCache })
        : null;
  await core.prisma.mailbox.create({
    data: {
      id: mailboxId,
      tenantId: input.tenantId,
      provider,
      addressEnc: new Uint8Array(await core.dataKeys.encryptFor(owner, input.address, MAILBOX_ADDRESS_AAD(mailboxId))),
      addressIndex: core.blindIndex.emailIndex(input.address),
      status: input.status ?? 'active',
      reauthRequiredAt: input.reauthRequiredAt ?? null,
      subscriptionId: input.subscriptionId ?? null,
      credentialEnc: credential ? new Uint8Array(await core.dataKeys.encryptFor(owner, credential, MAILBOX_CREDENTIAL_AAD(mailboxId))) : null,
      grantedScopes: ['https://www.googleapis.com/auth/gmail.modify'],
    },
  });
  const blobs = new BlobStore(core.prisma, core.dataKeys);
  const out: SeededMailbox = { mailboxId, messageIds: [], attachmentIds: [], blobIds: [] };
  for (const m of input.messages ?? []) {
    const id = newId('message');
    const internetMessageId = `<${id}@seed.example>`;
    const content: MessageContent = {
      v: 1,
      internetMessageId,
      messageIdSynthetic: false,
      inReplyTo: null,
      references: [],
      from: { name: null, address: m.from },
      to: m.to.map((address) => ({ name: null, address })),
      cc: (m.cc ?? []).map((address) => ({ name: null, address })),
      bcc: [],
      replyTo: [],
      subject: m.subject,
      date: (m.receivedAt ?? new Date()).toISOString(),
      text: m.text,
      html: null,
      headers: {},
      autoReplyReason: null,
      bounceReason: null,
    };
    const raw = await blobs.write({ tenantId: input.tenantId, mailboxId, kind: 'raw', content: Buffer.from(`Subject: ${m.subject}\r\n\r\n${m.text}`) });
    out.blobIds.push(raw.blobId);
    const messageIdIndex = core.blindIndex.messageIdIndex(internetMessageId);
    await core.prisma.message.create({
      data: {
        id,
        tenantId: input.tenantId,
        mailboxId,
        providerMessageId: `p-${id}`,
        messageIdIndex,
        threadKey: `t-${id}`,
        receivedAt: m.receivedAt ?? new Date(),
        contentEnc: new Uint8Array(await core.dataKeys.encryptFor(owner, encodeMessageContent(content), MESSAGE_CONTENT_AAD(id))),
        rawBlobId: raw.blobId,
        sizeBytes: m.text.length,
      },
    });
    await core.prisma.threadRef.create({ data: { mailboxId, refIndex: messageIdIndex, threadKey: `t-${id}` } });
    const roles: Array<[string, string]> = [['from', m.from], ...m.to.map((a): [string, string] => ['to', a]), ...(m.cc ?? []).map((a): [string, string] => ['cc', a])];
    for (const [role, address] of roles) {
      await core.prisma.messageAddress.create({ data: { id: newId('messageAddress'), tenantId: input.tenantId, mailboxId, messageId: id, role, addressIndex: core.blindIndex.emailIndex(address) } });
    }
    let ordinal = 0;
    for (const a of m.attachments ?? []) {
      const attId = newId('attachment');
      const blob = await blobs.write({ tenantId: input.tenantId, mailboxId, kind: 'attachment', content: a.content });
      out.blobIds.push(blob.blobId);
      await core.prisma.attachment.create({
        data: {
          id: attId,
          tenantId: input.tenantId,
          mailboxId,
          messageId: id,
          ordinal: ordinal++,
          filenameEnc: new Uint8Array(await core.dataKeys.encryptFor(owner, a.filename, ATTACHMENT_FILENAME_AAD(attId))),
          contentType: a.contentType ?? 'application/octet-stream',
          size: a.content.length,
          scanStatus: 'clean',
          blobId: blob.blobId,
        },
      });
      out.attachmentIds.push(attId);
    }
    out.messageIds.push(id);
  }
  if (input.extras) {
    const outboundId = newId('outbound');
    await core.prisma.outboundMessage.create({
      data: {
        id: outboundId,
        tenantId: input.tenantId,
        mailboxId,
        kind: 'new',
        idempotencyKey: `idem-${outboundId}`,
        requestHash: 'h',
        messageIdIndex: core.blindIndex.messageIdIndex(`<${outboundId}@seed.example>`),
        contentEnc: new Uint8Array(await core.dataKeys.encryptFor(owner, '{"to":["x@example.com"]}', { table: 'outbound_messages', column: 'contentEnc', rowId: outboundId })),
      },
    });
    const endpointId = newId('webhookEndpoint');
    await core.prisma.webhookEndpoint.create({
      data: { id: endpointId, tenantId: input.tenantId, url: 'https://hooks.example.com/x', secretEnc: new Uint8Array(await core.dataKeys.encryptFor({ type: 'tenant', id: input.tenantId }, 'whsec_x', { table: 'webhook_endpoints', column: 'secretEnc', rowId: endpointId })) },
    });
    const eventId = newId('event');
    await core.prisma.outboxEvent.create({ data: { id: eventId, tenantId: input.tenantId, mailboxId, type: 'message.received', seq: 1n, refs: { messageId: out.messageIds[0] ?? 'none' } } });
    await core.prisma.webhookDelivery.create({ data: { id: newId('delivery'), tenantId: input.tenantId, eventId, endpointId, status: 'pending' } });
    await core.prisma.connectSession.create({ data: { id: newId('connectSession'), tenantId: input.tenantId, provider, mailboxId, status: 'completed', resultMailboxId: mailboxId, expiresAt: new Date(Date.now() + 60_000) } });
    await core.prisma.breakGlassSession.create({
      data: { id: newId('breakGlass'), tenantId: input.tenantId, mailboxId, operator: 'seed', reason: 'seeded session for the test', ticketRef: 'T-1', expiresAt: new Date(Date.now() + 60_000) },
    });
  }
  return out;
}

/** Polls `check` until it returns a value (or throws after `timeoutMs`). */
export async function waitFor<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

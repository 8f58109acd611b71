// Seeds mail the way ingest stores it (encrypted rows + blobs) and appends outbox events the way
// every emitting room does, so the webhooks and read-API tests do not depend on ingest.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Core } from '../../src/bootstrap/core.js';
import { OutboxService, notifyEventsCommitted, type AppendEventInput } from '../../src/events/outbox.service.js';
import {
  ATTACHMENT_FILENAME_AAD,
  MAILBOX_ADDRESS_AAD,
  MESSAGE_CONTENT_AAD,
  encodeMessageContent,
  type MessageContent,
} from '../../src/mailboxes/message-content.js';
import { BlobStore } from '../../src/storage/blob.store.js';
import { newId } from '../../src/storage/ids.js';
import { OutboxRepository } from '../../src/storage/outbox.repository.js';

export async function seedMailbox(core: Core, tenantId: string, opts: { address?: string; status?: string } = {}): Promise<{ id: string; address: string }> {
  const id = newId('mailbox');
  const address = opts.address ?? `support-${id.slice(-6).toLowerCase()}@example.com`;
  await core.prisma.mailbox.create({
    data: {
      id,
      tenantId,
      provider: 'google',
      addressEnc: new Uint8Array(await core.dataKeys.encryptFor({ type: 'mailbox', id }, address, MAILBOX_ADDRESS_AAD(id))),
      addressIndex: core.blindIndex.emailIndex(address),
      status: opts.status ?? 'active',
    },
  });
  return { id, address };
}

export interface SeedAttachment {
  filename: string;
  contentType?: string;
  bytes: Buffer;
  scanStatus?: 'pending' | 'clean' | 'infected' | 'error' | 'unscannable';
}

export async function seedMessage(
  core: Core,
  tenantId: string,
  mailboxId: string,
  opts: { subject?: string; text?: string; html?: string; threadKey?: string; receivedAt?: Date; attachments?: SeedAttachment[] } = {},
): Promise<{ id: string; content: MessageContent; attachmentIds: string[] }> {
  const id = newId('message');
  const owner = { type: 'mailbox', id: mailboxId } as const;
  const content: MessageContent = {
    v: 1,
    internetMessageId: `<${id}@mail.example.com>`,
    messageIdSynthetic: false,
    inReplyTo: null,
    references: [],
    from: { name: 'Ada Customer', address: 'ada@customer.example' },
    to: [{ name: null, address: 'support@example.com' }],
    cc: [],
    bcc: [],
    replyTo: [],
    subject: opts.subject ?? `Order question ${id.slice(-5)}`,
    date: (opts.receivedAt ?? new Date()).toISOString(),
    text: opts.text ?? `Secret body text ${id}`,
    // As a row stored before safeHtml existed: readers compute it.
    html: opts.html ?? null,
    headers: {},
    autoReplyReason: null,
    bounceReason: null,
  };
  await core.prisma.message.create({
    data: {
      id,
      tenantId,
      mailboxId,
      providerMessageId: `p-${id}`,
      providerThreadId: `t-${opts.threadKey ?? id}`,
      threadKey: opts.threadKey ?? `thr_${id}`,
      receivedAt: opts.receivedAt ?? new Date(),
      sizeBytes: 1234,
      contentEnc: new Uint8Array(await core.dataKeys.encryptFor(owner, encodeMessageContent(content), MESSAGE_CONTENT_AAD(id))),
    },
  });
  const blobs = new BlobStore(core.prisma, core.dataKeys);
  const attachmentIds: string[] = [];
  for (const [ordinal, a] of (opts.attachments ?? []).entries()) {
    const attId = newId('attachment');
    const blob = await blobs.write({ tenantId, mailboxId, kind: 'attachment', content: a.bytes });
    await core.prisma.attachment.create({
      data: {
        id: attId,
        tenantId,
        mailboxId,
        messageId: id,
        ordinal,
        filenameEnc: new Uint8Array(await core.dataKeys.encryptFor(owner, a.filename, ATTACHMENT_FILENAME_AAD(attId))),
        contentType: a.contentType ?? 'application/pdf',
        size: a.bytes.length,
        scanStatus: a.scanStatus ?? 'clean',
        blobId: blob.blobId,
      },
    });
    attachmentIds.push(attId);
  }
  return { id, content, attachmentIds };
}

/** Appends events in one transaction and notifies the dispatcher, as an emitting room does. */
export async function emit(core: Core, events: AppendEventInput[]): Promise<Array<{ id: string; sequence: bigint }>> {
  const outbox = new OutboxService({ repo: new OutboxRepository(core.prisma), dataKeys: core.dataKeys, clock: core.clock });
  const appended = await core.prisma.$transaction(async (tx) => {
    const out = [];
    for (const e of events) out.push(await outbox.appendEvent(tx, e));
    return out;
  });
  await notifyEventsCommitted(core.jobs, appended.map((a) => a.id), core.logger);
  return appended;
}

export interface ReceivedRequest {
  headers: Record<string, string>;
  body: string;
  at: number;
}

/** A local webhook receiver whose answer the test controls. */
export async function startReceiver(respond: (req: ReceivedRequest, n: number) => Promise<number> | number = () => 204) {
  const received: ReceivedRequest[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      const r: ReceivedRequest = { headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      received.push(r);
      void Promise.resolve(respond(r, received.length)).then((status) => {
        inFlight--;
        res.statusCode = status;
        res.end(status >= 400 ? 'receiver says no' : 'ok');
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    get maxInFlight() {
      return maxInFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

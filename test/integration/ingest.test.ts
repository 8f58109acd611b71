// The ingest transaction on real Postgres: what is stored, once, encrypted; oversize mail still
// stored and announced; the connector's own replies recognised and not announced; concurrent
// fetches of one message store it once and leave no orphan blobs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeMessageContent, MESSAGE_CONTENT_AAD } from '../../src/mailboxes/message-content.js';
import { newId } from '../../src/storage/ids.js';
import { startTestCore, type TestCore } from '../helpers/test-core.js';
import { attachmentPart, ingestHarness, multipart } from './ingest-harness.js';
import { seedMailbox } from './webhooks-seed.js';

let svc: TestCore;
let mailbox: { id: string; tenantId: string };

function simple(id: string, subject: string, extra: string[] = [], body = 'hello there'): Buffer {
  return Buffer.from([`From: Ada Customer <ada@customer.example>`, 'To: support@helpdesk.example', 'Cc: Bob <bob@customer.example>', `Subject: ${subject}`, `Message-ID: <${id}>`, 'Date: Mon, 2 Mar 2026 09:00:00 +0000', ...extra, '', body, ''].join('\r\n'));
}

const content = async (messageId: string) => {
  const row = await svc.core.prisma.message.findUniqueOrThrow({ where: { id: messageId } });
  return { row, content: decodeMessageContent(await svc.core.dataKeys.decryptFor({ type: 'mailbox', id: mailbox.id }, row.contentEnc, MESSAGE_CONTENT_AAD(row.id))) };
};

beforeAll(async () => {
  svc = await startTestCore();
  const t = await svc.createTenant();
  mailbox = { ...(await seedMailbox(svc.core, t.tenantId)), tenantId: t.tenantId };
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

describe('ingest', () => {
  it('stores the normalized message encrypted, participants as blind indexes, and one message.received event', async () => {
    const h = ingestHarness(svc.core);
    const r = await h.run(mailbox, 'p-1', simple('first@customer.example', 'Where is my order?'), { threadId: 'gthread-1' });
    if (r.status !== 'stored') throw new Error('not stored');
    const { row, content: c } = await content(r.messageId);
    expect(c).toMatchObject({ v: 1, internetMessageId: 'first@customer.example', subject: 'Where is my order?', from: { address: 'ada@customer.example' } });
    expect(c.text?.trim()).toBe('hello there');
    expect(row.threadKey).toBe('gm:gthread-1');
    expect(row.messageIdIndex).toBe(svc.core.blindIndex.messageIdIndex('first@customer.example'));
    expect(Buffer.from(row.contentEnc).includes(Buffer.from('Where is my order'))).toBe(false);
    const addresses = await svc.core.prisma.messageAddress.findMany({ where: { messageId: r.messageId } });
    expect(addresses.map((a) => a.role).sort()).toEqual(['cc', 'from', 'to']);
    expect(addresses.find((a) => a.role === 'from')!.addressIndex).toBe(svc.core.blindIndex.emailIndex('ada@customer.example'));
    expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: mailbox.id, type: 'message.received', refs: { equals: { messageId: r.messageId } } } })).toBe(1);

    // A reply without the provider thread joins through In-Reply-To.
    const reply = await h.run(mailbox, 'p-2', simple('second@customer.example', 'Re: Where is my order?', ['In-Reply-To: <first@customer.example>', 'References: <first@customer.example>']));
    if (reply.status !== 'stored') throw new Error('not stored');
    expect((await content(reply.messageId)).row.threadKey).toBe('gm:gthread-1');
    // Second fetch: no-op.
    expect(await h.run(mailbox, 'p-1', simple('first@customer.example', 'Where is my order?'))).toEqual({ status: 'duplicate', messageId: r.messageId });
  });

  it('a message above MAX_MESSAGE_BYTES is stored with its headers, flagged oversize, and still announced', async () => {
    const h = ingestHarness(svc.core, { maxMessageBytes: 64 * 1024 });
    const big = multipart('huge attachment', [attachmentPart('big.bin', Buffer.alloc(300 * 1024, 7))], ['X-Note: big']);
    const r = await h.run(mailbox, 'p-big', big);
    if (r.status !== 'stored') throw new Error('not stored');
    expect(r.oversize).toBe(true);
    const { row, content: c } = await content(r.messageId);
    expect(row.oversize).toBe(true);
    expect(c.subject).toBe('huge attachment');
    expect(r.eventIds.length).toBe(1);
    // The cut attachment is not stored as if it were whole.
    expect(await svc.core.prisma.attachment.count({ where: { messageId: r.messageId } })).toBe(0);
    expect(await svc.core.prisma.blob.count({ where: { mailboxId: mailbox.id } })).toBe(await svc.core.prisma.attachment.count({ where: { mailboxId: mailbox.id, blobId: { not: null } } }));
  });

  it('recognises the connector’s own sent reply: outbound, in the reply’s thread, no message.received', async () => {
    const h = ingestHarness(svc.core);
    const outboundId = newId('outbound');
    await svc.core.prisma.outboundMessage.create({
      data: {
        id: outboundId,
        tenantId: mailbox.tenantId,
        mailboxId: mailbox.id,
        kind: 'reply',
        idempotencyKey: `k-${outboundId}`,
        requestHash: 'x',
        status: 'sent',
        messageIdIndex: svc.core.blindIndex.messageIdIndex('reply-1@connector.example'),
        contentEnc: new Uint8Array([1]),
        threadKey: 'gm:gthread-1',
      },
    });
    const events = await svc.core.prisma.outboxEvent.count({ where: { mailboxId: mailbox.id } });
    const r = await h.run(mailbox, 'p-sent', simple('reply-1@connector.example', 'Re: Where is my order?', ['In-Reply-To: <first@customer.example>', 'Auto-Submitted: no']));
    if (r.status !== 'stored') throw new Error('not stored');
    expect(r.direction).toBe('outbound');
    const { row } = await content(r.messageId);
    expect(row).toMatchObject({ direction: 'outbound', outboundId, threadKey: 'gm:gthread-1' });
    expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: mailbox.id } })).toBe(events);
    // A customer's answer to our reply still joins the thread.
    const answer = await h.run(mailbox, 'p-answer', simple('answer@customer.example', 'Re: Re: Where is my order?', ['In-Reply-To: <reply-1@connector.example>']));
    if (answer.status !== 'stored') throw new Error('not stored');
    expect((await content(answer.messageId)).row.threadKey).toBe('gm:gthread-1');
  });

  it('concurrent ingests of one message store it once and delete the loser’s blobs', async () => {
    const h = ingestHarness(svc.core);
    const raw = multipart('race', [attachmentPart('a.txt', Buffer.from('attachment bytes'), 'text/plain')]);
    const results = await Promise.all(Array.from({ length: 4 }, () => h.run(mailbox, 'p-race', raw)));
    expect(results.filter((r) => r.status === 'stored')).toHaveLength(1);
    const rows = await svc.core.prisma.message.findMany({ where: { mailboxId: mailbox.id, providerMessageId: 'p-race' } });
    expect(rows).toHaveLength(1);
    for (const r of results) if (r.status === 'duplicate') expect(r.messageId).toBe(rows[0]!.id);
    expect(await svc.core.prisma.blob.count({ where: { mailboxId: mailbox.id } })).toBe(await svc.core.prisma.attachment.count({ where: { mailboxId: mailbox.id, blobId: { not: null } } }));
  });
});

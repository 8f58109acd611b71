// A page of messages through IngestService.ingestPage (real database: Postgres with DATABASE_URL,
// the embedded one without): batched transactions keep the one-message-at-a-time guarantees —
// stored once per provider id (a duplicate in the page, an already stored message), threading of
// a reply to a message earlier in the same page, per-mailbox event sequence numbers without gaps
// in page order, attachments (one-chunk ones written with the page, larger ones streamed)
// readable byte for byte; and a source failing mid-page leaves everything before it committed and
// nothing after it (no orphan blobs).
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestInput } from '../../src/ingest/ingest.service.js';
import { MimeParsePool } from '../../src/ingest/parse-pool.js';
import { startTestCore, type TestCore } from '../helpers/test-core.js';
import { attachmentPart, ingestHarness, multipart } from './ingest-harness.js';
import { seedMailbox } from './webhooks-seed.js';

let svc: TestCore;
const pool = new MimeParsePool({ threads: 2 });

function mail(id: string, subject: string, extra: string[] = []): Buffer {
  return Buffer.from(['From: Ada <ada@customer.example>', 'To: support@helpdesk.example', `Subject: ${subject}`, `Message-ID: <${id}>`, 'Date: Mon, 2 Mar 2026 09:00:00 +0000', ...extra, '', `body of ${subject}`, ''].join('\r\n'));
}
const input = (providerMessageId: string, raw: Buffer, knownNew = true): IngestInput => ({ providerMessageId, providerThreadId: undefined, raw: Readable.from([raw]), receivedAt: new Date(), knownNew });

async function newMailbox(): Promise<{ id: string; tenantId: string; provider: 'google' }> {
  const t = await svc.createTenant();
  return { ...(await seedMailbox(svc.core, t.tenantId)), tenantId: t.tenantId, provider: 'google' };
}

beforeAll(async () => {
  svc = await startTestCore();
}, 60_000);
afterAll(async () => {
  await pool.close();
  await svc?.close();
});

describe('ingestPage', () => {
  it('stores a page once per provider id, threads within the page, numbers events without gaps, keeps attachments whole', async () => {
    const mailbox = await newMailbox();
    // Parsing in worker threads, as the service does.
    const h = ingestHarness(svc.core, { parse: pool.parse });
    const small = Buffer.from('small attachment bytes');
    const big = Buffer.alloc(2 * 1024 * 1024 + 123);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 256;
    await h.run(mailbox, 'p-old', mail('old@customer.example', 'already stored'));

    const results = await h.ingest.ingestPage(mailbox, [
      input('p-1', mail('root@customer.example', 'root')),
      input('p-2', multipart('files', [attachmentPart('small.txt', small, 'text/plain'), attachmentPart('big.bin', big)])),
      input('p-1', mail('root@customer.example', 'root')), // the same provider id again in the page
      input('p-3', mail('reply@customer.example', 'Re: root', ['In-Reply-To: <root@customer.example>', 'References: <root@customer.example>'])),
      input('p-old', mail('old@customer.example', 'already stored'), false),
      input('p-4', mail('other@customer.example', 'unrelated')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['stored', 'stored', 'duplicate', 'stored', 'duplicate', 'stored']);
    const rows = await svc.core.prisma.message.findMany({ where: { mailboxId: mailbox.id }, select: { id: true, providerMessageId: true, threadKey: true } });
    expect(rows.map((r) => r.providerMessageId).sort()).toEqual(['p-1', 'p-2', 'p-3', 'p-4', 'p-old']);
    const byProvider = new Map(rows.map((r) => [r.providerMessageId, r]));
    expect(results[2]).toEqual({ status: 'duplicate', messageId: byProvider.get('p-1')!.id });
    expect(results[4]).toEqual({ status: 'duplicate', messageId: byProvider.get('p-old')!.id });
    // The reply found its parent written earlier in the same transaction.
    expect(byProvider.get('p-3')!.threadKey).toBe(byProvider.get('p-1')!.threadKey);
    expect(byProvider.get('p-4')!.threadKey).not.toBe(byProvider.get('p-1')!.threadKey);

    // One message.received per stored message, sequence numbers 1..5 without gaps, in page order.
    const events = await svc.core.prisma.outboxEvent.findMany({ where: { mailboxId: mailbox.id }, orderBy: { seq: 'asc' } });
    expect(events.map((e) => Number(e.seq))).toEqual([1, 2, 3, 4, 5]);
    expect(events.map((e) => (e.refs as { messageId: string }).messageId)).toEqual(['p-old', 'p-1', 'p-2', 'p-3', 'p-4'].map((p) => byProvider.get(p)!.id));

    // Attachments: the small one went in with the page, the big one streamed in chunks; both whole.
    const attachments = await svc.core.prisma.attachment.findMany({ where: { messageId: byProvider.get('p-2')!.id }, orderBy: { ordinal: 'asc' } });
    expect(attachments).toHaveLength(2);
    expect((await h.blobs.readAll(attachments[0]!.blobId!)).equals(small)).toBe(true);
    expect((await h.blobs.readAll(attachments[1]!.blobId!)).equals(big)).toBe(true);
    const blobs = await svc.core.prisma.blob.findMany({ where: { mailboxId: mailbox.id }, orderBy: { chunks: 'asc' } });
    expect(blobs.map((b) => [b.chunks, b.complete])).toEqual([
      [1, true],
      [3, true],
    ]);

    // Re-fetching the whole page stores nothing new.
    const again = await h.ingest.ingestPage(mailbox, [input('p-1', mail('root@customer.example', 'root'), false), input('p-4', mail('other@customer.example', 'unrelated'))]);
    expect(again.map((r) => r.status)).toEqual(['duplicate', 'duplicate']);
    expect(await svc.core.prisma.message.count({ where: { mailboxId: mailbox.id } })).toBe(5);
    expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: mailbox.id } })).toBe(5);
  }, 60_000);

  it('a source failing mid-page: what came before is committed, nothing after, no orphan blobs', async () => {
    const mailbox = await newMailbox();
    const h = ingestHarness(svc.core, { parse: pool.parse });
    const committed: string[] = [];
    async function* source(): AsyncGenerator<IngestInput> {
      yield input('q-1', mail('q1@customer.example', 'first'));
      yield input('q-2', multipart('with file', [attachmentPart('f.txt', Buffer.from('file'), 'text/plain')]));
      throw new Error('provider fetch failed');
    }
    const err = await h.ingest
      .ingestPage(mailbox, source(), { onResult: (r, i) => void (r.status === 'stored' && committed.push(i.providerMessageId)) })
      .catch((e: unknown) => e);
    expect((err as Error).message).toBe('provider fetch failed');
    expect(committed).toEqual(['q-1', 'q-2']);
    const stored = await svc.core.prisma.message.findMany({ where: { mailboxId: mailbox.id }, select: { providerMessageId: true } });
    expect(stored.map((r) => r.providerMessageId).sort()).toEqual(['q-1', 'q-2']);

    // The caller failing after a batch committed (a crash): the message stays stored, once, with
    // its event; the next sequence number follows without a gap.
    const failing = await h.ingest
      .ingestPage(mailbox, [input('q-3', mail('q3@customer.example', 'third'))], {
        onResult: () => {
          throw new Error('crash after commit');
        },
      })
      .catch((e: unknown) => e);
    expect((failing as Error).message).toBe('crash after commit');
    expect(await svc.core.prisma.message.count({ where: { mailboxId: mailbox.id, providerMessageId: 'q-3' } })).toBe(1);
    expect(await svc.core.prisma.blob.count({ where: { mailboxId: mailbox.id } })).toBe(await svc.core.prisma.attachment.count({ where: { mailboxId: mailbox.id, blobId: { not: null } } }));
    expect(await svc.core.prisma.outboxEvent.findMany({ where: { mailboxId: mailbox.id }, orderBy: { seq: 'asc' }, select: { seq: true } })).toEqual([{ seq: 1n }, { seq: 2n }, { seq: 3n }]);
  }, 60_000);
});

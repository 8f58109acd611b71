// A page bigger than one statement (MessageWriteRepository.insertPage, real database: Postgres with
// DATABASE_URL, the embedded one without): it is written as several statements of about 1 MiB in
// the one transaction — messages whole in their statement with their held blobs, participant
// chunks that did not fit following — and reads back complete; a message already stored that
// lands in a later statement still rolls the whole page back as a PageConflictError. On the
// embedded database, which runs each statement on the event loop, statements are a quarter of
// that: one participant chunk (2,048 rows) per follow-up statement.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HeldBlob } from '../../src/storage/blob.store.js';
import type { SqlTransaction } from '../../src/storage/sql-executor.port.js';
import { newId } from '../../src/storage/ids.js';
import { MessageWriteRepository, PageConflictError, type AddressChunk, type PageRows } from '../../src/storage/message-write.repository.js';
import { startTestCore, type TestCore } from '../helpers/test-core.js';
import { seedMailbox } from './webhooks-seed.js';

let t: TestCore;
let repo: MessageWriteRepository;

beforeAll(async () => {
  t = await startTestCore();
  repo = new MessageWriteRepository(t.core.prisma, t.core.db);
}, 60_000);
afterAll(async () => {
  await t?.close();
});

type PageMessage = PageRows['messages'][number];

function addresses(n: number): AddressChunk[] {
  const chunks: AddressChunk[] = [];
  for (let at = 0; at < n; at += 2048) {
    const count = Math.min(2048, n - at);
    const rows = Array.from({ length: count }, (_, i) => ({ id: newId('messageAddress'), index: randomBytes(32).toString('hex'), role: i % 2 ? 'cc' : 'to' }));
    chunks.push({ count, ids: rows.map((r) => r.id).join(','), roles: rows.map((r) => r.role).join(','), indexes: rows.map((r) => r.index).join(',') });
  }
  return chunks;
}

function message(mailbox: { id: string; tenantId: string }, providerMessageId: string, contentBytes: number, extra: Partial<PageMessage> = {}): PageMessage {
  return {
    id: newId('message'),
    tenantId: mailbox.tenantId,
    mailboxId: mailbox.id,
    providerMessageId,
    providerThreadId: null,
    messageIdIndex: randomBytes(32).toString('hex'),
    threadKey: `mid:${providerMessageId}`,
    direction: 'inbound',
    isAutoReply: false,
    isBounce: false,
    oversize: false,
    parseError: null,
    sizeBytes: contentBytes,
    receivedAt: new Date('2026-12-01T10:00:00Z'),
    contentEnc: randomBytes(contentBytes),
    outboundId: null,
    children: { addresses: [], attachments: [] },
    ...extra,
  };
}

async function newMailbox(): Promise<{ id: string; tenantId: string }> {
  const { tenantId } = await t.createTenant();
  return { ...(await seedMailbox(t.core, tenantId)), tenantId };
}

describe('insertPage: a page larger than one statement', () => {
  it('writes every message, participant, attachment and held blob of a multi-MiB page in one transaction', async () => {
    const mailbox = await newMailbox();
    const blob: HeldBlob = { blobId: newId('blob'), tenantId: mailbox.tenantId, mailboxId: mailbox.id, kind: 'attachment', size: 300_000, dataEnc: randomBytes(300_000) };
    const attachment = {
      id: newId('attachment'),
      ordinal: 0,
      filenameEnc: randomBytes(40),
      contentType: 'application/pdf',
      size: 300_000,
      contentIdEnc: null,
      isInline: false,
      scanStatus: 'pending' as const,
      scanSignature: null,
      scanAttempts: 0,
      scanError: null,
      scannedAt: null,
      nextScanAt: new Date('2026-12-01T10:05:00Z'),
      blobId: blob.blobId,
    };
    const many = addresses(12_000); // ≈1.2 MB of participant columns: more than one statement carries
    const page: PageRows = {
      messages: [
        message(mailbox, 's-1', 700_000),
        message(mailbox, 's-2', 700_000, { children: { addresses: addresses(3), attachments: [attachment] } }),
        message(mailbox, 's-3', 2_000, { children: { addresses: many, attachments: [] } }),
        message(mailbox, 's-4', 900_000),
      ],
      blobs: [blob],
      threadRefs: [{ refIndex: randomBytes(32).toString('hex'), threadKey: 'mid:s-1' }],
      createdAt: new Date('2026-12-01T10:00:01Z'),
    };
    await t.core.db.transaction((tx) => repo.insertPage(tx, page));

    const rows = await t.core.prisma.message.findMany({ where: { mailboxId: mailbox.id }, select: { providerMessageId: true, contentEnc: true } });
    expect(rows.map((r) => r.providerMessageId).sort()).toEqual(['s-1', 's-2', 's-3', 's-4']);
    for (const m of page.messages) expect(Buffer.from(rows.find((r) => r.providerMessageId === m.providerMessageId)!.contentEnc).equals(m.contentEnc)).toBe(true);
    expect(await t.core.prisma.messageAddress.count({ where: { messageId: page.messages[2]!.id } })).toBe(12_000);
    const stored = await t.core.prisma.messageAddress.findMany({ where: { messageId: page.messages[2]!.id }, select: { id: true, role: true, addressIndex: true } });
    const expected = many.flatMap((c) => c.ids.split(',').map((id, i) => ({ id, role: c.roles.split(',')[i], addressIndex: c.indexes.split(',')[i] })));
    expect(new Map(stored.map((r) => [r.id, r]))).toEqual(new Map(expected.map((r) => [r.id, r])));
    expect(await t.core.prisma.messageAddress.count({ where: { messageId: page.messages[1]!.id } })).toBe(3);
    const att = await t.core.prisma.attachment.findUniqueOrThrow({ where: { id: attachment.id } });
    expect(att.blobId).toBe(blob.blobId);
    const chunk = await t.core.prisma.blobChunk.findFirstOrThrow({ where: { blobId: blob.blobId } });
    expect(Buffer.from(chunk.dataEnc).equals(blob.dataEnc)).toBe(true);
    expect(await t.core.prisma.threadRef.count({ where: { mailboxId: mailbox.id } })).toBe(1);
  }, 60_000);

  it('participant rows that did not fit go in follow-up statements: several chunks each on Postgres, one each on the embedded database', async () => {
    const mailbox = await newMailbox();
    const many = addresses(12_000); // six chunks of 2,048 rows, ≈ 200 KB of columns each
    const page: PageRows = {
      messages: [message(mailbox, 'f-1', 2_000, { children: { addresses: many, attachments: [] } })],
      blobs: [],
      threadRefs: [],
      createdAt: new Date(),
    };
    // Participant chunks per statement, as the repository sends them (each chunk's ids column is a unique string).
    const chunkIds = new Set(many.map((c) => c.ids));
    const chunksPerStatement: number[] = [];
    await t.core.db.transaction((tx) => {
      const recording: SqlTransaction = {
        ...tx,
        query: (text, values) => {
          const carried = (values ?? []).flatMap((v) => (Array.isArray(v) ? v : [v])).filter((v) => typeof v === 'string' && chunkIds.has(v)).length;
          if (carried > 0) chunksPerStatement.push(carried);
          return tx.query(text, values);
        },
      };
      return repo.insertPage(recording, page);
    });
    expect(await t.core.prisma.messageAddress.count({ where: { messageId: page.messages[0]!.id } })).toBe(12_000);
    expect(chunksPerStatement.reduce((a, b) => a + b, 0)).toBe(6);
    if (t.core.db.kind === 'embedded') expect(chunksPerStatement).toEqual([1, 1, 1, 1, 1, 1]);
    else expect(chunksPerStatement.length).toBeLessThanOrEqual(2);
  }, 60_000);

  it('a message stored already, in a later statement of the page: PageConflictError, and the transaction leaves nothing of the page', async () => {
    const mailbox = await newMailbox();
    await t.core.db.transaction((tx) => repo.insertPage(tx, { messages: [message(mailbox, 'c-3', 100)], blobs: [], threadRefs: [], createdAt: new Date() }));
    const page: PageRows = {
      messages: [message(mailbox, 'c-1', 800_000), message(mailbox, 'c-2', 800_000, { children: { addresses: addresses(4000), attachments: [] } }), message(mailbox, 'c-3', 800_000)],
      blobs: [],
      threadRefs: [],
      createdAt: new Date(),
    };
    const err = await t.core.db.transaction((tx) => repo.insertPage(tx, page)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PageConflictError);
    expect((err as PageConflictError).providerMessageIds).toEqual(['c-3']);
    expect((await t.core.prisma.message.findMany({ where: { mailboxId: mailbox.id }, select: { providerMessageId: true } })).map((r) => r.providerMessageId)).toEqual(['c-3']);
    expect(await t.core.prisma.messageAddress.count({ where: { mailboxId: mailbox.id } })).toBe(0);
  }, 60_000);
});

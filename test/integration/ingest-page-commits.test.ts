// How ingestPage groups a page into transactions (real database: Postgres with DATABASE_URL, the
// embedded one without). While messages of the page are still being parsed, the writer waits for
// PageLimits.commitAtLeast ready ones before it commits — fewer transactions, each a handful of
// statements whatever its size — but never longer than commitWaitMs: a message that is ready is
// not held back behind a slow parse, and a page's last messages commit as soon as they are ready.
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { OutboxService } from '../../src/events/outbox.service.js';
import { IngestService, type IngestInput, type PageLimits } from '../../src/ingest/ingest.service.js';
import { parseMime } from '../../src/ingest/mime-parser.js';
import type { MimeParseFn } from '../../src/ingest/parse-pool.js';
import { NullScanner } from '../../src/scan/null.scanner.js';
import { BlobStore } from '../../src/storage/blob.store.js';
import { MessageWriteRepository } from '../../src/storage/message-write.repository.js';
import { OutboxRepository } from '../../src/storage/outbox.repository.js';
import { startTestCore, type TestCore } from '../helpers/test-core.js';
import { seedMailbox } from './webhooks-seed.js';

let svc: TestCore;
beforeAll(async () => {
  svc = await startTestCore();
}, 60_000);
afterAll(async () => {
  await svc?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

function mail(id: string): Buffer {
  return Buffer.from(['From: Ada <ada@customer.example>', 'To: support@helpdesk.example', `Subject: message ${id}`, `Message-ID: <${id}@customer.example>`, 'Date: Mon, 2 Mar 2026 09:00:00 +0000', '', `body of ${id}`, ''].join('\r\n'));
}
const input = (id: string): IngestInput => ({ providerMessageId: id, providerThreadId: undefined, raw: Readable.from([mail(id)]), receivedAt: new Date(), knownNew: true });

/** parseMime, taking `delayMs(subject)` longer: a parse thread's time, without one. */
function slowParse(delayMs: (subject: string) => number): MimeParseFn {
  return async (raw, options) => {
    const parsed = await parseMime(raw, options);
    await sleep(delayMs(parsed.subject));
    return parsed;
  };
}

function service(parse: MimeParseFn, page: Partial<PageLimits> = {}): IngestService {
  const core = svc.core;
  return new IngestService({
    messages: new MessageWriteRepository(core.prisma, core.db),
    blobs: new BlobStore(core.prisma, core.dataKeys),
    dataKeys: core.dataKeys,
    blindIndex: core.blindIndex,
    outbox: new OutboxService({ repo: new OutboxRepository(core.prisma), dataKeys: core.dataKeys, clock: core.clock }),
    jobs: null,
    scanner: { scanner: new NullScanner(), configured: false },
    maxMessageBytes: core.config.sync.maxMessageBytes,
    parse,
    page,
    clock: core.clock,
    logger: core.logger,
  });
}

async function newMailbox(): Promise<{ id: string; tenantId: string; provider: 'google' }> {
  const t = await svc.createTenant();
  return { ...(await seedMailbox(svc.core, t.tenantId)), tenantId: t.tenantId, provider: 'google' };
}

describe('ingestPage transactions', () => {
  it('while messages are still being parsed, commits only once commitAtLeast are ready; all stored, in order', async () => {
    const mailbox = await newMailbox();
    // 96 messages ready one after another, ~2 ms apart (16 parsed at a time); a wait bound that
    // is not reached on a loaded machine, so only the grouping is seen.
    const ids = Array.from({ length: 96 }, (_, i) => `g-${i}`);
    let sourceDone = false;
    async function* source(): AsyncGenerator<IngestInput> {
      for (const id of ids) yield input(id);
      sourceDone = true;
    }
    const sizes: Array<{ messages: number; sourceDone: boolean }> = [];
    const insertPage = MessageWriteRepository.prototype.insertPage;
    vi.spyOn(MessageWriteRepository.prototype, 'insertPage').mockImplementation(function (this: MessageWriteRepository, tx, page) {
      sizes.push({ messages: page.messages.length, sourceDone });
      return insertPage.call(this, tx, page);
    });
    const parse = slowParse((subject) => 2 + 2 * (Number(subject.split('-')[1]) % 16));
    const results = await service(parse, { commitWaitMs: 2_000 }).ingestPage(mailbox, source());
    expect(results.map((r) => r.status)).toEqual(ids.map(() => 'stored'));
    // Before the source ended, every transaction waited for 32 ready messages (committing whenever
    // the head was ready, as before, made 8-10 transactions of 1-20 here); after it, the rest
    // commit as they become ready.
    const early = sizes.filter((s) => !s.sourceDone);
    expect(early.length).toBeGreaterThan(0);
    for (const s of early) expect(s.messages).toBeGreaterThanOrEqual(32);
    expect(sizes.reduce((n, s) => n + s.messages, 0)).toBe(96);
    const events = await svc.core.prisma.outboxEvent.findMany({ where: { mailboxId: mailbox.id }, orderBy: { seq: 'asc' }, select: { seq: true } });
    expect(events.map((e) => Number(e.seq))).toEqual(ids.map((_, i) => i + 1));
  }, 60_000);

  it('does not hold a ready message back behind a slow parse for longer than commitWaitMs', async () => {
    const mailbox = await newMailbox();
    const started = Date.now();
    const committedAt = new Map<string, number>();
    const parse = slowParse((subject) => (subject === 'message h-1' ? 3_000 : 1));
    const results = await service(parse, { commitWaitMs: 50 }).ingestPage(mailbox, ['h-0', 'h-1', 'h-2'].map(input), {
      onResult: (_r, i) => void committedAt.set(i.providerMessageId, Date.now() - started),
    });
    expect(results.map((r) => r.status)).toEqual(['stored', 'stored', 'stored']);
    // h-0 was ready at once: committed long before h-1's parse ended (3 s), not waiting for it.
    expect(committedAt.get('h-0')!).toBeLessThan(1_500);
    expect(committedAt.get('h-1')!).toBeGreaterThanOrEqual(3_000);
  }, 60_000);
});

// Corpus acceptance through the FULL ingest path (parse → classify → thread → encrypt → one
// transaction in Postgres): every message of ../shared/corpus is stored or explicitly flagged,
// none crashes; replies in the notmuch threading sets share their parent's thread key; and a
// pg_dump of the database afterwards contains none of a sample of subjects, addresses or body
// phrases in plaintext.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InMemoryAttachmentSink } from '../../src/ingest/in-memory-attachment-sink.js';
import { parseMime } from '../../src/ingest/mime-parser.js';
import { decodeMessageContent, MESSAGE_CONTENT_AAD } from '../../src/mailboxes/message-content.js';
import { CORPUS_ROOT, listCorpusMessages, type CorpusMessage } from '../corpus/corpus-files.js';
import { corpusMissingReason, embeddedRun, missing, requireInTest } from '../helpers/requirements.js';
import { startTestCore, type TestCore } from '../helpers/test-core.js';
import { ingestHarness } from './ingest-harness.js';
import { seedMailbox } from './webhooks-seed.js';

const run = promisify(execFile);

let svc: TestCore;
let mailbox: { id: string; tenantId: string };
let messages: CorpusMessage[];
const outcomes = new Map<string, string>();

describe.skipIf(missing('the shared mail corpus', corpusMissingReason()))('corpus through the full ingest path', () => {
  beforeAll(async () => {
    svc = await startTestCore();
    const t = await svc.createTenant();
    mailbox = { ...(await seedMailbox(svc.core, t.tenantId)), tenantId: t.tenantId };
    messages = listCorpusMessages().messages;
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
  });

  it('stores every corpus message (or flags it) with 0 crashes', async () => {
    const h = ingestHarness(svc.core, { scanner: null });
    const crashes: string[] = [];
    const one = async (m: CorpusMessage): Promise<void> => {
      try {
        const r = await h.run(mailbox, m.id, m.bytes);
        outcomes.set(m.id, r.status);
      } catch (err) {
        crashes.push(`${m.id}: ${err instanceof Error ? err.name : 'error'}`);
      }
    };
    // Threading sets in order, one at a time (as one mailbox's sync would); the rest four at a
    // time to keep the suite fast — ingest of different messages is independent.
    for (const m of messages.filter((x) => x.folder === 'notmuch')) await one(m);
    const rest = messages.filter((x) => x.folder !== 'notmuch');
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < rest.length) await one(rest[next++]!);
      }),
    );
    expect(crashes).toEqual([]);
    const rows = await svc.core.prisma.message.count({ where: { mailboxId: mailbox.id } });
    expect(rows).toBe(messages.length);
    expect(messages.length).toBeGreaterThan(1000);
    // Each stored message announced once.
    expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: mailbox.id, type: 'message.received' } })).toBe(messages.length);
    // A second fetch of the same messages is a no-op.
    for (const m of messages.slice(0, 50)) expect((await h.run(mailbox, m.id, m.bytes)).status).toBe('duplicate');
    expect(await svc.core.prisma.message.count({ where: { mailboxId: mailbox.id } })).toBe(messages.length);
  }, 900_000); // ~1,700 messages through parse, encrypt and Postgres: about a minute on an idle 2-core machine

  it('stored bounce / auto-reply flags agree with go-sisimai on at least 95% of the sisimai set', async (ctx) => {
    requireInTest(ctx, 'the sisimai expectations (shared corpus)', corpusMissingReason('sisimai-set-of-emails', 'EXPECTED.go-sisimai-publiclist.json'));
    const expectedPath = `${CORPUS_ROOT}/sisimai-set-of-emails/EXPECTED.go-sisimai-publiclist.json`;
    const expected = JSON.parse(readFileSync(expectedPath, 'utf8')) as Record<string, Array<{ reason: string }>>;
    const rows = await svc.core.prisma.message.findMany({
      where: { mailboxId: mailbox.id, providerMessageId: { startsWith: 'sisimai-set-of-emails/maildir/' } },
      select: { providerMessageId: true, isBounce: true, isAutoReply: true },
    });
    const byFile = new Map<string, (typeof rows)[number]>();
    // Prefer the bsd copy of a file; dos/mac copies are the same message with other line ends.
    for (const r of rows.sort((a, b) => a.providerMessageId.localeCompare(b.providerMessageId))) {
      const file = r.providerMessageId.split('/').slice(3).join('/');
      if (!byFile.has(file)) byFile.set(file, r);
    }
    let agree = 0;
    let total = 0;
    for (const [file, recipients] of Object.entries(expected)) {
      const row = byFile.get(file);
      if (!row || recipients.length === 0) continue;
      const reason = recipients[0]!.reason;
      // go-sisimai's reason → the connector's flags (see test/corpus/sisimai-classification.test.ts):
      // vacation → auto-reply, feedback (ARF) → neither, every other reason → bounce.
      const want = reason === 'vacation' ? 'auto_reply' : reason === 'feedback' ? 'none' : 'bounce';
      const got = row.isBounce ? 'bounce' : row.isAutoReply ? 'auto_reply' : 'none';
      total++;
      if (got === want) agree++;
    }
    expect(total).toBeGreaterThan(500);
    expect(agree / total).toBeGreaterThanOrEqual(0.95);
  });

  it('links replies to their parents on the notmuch threading sets', async () => {
    const rows = await svc.core.prisma.message.findMany({ where: { mailboxId: mailbox.id, providerMessageId: { startsWith: 'notmuch/' } }, select: { id: true, threadKey: true, contentEnc: true } });
    const byMessageId = new Map<string, string>();
    const replies: Array<{ parent: string; threadKey: string }> = [];
    for (const r of rows) {
      const content = decodeMessageContent(await svc.core.dataKeys.decryptFor({ type: 'mailbox', id: mailbox.id }, r.contentEnc, MESSAGE_CONTENT_AAD(r.id)));
      if (content.internetMessageId) byMessageId.set(content.internetMessageId, r.threadKey);
      if (content.inReplyTo) replies.push({ parent: content.inReplyTo, threadKey: r.threadKey });
    }
    const withParent = replies.filter((r) => byMessageId.has(r.parent));
    expect(withParent.length).toBeGreaterThan(50);
    const linked = withParent.filter((r) => byMessageId.get(r.parent) === r.threadKey).length;
    expect(linked / withParent.length).toBeGreaterThanOrEqual(0.95);
  }, 120_000);

  it.skipIf(embeddedRun('the pg_dump check'))('a pg_dump afterwards holds no sampled subject, address or body phrase in plaintext', async () => {
    // Sample what a leak would look like: distinctive strings from the messages just stored.
    const needles = new Set<string>();
    for (const m of messages.filter((_, i) => i % 23 === 0)) {
      const p = await parseMime(Readable.from([m.bytes]), { attachmentSink: new InMemoryAttachmentSink({ retainContent: false }) }).catch(() => null);
      if (!p) continue;
      if (p.subject.length >= 16 && /[a-z]{4}/i.test(p.subject)) needles.add(p.subject);
      if (p.from?.address && p.from.address.length >= 10) needles.add(p.from.address);
      const phrase = p.text?.replace(/\s+/g, ' ').match(/[A-Za-z][A-Za-z ,.']{39}/)?.[0];
      if (phrase) needles.add(phrase);
    }
    expect(needles.size).toBeGreaterThan(60);
    const { stdout } = await run('pg_dump', ['--data-only', '--no-owner', svc.config.database.url!], { maxBuffer: 1024 * 1024 * 1024 });
    expect(stdout.length).toBeGreaterThan(100_000);
    const found = [...needles].filter((s) => stdout.includes(s));
    expect(found).toEqual([]);
    // Nor in anything the service logged.
    const logs = svc.logs.join('\n');
    expect([...needles].filter((s) => logs.includes(s))).toEqual([]);
  }, 120_000);
});

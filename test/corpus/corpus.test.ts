import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { classify } from '../../src/ingest/classifier.js';
import { InMemoryAttachmentSink } from '../../src/ingest/in-memory-attachment-sink.js';
import { InMemoryThreadIndex } from '../../src/ingest/in-memory-thread-index.js';
import { parseMime, type ParsedMessage } from '../../src/ingest/mime-parser.js';
import { resolveThreadKey } from '../../src/ingest/threading.js';
import { corpusMissingReason, missing } from '../helpers/requirements.js';
import { listCorpusMessages } from './corpus-files.js';

const PER_MESSAGE_TIMEOUT_MS = 15_000;

function chunked(bytes: Buffer, size = 16 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
    })(),
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe.skipIf(missing('the shared mail corpus', corpusMissingReason()))('real-world corpus: parse + classify + thread', () => {
  it('handles every message without a crash or hang; each is parsed or explicitly flagged', { timeout: 120_000 }, async () => {
    const { messages, skippedFiles, mboxFiles } = listCorpusMessages();
    const crashes: string[] = [];
    const hangs: string[] = [];
    const flagged = new Map<string, number>();
    let parsedClean = 0;
    let oversize = 0;
    let attachments = 0;
    let synthetic = 0;
    const warnings = new Map<string, number>();
    let autoReplies = 0;
    let bounces = 0;
    let feedback = 0;
    const indexes = new Map<string, InMemoryThreadIndex>(); // one "mailbox" per corpus folder
    const threads = new Set<string>();
    const started = Date.now();

    for (const message of messages) {
      try {
        const result = await withTimeout(
          parseMime(chunked(message.bytes), {
            attachmentSink: new InMemoryAttachmentSink({ retainContent: false }),
            maxBytes: 20 * 1024 * 1024,
            receivedAt: new Date('2026-01-01T00:00:00Z'),
          }),
          PER_MESSAGE_TIMEOUT_MS,
        );
        if (result === 'timeout') {
          hangs.push(message.id);
          continue;
        }
        const parsed: ParsedMessage = result;
        expect(parsed.messageId.length).toBeGreaterThan(0);
        expect(Number.isNaN(parsed.date.getTime())).toBe(false);
        const c = classify(parsed);
        const index = indexes.get(message.folder) ?? new InMemoryThreadIndex();
        indexes.set(message.folder, index);
        threads.add(`${message.folder}/${await resolveThreadKey(parsed, index)}`);

        if (parsed.parseError) flagged.set(parsed.parseError, (flagged.get(parsed.parseError) ?? 0) + 1);
        else parsedClean++;
        if (parsed.oversize) oversize++;
        if (parsed.messageIdSynthetic) synthetic++;
        for (const w of parsed.warnings) warnings.set(w, (warnings.get(w) ?? 0) + 1);
        attachments += parsed.attachments.length;
        if (c.isAutoReply) autoReplies++;
        if (c.isBounce) bounces++;
        if (c.isFeedbackReport) feedback++;
      } catch (err) {
        crashes.push(`${message.id}: ${(err as Error).name}`);
      }
    }

    const seconds = (Date.now() - started) / 1000;
    console.log(
      [
        `corpus: ${messages.length} messages (${mboxFiles} mbox files split, ${skippedFiles} non-message files skipped) in ${seconds.toFixed(1)} s`,
        `  parsed cleanly: ${parsedClean}; flagged: ${[...flagged].map(([k, v]) => `${k}=${v}`).join(', ') || 'none'}; oversize: ${oversize}`,
        `  crashes: ${crashes.length}; hangs: ${hangs.length}; warnings: ${[...warnings].map(([k, v]) => `${k}=${v}`).join(', ') || 'none'}`,
        `  attachments streamed: ${attachments}; synthetic Message-IDs: ${synthetic}; threads: ${threads.size}`,
        `  auto-replies: ${autoReplies}; bounces: ${bounces}; feedback reports: ${feedback}`,
        ...crashes.map((c) => `  CRASH ${c}`),
        ...hangs.map((h) => `  HANG ${h}`),
      ].join('\n'),
    );

    expect(messages.length).toBeGreaterThan(1200);
    expect(crashes).toEqual([]);
    expect(hangs).toEqual([]);
    const flaggedTotal = [...flagged.values()].reduce((a, b) => a + b, 0);
    expect(parsedClean + flaggedTotal).toBe(messages.length);
  });
});

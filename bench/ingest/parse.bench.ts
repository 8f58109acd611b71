// Ingest throughput over the shared corpus. Run: npx tsx bench/ingest/parse.bench.ts [passes]
// Prints (1) bare mailparser MailParser throughput, (2) parseMime + classify + resolveThreadKey.
// Full-ingest numbers (scan + encrypt + store) are added by the storage work on top of this.
import { Readable } from 'node:stream';
import { MailParser } from 'mailparser';
import type { AttachmentStream, MessageText } from 'mailparser';
import { classify } from '../../src/ingest/classifier.js';
import { InMemoryAttachmentSink } from '../../src/ingest/in-memory-attachment-sink.js';
import { InMemoryThreadIndex } from '../../src/ingest/in-memory-thread-index.js';
import { parseMime } from '../../src/ingest/mime-parser.js';
import { resolveThreadKey } from '../../src/ingest/threading.js';
import { listCorpusMessages } from '../../test/corpus/corpus-files.js';

const passes = Number(process.argv[2] ?? 3);
const { messages } = listCorpusMessages();
const totalBytes = messages.reduce((sum, m) => sum + m.bytes.length, 0);

function source(bytes: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += 64 * 1024) yield bytes.subarray(i, i + 64 * 1024);
    })(),
  );
}

async function bareMailparser(bytes: Buffer): Promise<void> {
  // Same options parseMime uses, so the difference is our own work (limits, sniffing, sink, headers).
  const parser = new MailParser({ checksumAlgo: 'sha256', skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true, maxHtmlLengthToParse: 4 * 1024 * 1024 });
  source(bytes).pipe(parser);
  for await (const item of parser as AsyncIterable<AttachmentStream | MessageText>) {
    if (item.type === 'attachment') {
      item.content.resume();
      await new Promise((resolve) => item.content.once('end', resolve));
      item.release?.();
    }
  }
}

async function pipeline(bytes: Buffer, index: InMemoryThreadIndex): Promise<void> {
  const parsed = await parseMime(source(bytes), { attachmentSink: new InMemoryAttachmentSink({ retainContent: false }) });
  classify(parsed);
  await resolveThreadKey(parsed, index);
}

async function measure(name: string, run: (bytes: Buffer, folder: string) => Promise<void>): Promise<void> {
  // Warm-up pass so JIT and lazy requires do not count.
  for (const m of messages.slice(0, 200)) await run(m.bytes, m.folder).catch(() => undefined);
  let failures = 0;
  const started = process.hrtime.bigint();
  for (let p = 0; p < passes; p++) {
    for (const m of messages) await run(m.bytes, m.folder).catch(() => failures++);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const count = messages.length * passes;
  console.log(
    `${name.padEnd(34)} ${(count / seconds).toFixed(0).padStart(6)} msgs/s  ` +
      `${((totalBytes * passes) / seconds / 2 ** 20).toFixed(1).padStart(6)} MB/s  ` +
      `(${count} msgs in ${seconds.toFixed(2)} s${failures ? `, ${failures} threw` : ''})`,
  );
}

console.log(`corpus: ${messages.length} messages, ${(totalBytes / 2 ** 20).toFixed(1)} MB; ${passes} passes; node ${process.version}`);
await measure('mailparser (MailParser, streaming)', (bytes) => bareMailparser(bytes));
const indexes = new Map<string, InMemoryThreadIndex>();
await measure('parseMime + classify + thread', (bytes, folder) => {
  const index = indexes.get(folder) ?? new InMemoryThreadIndex();
  indexes.set(folder, index);
  return pipeline(bytes, index);
});

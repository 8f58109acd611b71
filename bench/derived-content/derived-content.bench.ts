// `npm run bench -- derived-content [rounds]` (or `npx tsx bench/derived-content/derived-content.bench.ts`):
// the CPU that ingest's per-message display work costs, over every message of the shared corpus.
// Each message is parsed once (not measured); then, per round, the measured steps run on every
// parsed message: sanitizeEmailHtml (safeHtml, once per message at ingest, in the parse worker),
// the whole addDerivedContent (safeHtml plus whatever else is derived there), and the read-time
// steps blockRemoteImages and rewriteCidUrls (per read / per delivery). Single thread, warmed by
// the first round (not counted). Needs no database.
import { Readable } from 'node:stream';
import { addDerivedContent } from '../../src/ingest/derived-content.js';
import { InMemoryAttachmentSink } from '../../src/ingest/in-memory-attachment-sink.js';
import { parseMime, type ParsedMessage } from '../../src/ingest/mime-parser.js';
import { rewriteCidUrls } from '../../src/messages/inline-images.js';
import { blockRemoteImages, sanitizeEmailHtml } from '../../src/messages/safe-html.js';
import { listCorpusMessages } from '../../test/corpus/corpus-files.js';

const rounds = Number(process.argv[2] ?? 3);
const { messages } = listCorpusMessages();
const parsed: ParsedMessage[] = [];
for (const m of messages) {
  try {
    parsed.push(await parseMime(Readable.from([m.bytes]), { attachmentSink: new InMemoryAttachmentSink() }));
  } catch {
    // A message the parser throws on is not what this measures.
  }
}
const withHtml = parsed.filter((p) => p.html !== null);
const htmlBytes = withHtml.reduce((n, p) => n + p.html!.length, 0);
console.log(`corpus: ${messages.length} messages, ${parsed.length} parsed, ${withHtml.length} with HTML (${(htmlBytes / 1024 / 1024).toFixed(1)} MiB of HTML)`);

function cpuMs(fn: () => void): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

const results: Record<string, number[]> = { sanitize: [], derived: [], block: [], cid: [] };
const safe = withHtml.map((p) => sanitizeEmailHtml(p.html)!);
const cids = new Map([['image001.png@01D00000.00000000', 'https://connector.example/v1/attachments/att_x/content']]);
for (let r = 0; r <= rounds; r++) {
  const sanitize = cpuMs(() => {
    for (const p of parsed) sanitizeEmailHtml(p.html);
  });
  const derived = cpuMs(() => {
    for (const p of parsed) addDerivedContent({ ...p });
  });
  const block = cpuMs(() => {
    for (const s of safe) blockRemoteImages(s);
  });
  const cid = cpuMs(() => {
    for (const s of safe) rewriteCidUrls(s, cids);
  });
  if (r === 0) continue; // warm-up
  results.sanitize!.push(sanitize / parsed.length);
  results.derived!.push(derived / parsed.length);
  results.block!.push(block / safe.length);
  results.cid!.push(cid / safe.length);
  console.log(
    `round ${r}: safeHtml ${(sanitize / parsed.length).toFixed(3)} CPU ms/msg (${(sanitize / withHtml.length).toFixed(3)} per HTML message), ` +
      `addDerivedContent ${(derived / parsed.length).toFixed(3)} ms/msg; at read: blockRemoteImages ${(block / safe.length).toFixed(4)} ms, rewriteCidUrls ${(cid / safe.length).toFixed(4)} ms per HTML message`,
  );
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `RESULT ${JSON.stringify({
    messages: parsed.length,
    htmlMessages: withHtml.length,
    safeHtmlCpuMsPerMessage: Number(median(results.sanitize!).toFixed(3)),
    derivedCpuMsPerMessage: Number(median(results.derived!).toFixed(3)),
    blockRemoteImagesMsPerHtmlMessage: Number(median(results.block!).toFixed(4)),
    rewriteCidMsPerHtmlMessage: Number(median(results.cid!).toFixed(4)),
  })}`,
);

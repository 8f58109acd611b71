// What the parse thread does per message, stage by stage, in ONE thread (no pool, no database):
//   node --import tsx bench/ingest/stages.bench.ts [sample=600] [rounds=3]
// Over the same even sample of the shared corpus as the ingest bench, interleaved per round:
// bare mailparser (the ratio's reference), parseMime (the ticket parser: charset salvage, TNEF,
// header capture, the sink), addDerivedContent (safeHtml + reply extraction), encodeParsed
// (classification, content JSON, encryption, participant blind indexes). Thread CPU ms per message
// (process.threadCpuUsage where available, else process.cpuUsage) and the medians; the parse
// worker's cost is parseMime + derived + encode (+ the task round trip).
import { Readable } from 'node:stream';
import { MailParser } from 'mailparser';
import type { AttachmentStream, MessageText } from 'mailparser';
import { loadavg } from 'node:os';
import { addDerivedContent } from '../../src/ingest/derived-content.js';
import { InMemoryAttachmentSink } from '../../src/ingest/in-memory-attachment-sink.js';
import { encodeParsed } from '../../src/ingest/message-encoder.js';
import { parseMime, type ParsedMessage } from '../../src/ingest/mime-parser.js';
import { listCorpusMessages } from '../../test/corpus/corpus-files.js';
import { benchEncodeSpec, evenSample } from './bench-support.js';

const sampleSize = Number(process.argv[2] ?? 600);
const rounds = Number(process.argv[3] ?? 3);
const sample = evenSample(listCorpusMessages().messages, sampleSize);
const spec = benchEncodeSpec();

const cpu = (): number => {
  const u = (process as unknown as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage?.() ?? process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function bare(bytes: Buffer): Promise<void> {
  const parser = new MailParser({ checksumAlgo: 'sha256', skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true, maxHtmlLengthToParse: 4 * 1024 * 1024 });
  Readable.from([bytes]).pipe(parser);
  for await (const item of parser as AsyncIterable<AttachmentStream | MessageText>) {
    if (item.type === 'attachment') {
      item.content.resume();
      await new Promise((resolve) => item.content.once('end', resolve));
      item.release?.();
    }
  }
}

// As the parse worker calls it for a message read whole (its usual task): the bytes as they are.
const parseOne = (bytes: Buffer): Promise<ParsedMessage> => parseMime(bytes, { attachmentSink: new InMemoryAttachmentSink({ retainContent: false }) });

const results: Record<string, number[]> = { mailparser: [], parseMime: [], derived: [], encode: [] };
for (let r = -1; r < rounds; r++) {
  let t = cpu();
  for (const m of sample) await bare(m.bytes);
  const mp = cpu() - t;
  t = cpu();
  const parsed: ParsedMessage[] = [];
  for (const m of sample) parsed.push(await parseOne(m.bytes));
  const pm = cpu() - t;
  t = cpu();
  for (const p of parsed) addDerivedContent(p);
  const dc = cpu() - t;
  t = cpu();
  for (const p of parsed) encodeParsed(p, spec);
  const en = cpu() - t;
  const per = (x: number): number => Math.round((x / sample.length) * 1000) / 1000;
  if (r < 0) {
    console.log('warm-up done');
    continue;
  }
  results.mailparser!.push(per(mp));
  results.parseMime!.push(per(pm));
  results.derived!.push(per(dc));
  results.encode!.push(per(en));
  console.log(`round ${r + 1}: CPU ms/msg mailparser ${per(mp)}, parseMime ${per(pm)}, addDerivedContent ${per(dc)}, encodeParsed ${per(en)}; loadavg ${loadavg()[0]!.toFixed(1)}`);
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const out = Object.fromEntries(Object.entries(results).map(([k, v]) => [`${k}_cpu_ms_per_msg`, median(v)]));
const worker = out.parseMime_cpu_ms_per_msg! + out.derived_cpu_ms_per_msg! + out.encode_cpu_ms_per_msg!;
console.log(`RESULT ${JSON.stringify({ ...out, parse_thread_cpu_ms_per_msg: Math.round(worker * 1000) / 1000, bound_ratio: Math.round((out.mailparser_cpu_ms_per_msg! / worker) * 1000) / 1000, messages: sample.length, rounds, loadavg_1m: loadavg()[0] })}`);

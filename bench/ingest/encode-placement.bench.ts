// Where encoding a parsed message costs what (no database): the parse pool with its one thread,
// as the service runs it, over the ingest bench's even sample of the shared corpus, in two modes
// interleaved per round (alternating order):
//   worker:     pool.parse.encoded — parse, derived content and encodeParsed in the parse thread
//               (the service since 13cd7f4);
//   event loop: pool.parse, then encodeParsed on the event loop.
//   node --import tsx bench/ingest/encode-placement.bench.ts [sample=600] [rounds=16]
// Messages go in 32 at a time. Per mode, the medians (after 3 warm-up rounds) of CPU ms per message
// of the event loop, the parse thread (the busiest other thread) and the rest of the process
// (V8's helpers), from /proc/<pid>/task/<tid>/stat, and the wall time per message. Ends with
// `RESULT {"worker": {...}, "event_loop": {...}}`.
import { readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Readable } from 'node:stream';
import type { AttachmentSink } from '../../src/ingest/attachment-sink.port.js';
import { encodeParsed } from '../../src/ingest/message-encoder.js';
import type { ParseMimeOptions } from '../../src/ingest/mime-parser.js';
import { MimeParsePool } from '../../src/ingest/parse-pool.js';
import { listCorpusMessages } from '../../test/corpus/corpus-files.js';
import { benchEncodeSpec, evenSample, median, statCpuMs } from './bench-support.js';

const sampleSize = Number(process.argv[2] ?? 600);
const rounds = Number(process.argv[3] ?? 16);
const WARMUP = 3;
const IN_FLIGHT = 32;
const sample = evenSample(listCorpusMessages().messages, sampleSize);
const spec = benchEncodeSpec();
/** Attachments are drained and dropped (storage is not what is measured). */
const sink: AttachmentSink = {
  async put(_meta, content) {
    for await (const chunk of content) void chunk;
    return { id: 'dropped' };
  },
};
const options = (): ParseMimeOptions => ({ attachmentSink: sink, receivedAt: new Date(), now: () => new Date() });

const threadCpuMs = (tid: number): number => statCpuMs(`/proc/${process.pid}/task/${tid}/stat`);
const snapshot = (): Map<number, number> => new Map(readdirSync(`/proc/${process.pid}/task`).map((t) => [Number(t), threadCpuMs(Number(t))]));

type Mode = 'worker' | 'event_loop';
interface Block {
  wall: number;
  eventLoop: number;
  parseThread: number;
  helpers: number;
}

const pool = new MimeParsePool({ threads: 1 });
const encodeInWorker = pool.parse.encoded!;

async function block(mode: Mode): Promise<Block> {
  const before = snapshot();
  const t0 = performance.now();
  let failed = 0;
  for (let i = 0; i < sample.length; i += IN_FLIGHT) {
    await Promise.all(
      sample.slice(i, i + IN_FLIGHT).map(async (m) => {
        const raw = Readable.from([m.bytes]);
        try {
          if (mode === 'worker') await encodeInWorker(raw, options(), spec);
          else encodeParsed(await pool.parse(raw, options()), spec);
        } catch {
          failed++;
        }
      }),
    );
  }
  const wall = performance.now() - t0;
  const used = [...snapshot()].map(([tid, ms]) => [tid, ms - (before.get(tid) ?? 0)] as const);
  const others = used.filter(([tid]) => tid !== process.pid).sort((a, b) => b[1] - a[1]);
  const n = sample.length - failed;
  return {
    wall: wall / n,
    eventLoop: used.find(([tid]) => tid === process.pid)![1] / n,
    parseThread: (others[0]?.[1] ?? 0) / n,
    helpers: others.slice(1).reduce((s, [, ms]) => s + ms, 0) / n,
  };
}

console.log(`sample: ${sample.length} messages; ${rounds} rounds (${WARMUP} warm-up); ${IN_FLIGHT} in flight; node ${process.version}; loadavg ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const blocks: Record<Mode, Block[]> = { worker: [], event_loop: [] };
for (let r = 0; r < rounds + WARMUP; r++) {
  for (const mode of (r % 2 ? ['worker', 'event_loop'] : ['event_loop', 'worker']) as Mode[]) {
    const b = await block(mode);
    if (r >= WARMUP) blocks[mode].push(b);
  }
}
const result: Record<string, Record<string, number>> = {};
for (const mode of ['worker', 'event_loop'] as Mode[]) {
  const bs = blocks[mode];
  const m = (k: keyof Block): number => Number(median(bs.map((b) => b[k])).toFixed(3));
  result[mode] = { wall_ms_per_msg: m('wall'), event_loop_cpu_ms_per_msg: m('eventLoop'), parse_thread_cpu_ms_per_msg: m('parseThread'), helpers_cpu_ms_per_msg: m('helpers') };
  const x = result[mode];
  console.log(
    `encoding in the ${mode === 'worker' ? 'parse thread' : 'event loop  '}: wall ${x.wall_ms_per_msg} ms/msg; CPU ms/msg event loop ${x.event_loop_cpu_ms_per_msg}, parse thread ${x.parse_thread_cpu_ms_per_msg}, helpers ${x.helpers_cpu_ms_per_msg}, total ${(x.event_loop_cpu_ms_per_msg! + x.parse_thread_cpu_ms_per_msg! + x.helpers_cpu_ms_per_msg!).toFixed(3)}`,
  );
}
console.log(`loadavg ${loadavg()[0]!.toFixed(2)}`);
console.log(`RESULT ${JSON.stringify(result)}`);
await pool.close();

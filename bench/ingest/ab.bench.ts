// The parse thread of this checkout against another checkout's, in ONE process, interleaved, so
// both see the same machine load (the comparison the ingest section of docs/benchmarks.md needs on
// a shared, loaded machine):
//   node --import tsx bench/ingest/ab.bench.ts <other checkout> [sample=600] [rounds=8] [--ahead=16]
// e.g. `git worktree add /tmp/wt-before <commit>` and `ln -s $PWD/node_modules /tmp/wt-before/`.
// Per round and checkout (order alternating): (1) `parse`: parseMime + addDerivedContent over the
// same corpus sample as the ingest bench, on this thread — each checkout's parseMime gets the bytes
// as its parse worker does (the other checkout's may only take a stream); (2) `pool`: the sample
// through each checkout's MimeParsePool (one parse thread, `--ahead` messages in flight, as
// ingestPage's parseAhead; sinks in memory; no database). CPU ms per message: process
// (all threads, incl. V8's GC helpers), main thread, and the busiest other thread (the parse
// thread), from /proc; medians over the rounds. `RESULT {…}` holds the medians of both.
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { listCorpusMessages } from '../../test/corpus/corpus-files.js';
import { evenSample } from './bench-support.js';

const args = process.argv.slice(2);
const positional = args.filter((a) => !a.startsWith('--'));
const otherRoot = positional[0];
if (!otherRoot) throw new Error('usage: ab.bench.ts <other checkout> [sample] [rounds] [--ahead=N]');
const sampleSize = Number(positional[1] ?? 600);
const rounds = Number(positional[2] ?? 8);
const ahead = Number(args.find((a) => a.startsWith('--ahead='))?.split('=')[1] ?? 16);
const roots: Record<string, string> = { other: resolve(otherRoot), this: resolve(import.meta.dirname, '..', '..') };

interface Checkout {
  parseMime: (raw: Readable | Buffer, options: object) => Promise<unknown>;
  addDerivedContent: (m: unknown) => unknown;
  Sink: new (o: { retainContent: boolean }) => object;
  pool: { parse: (raw: Readable, options: object) => Promise<unknown>; close: () => Promise<void> };
  takesBuffer: boolean;
}
const checkouts: Record<string, Checkout> = {};
for (const [name, root] of Object.entries(roots)) {
  const mime = (await import(`${root}/src/ingest/mime-parser.ts`)) as Pick<Checkout, 'parseMime'>;
  const { MimeParsePool } = (await import(`${root}/src/ingest/parse-pool.ts`)) as { MimeParsePool: new (o: object) => Checkout['pool'] };
  checkouts[name] = {
    parseMime: mime.parseMime,
    addDerivedContent: ((await import(`${root}/src/ingest/derived-content.ts`)) as Pick<Checkout, 'addDerivedContent'>).addDerivedContent,
    Sink: ((await import(`${root}/src/ingest/in-memory-attachment-sink.ts`)) as { InMemoryAttachmentSink: Checkout['Sink'] }).InMemoryAttachmentSink,
    pool: new MimeParsePool({ threads: 1 }),
    // A checkout whose worker hands parseMime the Buffer says so in parseMime's signature.
    takesBuffer: readFileSync(`${root}/src/ingest/mime-parser.ts`, 'utf8').includes('parseMime(raw: Readable | Buffer'),
  };
}

const sample = evenSample(listCorpusMessages().messages, sampleSize);

const TICK_MS = 10;
const ticks = (path: string): number => {
  const stat = readFileSync(path, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MS;
};
const threadCpu = (): Map<string, number> => new Map(readdirSync(`/proc/${process.pid}/task`).map((t) => [t, ticks(`/proc/${process.pid}/task/${t}/stat`)]));
const source = (bytes: Buffer): Readable =>
  Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += 64 * 1024) yield bytes.subarray(i, i + 64 * 1024);
    })(),
  );

interface Figures {
  process: number;
  main: number;
  parseThread: number;
}
async function measure(fn: () => Promise<void>): Promise<Figures> {
  const t0 = threadCpu();
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  const used = [...threadCpu()].map(([t, ms]) => [t, ms - (t0.get(t) ?? 0)] as const);
  const main = used.find(([t]) => t === String(process.pid))?.[1] ?? 0;
  const other = Math.max(0, ...used.filter(([t]) => t !== String(process.pid)).map(([, ms]) => ms));
  const n = sample.length;
  return { process: (c.user + c.system) / 1000 / n, main: main / n, parseThread: other / n };
}

const parseBlock = (c: Checkout): Promise<Figures> =>
  measure(async () => {
    for (const m of sample) {
      const parsed = await c.parseMime(c.takesBuffer ? m.bytes : Readable.from([m.bytes]), { attachmentSink: new c.Sink({ retainContent: false }) });
      c.addDerivedContent(parsed);
    }
  });
const poolBlock = (c: Checkout): Promise<Figures> =>
  measure(async () => {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < sample.length) {
        const m = sample[next++]!;
        await c.pool.parse(source(m.bytes), { attachmentSink: new c.Sink({ retainContent: false }) });
      }
    };
    await Promise.all(Array.from({ length: ahead }, lane));
  });

const results: Record<string, { parse: Figures[]; pool: Figures[] }> = { other: { parse: [], pool: [] }, this: { parse: [], pool: [] } };
console.log(`sample ${sample.length} messages, ${rounds} rounds (+1 warm-up), pool ahead ${ahead}; other = ${roots.other}; loadavg ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
try {
  for (let r = -1; r < rounds; r++) {
    for (const name of r % 2 === 0 ? ['this', 'other'] : ['other', 'this']) {
      const c = checkouts[name]!;
      const parse = await parseBlock(c);
      const pool = await poolBlock(c);
      if (r < 0) continue;
      results[name]!.parse.push(parse);
      results[name]!.pool.push(pool);
    }
  }
} finally {
  for (const c of Object.values(checkouts)) await c.pool.close();
}
const median = (xs: number[]): number => Number([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(3));
const summary = Object.fromEntries(
  Object.entries(results).map(([name, r]) => [
    name,
    {
      parse_process_cpu_ms_per_msg: median(r.parse.map((f) => f.process)),
      parse_main_thread_cpu_ms_per_msg: median(r.parse.map((f) => f.main)),
      pool_process_cpu_ms_per_msg: median(r.pool.map((f) => f.process)),
      pool_main_thread_cpu_ms_per_msg: median(r.pool.map((f) => f.main)),
      pool_parse_thread_cpu_ms_per_msg: median(r.pool.map((f) => f.parseThread)),
    },
  ]),
);
for (const [name, s] of Object.entries(summary)) console.log(name.padEnd(5), JSON.stringify(s));
console.log(`RESULT ${JSON.stringify({ ...summary, messages: sample.length, rounds, ahead, loadavg_1m: Number(loadavg()[0]!.toFixed(2)) })}`);

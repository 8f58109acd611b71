// What reading the fuzz corpus through GET /v1/messages/:id costs the event loop:
//   DATABASE_URL=postgresql://root@127.0.0.1:5432/postgres node --import tsx bench/latency/read.bench.ts [rounds=5]
// Stores the generated pathological messages (test/helpers/pathological-mail.ts: four ~0.95 MiB
// header blocks of ~25,000 addresses, 999 parts, 990 attachments, 99 × 9 nesting) plus about
// 1 MiB of HTML (4,000 table rows with remote images) through the real ingest pipeline into a
// fresh Postgres database, then builds every message's API JSON, interleaved per round, two ways:
//   event loop — JSON.stringify(MessageViewer.full(row)) (the route's res.json before)
//   fullJson   — MessageViewer.fullJson(row, {}, pool) (large contents in the content worker)
// and the list pages' summaries the same two ways (summary vs summaryJson).
// The rows are read once before timing (the database read is the same for both). Per block: the
// main thread's CPU ms (/proc, 10 ms ticks), the longest gap between the firings of a 1 ms interval
// timer (the longest the event loop was held, plus scheduling delay: compare with the idle gap
// printed first), and whether both give the same bytes. Each block reads the messages one after
// the other (per-read holds), then all at once (concurrent requests), then as one list page of
// their summaries (GET /v1/mailboxes/:id/messages: res.json of the summaries before, summaryJson
// per row now). RESULT: medians.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createCore } from '../../src/bootstrap/core.js';
import { loadConfig } from '../../src/config/config.js';
import { MessageContentPool } from '../../src/messages/content-pool.js';
import { MessageViewer } from '../../src/messages/message-view.js';
import { MessageReadRepository, type MessageRecord } from '../../src/storage/message-read.repository.js';
import { generatedPathologicalMessages, largeHtml } from '../../test/helpers/pathological-mail.js';
import { createTestDatabase } from '../../test/helpers/postgres.js';
import { ingestHarness, seedIngestMailbox } from '../../test/integration/ingest-harness.js';

const rounds = Number(process.argv[2] ?? 5);

function mainThreadCpuMs(): number {
  const stat = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** Runs `fn` while a 1 ms interval timer records the longest gap between its firings. */
async function held<T>(fn: () => Promise<T>): Promise<{ value: T; maxGapMs: number; cpuMs: number; wallMs: number }> {
  let last = performance.now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 1);
  const cpu0 = mainThreadCpuMs();
  const t0 = performance.now();
  const value = await fn();
  const wallMs = performance.now() - t0;
  const cpuMs = mainThreadCpuMs() - cpu0;
  maxGap = Math.max(maxGap, performance.now() - last);
  clearInterval(timer);
  return { value, maxGapMs: maxGap, cpuMs, wallMs };
}


const db = await createTestDatabase();
const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: db.url, ENCRYPTION_KEYS: `1:${randomBytes(32).toString('base64')}` });
const core = await createCore(config, { command: 'bench' });
const pool = new MessageContentPool();
try {
  const mailbox = await seedIngestMailbox(core, 'read@bench.example');
  const h = ingestHarness(core);
  const raws = [...generatedPathologicalMessages(), largeHtml()];
  for (const [i, raw] of raws.entries()) await h.run(mailbox, `fuzz-${i}`, raw);
  const repo = new MessageReadRepository(core.prisma);
  const stored = await core.prisma.message.findMany({ where: { mailboxId: mailbox.id }, select: { id: true }, orderBy: { receivedAt: 'asc' } });
  const rows: MessageRecord[] = [];
  for (const { id } of stored) rows.push((await repo.findMessageForTenant(mailbox.tenantId, id))!);
  const viewer = new MessageViewer(core.dataKeys, async () => ({ blockRemoteImages: true }));

  const idle = await held(() => new Promise((r) => setTimeout(r, 500)));
  console.log(`${rows.length} messages (${(raws.reduce((s, r) => s + r.length, 0) / 2 ** 20).toFixed(1)} MiB raw); idle 1 ms timer: longest gap ${idle.maxGapMs.toFixed(1)} ms; loadavg ${loadavg()[0]!.toFixed(1)}`);

  const onLoop = async (row: MessageRecord): Promise<Buffer> => Buffer.from(JSON.stringify(await viewer.full(row)), 'utf8');
  const offLoop = (row: MessageRecord): Promise<Buffer> => viewer.fullJson(row, {}, pool);
  const oneByOne = (read: (row: MessageRecord) => Promise<Buffer>) => async (): Promise<Buffer[]> => {
    const out: Buffer[] = [];
    for (const row of rows) out.push(await read(row));
    return out;
  };
  const allAtOnce = (read: (row: MessageRecord) => Promise<Buffer>) => (): Promise<Buffer[]> => Promise.all(rows.map(read));
  // A list page of all of them: the summaries, as the list routes sent them before (res.json of
  // Promise.all of summary) and now (summaryJson one after the other, joined).
  const listOnLoop = async (): Promise<Buffer[]> => [Buffer.from(JSON.stringify({ object: 'list', data: await Promise.all(rows.map((r) => viewer.summary(r))), nextCursor: null }), 'utf8')];
  const listOffLoop = async (): Promise<Buffer[]> => {
    const items: Buffer[] = [];
    for (const row of rows) items.push(await viewer.summaryJson(row, pool));
    return [Buffer.concat([Buffer.from('{"object":"list","data":['), ...items.flatMap((x, i) => (i > 0 ? [Buffer.from(','), x] : [x])), Buffer.from('],"nextCursor":null}')])];
  };
  // Warm-up (JIT, the pool's thread start): not counted.
  await oneByOne(onLoop)();
  await oneByOne(offLoop)();

  type Key = 'loop_seq' | 'pool_seq' | 'loop_all' | 'pool_all' | 'loop_list' | 'pool_list';
  const gaps: Record<Key, number[]> = { loop_seq: [], pool_seq: [], loop_all: [], pool_all: [], loop_list: [], pool_list: [] };
  const cpus: Record<Key, number[]> = { loop_seq: [], pool_seq: [], loop_all: [], pool_all: [], loop_list: [], pool_list: [] };
  const tasks0 = pool.tasks;
  for (let r = 1; r <= rounds; r++) {
    const blocks: Array<[Key, () => Promise<Buffer[]>]> = [
      ['loop_seq', oneByOne(onLoop)],
      ['pool_seq', oneByOne(offLoop)],
      ['loop_all', allAtOnce(onLoop)],
      ['pool_all', allAtOnce(offLoop)],
      ['loop_list', listOnLoop],
      ['pool_list', listOffLoop],
    ];
    const line: string[] = [];
    let reference: Buffer[] | undefined;
    let listReference: Buffer[] | undefined;
    for (const [key, fn] of blocks) {
      const b = await held(fn);
      const list = key.endsWith('_list');
      if (list) listReference ??= b.value;
      else reference ??= b.value;
      const same = list ? listReference! : reference!;
      if (!b.value.every((x, i) => x.equals(same[i]!))) throw new Error(`${key} gave other bytes than the event loop's JSON.stringify`);
      gaps[key].push(b.maxGapMs);
      cpus[key].push(b.cpuMs);
      line.push(`${key}: hold ${b.maxGapMs.toFixed(1)} ms, CPU ${b.cpuMs} ms, wall ${b.wallMs.toFixed(0)} ms`);
    }
    console.log(`round ${r}: ${line.join(' | ')} | same bytes; loadavg ${loadavg()[0]!.toFixed(1)}`);
  }
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const round1 = (x: number): number => Math.round(x * 10) / 10;
  console.log(
    `RESULT ${JSON.stringify({
      loop_max_hold_ms: round1(median(gaps.loop_seq)),
      pool_max_hold_ms: round1(median(gaps.pool_seq)),
      loop_all_max_hold_ms: round1(median(gaps.loop_all)),
      pool_all_max_hold_ms: round1(median(gaps.pool_all)),
      loop_list_max_hold_ms: round1(median(gaps.loop_list)),
      pool_list_max_hold_ms: round1(median(gaps.pool_list)),
      loop_list_main_cpu_ms: median(cpus.loop_list),
      pool_list_main_cpu_ms: median(cpus.pool_list),
      loop_main_cpu_ms_per_read: round1(median(cpus.loop_seq) / rows.length),
      pool_main_cpu_ms_per_read: round1(median(cpus.pool_seq) / rows.length),
      idle_max_gap_ms: round1(idle.maxGapMs),
      messages: rows.length,
      worker_tasks_per_block: (pool.tasks - tasks0) / (3 * rounds),
      rounds,
      loadavg_1m: loadavg()[0],
    })}`,
  );
} finally {
  await pool.close();
  await core.close();
  await db.drop();
}

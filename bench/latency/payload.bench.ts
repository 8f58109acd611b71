// What building the webhook bodies of the fuzz corpus costs the event loop:
//   DATABASE_URL=postgresql://root@127.0.0.1:5432/postgres node --import tsx bench/latency/payload.bench.ts [rounds=5]
// Stores the generated pathological messages (test/helpers/pathological-mail.ts: four ~0.95 MiB
// header blocks of ~25,000 addresses, 999 parts, 990 attachments, 99 × 9 nesting) through the real
// ingest pipeline into a fresh Postgres database, then builds their `message.received` wire bodies,
// interleaved per round, two ways:
//   event loop — PayloadBuilder.buildMany + JSON.stringify per body (the dispatcher before encodeMany)
//   encodeMany — PayloadBuilder.encodeMany with a MessageContentPool (large contents in its worker)
// Per block: the main thread's CPU ms (/proc, 10 ms ticks), the longest gap between the firings of
// a 1 ms interval timer (the longest the event loop was held, plus scheduling delay: compare with
// the idle gap printed first), and whether both give the same bytes. RESULT: medians.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createCore } from '../../src/bootstrap/core.js';
import { loadConfig } from '../../src/config/config.js';
import { PayloadBuilder } from '../../src/events/payload-builder.js';
import { MessageContentPool } from '../../src/messages/content-pool.js';
import { MessageViewer } from '../../src/messages/message-view.js';
import { MessageReadRepository } from '../../src/storage/message-read.repository.js';
import { WebhookRepository } from '../../src/storage/webhook.repository.js';
import { generatedPathologicalMessages } from '../../test/helpers/pathological-mail.js';
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
  const mailbox = await seedIngestMailbox(core, 'payload@bench.example');
  const h = ingestHarness(core);
  const raws = generatedPathologicalMessages();
  for (const [i, raw] of raws.entries()) await h.run(mailbox, `fuzz-${i}`, raw);
  const events = await core.prisma.outboxEvent.findMany({ where: { mailboxId: mailbox.id, type: 'message.received' }, orderBy: { seq: 'asc' } });
  // As webhooks.module wires it: messages read through the pg driver (bulkMessages).
  const webhooks = new WebhookRepository(core.prisma, core.db);
  const deps = {
    messages: new MessageReadRepository(core.prisma),
    mailboxes: core.mailboxes,
    viewer: new MessageViewer(core.dataKeys),
    dataKeys: core.dataKeys,
    bulkMessages: (ids: readonly string[]) => webhooks.messagesForPayloads(ids),
  };
  const onLoop = new PayloadBuilder(deps);
  const offLoop = new PayloadBuilder({ ...deps, contentPool: pool });

  const idle = await held(() => new Promise((r) => setTimeout(r, 500)));
  console.log(`${events.length} message.received events (${raws.length} messages, ${(raws.reduce((s, r) => s + r.length, 0) / 2 ** 20).toFixed(1)} MiB); idle 1 ms timer: longest gap ${idle.maxGapMs.toFixed(1)} ms; loadavg ${loadavg()[0]!.toFixed(1)}`);

  const buildOnLoop = async (): Promise<Buffer[]> =>
    (await onLoop.buildMany(events)).map((b) => {
      if (b.kind !== 'ready') throw new Error(`build gave ${b.kind}`);
      return Buffer.from(JSON.stringify(b.body), 'utf8');
    });
  const encodeOffLoop = async (): Promise<Buffer[]> =>
    (await offLoop.encodeMany(events)).map((b) => {
      if (b.kind !== 'ready') throw new Error(`encode gave ${b.kind}`);
      return b.bytes;
    });
  // Warm-up (JIT, the pool's thread start): not counted.
  await buildOnLoop();
  await encodeOffLoop();

  const gaps: Record<'loop' | 'pool', number[]> = { loop: [], pool: [] };
  const cpus: Record<'loop' | 'pool', number[]> = { loop: [], pool: [] };
  for (let r = 1; r <= rounds; r++) {
    const a = await held(buildOnLoop);
    const b = await held(encodeOffLoop);
    const same = a.value.length === b.value.length && a.value.every((x, i) => x.equals(b.value[i]!));
    if (!same) throw new Error('encodeMany gave other bytes than buildMany + JSON.stringify');
    gaps.loop.push(a.maxGapMs);
    gaps.pool.push(b.maxGapMs);
    cpus.loop.push(a.cpuMs);
    cpus.pool.push(b.cpuMs);
    console.log(
      `round ${r}: event loop: longest hold ${a.maxGapMs.toFixed(1)} ms, main-thread CPU ${a.cpuMs} ms, wall ${a.wallMs.toFixed(0)} ms | ` +
        `encodeMany + worker: longest hold ${b.maxGapMs.toFixed(1)} ms, main-thread CPU ${b.cpuMs} ms, wall ${b.wallMs.toFixed(0)} ms | same bytes; loadavg ${loadavg()[0]!.toFixed(1)}`,
    );
  }
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  console.log(
    `RESULT ${JSON.stringify({
      loop_max_hold_ms: Math.round(median(gaps.loop) * 10) / 10,
      pool_max_hold_ms: Math.round(median(gaps.pool) * 10) / 10,
      loop_main_cpu_ms: median(cpus.loop),
      pool_main_cpu_ms: median(cpus.pool),
      idle_max_gap_ms: Math.round(idle.maxGapMs * 10) / 10,
      events: events.length,
      worker_tasks_per_round: pool.tasks / (rounds + 1),
      rounds,
      loadavg_1m: loadavg()[0],
    })}`,
  );
} finally {
  await pool.close();
  await core.close();
  await db.drop();
}

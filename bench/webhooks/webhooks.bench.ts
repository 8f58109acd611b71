// Webhook delivery throughput and CPU per delivery, with one and then two real `worker`
// processes against one Postgres database, to a local keep-alive receiver.
//   npm run bench -- webhooks [events=4000] [endpoints=8]
//   (= DATABASE_URL=postgresql://root@127.0.0.1:5432/postgres npx tsx bench/webhooks/webhooks.bench.ts …)
// Any WEBHOOK_* variable passes through to the workers (e.g. WEBHOOK_WORKER_CONCURRENCY=32).
//
// Per phase: `endpoints` tenants, each with one endpoint on the receiver, a mailbox and its
// messages (one distinct encrypted message per event, 4 KB of text, stored as ingest stores it:
// with its derived safeHtml/replyText). The workers start and warm
// up on 200 events per worker process (BENCH_WARMUP_PER_WORKER; each process JITs its own code, so
// two workers get twice the warm-up of one); then all `events` message.received events are committed in ONE
// transaction and the clock starts after that commit. Then, as an emitting room does,
// notifyEventsCommitted runs (the webhooks module's hook: one NOTIFY that wakes the workers'
// pumps). The clock stops when every delivery is recorded `delivered`.
// CPU per delivery = (worker processes + their Postgres backends) CPU time from the commit until
// the work is done (deliveries stored, any dispatch job consumed), from /proc/<pid>/stat;
// backends are found through pg_stat_activity by application_name. The receiver counts
// webhook-ids, so a delivery claimed twice shows up as a duplicate, and the deliveries of each
// worker process (by the socket a POST came on): `two_workers_delivery_shares` in RESULT.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createCore } from '../../src/bootstrap/core.js';
import { webhooksModule } from '../../src/bootstrap/webhooks.module.js';
import { loadConfig } from '../../src/config/config.js';
import { notifyEventsCommitted, OutboxService } from '../../src/events/outbox.service.js';
import { encodeMessageContent, MAILBOX_ADDRESS_AAD, MESSAGE_CONTENT_AAD, type MessageContent } from '../../src/mailboxes/message-content.js';
import { extractReply } from '../../src/messages/reply-extraction.js';
import { sanitizeEmailHtml } from '../../src/messages/safe-html.js';
import { newId } from '../../src/storage/ids.js';
import { OutboxRepository } from '../../src/storage/outbox.repository.js';
import { ENDPOINT_SECRET_AAD } from '../../src/webhooks/webhook-endpoint.service.js';
import { generateWebhookSecret } from '../../src/webhooks/webhook-secret.js';
import { createTestDatabase } from '../../test/helpers/postgres.js';
import { requireBenchPostgres } from '../ingest/bench-support.js';

const EVENTS = Number(process.argv[2] ?? 4000);
const ENDPOINTS = Number(process.argv[3] ?? 8);
const WARMUP_PER_WORKER = Number(process.env.BENCH_WARMUP_PER_WORKER ?? 200);
if (!Number.isInteger(WARMUP_PER_WORKER) || WARMUP_PER_WORKER < 1) {
  console.error(`BENCH_WARMUP_PER_WORKER must be a whole number ≥ 1 (got ${JSON.stringify(process.env.BENCH_WARMUP_PER_WORKER)})`);
  process.exit(2);
}
const APP_NAME = 'mbc-bench-webhook-worker';
const root = fileURLToPath(new URL('../..', import.meta.url));
requireBenchPostgres();
const TICKS = 100; // getconf CLK_TCK on Linux

const db = await createTestDatabase();
const workerUrl = `${db.url}${db.url.includes('?') ? '&' : '?'}application_name=${APP_NAME}`;
const env: Record<string, string> = {
  NODE_ENV: 'test',
  DATABASE_URL: workerUrl,
  ENCRYPTION_KEYS: `1:${randomBytes(32).toString('base64')}`,
  WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
  LOG_LEVEL: 'info',
  PORT: '0',
  ...Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('WEBHOOK_') && k !== 'WEBHOOK_ALLOWED_HOSTS' && v !== undefined)) as Record<string, string>,
};
const core = await createCore(loadConfig({ ...env, DATABASE_URL: db.url, LOG_LEVEL: 'warn' }), { command: 'bench' });
// As in every service process: the webhooks module attaches the events-committed hook (one
// NOTIFY per commit wakes the workers' pumps) to this process's job queue.
webhooksModule(core);
const admin = new pg.Client({ connectionString: db.url });
admin.on('error', () => undefined);
await admin.connect();

// ------------------------------------------------------------------ receiver (keep-alive)
const seen = new Map<string, number>();
/** POSTs per client port (each worker's keep-alive sockets): which worker delivered how much. */
const byPort = new Map<number, number>();
const receiver = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const id = String(req.headers['webhook-id']);
    seen.set(id, (seen.get(id) ?? 0) + 1);
    const port = req.socket.remotePort ?? 0;
    byPort.set(port, (byPort.get(port) ?? 0) + 1);
    res.statusCode = 204;
    res.end();
  });
});
receiver.keepAliveTimeout = 30_000;
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
const receiverPort = (receiver.address() as AddressInfo).port;
const receiverUrl = `http://127.0.0.1:${receiverPort}`;

/**
 * Deliveries per worker process: the receiver's count per client port, each port mapped to the
 * process holding that socket (/proc/<pid>/fd → socket inode → /proc/net/tcp local port). Read
 * while the workers still hold their keep-alive sockets.
 */
function deliveriesPerWorker(pids: number[]): number[] {
  const tryRead = <T>(read: () => T, fallback: T): T => {
    try {
      return read();
    } catch {
      return fallback; // a table or a descriptor that went away
    }
  };
  const portOfInode = new Map<string, number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of tryRead(() => readFileSync(table, 'utf8'), '').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // Only sockets connected to the receiver (a local port can serve other destinations too).
      if (cols.length >= 10 && parseInt(cols[2]!.split(':')[1]!, 16) === receiverPort) portOfInode.set(cols[9]!, parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  return pids.map((pid) => {
    let n = 0;
    for (const fd of tryRead(() => readdirSync(`/proc/${pid}/fd`), [] as string[])) {
      const inode = /^socket:\[(\d+)\]$/.exec(tryRead(() => readlinkSync(`/proc/${pid}/fd/${fd}`), ''))?.[1];
      const port = inode ? portOfInode.get(inode) : undefined;
      if (port !== undefined) n += byPort.get(port) ?? 0;
    }
    return n;
  });
}

// ------------------------------------------------------------------ CPU accounting
function cpuMsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS; // utime + stime
  } catch {
    return undefined;
  }
}

/** CPU of a set of processes over time; processes that appear later count from their start. */
class CpuMeter {
  private readonly start = new Map<number, number>();
  private readonly last = new Map<number, number>();
  constructor(private readonly fromZero: boolean) {}
  sample(pids: Iterable<number>): void {
    for (const pid of pids) {
      const ms = cpuMsOf(pid);
      if (ms === undefined) continue;
      if (!this.start.has(pid)) this.start.set(pid, this.fromZero ? 0 : ms);
      this.last.set(pid, ms);
    }
  }
  /** Marks the start: everything seen so far counts from now. */
  baseline(pids: Iterable<number>): void {
    this.sample(pids);
    for (const [pid, ms] of this.last) this.start.set(pid, ms);
  }
  total(): number {
    let sum = 0;
    for (const [pid, ms] of this.last) sum += ms - (this.start.get(pid) ?? ms);
    return sum;
  }
}

async function backendPids(): Promise<number[]> {
  const r = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2', [db.name, APP_NAME]);
  return r.rows.map((x) => x.pid);
}

// ------------------------------------------------------------------ fixtures
interface Fixture {
  tenantIds: string[];
  mailboxIds: string[];
  messageIds: string[][];
}

async function seed(phase: string, perEndpoint: number): Promise<Fixture> {
  const fx: Fixture = { tenantIds: [], mailboxIds: [], messageIds: [] };
  for (let e = 0; e < ENDPOINTS; e++) {
    const tenant = await core.tenants.create({ name: `bench ${phase} ${e}` });
    const endpointId = newId('webhookEndpoint');
    const secretEnc = await core.dataKeys.encryptFor({ type: 'tenant', id: tenant.id }, generateWebhookSecret(), ENDPOINT_SECRET_AAD(endpointId));
    await core.prisma.webhookEndpoint.create({ data: { id: endpointId, tenantId: tenant.id, url: `${receiverUrl}/hooks/${phase}/${e}`, secretEnc: new Uint8Array(secretEnc) } });
    const mailboxId = newId('mailbox');
    const address = `support-${e}-${phase}@example.com`;
    await core.prisma.mailbox.create({
      data: {
        id: mailboxId,
        tenantId: tenant.id,
        provider: 'google',
        addressEnc: new Uint8Array(await core.dataKeys.encryptFor({ type: 'mailbox', id: mailboxId }, address, MAILBOX_ADDRESS_AAD(mailboxId))),
        addressIndex: core.blindIndex.emailIndex(address),
        // Not synced (no provider is configured here): the workers' CPU is webhook work only.
        // Payloads are still built (reauth_required mailboxes keep delivering their events).
        status: 'reauth_required',
      },
    });
    const ids: string[] = [];
    const rows = [];
    for (let i = 0; i < perEndpoint; i++) {
      const id = newId('message');
      const content: MessageContent = {
        v: 1,
        internetMessageId: `<${id}@mail.example.com>`,
        messageIdSynthetic: false,
        inReplyTo: null,
        references: [],
        from: { name: 'Ada Customer', address: 'ada@customer.example' },
        to: [{ name: null, address }],
        cc: [],
        bcc: [],
        replyTo: [],
        subject: `Order question ${i}`,
        date: new Date().toISOString(),
        text: `Message ${i}. ${'lorem ipsum dolor sit amet '.repeat(150)}`,
        html: null,
        headers: {},
        autoReplyReason: null,
        bounceReason: null,
      };
      // As ingest stores it (ingest/derived-content.ts): the display forms are computed once when
      // the message is stored, so building a webhook body does not compute them again.
      const reply = extractReply(content.text, content.subject);
      Object.assign(content, { safeHtml: sanitizeEmailHtml(content.html), replyText: reply.replyText, signature: reply.signature, forwarded: reply.forwarded });
      rows.push({
        id,
        tenantId: tenant.id,
        mailboxId,
        providerMessageId: `p-${id}`,
        providerThreadId: `t-${id}`,
        threadKey: `thr_${id}`,
        receivedAt: new Date(),
        sizeBytes: 4321,
        contentEnc: new Uint8Array(await core.dataKeys.encryptFor({ type: 'mailbox', id: mailboxId }, encodeMessageContent(content), MESSAGE_CONTENT_AAD(id))),
      });
      ids.push(id);
    }
    for (let i = 0; i < rows.length; i += 500) await core.prisma.message.createMany({ data: rows.slice(i, i + 500) });
    fx.tenantIds.push(tenant.id);
    fx.mailboxIds.push(mailboxId);
    fx.messageIds.push(ids);
  }
  return fx;
}

const outbox = new OutboxService({ repo: new OutboxRepository(core.prisma), dataKeys: core.dataKeys, clock: core.clock });

/** Commits `count` message.received events (round-robin over the endpoints' tenants) in one transaction. */
async function commitEvents(fx: Fixture, from: number, count: number): Promise<string[]> {
  const appended = await core.prisma.$transaction(
    async (tx) => {
      const ids: string[] = [];
      for (let i = from; i < from + count; i++) {
        const e = i % ENDPOINTS;
        const messageId = fx.messageIds[e]![Math.floor(i / ENDPOINTS)]!;
        ids.push((await outbox.appendEvent(tx, { tenantId: fx.tenantIds[e]!, mailboxId: fx.mailboxIds[e]!, type: 'message.received', refs: { messageId } })).id);
      }
      return ids;
    },
    { timeout: 300_000, maxWait: 30_000 },
  );
  return appended;
}

async function delivered(fx: Fixture): Promise<number> {
  const r = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE "tenantId" = ANY($1) AND status = 'delivered'`, [fx.tenantIds]);
  return r.rows[0]!.n;
}

/** Deliveries of the phase with more than one attempt row: a delivery claimed and sent twice (every receiver answer is a 204). */
async function attemptedTwice(fx: Fixture): Promise<number> {
  const r = await admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT a."deliveryId" FROM delivery_attempts a JOIN webhook_deliveries d ON d.id = a."deliveryId"
      WHERE d."tenantId" = ANY($1) GROUP BY a."deliveryId" HAVING count(*) > 1) x`,
    [fx.tenantIds],
  );
  return r.rows[0]!.n;
}

async function dispatchJobsLeft(): Promise<number> {
  const r = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'webhooks.dispatch' AND state IN ('created', 'retry', 'active')`);
  return r.rows[0]!.n;
}

async function commits(): Promise<number> {
  const r = await admin.query<{ n: string }>('SELECT xact_commit AS n FROM pg_stat_database WHERE datname = $1', [db.name]);
  return Number(r.rows[0]!.n);
}

function startWorker(): Promise<ChildProcess> {
  // BENCH_WORKER_NODE_ARGS: extra node flags for the workers (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
  const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, 'bin/mailbox-connector.js', 'worker'], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      if (out.length < 100_000) out += b.toString();
      if (out.includes('workers started')) resolve(child);
      // Warnings and errors from the workers are worth seeing.
      for (const line of b.toString().split('\n')) if (/"level":(40|50|60)/.test(line)) process.stderr.write(`worker: ${line.slice(0, 400)}\n`);
    });
    child.stderr!.on('data', (b: Buffer) => process.stderr.write(b));
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitDelivered(fx: Fixture, n: number, onPoll?: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    if ((await delivered(fx)) >= n) return;
    await onPoll?.();
    if (Date.now() > deadline) throw new Error(`only ${await delivered(fx)} of ${n} delivered after 10 minutes`);
    await sleep(20);
  }
}

interface PhaseResult {
  workers: number;
  deliveriesPerS: number;
  cpuMsPerDelivery: number;
  workerCpuMsPerDelivery: number;
  pgCpuMsPerDelivery: number;
  duplicates: number;
  /** Deliveries with more than one attempt row (a second claim of a delivered one). */
  duplicateClaims: number;
  commitsPerDelivery: number;
  seconds: number;
  /** CPU ms per second of the idle workers and their backends, measured before the run. */
  idleCpuMsPerS: number;
  /** This process (receiver, driver, its polling) per delivery: not the connector's, but it shares the cores. */
  benchCpuMsPerDelivery: number;
  /** Share of the deliveries each worker process made (by the socket the receiver got them on). */
  deliveryShares: number[];
}

async function phase(workers: number): Promise<PhaseResult> {
  const warmup = WARMUP_PER_WORKER * workers;
  const perEndpoint = Math.ceil((EVENTS + warmup) / ENDPOINTS);
  const fx = await seed(`w${workers}`, perEndpoint);
  seen.clear();
  const children = await Promise.all(Array.from({ length: workers }, () => startWorker()));
  try {
    // Warm-up (JIT, connections, keep-alive sockets), not measured.
    const warm = await commitEvents(fx, 0, warmup);
    await notifyEventsCommitted(core.jobs, warm);
    await waitDelivered(fx, warmup);
    while ((await dispatchJobsLeft()) > 0) await sleep(50);
    await sleep(300);
    seen.clear();
    byPort.clear();
    // Idle baseline (timers, job-queue polling, heartbeats): what the workers cost doing nothing.
    const idleWorker = new CpuMeter(false);
    const idlePg = new CpuMeter(false);
    idleWorker.baseline(children.map((c) => c.pid!));
    idlePg.baseline(await backendPids());
    const idleStart = performance.now();
    await sleep(2_000);
    idleWorker.sample(children.map((c) => c.pid!));
    idlePg.sample(await backendPids());
    const idleCpuMsPerS = ((idleWorker.total() + idlePg.total()) * 1000) / (performance.now() - idleStart);

    const workerCpu = new CpuMeter(false);
    const pgCpu = new CpuMeter(true);
    const ids = await commitEvents(fx, warmup, EVENTS);
    // ---- clock starts: every event is committed
    const started = performance.now();
    const childPids = children.map((c) => c.pid!);
    workerCpu.baseline(childPids);
    const pgBefore = await backendPids();
    pgCpu.baseline(pgBefore);
    const commitsBefore = await commits();
    const benchCpuBefore = process.cpuUsage();
    const notified = notifyEventsCommitted(core.jobs, ids);
    const poll = async () => {
      workerCpu.sample(childPids);
      pgCpu.sample(await backendPids());
    };
    await waitDelivered(fx, warmup + EVENTS, poll);
    const seconds = (performance.now() - started) / 1000;
    const perWorker = deliveriesPerWorker(childPids);
    // ---- clock stops; CPU keeps counting until the dispatch jobs (one per event) are consumed
    await notified;
    while ((await dispatchJobsLeft()) > 0) {
      await poll();
      await sleep(20);
    }
    await poll();
    const benchCpu = process.cpuUsage(benchCpuBefore);
    const commitsAfter = await commits();
    const duplicates = [...seen.values()].filter((n) => n > 1).length;
    const duplicateClaims = await attemptedTwice(fx);
    const received = seen.size;
    if (received !== EVENTS) console.log(`  note: receiver saw ${received} distinct webhook-ids for ${EVENTS} events`);
    const w = workerCpu.total();
    const p = pgCpu.total();
    return {
      workers,
      deliveriesPerS: EVENTS / seconds,
      cpuMsPerDelivery: (w + p) / EVENTS,
      workerCpuMsPerDelivery: w / EVENTS,
      pgCpuMsPerDelivery: p / EVENTS,
      duplicates,
      duplicateClaims,
      commitsPerDelivery: (commitsAfter - commitsBefore) / EVENTS,
      seconds,
      idleCpuMsPerS,
      benchCpuMsPerDelivery: (benchCpu.user + benchCpu.system) / 1000 / EVENTS,
      deliveryShares: perWorker.map((n) => n / EVENTS),
    };
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
  }
}

function show(r: PhaseResult): void {
  console.log(
    `${r.workers} worker process${r.workers > 1 ? 'es' : ''}: ${r.deliveriesPerS.toFixed(0)} deliveries/s (${EVENTS} in ${r.seconds.toFixed(2)} s); ` +
      `CPU ${r.cpuMsPerDelivery.toFixed(3)} ms/delivery (workers ${r.workerCpuMsPerDelivery.toFixed(3)} + Postgres backends ${r.pgCpuMsPerDelivery.toFixed(3)}); ` +
      `duplicate deliveries ${r.duplicates} (deliveries attempted twice: ${r.duplicateClaims}); ~${r.commitsPerDelivery.toFixed(2)} transactions/delivery (pg_stat_database, incl. the bench's polling); ` +
      `idle workers + backends ${r.idleCpuMsPerS.toFixed(1)} CPU ms/s (${((r.idleCpuMsPerS * r.seconds) / EVENTS).toFixed(3)} ms/delivery of the figure above); ` +
      `bench process (receiver, driver) ${r.benchCpuMsPerDelivery.toFixed(3)} ms/delivery` +
      (r.workers > 1 ? `; deliveries per worker ${r.deliveryShares.map((x) => `${(x * 100).toFixed(0)} %`).join(' / ')}` : ''),
  );
  // What this machine allows at best: every core busy with this work only.
  const cores = availableParallelism();
  console.log(
    `  bound on this machine: ${cores} cores / (connector ${r.cpuMsPerDelivery.toFixed(3)} + bench process ${r.benchCpuMsPerDelivery.toFixed(3)} ms) = ` +
      `${Math.round((cores * 1000) / (r.cpuMsPerDelivery + r.benchCpuMsPerDelivery))} deliveries/s with nothing else running`,
  );
}

try {
  const cfg = loadConfig(env).webhooks;
  console.log(
    `webhooks bench: ${EVENTS} message.received events over ${ENDPOINTS} endpoints (one tenant each), keep-alive receiver (204), ` +
      `per-endpoint limit ${cfg.endpointConcurrency}, ${cfg.workerConcurrency} attempts per worker; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
  const one = await phase(1);
  show(one);
  const two = await phase(2);
  show(two);
  const extraPct = (two.cpuMsPerDelivery / one.cpuMsPerDelivery - 1) * 100;
  console.log(
    `CPU per delivery, 1 worker → 2 workers: ${one.cpuMsPerDelivery.toFixed(3)} → ${two.cpuMsPerDelivery.toFixed(3)} ms (${extraPct >= 0 ? '+' : ''}${extraPct.toFixed(1)} %; ` +
      `workers ${one.workerCpuMsPerDelivery.toFixed(3)} → ${two.workerCpuMsPerDelivery.toFixed(3)}, Postgres ${one.pgCpuMsPerDelivery.toFixed(3)} → ${two.pgCpuMsPerDelivery.toFixed(3)}); ` +
      `transactions per delivery ${one.commitsPerDelivery.toFixed(2)} → ${two.commitsPerDelivery.toFixed(2)}`,
  );
  console.log(`load average after: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  const ms3 = (x: number) => Number(x.toFixed(3));
  console.log(
    `RESULT ${JSON.stringify({
      deliveries_per_s: Math.round(one.deliveriesPerS),
      cpu_ms_per_delivery: ms3(one.cpuMsPerDelivery),
      two_workers_deliveries_per_s: Math.round(two.deliveriesPerS),
      two_workers_cpu_ms_per_delivery: ms3(two.cpuMsPerDelivery),
      one_worker_cpu_ms_per_delivery: ms3(one.cpuMsPerDelivery),
      two_workers_extra_cpu_pct: Math.round(extraPct * 10) / 10,
      worker_cpu_ms_per_delivery: [ms3(one.workerCpuMsPerDelivery), ms3(two.workerCpuMsPerDelivery)],
      pg_cpu_ms_per_delivery: [ms3(one.pgCpuMsPerDelivery), ms3(two.pgCpuMsPerDelivery)],
      transactions_per_delivery: [ms3(one.commitsPerDelivery), ms3(two.commitsPerDelivery)],
      bench_process_cpu_ms_per_delivery: [ms3(one.benchCpuMsPerDelivery), ms3(two.benchCpuMsPerDelivery)],
      two_workers_delivery_shares: two.deliveryShares.map((x) => Number(x.toFixed(3))),
      duplicates: one.duplicates + two.duplicates,
      duplicate_claims: one.duplicateClaims + two.duplicateClaims,
    })}`,
  );
} finally {
  await new Promise<void>((r) => {
    receiver.closeAllConnections();
    receiver.close(() => r());
  });
  await admin.end();
  await core.close();
  await db.drop();
}

// Idle cost of connected mailboxes (issue 12 target 5).
//   npm run bench -- idle [mailboxes=2000] [idleSeconds=60] [--steps=2]
//   (= DATABASE_URL=postgresql://root@127.0.0.1:5432/postgres npx tsx bench/idle/idle.bench.ts …)
//
// A real `serve` process (HTTP + workers, SANDBOX=1, defaults otherwise) on a fresh Postgres
// database, with the Google stand-in in this process (SANDBOX_GOOGLE_URL; Pub/Sub pushes go to the
// service). Gmail mailboxes only: the Microsoft stand-in cannot run outside the service without
// its https authority, and inside it its memory would count as the service's.
//
// The mailboxes are connected in `steps` equal steps (0 → N/steps → … → N), each through the
// hosted consent flow and backfilled (empty), each with a Gmail watch (healthy push). At 0 and
// after every step the service idles for `idleSeconds` twice:
//  - "fresh": the process that ran the connect flows, 30 s after the last one;
//  - "steady": a NEW service process (the old one stopped with SIGTERM) after the mailboxes'
//    last-sync and last-push times were spread over the past hour in SQL (as an hour of idling
//    leaves them), so the hourly safety-net polls of healthy mailboxes run at their steady rate
//    (N per hour, each a real sync with a token refresh) — a just-connected process has none due.
//    This process never ran a connect flow: what it holds per mailbox is what any process holds.
// Per window: CPU of the service process and its Postgres backends (/proc, every backend of the
// database seen during the window), RSS (median of one sample per second), queued jobs at the
// start and end, then live memory after a full GC (bench/idle/gc-probe.mjs, preloaded with
// --expose-gc: heap used, external).
// kb_per_mailbox is the SLOPE between the last two steps of the steady windows,
// (RSS(N) − RSS(N − N/steps)) ÷ (N/steps): the marginal memory of one more connected idle
// mailbox, without what is paid once (code compiled on the connect and sync paths, pools). The
// same slope is printed for the fresh windows and for live heap after GC.
// BENCH_HEAP_SNAPSHOTS=<dir>: the probe also writes a heap snapshot per window into <dir>; compare
// two with `node bench/idle/heap-diff.mjs <a>.heapsnapshot <b>.heapsnapshot <mailboxes between>`.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createCore } from '../../src/bootstrap/core.js';
import { loadConfig } from '../../src/config/config.js';
import { approveGoogleConsent } from '../../src/sandbox/google/google-consent.client.js';
import { startGoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { createTestDatabase } from '../../test/helpers/postgres.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flag = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const MAILBOXES = Number(positional[0] ?? 2000);
const IDLE_SECONDS = Number(positional[1] ?? 60);
const STEPS = Number(flag('steps') ?? 2);
if (!(MAILBOXES > 0 && IDLE_SECONDS > 0 && Number.isInteger(STEPS) && STEPS >= 1)) {
  console.error('usage: idle [mailboxes=2000] [idleSeconds=60] [--steps=2]');
  process.exit(2);
}
const TICKS = 100;
const APP_NAME = 'mbc-bench-idle';
const BIN = fileURLToPath(new URL('../../bin/mailbox-connector.js', import.meta.url));
const PROBE = fileURLToPath(new URL('./gc-probe.mjs', import.meta.url));
if (!process.env.DATABASE_URL) {
  console.error('set DATABASE_URL (a Postgres server; a fresh database is created and dropped)');
  process.exit(1);
}
process.env.TEST_ADMIN_DATABASE_URL ??= process.env.DATABASE_URL;
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

const db = await createTestDatabase();
const gs = await startGoogleSandbox();
const port = await new Promise<number>((resolve) => {
  const s = http.createServer();
  s.listen(0, '127.0.0.1', () => {
    const p = (s.address() as AddressInfo).port;
    s.close(() => resolve(p));
  });
});
const baseUrl = `http://127.0.0.1:${port}`;
const env = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'warn',
  PORT: String(port),
  HOST: '127.0.0.1',
  PUBLIC_URL: baseUrl,
  DATABASE_URL: `${db.url}?application_name=${APP_NAME}`,
  ENCRYPTION_KEYS: `1:${randomBytes(32).toString('base64')}`,
  SANDBOX: '1',
  SANDBOX_GOOGLE_URL: gs.url,
  BACKFILL_DAYS: '1',
  // Thousands of connects from one address and key: the abuse limits (docs/security.md) would stop them.
  RATE_LIMIT_CONNECT_SESSIONS: '1000000/1m',
  RATE_LIMIT_OAUTH_CALLBACKS: '1000000/1m',
  RATE_LIMIT_PUSH: '1000000/1m',
};
// The bench's own connection (tenant and key creation, then closed): not counted.
{
  const core = await createCore(loadConfig({ ...env, DATABASE_URL: db.url }), { command: 'bench' });
  await core.close();
}
const admin = new pg.Client({ connectionString: db.url });
admin.on('error', () => undefined);
await admin.connect();

// ------------------------------------------------------------------ the service process
interface Probe {
  rssKb: number;
  heapUsedKb: number;
  externalKb: number;
  arrayBuffersKb: number;
  snapshot?: string;
}
let child: ChildProcess;
let probeWaiter: ((p: Probe) => void) | undefined;
async function startService(): Promise<void> {
  child = spawn(process.execPath, ['--expose-gc', '--import', PROBE, BIN, 'serve'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let buf = '';
  child.stderr!.on('data', (b: Buffer) => {
    buf += b.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('GCPROBE ')) probeWaiter?.(JSON.parse(line.slice(8)) as Probe);
      else process.stderr.write(`service: ${line}\n`);
    }
  });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${baseUrl}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (i > 600 || child.exitCode !== null) throw new Error('serve did not start');
    await sleep(100);
  }
}
async function stopService(): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}
/** Full GC in the service, then its memory (and a heap snapshot with BENCH_HEAP_SNAPSHOTS). */
async function probe(): Promise<Probe> {
  const got = new Promise<Probe>((resolve) => (probeWaiter = resolve));
  child.kill('SIGUSR2');
  const p = await Promise.race([got, sleep(300_000).then(() => undefined)]);
  probeWaiter = undefined;
  if (!p) throw new Error('the service did not answer the GC probe');
  if (p.snapshot) console.log(`  heap snapshot: ${p.snapshot}`);
  return p;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
function procCpuMs(pid: number): number | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS;
  } catch {
    return undefined;
  }
}
function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}
async function backends(): Promise<number[]> {
  const r = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2', [db.name, APP_NAME]);
  return r.rows.map((x) => x.pid);
}
async function queued(): Promise<number> {
  const r = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM pgboss.job WHERE state < 'active'`);
  return Number(r.rows[0]!.n);
}
async function syncsSince(t: Date): Promise<number> {
  const r = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM pgboss.job WHERE name = 'sync.mailbox' AND started_on >= $1`, [t]);
  return Number(r.rows[0]!.n);
}

interface Window {
  label: string;
  mailboxes: number;
  cpuPct: number;
  servicePct: number;
  backendPct: number;
  queuedStart: number;
  queuedEnd: number;
  syncs: number;
  rssKb: number;
  gc: Probe;
}
const windows: Window[] = [];

/** Idles `seconds`: CPU of the service and its backends (% of one core), median RSS, backlog; then the GC probe. */
async function idle(label: string, mailboxes: number, seconds: number): Promise<Window> {
  const b0 = new Map<number, number>();
  for (const p of await backends()) b0.set(p, procCpuMs(p) ?? 0);
  // Every backend seen during the window, at its last sample (pooled connections come and go).
  const seen = new Map(b0);
  const s0 = procCpuMs(child.pid!)!;
  const startedAt = new Date();
  const queuedStart = await queued();
  // RSS moves with garbage collection: the median of one sample per second over the window.
  const rss: number[] = [];
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    rss.push(rssKb(child.pid!));
    for (const p of await backends()) {
      const ms = procCpuMs(p);
      if (ms !== undefined) seen.set(p, ms);
    }
    await sleep(Math.min(1000, Math.max(0, end - Date.now())));
  }
  rss.sort((a, b) => a - b);
  const s1 = procCpuMs(child.pid!)!;
  for (const p of await backends()) {
    const ms = procCpuMs(p);
    if (ms !== undefined) seen.set(p, ms);
  }
  let backendMs = 0;
  // A backend that started during the window counts from zero.
  for (const [p, ms] of seen) backendMs += ms - (b0.get(p) ?? 0);
  const queuedEnd = await queued();
  const syncs = await syncsSince(startedAt);
  const servicePct = ((s1 - s0) / (seconds * 1000)) * 100;
  const backendPct = (backendMs / (seconds * 1000)) * 100;
  const gc = await probe();
  const w = { label, mailboxes, cpuPct: servicePct + backendPct, servicePct, backendPct, queuedStart, queuedEnd, syncs, rssKb: rss[Math.floor(rss.length / 2)]!, gc };
  windows.push(w);
  console.log(
    `${label.padEnd(6)} ${String(mailboxes).padStart(6)} mailboxes: RSS ${(w.rssKb / 1024).toFixed(1)} MiB (after GC ${(gc.rssKb / 1024).toFixed(1)} MiB, heap ${(gc.heapUsedKb / 1024).toFixed(1)} MiB, external ${(gc.externalKb / 1024).toFixed(1)} MiB); ` +
      `idle CPU ${w.cpuPct.toFixed(2)}% of a core (service ${servicePct.toFixed(2)}%, Postgres ${backendPct.toFixed(2)}%); ${syncs} syncs; queued jobs ${queuedStart} → ${queuedEnd}; loadavg ${loadavg()}`,
  );
  return w;
}

// ------------------------------------------------------------------ connect
let apiKey = '';
async function connect(email: string): Promise<void> {
  const res = await fetch(`${baseUrl}/v1/connect-sessions`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ provider: 'google' }) });
  const session = (await res.json()) as { url: string };
  if (res.status !== 201) throw new Error(`session: ${res.status}`);
  const start = await fetch(`${session.url}/start?provider=google`, { redirect: 'manual' });
  const cookie = (start.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const back = await approveGoogleConsent(start.headers.get('location')!, { email });
  const done = await fetch(back, { redirect: 'manual', headers: { cookie } });
  await done.text();
  if (done.status >= 400) throw new Error(`callback: ${done.status}`);
}
let connected = 0;
async function connectUpTo(total: number): Promise<void> {
  const t0 = Date.now();
  let retries = 0;
  await Promise.all(
    Array.from({ length: 3 }, async () => {
      while (connected < total) {
        const email = `idle${connected++}@acme.test`;
        gs.createUser(email);
        for (let attempt = 1; ; attempt++) {
          try {
            await connect(email);
            break;
          } catch (err) {
            if (attempt >= 5) throw err;
            retries++;
            await sleep(500 * attempt);
          }
        }
      }
    }),
  );
  for (;;) {
    const r = await admin.query<{ ready: string }>(`SELECT count(*) AS ready FROM mailboxes WHERE "backfillCompletedAt" IS NOT NULL AND "watchExpiresAt" IS NOT NULL`);
    if (Number(r.rows[0]!.ready) >= total) break;
    if (Date.now() - t0 > 60 * 60_000) throw new Error(`only ${r.rows[0]!.ready}/${total} mailboxes synced`);
    await sleep(1000);
  }
  console.log(`connected ${total} Gmail mailboxes in all (${retries} connect retries), backfilled and watched; this step took ${((Date.now() - t0) / 1000).toFixed(1)} s; loadavg ${loadavg()}`);
}

/** As an hour of idling leaves them: last sync and last push spread evenly over the past hour. */
async function ageOneHour(): Promise<void> {
  const interval = loadConfig(env).sync.pollIntervalSeconds;
  // The healthy-push safety poll comes 12 poll intervals after the last sync or push (1 h by default).
  await admin.query(
    `UPDATE mailboxes SET "lastSyncedAt" = now() - random() * make_interval(secs => $1), "lastPushAt" = NULL, "updatedAt" = now() - make_interval(secs => $1)`,
    [12 * interval],
  );
}

// ------------------------------------------------------------------ run
console.log(`idle bench: ${MAILBOXES} Gmail mailboxes in ${STEPS} step(s), ${IDLE_SECONDS} s windows; loadavg ${loadavg()}`);
await startService();
await sleep(10_000); // startup settles
await idle('fresh', 0, IDLE_SECONDS);
{
  const core = await createCore(loadConfig({ ...env, DATABASE_URL: db.url, LOG_LEVEL: 'error' }), { command: 'bench' });
  const tenant = await core.tenantService.create({ name: 'idle bench' });
  apiKey = (await core.apiKeys.issue({ tenantId: tenant.id })).key;
  await core.close();
}
await stopService();
await startService();
await sleep(30_000);
await idle('steady', 0, IDLE_SECONDS);
for (let step = 1; step <= STEPS; step++) {
  await connectUpTo(Math.round((MAILBOXES * step) / STEPS));
  await sleep(30_000); // the connect traffic settles
  await idle('fresh', connected, IDLE_SECONDS);
  await stopService();
  await ageOneHour();
  await startService();
  await sleep(30_000); // the start (reconcile, first poll runs) settles
  await idle('steady', connected, IDLE_SECONDS);
}
console.log(`watches: ${gs.watches().length}`);
await stopService();
await admin.end();
await gs.close();
await db.drop();

/** Per-mailbox slope of `f` between the last two windows of `label`. */
function slope(label: string, f: (w: Window) => number): number {
  const ws = windows.filter((w) => w.label === label);
  const [a, b] = ws.slice(-2) as [Window, Window];
  return (f(b) - f(a)) / (b.mailboxes - a.mailboxes);
}
const r2 = (x: number) => Math.round(x * 100) / 100;
const steady = windows.filter((w) => w.label === 'steady').at(-1)!;
const fresh = windows.filter((w) => w.label === 'fresh').at(-1)!;
const steady0 = windows.find((w) => w.label === 'steady' && w.mailboxes === 0)!;
const lastStep = windows.filter((w) => w.label === 'steady').at(-2)!.mailboxes;
console.log(
  `per mailbox, slope ${lastStep} → ${MAILBOXES}: steady RSS ${slope('steady', (w) => w.rssKb).toFixed(2)} KB, after GC ${slope('steady', (w) => w.gc.rssKb).toFixed(2)} KB, live heap ${slope('steady', (w) => w.gc.heapUsedKb).toFixed(2)} KB, external ${slope('steady', (w) => w.gc.externalKb).toFixed(2)} KB; ` +
    `fresh (the connecting process) RSS ${slope('fresh', (w) => w.rssKb).toFixed(2)} KB, live heap ${slope('fresh', (w) => w.gc.heapUsedKb).toFixed(2)} KB`,
);
console.log(
  `RESULT ${JSON.stringify({
    kb_per_mailbox: r2(slope('steady', (w) => w.rssKb)),
    cpu_pct: r2(steady.cpuPct),
    cpu_pct_no_mailboxes: r2(steady0.cpuPct),
    cpu_pct_fresh: r2(fresh.cpuPct),
    heap_kb_per_mailbox: r2(slope('steady', (w) => w.gc.heapUsedKb)),
    rss_after_gc_kb_per_mailbox: r2(slope('steady', (w) => w.gc.rssKb)),
    fresh_kb_per_mailbox: r2(slope('fresh', (w) => w.rssKb)),
    fresh_heap_kb_per_mailbox: r2(slope('fresh', (w) => w.gc.heapUsedKb)),
    slope_from: lastStep,
    mailboxes: MAILBOXES,
    steady_syncs_per_min: r2((steady.syncs * 60) / IDLE_SECONDS),
    queued_start: steady.queuedStart,
    queued_end: steady.queuedEnd,
  })}`,
);
process.exit(0);

// Idle cost of connected mailboxes (issue 12 target 5).
//   npm run bench -- idle [mailboxes=2000] [idleSeconds=60] [--steps=2] [--unhealthy=10] [--connects=3] [--settle=30]
//   (= DATABASE_URL=postgresql://root@127.0.0.1:5432/postgres npx tsx bench/idle/idle.bench.ts …)
//   BENCH_BASELINE=<another checkout> also runs that checkout's service in every steady state,
//   back to back with this one (before/after in one run; see below).
//
// A real `serve` process (HTTP + workers, SANDBOX=1, defaults otherwise) on a fresh Postgres
// database, with the Google stand-in in this process (SANDBOX_GOOGLE_URL; Pub/Sub pushes go to the
// service). Gmail mailboxes only: the Microsoft stand-in cannot run outside the service without
// its https authority, and inside it its memory would count as the service's.
//
// The mailboxes are connected in `steps` equal steps (0 → N/steps → … → N), each through the
// hosted consent flow and backfilled (empty), each with a Gmail watch (healthy push). At 0 and
// after every step the service idles for `idleSeconds`:
//  - "fresh": the process that ran the connect flows, 30 s after the last one;
//  - "steady": a NEW service process (the old one stopped with SIGTERM) after the mailboxes'
//    sync state was set in SQL to what a day of idling leaves: last sync spread evenly over the
//    past 0.9 day (the last daily watch renewal, each a sync), next renewal spread over the next
//    0.95 day, no push — so the renewals run at their steady rate (N per ~0.95 day) and nothing
//    else syncs a healthy mailbox. `--unhealthy=K` of them (default 10) have failing push (a sync
//    found unannounced mail, `pushMissedAt`, no push since) with last syncs spread over the past
//    poll interval: those ARE polled, every POLL_INTERVAL_SECONDS (jittered). Each window prints
//    the syncs started by reason and how many polls hit healthy vs unhealthy mailboxes.
//  - "baseline" (BENCH_BASELINE set): the other checkout's service in the state ITS rule makes
//    steady — before the push-health rule that was last sync spread over the past hour (its
//    hourly safety-net polls of healthy mailboxes). Its database is the same; migrations it does
//    not know are hidden from its migrator for the window (their `_migrations` rows are removed
//    and put back afterwards; the columns stay, it does not read them).
//    This process never ran a connect flow: what it holds per mailbox is what any process holds.
// Per window: CPU of the service process and its Postgres backends (/proc, every backend of the
// database seen during the window), RSS (median of one sample per second), queued jobs at the
// start and end, then live memory after a full GC (bench/idle/gc-probe.mjs, preloaded with
// --expose-gc: heap used, external).
// kb_per_mailbox is the SLOPE between the last two steps of the steady windows,
// (RSS(N) − RSS(N − N/steps)) ÷ (N/steps): the marginal memory of one more connected idle
// mailbox, without what is paid once (code compiled on the connect and sync paths, pools). The
// same slope is printed for the fresh windows and for live heap after GC. cpu_pct_10k is the
// steady CPU extrapolated linearly to 10,000 mailboxes from the 0 and N windows.
// BENCH_HEAP_SNAPSHOTS=<dir>: the probe also writes a heap snapshot per window into <dir>; compare
// two with `node bench/idle/heap-diff.mjs <a>.heapsnapshot <b>.heapsnapshot <mailboxes between>`.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createCore } from '../../src/bootstrap/core.js';
import { loadConfig } from '../../src/config/config.js';
import { approveGoogleConsent } from '../../src/sandbox/google/google-consent.client.js';
import { startGoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { createTestDatabase } from '../../test/helpers/postgres.js';
import { requireBenchPostgres } from '../ingest/bench-support.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flag = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const MAILBOXES = Number(positional[0] ?? 2000);
const IDLE_SECONDS = Number(positional[1] ?? 60);
const STEPS = Number(flag('steps') ?? 2);
const UNHEALTHY = Number(flag('unhealthy') ?? 10);
/** Connect flows run at once (consent, callback; each then backfills in the service). */
const CONNECTS = Number(flag('connects') ?? 3);
/** Seconds a newly started service settles before a steady/baseline window (its start-up work stays out). */
const SETTLE = Number(flag('settle') ?? 30);
if (!(MAILBOXES > 0 && IDLE_SECONDS > 0 && Number.isInteger(STEPS) && STEPS >= 1 && Number.isInteger(UNHEALTHY) && UNHEALTHY >= 0 && CONNECTS >= 1)) {
  console.error('usage: idle [mailboxes=2000] [idleSeconds=60] [--steps=2] [--unhealthy=10] [--connects=3] [--settle=30]');
  process.exit(2);
}
const BASELINE = process.env.BENCH_BASELINE;
const BASELINE_BIN = BASELINE ? path.resolve(BASELINE, 'bin/mailbox-connector.js') : undefined;
if (BASELINE_BIN && !existsSync(BASELINE_BIN)) {
  console.error(`BENCH_BASELINE: no ${BASELINE_BIN}`);
  process.exit(2);
}
const TICKS = 100;
const APP_NAME = 'mbc-bench-idle';
const BIN = fileURLToPath(new URL('../../bin/mailbox-connector.js', import.meta.url));
const PROBE = fileURLToPath(new URL('./gc-probe.mjs', import.meta.url));
requireBenchPostgres();
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
  // The audit anchor file: one for this run, shared by the baseline and this checkout's service.
  DATA_DIR: mkdtempSync(path.join(tmpdir(), 'mbc-idle-')),
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
let child!: ChildProcess;
let probeWaiter: ((p: Probe) => void) | undefined;
async function startService(bin = BIN): Promise<void> {
  child = spawn(process.execPath, ['--expose-gc', '--import', PROBE, bin, 'serve'], { env: { ...process.env, ...env }, cwd: path.dirname(path.dirname(bin)), stdio: ['ignore', 'ignore', 'pipe'] });
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
/** Syncs started since `t`, by reason, and how many of the polls were of the `unhealthy` mailboxes. */
async function syncsSince(t: Date, unhealthy: readonly string[]): Promise<{ total: number; byReason: Record<string, number>; pollsUnhealthy: number; pollsHealthy: number }> {
  const r = await admin.query<{ reason: string; n: string; u: string }>(
    `SELECT data->>'reason' AS reason, count(*) AS n, count(*) FILTER (WHERE data->>'mailboxId' = ANY($2)) AS u
       FROM pgboss.job WHERE name = 'sync.mailbox' AND started_on >= $1 GROUP BY 1`,
    [t, unhealthy],
  );
  const byReason = Object.fromEntries(r.rows.map((x) => [x.reason, Number(x.n)]));
  const poll = r.rows.find((x) => x.reason === 'poll');
  const pollsUnhealthy = Number(poll?.u ?? 0);
  return { total: r.rows.reduce((a, x) => a + Number(x.n), 0), byReason, pollsUnhealthy, pollsHealthy: Number(poll?.n ?? 0) - pollsUnhealthy };
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
  syncsByReason: Record<string, number>;
  pollsHealthy: number;
  pollsUnhealthy: number;
  rssKb: number;
  gc: Probe;
}
const windows: Window[] = [];

/** Idles `seconds`: CPU of the service and its backends (% of one core), median RSS, backlog; then the GC probe. */
async function idle(label: string, mailboxes: number, seconds: number, unhealthy: readonly string[] = []): Promise<Window> {
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
  const syncs = await syncsSince(startedAt, unhealthy);
  const servicePct = ((s1 - s0) / (seconds * 1000)) * 100;
  const backendPct = (backendMs / (seconds * 1000)) * 100;
  const gc = await probe();
  const w: Window = {
    label,
    mailboxes,
    cpuPct: servicePct + backendPct,
    servicePct,
    backendPct,
    queuedStart,
    queuedEnd,
    syncs: syncs.total,
    syncsByReason: syncs.byReason,
    pollsHealthy: syncs.pollsHealthy,
    pollsUnhealthy: syncs.pollsUnhealthy,
    rssKb: rss[Math.floor(rss.length / 2)]!,
    gc,
  };
  windows.push(w);
  console.log(
    `${label.padEnd(6)} ${String(mailboxes).padStart(6)} mailboxes: RSS ${(w.rssKb / 1024).toFixed(1)} MiB (after GC ${(gc.rssKb / 1024).toFixed(1)} MiB, heap ${(gc.heapUsedKb / 1024).toFixed(1)} MiB, external ${(gc.externalKb / 1024).toFixed(1)} MiB); ` +
      `idle CPU ${w.cpuPct.toFixed(2)}% of a core (service ${servicePct.toFixed(2)}%, Postgres ${backendPct.toFixed(2)}%); ${syncs.total} syncs ${JSON.stringify(syncs.byReason)}, ` +
      `polls of healthy-push mailboxes ${syncs.pollsHealthy}, of the ${unhealthy.length} unhealthy ${syncs.pollsUnhealthy}; queued jobs ${queuedStart} → ${queuedEnd}; loadavg ${loadavg()}`,
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
    Array.from({ length: CONNECTS }, async () => {
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

const DAY_S = 86_400;
/**
 * As a day of idling leaves the mailboxes under the push-health rule: each healthy one was last
 * synced by its daily watch renewal (spread over the past 0.9 day) and renews next within 0.95
 * day; no push (idle). The first `UNHEALTHY` have failing push (pushMissedAt, no push since) and
 * were last polled within the past interval. Returns those.
 */
async function ageSteady(): Promise<string[]> {
  const interval = loadConfig(env).sync.pollIntervalSeconds;
  await admin.query(
    `UPDATE mailboxes SET "lastSyncedAt" = t, "updatedAt" = t, "lastPushAt" = NULL, "pushMissedAt" = NULL,
            "pushRenewAt" = now() + random() * make_interval(secs => $1)
       FROM (SELECT id AS mid, now() - random() * make_interval(secs => $2) AS t FROM mailboxes) x WHERE id = x.mid`,
    [0.95 * DAY_S, 0.9 * DAY_S],
  );
  const r = await admin.query<{ id: string }>(
    `UPDATE mailboxes SET "lastSyncedAt" = t, "updatedAt" = t, "pushMissedAt" = t - interval '1 hour'
       FROM (SELECT id AS mid, now() - random() * make_interval(secs => $1) AS t FROM mailboxes ORDER BY id LIMIT $2) x WHERE id = x.mid
     RETURNING id`,
    [interval, UNHEALTHY],
  );
  return r.rows.map((x) => x.id);
}

/** The state the hourly safety-net rule (before the push-health rule) makes steady: last sync over the past hour. */
async function ageBaseline(): Promise<void> {
  const interval = loadConfig(env).sync.pollIntervalSeconds;
  await admin.query(
    `UPDATE mailboxes SET "lastSyncedAt" = now() - random() * make_interval(secs => $1), "lastPushAt" = NULL, "updatedAt" = now() - make_interval(secs => $1),
            "pushRenewAt" = now() + random() * make_interval(secs => $2)`,
    [12 * interval, 0.95 * DAY_S],
  );
}

/** Runs `fn` with the migrations the baseline checkout does not know hidden from its migrator. */
async function asBaseline<T>(fn: () => Promise<T>): Promise<T> {
  const known = new Set(readdirSync(path.resolve(BASELINE!, 'prisma/migrations')));
  const rows = (await admin.query<Record<string, unknown>>('SELECT * FROM "_migrations"')).rows;
  const hidden = rows.filter((r) => !known.has(String(r.name)));
  if (hidden.length) await admin.query('DELETE FROM "_migrations" WHERE name = ANY($1)', [hidden.map((r) => r.name)]);
  try {
    return await fn();
  } finally {
    for (const row of hidden) {
      const cols = Object.keys(row);
      await admin.query(`INSERT INTO "_migrations" (${cols.map((c) => `"${c}"`).join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, cols.map((c) => row[c]));
    }
  }
}

/** The steady window(s) at `n` mailboxes: the baseline's (BENCH_BASELINE), then this checkout's. */
async function steadyWindows(n: number): Promise<void> {
  if (BASELINE_BIN) {
    await stopService();
    await ageBaseline();
    await asBaseline(async () => {
      await startService(BASELINE_BIN);
      await sleep(SETTLE * 1000); // the start (reconcile, first poll runs) settles
      await idle('baseline', n, IDLE_SECONDS);
      await stopService();
    });
  }
  await stopService();
  const unhealthy = await ageSteady();
  await startService();
  await sleep(SETTLE * 1000); // the start (reconcile, first poll runs) settles
  await idle('steady', n, IDLE_SECONDS, unhealthy);
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
await steadyWindows(0);
for (let step = 1; step <= STEPS; step++) {
  if (child.exitCode !== null) await startService();
  await connectUpTo(Math.round((MAILBOXES * step) / STEPS));
  await sleep(30_000); // the connect traffic settles
  await idle('fresh', connected, IDLE_SECONDS);
  await steadyWindows(connected);
}
console.log(`watches: ${gs.watches().length}`);
await stopService();
await admin.end();
await gs.close();
await db.drop();
rmSync(env.DATA_DIR, { recursive: true, force: true });

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
const baseline = windows.filter((w) => w.label === 'baseline').at(-1);
const baseline0 = windows.find((w) => w.label === 'baseline' && w.mailboxes === 0);
const per10k = (last: Window, zero: Window) => zero.cpuPct + ((last.cpuPct - zero.cpuPct) * 10_000) / last.mailboxes;
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
    cpu_pct_10k: r2(per10k(steady, steady0)),
    steady_syncs_per_min: r2((steady.syncs * 60) / IDLE_SECONDS),
    steady_syncs_by_reason: steady.syncsByReason,
    polls_healthy: steady.pollsHealthy,
    polls_unhealthy: steady.pollsUnhealthy,
    unhealthy_mailboxes: UNHEALTHY,
    ...(baseline && baseline0
      ? { baseline_cpu_pct: r2(baseline.cpuPct), baseline_cpu_pct_no_mailboxes: r2(baseline0.cpuPct), baseline_cpu_pct_10k: r2(per10k(baseline, baseline0)), baseline_syncs_per_min: r2((baseline.syncs * 60) / IDLE_SECONDS) }
      : {}),
    queued_start: steady.queuedStart,
    queued_end: steady.queuedEnd,
  })}`,
);
process.exit(0);

// Idle cost of connected mailboxes (issue 12 target 5).
//   npm run bench -- idle [mailboxes=2000] [idleSeconds=60]
//   (= DATABASE_URL=postgresql://root@127.0.0.1:5432/postgres npx tsx bench/idle/idle.bench.ts …)
//
// A real `serve` process (HTTP + workers, SANDBOX=1, defaults otherwise) on a fresh Postgres
// database, with the Google stand-in in this process (SANDBOX_GOOGLE_URL; Pub/Sub pushes go to the
// service). Gmail mailboxes only: the Microsoft stand-in cannot run outside the service without
// its https authority, and inside it its memory would count as the service's.
// 1. The service idles with no mailbox for `idleSeconds`: RSS and CPU baseline.
// 2. `mailboxes` addresses are connected through the hosted consent flow and backfilled (empty),
//    each with a Gmail watch (healthy push).
// 3. It idles again for `idleSeconds`: CPU of the service process and its Postgres backends
//    (/proc), RSS growth per mailbox (median RSS of each idle window), and the job backlog
//    (queued jobs) at the start and end.
// BENCH_HEAP_SNAPSHOTS=<dir>: the service also writes a V8 heap snapshot (after a full GC) at the
// end of each idle window into <dir>; compare them with
// `node bench/idle/heap-diff.mjs <dir>/<first>.heapsnapshot <dir>/<second>.heapsnapshot <mailboxes>`.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createCore } from '../../src/bootstrap/core.js';
import { loadConfig } from '../../src/config/config.js';
import { approveGoogleConsent } from '../../src/sandbox/google/google-consent.client.js';
import { startGoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { createTestDatabase } from '../../test/helpers/postgres.js';

const MAILBOXES = Number(process.argv[2] ?? 2000);
const IDLE_SECONDS = Number(process.argv[3] ?? 60);
const TICKS = 100;
const APP_NAME = 'mbc-bench-idle';
const BIN = fileURLToPath(new URL('../../bin/mailbox-connector.js', import.meta.url));
if (!process.env.DATABASE_URL) {
  console.error('set DATABASE_URL (a Postgres server; a fresh database is created and dropped)');
  process.exit(1);
}
process.env.TEST_ADMIN_DATABASE_URL ??= process.env.DATABASE_URL;

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
};
// The bench's own connection (tenant and key creation, then closed): not counted.
{
  const core = await createCore(loadConfig({ ...env, DATABASE_URL: db.url }), { command: 'bench' });
  await core.close();
}
const SNAPSHOT_DIR = process.env.BENCH_HEAP_SNAPSHOTS;
const nodeArgs = SNAPSHOT_DIR ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${SNAPSHOT_DIR}`] : [];
const child = spawn(process.execPath, [...nodeArgs, BIN, 'serve'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
const admin = new pg.Client({ connectionString: db.url });
admin.on('error', () => undefined);
await admin.connect();

for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${baseUrl}/healthz`)).ok) break;
  } catch {
    // not listening yet
  }
  if (i > 600) throw new Error('serve did not start');
  await new Promise((r) => setTimeout(r, 100));
}

function procCpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS;
  } catch {
    return 0;
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

/** CPU of the service and its backends over `seconds` of idling, as % of one core. */
async function idle(seconds: number): Promise<{ cpuPct: number; servicePct: number; backendPct: number; queuedStart: number; queuedEnd: number; rssKb: number }> {
  const b0 = new Map((await backends()).map((p) => [p, procCpuMs(p)]));
  const s0 = procCpuMs(child.pid!);
  const queuedStart = await queued();
  // RSS moves with garbage collection: the median of one sample per second over the window.
  const rss: number[] = [];
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    rss.push(rssKb(child.pid!));
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(0, end - Date.now()))));
  }
  rss.sort((a, b) => a - b);
  const s1 = procCpuMs(child.pid!);
  let backendMs = 0;
  // A backend that started during the window counts from zero (pooled connections come and go).
  for (const p of await backends()) backendMs += procCpuMs(p) - (b0.get(p) ?? 0);
  const queuedEnd = await queued();
  const servicePct = ((s1 - s0) / (seconds * 1000)) * 100;
  const backendPct = (backendMs / (seconds * 1000)) * 100;
  return { cpuPct: servicePct + backendPct, servicePct, backendPct, queuedStart, queuedEnd, rssKb: rss[Math.floor(rss.length / 2)]! };
}

/** Signals the service to write a heap snapshot and waits until the file stops growing. */
async function heapSnapshot(label: string): Promise<void> {
  if (!SNAPSHOT_DIR) return;
  const before = new Set(readdirSync(SNAPSHOT_DIR));
  child.kill('SIGUSR2');
  for (let size = -1; ; ) {
    await new Promise((r) => setTimeout(r, 1000));
    const file = readdirSync(SNAPSHOT_DIR).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (!file) continue;
    const now = statSync(`${SNAPSHOT_DIR}/${file}`).size;
    if (now > 0 && now === size) {
      console.log(`heap snapshot (${label}): ${SNAPSHOT_DIR}/${file}`);
      return;
    }
    size = now;
  }
}

await new Promise((r) => setTimeout(r, 10_000)); // startup settles
const empty = await idle(IDLE_SECONDS);
const rss0 = empty.rssKb;
await heapSnapshot('no mailboxes');
console.log(`no mailboxes: RSS ${(rss0 / 1024).toFixed(1)} MiB; idle CPU ${empty.cpuPct.toFixed(2)}% of a core (service ${empty.servicePct.toFixed(2)}%, Postgres ${empty.backendPct.toFixed(2)}%); loadavg ${readFileSync('/proc/loadavg', 'utf8').trim()}`);

// ------------------------------------------------------------------ connect
const core = await createCore(loadConfig({ ...env, DATABASE_URL: db.url, LOG_LEVEL: 'error' }), { command: 'bench' });
const tenant = await core.tenantService.create({ name: 'idle bench' });
const apiKey = (await core.apiKeys.issue({ tenantId: tenant.id })).key;
await core.close();

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
const t0 = Date.now();
let next = 0;
let retries = 0;
await Promise.all(
  Array.from({ length: 3 }, async () => {
    while (next < MAILBOXES) {
      const email = `idle${next++}@acme.test`;
      gs.createUser(email);
      for (let attempt = 1; ; attempt++) {
        try {
          await connect(email);
          break;
        } catch (err) {
          if (attempt >= 5) throw err;
          retries++;
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
    }
  }),
);
for (;;) {
  const r = await admin.query<{ ready: string }>(`SELECT count(*) AS ready FROM mailboxes WHERE "backfillCompletedAt" IS NOT NULL AND "watchExpiresAt" IS NOT NULL`);
  if (Number(r.rows[0]!.ready) >= MAILBOXES) break;
  if (Date.now() - t0 > 30 * 60_000) throw new Error(`only ${r.rows[0]!.ready}/${MAILBOXES} mailboxes synced`);
  await new Promise((res) => setTimeout(res, 1000));
}
console.log(`connected ${MAILBOXES} Gmail mailboxes (${retries} connect retries), backfilled and watched, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
await new Promise((r) => setTimeout(r, 30_000)); // the connect traffic settles

const full = await idle(IDLE_SECONDS);
const rss1 = full.rssKb;
await heapSnapshot(`${MAILBOXES} mailboxes`);
const kbPer = (rss1 - rss0) / MAILBOXES;
console.log(`${MAILBOXES} idle mailboxes: RSS ${(rss1 / 1024).toFixed(1)} MiB (+${kbPer.toFixed(2)} KB per mailbox); idle CPU ${full.cpuPct.toFixed(2)}% of a core (service ${full.servicePct.toFixed(2)}%, Postgres ${full.backendPct.toFixed(2)}%); queued jobs ${full.queuedStart} → ${full.queuedEnd} over ${IDLE_SECONDS} s; loadavg ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
console.log(`watches: ${gs.watches().length}; Gmail quota used by idle polls: none expected within the hour (push healthy)`);

child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
await admin.end();
await gs.close();
await db.drop();
console.log(
  `RESULT ${JSON.stringify({ kb_per_mailbox: Math.round(kbPer * 100) / 100, cpu_pct: Math.round(full.cpuPct * 100) / 100, cpu_pct_no_mailboxes: Math.round(empty.cpuPct * 100) / 100, mailboxes: MAILBOXES, queued_start: full.queuedStart, queued_end: full.queuedEnd })}`,
);
process.exit(0);

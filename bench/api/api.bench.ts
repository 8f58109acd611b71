// What one authenticated API call costs the connector: the ticket service's calls (list, read)
// through the real `serve` process, on Postgres.
//   npm run bench -- api [requests=2000] [rounds=5] [--concurrency=8] [--read=mailboxes|message|list] [--compare-checkout=DIR]
//   (= DATABASE_URL=postgresql://root@127.0.0.1:5432/postgres npx tsx bench/api/api.bench.ts …)
//
// A `mailbox-connector serve --no-workers` child process on a fresh database with one tenant and
// its API key; this process sends `requests` GETs with that key (keep-alive, at most
// `concurrency` in flight) per block, after a warm-up block. `--read` picks the request:
// `mailboxes` (default) GET /v1/mailboxes; `message` GET /v1/messages/:id of one stored message
// (a content read: audited, `message.read`); `list` GET /v1/messages?mailboxId=… of a mailbox of
// 10 messages (audited, `message.listed`). The message and the mailbox are stored through the
// real ingest pipeline before the service starts answering. Per block: requests/s; CPU ms per
// request of the service process (/proc/<pid>/stat) and of the Postgres backends serving its
// database (/proc of the pids pg_stat_activity lists for it); transactions per request
// (pg_stat_database.xact_commit: one per autocommitted statement) and rows written per request
// (tuples inserted + updated + deleted). With --compare-checkout=DIR a second service runs from
// another checkout (its own database, same settings) and the blocks alternate, first one, then
// the other, so both see the same load. BENCH_SERVICE_NODE_ARGS: extra node flags for the
// services (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"). RESULT: medians over the rounds, `cpu_ms_per_request`,
// `service_cpu_ms_per_request`, `pg_cpu_ms_per_request`, `transactions_per_request`,
// `rows_written_per_request`, `requests_per_s` (and `checkout_…` for the compared checkout).
import { spawn, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createCore } from '../../src/bootstrap/core.js';
import { loadConfig } from '../../src/config/config.js';
import { createTestDatabase } from '../../test/helpers/postgres.js';
import { ingestHarness, seedIngestMailbox } from '../../test/integration/ingest-harness.js';
import { freePort, testEncryptionKeys } from '../../test/helpers/test-service.js';
import { median, requireBenchPostgres, statCpuMs } from '../ingest/bench-support.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flag = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=').slice(1).join('=');
const REQUESTS = Number(positional[0] ?? 2000);
const ROUNDS = Number(positional[1] ?? 5);
const CONCURRENCY = Number(flag('concurrency') ?? 8);
const COMPARE = flag('compare-checkout');
const READ = flag('read') ?? 'mailboxes';
if (!['mailboxes', 'message', 'list'].includes(READ)) {
  console.error('--read is one of mailboxes, message, list');
  process.exit(1);
}
const admin = new pg.Client({ connectionString: requireBenchPostgres() });
await admin.connect();

/** CPU ms of a process so far (0 for a backend that ended). */
const cpuMsOf = (pid: number): number => statCpuMs(`/proc/${pid}/stat`);

interface Service {
  label: string;
  child: ChildProcess;
  url: string;
  dbName: string;
  apiKey: string;
  /** The path each request GETs. */
  path: string;
  drop: () => Promise<void>;
}

async function startService(label: string, root: string): Promise<Service> {
  const db = await createTestDatabase();
  const port = await freePort();
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL: db.url,
    ENCRYPTION_KEYS: testEncryptionKeys(),
  };
  const nodeArgs = (process.env.BENCH_SERVICE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, 'bin/mailbox-connector.js', 'serve', '--no-workers'], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      if (out.length < 100_000) out += b.toString();
      if (out.includes('listening on')) resolve();
    });
    child.stderr!.on('data', (b: Buffer) => process.stderr.write(b));
    child.once('exit', (code) => reject(new Error(`${label} service exited with ${code}`)));
  });
  // The tenant and its key, written by a core of this process on the service's database.
  const core = await createCore(loadConfig({ ...env, LOG_LEVEL: 'error' }), { command: 'bench' });
  let path = '/v1/mailboxes';
  let tenantId: string;
  if (READ === 'mailboxes') {
    tenantId = (await core.tenantService.create({ name: `api bench ${label}` })).id;
  } else {
    // A mailbox with stored messages (through the real ingest pipeline), in its own tenant.
    const mailbox = await seedIngestMailbox(core, `api-bench-${label.replace(/\W+/g, '-')}@example.com`);
    tenantId = mailbox.tenantId;
    const harness = ingestHarness(core);
    let firstId = '';
    for (let i = 0; i < 10; i++) {
      const raw = Buffer.from(
        `From: Customer ${i} <customer${i}@example.com>\r\nTo: support@helpdesk.example\r\nSubject: api bench ${i}\r\nMessage-ID: <api-bench-${i}@example.com>\r\n` +
          `Date: Sun, 06 Dec 2026 22:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, message ${i}.\r\n`,
      );
      const r = await harness.run(mailbox, `api-bench-${i}`, raw);
      if (r.status !== 'stored') throw new Error(`seeding: message ${i} was ${r.status}`);
      firstId ||= r.messageId!;
    }
    path = READ === 'message' ? `/v1/messages/${firstId}` : `/v1/messages?mailboxId=${mailbox.id}&limit=10`;
  }
  const apiKey = (await core.apiKeys.issue({ tenantId })).key;
  await core.close();
  return { label, child, url: `http://127.0.0.1:${port}`, dbName: db.name, apiKey, path, drop: () => db.drop() };
}

async function backendPids(dbName: string): Promise<number[]> {
  const r = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [dbName]);
  return r.rows.map((x) => x.pid);
}

async function dbCounters(dbName: string): Promise<{ xacts: number; written: number }> {
  const r = await admin.query<{ x: string; w: string }>(
    'SELECT xact_commit + xact_rollback AS x, tup_inserted + tup_updated + tup_deleted AS w FROM pg_stat_database WHERE datname = $1',
    [dbName],
  );
  return { xacts: Number(r.rows[0]!.x), written: Number(r.rows[0]!.w) };
}

interface Block {
  perS: number;
  serviceMs: number;
  pgMs: number;
  xacts: number;
  written: number;
}

async function block(svc: Service, n: number): Promise<Block> {
  // pg_stat_database is updated when a backend reports (at the end of a transaction, at most every
  // 500 ms on Postgres 15): read it after a pause on both sides of the block.
  await new Promise((r) => setTimeout(r, 700));
  const pids = await backendPids(svc.dbName);
  const pgBefore = new Map(pids.map((p) => [p, cpuMsOf(p)]));
  const svcBefore = cpuMsOf(svc.child.pid!);
  const countersBefore = await dbCounters(svc.dbName);
  const started = performance.now();
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        next++;
        const res = await fetch(`${svc.url}${svc.path}`, { headers: { authorization: `Bearer ${svc.apiKey}` } });
        await res.arrayBuffer();
        if (res.status !== 200) failed++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const serviceMs = cpuMsOf(svc.child.pid!) - svcBefore;
  let pgMs = 0;
  for (const pid of await backendPids(svc.dbName)) pgMs += cpuMsOf(pid) - (pgBefore.get(pid) ?? 0);
  await new Promise((r) => setTimeout(r, 700));
  const countersAfter = await dbCounters(svc.dbName);
  if (failed > 0) throw new Error(`${svc.label}: ${failed} of ${n} requests did not answer 200`);
  return { perS: n / seconds, serviceMs: serviceMs / n, pgMs: pgMs / n, xacts: (countersAfter.xacts - countersBefore.xacts) / n, written: (countersAfter.written - countersBefore.written) / n };
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const services = [await startService('this checkout', root)];
if (COMPARE) services.push(await startService(`checkout ${COMPARE}`, COMPARE));
console.log(
  `api bench: GET ${services[0]!.path.replace(/[a-z]+_[0-9A-Za-z]+/g, ':id')}, ${REQUESTS} requests per block, ${CONCURRENCY} in flight, ${ROUNDS} rounds; ${services.map((s) => s.label).join(' vs ')}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
);
const results = services.map(() => [] as Block[]);
try {
  for (const s of services) await block(s, Math.min(REQUESTS, 500)); // warm-up (JIT, pools, connections)
  for (let r = 0; r < ROUNDS; r++) {
    for (const [i, s] of services.entries()) {
      const b = await block(s, REQUESTS);
      results[i]!.push(b);
      console.log(
        `round ${r + 1} ${s.label}: ${b.perS.toFixed(0)} requests/s; CPU ms/request service ${b.serviceMs.toFixed(3)} + Postgres ${b.pgMs.toFixed(3)} = ${(b.serviceMs + b.pgMs).toFixed(3)}; ` +
          `${b.xacts.toFixed(2)} transactions and ${b.written.toFixed(2)} rows written per request; loadavg ${loadavg()[0]!.toFixed(2)}`,
      );
    }
  }
} finally {
  for (const s of services) {
    s.child.kill('SIGTERM');
    await new Promise((r) => s.child.once('exit', r));
    await s.drop();
  }
  await admin.end();
}
const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const summary = (bs: Block[]) => ({
  cpu_ms_per_request: r3(median(bs.map((b) => b.serviceMs + b.pgMs))),
  service_cpu_ms_per_request: r3(median(bs.map((b) => b.serviceMs))),
  pg_cpu_ms_per_request: r3(median(bs.map((b) => b.pgMs))),
  transactions_per_request: r3(median(bs.map((b) => b.xacts))),
  rows_written_per_request: r3(median(bs.map((b) => b.written))),
  requests_per_s: Math.round(median(bs.map((b) => b.perS))),
});
const out: Record<string, unknown> = { ...summary(results[0]!) };
if (COMPARE) for (const [k, v] of Object.entries(summary(results[1]!))) out[`checkout_${k}`] = v;
console.log(`RESULT ${JSON.stringify({ ...out, read: READ, requests: REQUESTS, rounds: ROUNDS, concurrency: CONCURRENCY, loadavg_1m: loadavg()[0] })}`);

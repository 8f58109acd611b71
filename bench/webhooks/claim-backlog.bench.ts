// What one delivery-pump cycle costs Postgres as an endpoint's backlog grows (issue 12, target 3):
//   DATABASE_URL=postgresql://root@127.0.0.1:5432/postgres node --import tsx bench/webhooks/claim-backlog.bench.ts [cycles=200] [backlogs=1000,10000,100000] [--analyze]
// For each backlog size: 8 endpoints, one of them with that many deliveries waiting (half new,
// half failed and retrying in an hour — as after an outage), the others with 20 each. Then
// `cycles` claim cycles on one connection, each the pump's statement
// (mbc_webhook_finish_and_claim, no results, take 128, per-endpoint limit 4) in a transaction
// that is rolled back, so every cycle meets the same backlog. Per cycle: the Postgres backend's
// CPU ms (/proc/<pid>/stat; needs the server on this host), wall ms, and the rows of
// webhook_deliveries it read (sequential-scan rows + index entries, from the backend's own
// statistics counters). `--analyze` runs ANALYZE first (what autovacuum does); without it the
// planner sees the statistics of a table that was never analysed (autovacuum off, as on the
// machine these were measured on).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createCore } from '../../src/bootstrap/core.js';
import { loadConfig } from '../../src/config/config.js';
import { newId } from '../../src/storage/ids.js';
import { createTestDatabase } from '../../test/helpers/postgres.js';
import { requireBenchPostgres, statCpuMs } from '../ingest/bench-support.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const ANALYZE = process.argv.includes('--analyze');
const CYCLES = Number(args[0] ?? 200);
const BACKLOGS = (args[1] ?? '1000,10000,100000').split(',').map(Number);
if (!Number.isInteger(CYCLES) || CYCLES < 1 || BACKLOGS.some((b) => !Number.isInteger(b) || b < 2)) {
  console.error('usage: claim-backlog.bench.ts [cycles ≥ 1] [backlog sizes ≥ 2, comma-separated] [--analyze]');
  process.exit(2);
}
requireBenchPostgres();
const ENDPOINTS = 8;
const LOCK_KEY = 727_384_618; // the pump's endpoint claim lock (webhook.repository.ts)
const READS_SQL = `SELECT pg_stat_get_xact_tuples_returned(c.oid)::int
        + (SELECT COALESCE(sum(pg_stat_get_xact_tuples_returned(i.indexrelid)), 0)::int FROM pg_index i WHERE i.indrelid = c.oid) AS n
   FROM pg_class c WHERE c.relname = 'webhook_deliveries' AND c.relkind = 'r'`;

const db = await createTestDatabase();
const core = await createCore(loadConfig({ NODE_ENV: 'test', DATABASE_URL: db.url, ENCRYPTION_KEYS: `1:${randomBytes(32).toString('base64')}`, LOG_LEVEL: 'warn', PORT: '0' }), { command: 'bench' });
const client = new pg.Client({ connectionString: db.url });
client.on('error', () => undefined);
await client.connect();
const backendPid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

/** `n` deliveries for `endpointId` (events and deliveries in two statements); the first half new, the rest retrying in an hour. */
async function backlog(tenantId: string, endpointId: string, n: number): Promise<void> {
  const tag = endpointId.slice(-10);
  await client.query(
    `INSERT INTO outbox_events (id, "tenantId", type, seq, "createdAt")
     SELECT 'evt_b' || $3 || '_' || lpad(g::text, 7, '0'), $1, 'mailbox.connected', g, now() FROM generate_series(1, $2::int) g`,
    [tenantId, n, tag],
  );
  await client.query(
    `INSERT INTO webhook_deliveries (id, "tenantId", "eventId", "endpointId", status, attempts, "nextAttemptAt", "updatedAt")
     SELECT 'whd_b' || $4 || '_' || lpad(g::text, 7, '0'), $1, 'evt_b' || $4 || '_' || lpad(g::text, 7, '0'), $2,
            CASE WHEN g <= $3::int / 2 THEN 'pending' ELSE 'failed' END, CASE WHEN g <= $3::int / 2 THEN 0 ELSE 1 END,
            CASE WHEN g <= $3::int / 2 THEN NULL ELSE now() + interval '1 hour' END, now()
       FROM generate_series(1, $3::int) g`,
    [tenantId, endpointId, n, tag],
  );
}

async function endpoints(label: string, big: number): Promise<string[]> {
  const ids: string[] = [];
  for (let e = 0; e < ENDPOINTS; e++) {
    const tenant = await core.tenants.create({ name: `bench ${label} ${e}` });
    const endpointId = newId('webhookEndpoint');
    await core.prisma.webhookEndpoint.create({ data: { id: endpointId, tenantId: tenant.id, url: `http://127.0.0.1:9/hooks/${e}`, secretEnc: new Uint8Array(randomBytes(60)) } });
    await backlog(tenant.id, endpointId, e === 0 ? big : 20);
    ids.push(endpointId);
  }
  return ids;
}

const results: Array<{ backlog: number; pg_cpu_ms_per_cycle: number; wall_ms_per_cycle: number; rows_read_per_cycle: number; claimed_per_cycle: number }> = [];
let previous: string[] = [];
try {
  for (const size of BACKLOGS) {
    // Only this size's endpoints are live.
    if (previous.length > 0) await client.query('UPDATE webhook_endpoints SET "deletedAt" = now() WHERE id = ANY($1)', [previous]);
    previous = await endpoints(String(size), size);
    if (ANALYZE) await client.query('ANALYZE');
    const cycle = async (): Promise<{ reads: number; claimed: number }> => {
      await client.query('BEGIN');
      try {
        const before = (await client.query<{ n: number }>(READS_SQL)).rows[0]!.n;
        const now = new Date();
        const rows = await client.query<{ kind: string }>('SELECT kind FROM mbc_webhook_finish_and_claim(NULL, $1::timestamp, $2::timestamp, 4, 128, $3)', [
          now.toISOString(),
          new Date(now.getTime() - 60_000).toISOString(),
          LOCK_KEY,
        ]);
        const after = (await client.query<{ n: number }>(READS_SQL)).rows[0]!.n;
        return { reads: after - before, claimed: rows.rows.filter((r) => r.kind === 'claimed').length };
      } finally {
        await client.query('ROLLBACK');
      }
    };
    for (let i = 0; i < 10; i++) await cycle(); // warm-up: plans, caches
    let reads = 0;
    let claimed = 0;
    const cpu0 = statCpuMs(`/proc/${backendPid}/stat`);
    const t0 = performance.now();
    for (let i = 0; i < CYCLES; i++) {
      const r = await cycle();
      reads += r.reads;
      claimed += r.claimed;
    }
    const wall = performance.now() - t0;
    const cpu = statCpuMs(`/proc/${backendPid}/stat`) - cpu0;
    const r = { backlog: size, pg_cpu_ms_per_cycle: +(cpu / CYCLES).toFixed(3), wall_ms_per_cycle: +(wall / CYCLES).toFixed(3), rows_read_per_cycle: Math.round(reads / CYCLES), claimed_per_cycle: +(claimed / CYCLES).toFixed(1) };
    results.push(r);
    console.log(
      `backlog ${size} on one endpoint (+ ${ENDPOINTS - 1} × 20): Postgres CPU ${r.pg_cpu_ms_per_cycle} ms/cycle, wall ${r.wall_ms_per_cycle} ms/cycle, ` +
        `rows read ${r.rows_read_per_cycle}/cycle, claimed ${r.claimed_per_cycle}/cycle (${CYCLES} cycles${ANALYZE ? ', analysed' : ''})`,
    );
  }
  console.log(`RESULT ${JSON.stringify({ cycles: CYCLES, analyzed: ANALYZE, results, loadavg_1m: Number((await import('node:os')).loadavg()[0]!.toFixed(2)) })}`);
} finally {
  await client.end();
  await core.close();
  await db.drop();
}

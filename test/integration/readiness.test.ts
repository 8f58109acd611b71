// /readyz tells the truth about the parts a process needs (database, job queue, workers), on the
// embedded database and on Postgres; a worker process answers /healthz and /readyz on its own port.
// The database-down case (Postgres stopped under running processes) is in postgres-restart.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEARTBEAT_STALE_MS } from '../../src/bootstrap/worker-heartbeat.js';
import { WorkerHeartbeatRepository } from '../../src/storage/worker-heartbeat.repository.js';
import { embeddedRun } from '../helpers/requirements.js';
import { freePort, startTestService, type TestService } from '../helpers/test-service.js';
import { waitUntil } from '../helpers/wait.js';

async function readyz(url: string): Promise<{ status: number; body: { status: string; checks: Record<string, { status: string; detail?: string }> } }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as never };
}

describe('serve --no-workers: ready only while something will run its jobs', () => {
  let svc: TestService;
  let repo: WorkerHeartbeatRepository;
  beforeAll(async () => {
    svc = await startTestService({ workers: false });
    repo = new WorkerHeartbeatRepository(svc.core.prisma, svc.core.db.sql);
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
  });

  it('no job due and no worker: ready, and says no worker was seen', async () => {
    const r = await readyz(svc.url);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.checks.database).toEqual({ status: 'ok' });
    expect(r.body.checks.queue).toEqual({ status: 'ok' });
    expect(r.body.checks.workers).toMatchObject({ status: 'ok', detail: expect.stringContaining('no worker process seen') });
  });

  it('a due job and no worker heartbeat for a minute: 503 naming the workers component', async () => {
    expect(await svc.core.jobs.enqueue('webhooks.sweep', {})).toEqual(expect.any(String));
    const r = await readyz(svc.url);
    expect(r.status, JSON.stringify(r.body)).toBe(503);
    expect(r.body.status).toBe('not_ready');
    expect(r.body.checks.workers).toMatchObject({ status: 'error', detail: expect.stringMatching(/^\d+ jobs? (is|are) due and no worker process was seen/) });
    // The other components are fine and say so.
    expect(r.body.checks.database).toEqual({ status: 'ok' });
  });

  it('a worker heartbeat within the minute makes it ready; a stale one does not', async () => {
    const now = Date.now();
    await repo.beat({ id: 'wkr_test_other', command: 'worker', hostname: 'elsewhere', pid: 4242 }, new Date(now - 5_000));
    const fresh = await readyz(svc.url);
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(200);
    expect(fresh.body.checks.workers).toMatchObject({ status: 'ok', detail: '1 worker process seen in the last 60 s' });

    await repo.beat({ id: 'wkr_test_other', command: 'worker', hostname: 'elsewhere', pid: 4242 }, new Date(now - HEARTBEAT_STALE_MS - 5_000));
    const stale = await readyz(svc.url);
    expect(stale.status, JSON.stringify(stale.body)).toBe(503);
    expect(stale.body.checks.workers?.status).toBe('error');
    await repo.remove('wkr_test_other');
  });
});

describe('a process running workers', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ workers: true });
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
  });

  it('records its heartbeat at start, is ready, and removes its row on stop', async () => {
    const rows = await svc.core.prisma.workerHeartbeat.findMany();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ command: 'serve', pid: process.pid });
    expect(Date.now() - rows[0]!.seenAt.getTime()).toBeLessThan(HEARTBEAT_STALE_MS);
    const r = await readyz(svc.url);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.checks.workers).toMatchObject({ status: 'ok', detail: expect.stringContaining('workers run in this process') });
  });
});

describe('worker health server (no API)', () => {
  let svc: TestService;
  let healthUrl: string;
  beforeAll(async () => {
    // What `mailbox-connector worker --health-port <port>` runs: workers, no API, a health server.
    const port = await freePort();
    healthUrl = `http://127.0.0.1:${port}`;
    svc = await startTestService({ workers: true, http: false, healthPort: port });
    expect(svc.service.port).toBeUndefined();
    expect(svc.service.healthPort).toBe(port);
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
  });

  it('answers /healthz, /readyz with component detail and /metrics, and serves no API', async () => {
    const health = await fetch(`${healthUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const r = await readyz(healthUrl);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.checks).toMatchObject({
      database: { status: 'ok' },
      queue: { status: 'ok' },
      workers: { status: 'ok', detail: expect.stringContaining('workers run in this process') },
    });
    expect(r.body.checks.scanner).toBeDefined();
    const api = await fetch(`${healthUrl}/v1/mailboxes`);
    expect(api.status).toBe(404);
    expect(((await api.json()) as { error: { code: string } }).error.code).toBe('route_not_found');
    const metrics = await fetch(`${healthUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('mbc_jobs_total');
  });

  it('a given health port already in use is a clear error', async () => {
    const { startService } = await import('../../src/bootstrap/service.js');
    const port = Number(new URL(healthUrl).port);
    await expect(startService(svc.core, [], { http: false, workers: false, host: '127.0.0.1', healthServer: { port } })).rejects.toThrow(`port ${port} is already in use (--health-port)`);
  });
});

describe.skipIf(embeddedRun('a job loop stuck in a database call (a real table lock blocks every fetch)'))('a job loop stuck in a database call (Postgres)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ workers: true });
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
  });

  it('is reported as stalled while its fetch cannot return, and not once it can', async () => {
    const { default: pg } = await import('pg');
    const blocker = new pg.Client({ connectionString: svc.config.database.url! });
    await blocker.connect();
    try {
      // Every fetch of every queue waits on this lock: the loops stop coming round.
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE pgboss.job IN ACCESS EXCLUSIVE MODE');
      // Stalled = no round for 2 s: wait until both loops count as stalled.
      const stalled = await waitUntil('both loops stalled', () => {
        const s = svc.core.jobs.stalledQueues(2_000);
        return s.includes('sync.mailbox') && s.includes('webhooks.deliver') && s;
      });
      expect(stalled).toEqual(expect.arrayContaining(['sync.mailbox', 'webhooks.deliver']));
      await blocker.query('ROLLBACK');
    } finally {
      await blocker.end();
    }
    await waitUntil('the loops come round again', () => svc.core.jobs.stalledQueues(2_000).length === 0);
    expect(svc.core.jobs.stalledQueues(2_000)).toEqual([]);
  });
});

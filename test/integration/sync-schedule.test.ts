// The periodic sync jobs' selection queries on real Postgres: which mailboxes sync.poll and
// sync.renew-watches queue.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobMap, JobName } from '../../src/jobs/job-map.js';
import { SyncStateRepository } from '../../src/storage/sync-state.repository.js';
import { SyncSchedulerService } from '../../src/sync/sync-scheduler.service.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { seedMailbox } from './webhooks-seed.js';

let svc: TestService;
let tenantId: string;
const MIN = 60_000;
const DAY = 86_400_000;

async function mailboxWith(data: Record<string, unknown>, provider: 'google' | 'microsoft' = 'google'): Promise<string> {
  const { id } = await seedMailbox(svc.core, tenantId);
  // updatedAt is set explicitly: Prisma would stamp "now" on an update.
  await svc.core.prisma.$executeRawUnsafe(`UPDATE mailboxes SET provider = $1, "updatedAt" = now() - interval '1 day' WHERE id = $2`, provider, id);
  const cols = Object.keys(data);
  if (cols.length) {
    await svc.core.prisma.$executeRawUnsafe(
      `UPDATE mailboxes SET ${cols.map((c, i) => `"${c}" = $${i + 2}`).join(', ')} WHERE id = $1`,
      id,
      ...cols.map((c) => data[c]),
    );
  }
  return id;
}

function scheduler(googleWatchEnabled = true) {
  const queued: string[] = [];
  const s = new SyncSchedulerService({
    state: new SyncStateRepository(svc.core.prisma),
    jobs: {
      enqueue: async <N extends JobName>(_name: N, payload: JobMap[N]) => {
        queued.push((payload as JobMap['sync.mailbox']).mailboxId);
        return 'job';
      },
    },
    clock: () => new Date(),
    pollIntervalSeconds: 300,
    googleWatchEnabled,
  });
  return { s, queued };
}

beforeAll(async () => {
  svc = await startTestService({ workers: false, http: false });
  ({ tenantId } = await svc.createTenant());
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

describe('sync schedules', () => {
  it('sync.poll queues active mailboxes with no sync, push or attempt within the interval', async () => {
    const now = Date.now();
    const never = await mailboxWith({});
    const stale = await mailboxWith({ lastSyncedAt: new Date(now - 10 * MIN) });
    const recentSync = await mailboxWith({ lastSyncedAt: new Date(now - MIN) });
    const recentPush = await mailboxWith({ lastSyncedAt: new Date(now - 10 * MIN), lastPushAt: new Date(now - MIN) });
    const inactive = await mailboxWith({ status: 'reauth_required' });
    const justFailed = await mailboxWith({ lastSyncedAt: new Date(now - 10 * MIN) });
    await svc.core.prisma.$executeRawUnsafe(`UPDATE mailboxes SET "updatedAt" = now() WHERE id = $1`, justFailed);
    const { s, queued } = scheduler();
    await s.poll();
    expect(queued).toEqual(expect.arrayContaining([never, stale]));
    for (const id of [recentSync, recentPush, inactive, justFailed]) expect(queued).not.toContain(id);
  });

  it('sync.poll polls mailboxes with healthy push (live watch / subscription) only as an hourly safety net', async () => {
    const now = Date.now();
    const watched = { watchExpiresAt: new Date(now + 5 * DAY) };
    const gmailHealthyRecent = await mailboxWith({ ...watched, lastSyncedAt: new Date(now - 10 * MIN) });
    const gmailHealthyOld = await mailboxWith({ ...watched, lastSyncedAt: new Date(now - 2 * 60 * MIN) });
    const gmailWatchLapsed = await mailboxWith({ watchExpiresAt: new Date(now - MIN), lastSyncedAt: new Date(now - 10 * MIN) });
    const graphHealthyRecent = await mailboxWith({ subscriptionId: 'h1', subscriptionExpiresAt: new Date(now + DAY), lastSyncedAt: new Date(now - 10 * MIN) }, 'microsoft');
    const graphNoSubscription = await mailboxWith({ lastSyncedAt: new Date(now - 10 * MIN) }, 'microsoft');
    const { s, queued } = scheduler();
    await s.poll();
    expect(queued).toEqual(expect.arrayContaining([gmailHealthyOld, gmailWatchLapsed, graphNoSubscription]));
    for (const id of [gmailHealthyRecent, graphHealthyRecent]) expect(queued).not.toContain(id);
    // Without a Pub/Sub topic no Gmail watch delivers anything: the mailbox is polled every interval.
    const noTopic = scheduler(false);
    await noTopic.s.poll();
    expect(noTopic.queued).toContain(gmailHealthyRecent);
  });

  it('sync.renew-watches queues watches and subscriptions whose stored renewal time (from the returned expiration) has come', async () => {
    const now = Date.now();
    const done = { backfillCompletedAt: new Date(now - DAY) };
    // Renewal times were computed from what the provider granted: a 7-day Gmail watch renews in a
    // day, a 1-day (rich) Graph subscription in under a day — the expiry alone says nothing.
    const gmailDue = await mailboxWith({ ...done, watchExpiresAt: new Date(now + 6.5 * DAY), pushRenewAt: new Date(now - MIN) });
    const gmailFresh = await mailboxWith({ ...done, watchExpiresAt: new Date(now + 5 * DAY), pushRenewAt: new Date(now + MIN) });
    const graphDue = await mailboxWith({ ...done, subscriptionId: 's1', subscriptionExpiresAt: new Date(now + 5 * DAY), pushRenewAt: new Date(now - MIN) }, 'microsoft');
    const graphShortFresh = await mailboxWith({ ...done, subscriptionId: 's2', subscriptionExpiresAt: new Date(now + 3 * 3_600_000), pushRenewAt: new Date(now + 3_600_000) }, 'microsoft');
    const graphLapsed = await mailboxWith({ ...done, subscriptionId: 's3', subscriptionExpiresAt: new Date(now - MIN), pushRenewAt: new Date(now + DAY) }, 'microsoft');
    const graphMissing = await mailboxWith({ ...done }, 'microsoft');
    const gmailNeverRenewTime = await mailboxWith({ ...done, watchExpiresAt: new Date(now + 6 * DAY) });
    const notBackfilled = await mailboxWith({ watchExpiresAt: null });
    const { s, queued } = scheduler();
    await s.renewWatches();
    expect(queued).toEqual(expect.arrayContaining([gmailDue, graphDue, graphLapsed, graphMissing, gmailNeverRenewTime]));
    for (const id of [gmailFresh, graphShortFresh, notBackfilled]) expect(queued).not.toContain(id);
    // Without a Pub/Sub topic there is no Gmail watch to renew.
    const noTopic = scheduler(false);
    await noTopic.s.renewWatches();
    expect(noTopic.queued).not.toContain(gmailDue);
    expect(noTopic.queued).toContain(graphDue);
  });

  it('the migration gives watches stored before it the renewal time they had (Gmail 6 days, Graph 2 days before expiry)', async () => {
    const sql = readFileSync(new URL('../../prisma/migrations/20261205060000_push_renew_at/migration.sql', import.meta.url), 'utf8');
    const backfill = sql.split(';').map((q) => q.replace(/--.*$/gm, '').trim()).filter((q) => q.startsWith('UPDATE'));
    expect(backfill).toHaveLength(2);
    const expiry = new Date(Date.UTC(2030, 0, 10));
    const gmail = await mailboxWith({ watchExpiresAt: expiry });
    const graph = await mailboxWith({ subscriptionId: 'old', subscriptionExpiresAt: expiry }, 'microsoft');
    const none = await mailboxWith({});
    await svc.core.prisma.$executeRawUnsafe(`UPDATE mailboxes SET "pushRenewAt" = NULL WHERE id = ANY($1)`, [gmail, graph, none]);
    for (const q of backfill) await svc.core.prisma.$executeRawUnsafe(`${q} AND id = ANY($1)`, [gmail, graph, none]);
    const rows = await svc.core.prisma.mailbox.findMany({ where: { id: { in: [gmail, graph, none] } }, select: { id: true, pushRenewAt: true } });
    const at = new Map(rows.map((r) => [r.id, r.pushRenewAt?.toISOString() ?? null]));
    expect(at.get(gmail)).toBe(new Date(expiry.getTime() - 6 * DAY).toISOString());
    expect(at.get(graph)).toBe(new Date(expiry.getTime() - 2 * DAY).toISOString());
    expect(at.get(none)).toBeNull();
  });
});

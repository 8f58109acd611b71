// The periodic sync jobs' selection queries on real Postgres: which mailboxes sync.poll and
// sync.renew-watches queue. sync.poll runs on an injected clock (NOW, far from the database's own
// time): the rule depends only on the stored timestamps and that clock, no sleeps.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobMap, JobName } from '../../src/jobs/job-map.js';
import { SyncStateRepository } from '../../src/storage/sync-state.repository.js';
import { SyncSchedulerService } from '../../src/sync/sync-scheduler.service.js';
import { startTestCore, type TestCore } from '../helpers/test-core.js';
import { seedMailbox } from './webhooks-seed.js';

let svc: TestCore;
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

function scheduler(googleWatchEnabled = true, clock: () => Date = () => new Date()) {
  const queued: string[] = [];
  const s = new SyncSchedulerService({
    state: new SyncStateRepository(svc.core.prisma),
    jobs: {
      enqueue: async <N extends JobName>(_name: N, payload: JobMap[N]) => {
        queued.push((payload as JobMap['sync.mailbox']).mailboxId);
        return 'job';
      },
    },
    clock,
    pollIntervalSeconds: 300,
    googleWatchEnabled,
  });
  return { s, queued };
}

beforeAll(async () => {
  svc = await startTestCore();
  ({ tenantId } = await svc.createTenant());
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

describe('sync schedules', () => {
  // The injected clock: years away from the database's now(), so nothing here depends on it.
  const NOW = new Date('2031-06-01T12:00:00Z');
  const ago = (ms: number) => new Date(NOW.getTime() - ms);
  const HOUR = 60 * MIN;
  const pollAt = async (at: Date, googleWatchEnabled = true) => {
    const { s, queued } = scheduler(googleWatchEnabled, () => at);
    await s.poll();
    return queued;
  };

  it('sync.poll polls mailboxes without working push every interval (jittered), counting from the last sync, push or attempt', async () => {
    const never = await mailboxWith({});
    const stale = await mailboxWith({ lastSyncedAt: ago(6 * MIN) });
    const recentSync = await mailboxWith({ lastSyncedAt: ago(3 * MIN) });
    const recentPush = await mailboxWith({ lastSyncedAt: ago(10 * MIN), lastPushAt: ago(MIN) });
    const inactive = await mailboxWith({ status: 'reauth_required' });
    // A failed attempt writes the row (syncState/syncError): it waits an interval too.
    const justFailed = await mailboxWith({ lastSyncedAt: ago(10 * MIN), updatedAt: ago(MIN) });
    const queued = await pollAt(NOW);
    expect(queued).toEqual(expect.arrayContaining([never, stale]));
    for (const id of [recentSync, recentPush, inactive, justFailed]) expect(queued).not.toContain(id);
  });

  it('sync.poll does not poll mailboxes whose push is healthy (live watch / subscription); only a reconciliation after a day of silence (24–25 h)', async () => {
    const watched = { watchExpiresAt: new Date(NOW.getTime() + 5 * DAY) };
    const subscribed = { subscriptionId: 'h1', subscriptionExpiresAt: new Date(NOW.getTime() + DAY) };
    // Healthy push, quiet for 2 hours: the old hourly safety net polled these; now nothing does.
    const gmailHealthy = await mailboxWith({ ...watched, lastSyncedAt: ago(2 * HOUR) });
    const graphHealthy = await mailboxWith({ ...subscribed, lastSyncedAt: ago(2 * HOUR) }, 'microsoft');
    // Notifications keep a mailbox off the poll however old its last sync.
    const gmailRecentPush = await mailboxWith({ ...watched, lastSyncedAt: ago(30 * HOUR), lastPushAt: ago(HOUR) });
    // 23 hours of silence: still not polled (a Gmail watch renewal, a sync, comes within 24 h).
    const graphQuietDay = await mailboxWith({ ...subscribed, lastSyncedAt: ago(23 * HOUR) }, 'microsoft');
    // More than a day with neither a sync nor a notification: the reconciliation.
    const gmailSilent = await mailboxWith({ ...watched, lastSyncedAt: ago(26 * HOUR) });
    const graphSilent = await mailboxWith({ ...subscribed, lastSyncedAt: ago(26 * HOUR) }, 'microsoft');
    // Push not working: polled after the interval.
    const gmailWatchLapsed = await mailboxWith({ watchExpiresAt: ago(MIN), lastSyncedAt: ago(6 * MIN) });
    const graphNoSubscription = await mailboxWith({ lastSyncedAt: ago(6 * MIN) }, 'microsoft');
    const graphSubscriptionLapsed = await mailboxWith({ subscriptionId: 'h2', subscriptionExpiresAt: ago(MIN), lastSyncedAt: ago(6 * MIN) }, 'microsoft');
    const queued = await pollAt(NOW);
    expect(queued).toEqual(expect.arrayContaining([gmailSilent, graphSilent, gmailWatchLapsed, graphNoSubscription, graphSubscriptionLapsed]));
    for (const id of [gmailHealthy, graphHealthy, gmailRecentPush, graphQuietDay]) expect(queued).not.toContain(id);
    // Without a Pub/Sub topic no Gmail watch delivers anything: the mailbox is polled every interval.
    expect(await pollAt(NOW, false)).toContain(gmailHealthy);
  });

  it('sync.poll polls a mailbox whose sync found mail no notification announced (push failing) until a notification arrives', async () => {
    const state = new SyncStateRepository(svc.core.prisma);
    const id = await mailboxWith({ watchExpiresAt: new Date(NOW.getTime() + 5 * DAY), lastSyncedAt: ago(HOUR), lastPushAt: ago(2 * HOUR) });
    expect(await pollAt(NOW)).not.toContain(id);
    // The sync 6 minutes ago stored mail without a push: push is failing, the watch is due for renewal.
    await state.markSynced(id, ago(6 * MIN), { pushMissed: true });
    expect((await state.find(id))?.pushRenewAt).toEqual(ago(6 * MIN));
    expect(await pollAt(NOW)).toContain(id);
    // The renewal stored a new renewal time; another miss in the same episode does not renew again.
    await state.saveWatch(id, new Date(NOW.getTime() + 7 * DAY), new Date(NOW.getTime() + DAY));
    await state.markSynced(id, ago(5.5 * MIN), { pushMissed: true });
    expect((await state.find(id))?.pushRenewAt).toEqual(new Date(NOW.getTime() + DAY));
    expect(await pollAt(NOW)).toContain(id);
    // A notification arrives: healthy again, off the poll — still two hours later.
    await state.markPush([id], ago(MIN));
    expect(await pollAt(NOW)).not.toContain(id);
    expect(await pollAt(new Date(NOW.getTime() + 2 * HOUR))).not.toContain(id);
  });

  it('saveCursor answers the row as it left it: the cursor it stored, a push and a status written meanwhile by others (what the sync re-checks with no read of its own)', async () => {
    const state = new SyncStateRepository(svc.core.prisma);
    const id = await mailboxWith({ lastPushAt: ago(HOUR) });
    // Another process records a push and a disconnect starts (status flips) before the save.
    await state.markPush([id], ago(MIN));
    await svc.core.prisma.$executeRawUnsafe(`UPDATE mailboxes SET status = 'disconnecting' WHERE id = $1`, id);
    const saved = await state.saveCursor(id, { v: 1, provider: 'google', historyId: '4242' });
    expect(saved).toMatchObject({ id, status: 'disconnecting', lastPushAt: ago(MIN), syncCursor: { v: 1, provider: 'google', historyId: '4242' } });
    expect(saved).toEqual(await state.find(id));
  });

  it('startSync marks an active mailbox syncing (clearing the last error) and answers its row in that statement; a mailbox that is not active is left as it is', async () => {
    const state = new SyncStateRepository(svc.core.prisma);
    const syncState = async (id: string) =>
      (await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id }, select: { syncState: true, syncError: true } }));
    const active = await mailboxWith({ syncState: 'error', syncError: 'transient', lastPushAt: ago(MIN) });
    expect(await state.startSync(active)).toEqual(await state.find(active));
    expect(await syncState(active)).toEqual({ syncState: 'syncing', syncError: null });
    const leaving = await mailboxWith({ status: 'disconnecting', syncState: 'error', syncError: 'transient' });
    expect(await state.startSync(leaving)).toBeNull();
    expect(await syncState(leaving)).toEqual({ syncState: 'error', syncError: 'transient' });
    expect(await state.startSync('mbx_missing')).toBeNull();
  });

  it('markPushByAddress records a Gmail push on the active mailboxes of that address, in every tenant, and answers them; others keep their lastPushAt', async () => {
    const state = new SyncStateRepository(svc.core.prisma);
    const { tenantId: other } = await svc.createTenant();
    const address = `shared-${Date.now()}@example.com`;
    const here = (await seedMailbox(svc.core, tenantId, { address })).id;
    const there = (await seedMailbox(svc.core, other, { address })).id;
    const { tenantId: third } = await svc.createTenant();
    const leaving = (await seedMailbox(svc.core, third, { address, status: 'disconnecting' })).id;
    const elsewhere = await mailboxWith({});
    const pushed = await state.markPushByAddress('google', svc.core.blindIndex.emailIndex(address), ago(MIN));
    expect(pushed.map((m) => m.id).sort()).toEqual([here, there].sort());
    expect(pushed[0]).toEqual({ id: pushed[0]!.id, provider: 'google', syncCursor: null, backfillCompletedAt: null });
    for (const id of [here, there]) expect((await state.find(id))?.lastPushAt).toEqual(ago(MIN));
    for (const id of [leaving, elsewhere]) expect((await state.find(id))?.lastPushAt).toBeNull();
    expect(await state.markPushByAddress('microsoft', svc.core.blindIndex.emailIndex(address), ago(MIN))).toEqual([]);
  });

  it('sync.poll jitters: mailboxes synced at the same moment are not all due at the same run', async () => {
    // 4.5 min after their last sync (interval 5 min, jitter 20 %: due from 4 min to 5 min), and
    // 24.5 h after the last sync for healthy push (25 h, jitter 4 %: due from 24 h): about half each.
    const unhealthy = await Promise.all(Array.from({ length: 40 }, () => mailboxWith({ lastSyncedAt: ago(4.5 * MIN) })));
    const healthy = await Promise.all(Array.from({ length: 40 }, () => mailboxWith({ watchExpiresAt: new Date(NOW.getTime() + 5 * DAY), lastSyncedAt: ago(24.5 * HOUR) })));
    const queued = new Set(await pollAt(NOW));
    const unhealthyDue = unhealthy.filter((id) => queued.has(id)).length;
    const healthyDue = healthy.filter((id) => queued.has(id)).length;
    expect(unhealthyDue).toBeGreaterThan(0);
    expect(unhealthyDue).toBeLessThan(40);
    expect(healthyDue).toBeGreaterThan(0);
    expect(healthyDue).toBeLessThan(40);
    // Past the whole jitter range every one of them is due.
    const later = new Set(await pollAt(new Date(NOW.getTime() + 1.5 * HOUR)));
    for (const id of [...unhealthy, ...healthy]) expect(later).toContain(id);
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

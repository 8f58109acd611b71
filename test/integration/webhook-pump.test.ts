// The delivery pump's building blocks against the real database: batch claims between competing
// workers (no double claim, per-endpoint limit held across claimers), batched result writes, and
// keep-alive connections that never outlive the egress check that pinned them.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isId, newId } from '../../src/storage/ids.js';
import { WebhookRepository } from '../../src/storage/webhook.repository.js';
import { checkWebhookUrl } from '../../src/webhooks/egress-guard.js';
import { createWebhookSender } from '../../src/webhooks/webhook-sender.js';
import { ENDPOINT_SECRET_AAD } from '../../src/webhooks/webhook-endpoint.service.js';
import { generateWebhookSecret } from '../../src/webhooks/webhook-secret.js';
import { startTestCore, type TestCore } from '../helpers/test-core.js';
import { seedMailbox } from './webhooks-seed.js';
import { OutboxService } from '../../src/events/outbox.service.js';
import { OutboxRepository } from '../../src/storage/outbox.repository.js';

let svc: TestCore;
beforeAll(async () => {
  // No workers: the test drives the claims itself.
  svc = await startTestCore();
});
afterAll(async () => {
  await svc?.close();
});

/** A webhook endpoint of the tenant (on a closed local port: these tests never POST to it). */
async function createEndpoint(tenantId: string, data: { events?: string[]; enabled?: boolean; deletedAt?: Date } = {}): Promise<string> {
  const id = newId('webhookEndpoint');
  const secretEnc = await svc.core.dataKeys.encryptFor({ type: 'tenant', id: tenantId }, generateWebhookSecret(), ENDPOINT_SECRET_AAD(id));
  await svc.core.prisma.webhookEndpoint.create({ data: { id, tenantId, url: 'http://127.0.0.1:9/hooks', secretEnc: new Uint8Array(secretEnc), ...data } });
  return id;
}

/** Events of these types about a new mailbox of the tenant, committed in one transaction; their ids. */
async function commitEvents(tenantId: string, types: Array<'mailbox.connected' | 'mailbox.disconnected'>): Promise<string[]> {
  const mbx = await seedMailbox(svc.core, tenantId);
  const outbox = new OutboxService({ repo: new OutboxRepository(svc.core.prisma), dataKeys: svc.core.dataKeys, clock: svc.core.clock });
  return svc.core.prisma.$transaction(async (tx) => {
    const ids: string[] = [];
    for (const type of types) ids.push((await outbox.appendEvent(tx, { tenantId, mailboxId: mbx.id, type })).id);
    return ids;
  });
}

async function endpointWithDeliveries(count: number): Promise<{ tenantId: string; endpointId: string }> {
  const t = await svc.createTenant();
  const endpointId = await createEndpoint(t.tenantId);
  const events = await commitEvents(t.tenantId, Array.from({ length: count }, () => 'mailbox.connected' as const));
  const repo = new WebhookRepository(svc.core.prisma, svc.core.db);
  await repo.insertDeliveries(events.map((eventId) => ({ tenantId: t.tenantId, eventId, endpointId })));
  return { tenantId: t.tenantId, endpointId };
}

describe('batch claims', () => {
  it('competing claimers never take the same delivery and never exceed the per-endpoint limit together', async () => {
    const a = await endpointWithDeliveries(12);
    const b = await endpointWithDeliveries(12);
    const workers = [new WebhookRepository(svc.core.prisma, svc.core.db), new WebhookRepository(svc.core.prisma, svc.core.db)];
    const opts = { limit: 3, leaseMs: 60_000, take: 50 };
    const claimed: string[] = [];
    const perEndpoint = new Map<string, number>();
    // Several rounds of simultaneous claims by both "workers".
    for (let round = 0; round < 4; round++) {
      const results = await Promise.all(workers.map((w) => w.claimDue(new Date(), opts)));
      for (const r of results) {
        for (const c of r.claimed) {
          claimed.push(c.delivery.id);
          perEndpoint.set(c.endpoint.id, (perEndpoint.get(c.endpoint.id) ?? 0) + 1);
          expect(c.delivery.status).toBe('delivering');
        }
      }
    }
    expect(new Set(claimed).size).toBe(claimed.length);
    // Leases are live, so each endpoint holds exactly its limit, whoever claimed them.
    expect(perEndpoint.get(a.endpointId)).toBe(3);
    expect(perEndpoint.get(b.endpointId)).toBe(3);

    // Finishing two of A's attempts (one batch write) frees exactly two of A's slots.
    const doneA = await svc.core.prisma.webhookDelivery.findMany({ where: { endpointId: a.endpointId, status: 'delivering' }, take: 2 });
    const updated = await workers[0]!.finishAttempts(
      doneA.map((d) => ({
        deliveryId: d.id,
        patch: { status: 'delivered' as const, attempts: 1, nextAttemptAt: null, lastStatus: 204, deliveredAt: new Date() },
        attempt: { statusCode: 204, latencyMs: 3, responseSnippet: null, error: null, createdAt: new Date() },
      })),
    );
    expect([...updated].sort()).toEqual(doneA.map((d) => d.id).sort());
    const log = await svc.core.prisma.deliveryAttempt.findMany({ where: { deliveryId: { in: doneA.map((d) => d.id) } } });
    expect(log.map((l) => [l.attemptNo, l.statusCode])).toEqual([
      [1, 204],
      [1, 204],
    ]);
    const next = await workers[1]!.claimDue(new Date(), opts);
    expect(next.claimed.map((c) => c.endpoint.id)).toEqual([a.endpointId, a.endpointId]);
    expect(claimed).not.toContain(next.claimed[0]!.delivery.id);

    // A result for a delivery that is no longer `delivering` (a replay took it over) changes nothing.
    const again = await workers[0]!.finishAttempts([{ deliveryId: doneA[0]!.id, patch: { status: 'failed', attempts: 2, nextAttemptAt: new Date(), lastStatus: 500 } }]);
    expect(again.size).toBe(0);
    expect((await svc.core.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: doneA[0]!.id } })).status).toBe('delivered');
  });

  it('one statement stores results and claims the endpoint slots they free (the pump cycle)', async () => {
    const c = await endpointWithDeliveries(6);
    const repo = new WebhookRepository(svc.core.prisma, svc.core.db);
    const opts = { limit: 2, leaseMs: 60_000, take: 50 };
    const mineOf = (r: { claimed: Array<{ endpoint: { id: string }; delivery: { id: string } }> }) => r.claimed.filter((x) => x.endpoint.id === c.endpointId).map((x) => x.delivery.id);
    const first = mineOf(await repo.claimDue(new Date(), opts));
    expect(first).toHaveLength(2);
    // Endpoint full: a cycle without results claims none of it.
    expect(mineOf(await repo.finishAndClaim([], new Date(), opts))).toEqual([]);

    // One delivered, one failed with a retry later: both slots are free for the same statement's claim.
    const at = new Date();
    const cycle = await repo.finishAndClaim(
      [
        { deliveryId: first[0]!, patch: { status: 'delivered', attempts: 1, nextAttemptAt: null, lastStatus: 204, deliveredAt: at }, attempt: { statusCode: 204, latencyMs: 2, responseSnippet: null, error: null, createdAt: at } },
        { deliveryId: first[1]!, patch: { status: 'failed', attempts: 1, nextAttemptAt: new Date(at.getTime() + 60_000), lastStatus: 500 }, attempt: { statusCode: 500, latencyMs: 3, responseSnippet: 'oops', error: 'http_status', createdAt: at } },
      ],
      at,
      opts,
    );
    expect([...cycle.updated].sort()).toEqual([...first].sort());
    const second = mineOf(cycle);
    expect(second).toHaveLength(2);
    expect(second.filter((id) => first.includes(id))).toEqual([]);
    const rows = await svc.core.prisma.webhookDelivery.findMany({ where: { endpointId: c.endpointId }, orderBy: { id: 'asc' } });
    expect(rows.filter((r) => r.status === 'delivering').map((r) => r.id).sort()).toEqual([...second].sort());
    expect(rows.find((r) => r.id === first[1])).toMatchObject({ status: 'failed', attempts: 1, lastStatus: 500 });
    const log = await svc.core.prisma.deliveryAttempt.findMany({ where: { deliveryId: { in: first } }, orderBy: { statusCode: 'asc' } });
    expect(log.map((l) => [l.attemptNo, l.statusCode, l.error])).toEqual([
      [1, 204, null],
      [1, 500, 'http_status'],
    ]);

    if (svc.core.db.kind === 'postgres') {
      // Another worker claiming this endpoint right now (it holds the endpoint's claim lock): skipped
      // and reported, never waited for. (The embedded database has one connection: no second claimer.)
      await repo.finishAndClaim(second.map((id) => ({ deliveryId: id, patch: { status: 'delivered' as const, attempts: 1, nextAttemptAt: null, lastStatus: 204, deliveredAt: at } })), at, { ...opts, take: 0 });
      const other = await svc.core.db.session();
      try {
        await other.query('BEGIN');
        await other.query('SELECT pg_advisory_xact_lock(727384618, hashtext($1))', [c.endpointId]);
        const blocked = await repo.finishAndClaim([], new Date(), opts);
        expect(mineOf(blocked)).toEqual([]);
        expect(blocked.lockedOut).toBeGreaterThanOrEqual(1);
      } finally {
        await other.query('ROLLBACK');
        await other.release();
      }
      expect(mineOf(await repo.finishAndClaim([], new Date(), opts))).toHaveLength(2);
    }
  });

  it('an expired lease is taken over; nothing due means nothing claimed', async () => {
    const a = await endpointWithDeliveries(1);
    const repo = new WebhookRepository(svc.core.prisma, svc.core.db);
    const first = await repo.claimDue(new Date(), { limit: 4, leaseMs: 60_000, take: 10 });
    const mine = first.claimed.filter((c) => c.endpoint.id === a.endpointId);
    expect(mine).toHaveLength(1);
    // Within the lease: not claimable.
    const during = await repo.claimDue(new Date(), { limit: 4, leaseMs: 60_000, take: 10 });
    expect(during.claimed.filter((c) => c.endpoint.id === a.endpointId)).toEqual([]);
    // After it (a worker died mid-attempt): taken over.
    // (take: room for every endpoint of this file whose leases have expired by then too)
    const later = await repo.claimDue(new Date(Date.now() + 61_000), { limit: 4, leaseMs: 60_000, take: 100 });
    expect(later.claimed.filter((c) => c.endpoint.id === a.endpointId).map((c) => c.delivery.id)).toEqual([mine[0]!.delivery.id]);
  });
});

describe('a cycle on a long backlog', () => {
  /** Rows of webhook_deliveries read by this backend (since its last stats flush): by sequential scans, and index entries by index scans. */
  const READS_SQL = `SELECT pg_stat_get_xact_tuples_returned(c.oid)::int AS seq,
            (SELECT COALESCE(sum(pg_stat_get_xact_tuples_returned(i.indexrelid)), 0)::int FROM pg_index i WHERE i.indrelid = c.oid) AS idx
       FROM pg_class c WHERE c.relname = 'webhook_deliveries' AND c.relkind = 'r'`;

  it('reads about what it claims, not the backlog; due retries go first, then new deliveries, oldest first', async () => {
    const { tenantId, endpointId } = await endpointWithDeliveries(0);
    const now = new Date();
    const minutes = (m: number) => new Date(now.getTime() + m * 60_000).toISOString();
    const BACKLOG = 3000;
    // 3,000 new deliveries, 3,000 failed ones retrying in an hour, and two retries due now (the
    // later-created one due first), all for one endpoint — as after an outage.
    await svc.core.prisma.$executeRawUnsafe(
      `INSERT INTO outbox_events (id, "tenantId", type, seq, "createdAt")
       SELECT 'evt_backlog_' || lpad(g::text, 5, '0'), $1, 'mailbox.connected', 900000 + g, $2::timestamp FROM generate_series(1, $3::int * 2 + 2) g`,
      tenantId,
      now.toISOString(),
      BACKLOG,
    );
    await svc.core.prisma.$executeRawUnsafe(
      `INSERT INTO webhook_deliveries (id, "tenantId", "eventId", "endpointId", status, attempts, "nextAttemptAt", "updatedAt")
       SELECT 'whd_backlog_' || lpad(g::text, 5, '0'), $1, 'evt_backlog_' || lpad(g::text, 5, '0'), $2,
              CASE WHEN g <= $3::int THEN 'pending' ELSE 'failed' END,
              CASE WHEN g <= $3::int THEN 0 ELSE 1 END,
              CASE WHEN g <= $3::int THEN NULL
                   WHEN g = $3::int * 2 + 1 THEN $5::timestamp
                   WHEN g = $3::int * 2 + 2 THEN $4::timestamp
                   ELSE $6::timestamp END,
              now()
         FROM generate_series(1, $3::int * 2 + 2) g`,
      tenantId,
      endpointId,
      BACKLOG,
      minutes(-10),
      minutes(-5),
      minutes(60),
    );
    const id = (n: number) => `whd_backlog_${String(n).padStart(5, '0')}`;
    try {
      for (const analyzed of [false, true]) {
        // With the statistics as the table was created, and after ANALYZE (what autovacuum does).
        if (analyzed) await svc.core.prisma.$executeRawUnsafe('ANALYZE webhook_deliveries');
        const rollback = new Error('rollback');
        let seen: { claimed: string[]; seq: number; idx: number } | undefined;
        await svc.core.prisma
          .$transaction(async (tx) => {
            // The counters may still hold earlier transactions' reads (not yet flushed): the difference counts.
            const [before] = await tx.$queryRawUnsafe<Array<{ seq: number; idx: number }>>(READS_SQL);
            const rows = await tx.$queryRawUnsafe<Array<{ kind: string; id: string; endpointId: string }>>(
              'SELECT kind, id, "endpointId" FROM mbc_webhook_finish_and_claim(NULL, $1::timestamp, $2::timestamp, 4, 50, 727384618)',
              now.toISOString(),
              new Date(now.getTime() - 60_000).toISOString(),
            );
            const [after] = await tx.$queryRawUnsafe<Array<{ seq: number; idx: number }>>(READS_SQL);
            seen = {
              claimed: rows.filter((r) => r.kind === 'claimed' && r.endpointId === endpointId).map((r) => r.id),
              seq: after!.seq - before!.seq,
              idx: after!.idx - before!.idx,
            };
            throw rollback;
          })
          .catch((err: unknown) => {
            if (err !== rollback) throw err;
          });
        // The endpoint's 4 slots: the two due retries, then the two oldest new deliveries.
        expect(seen!.claimed.sort(), `analyzed: ${analyzed}`).toEqual([id(1), id(2), id(BACKLOG * 2 + 1), id(BACKLOG * 2 + 2)]);
        // The counters work here (the claim read its rows) and stay far below the 6,002 rows waiting.
        expect(seen!.seq + seen!.idx, `analyzed: ${analyzed}`).toBeGreaterThanOrEqual(4);
        expect(seen!.seq, `analyzed: ${analyzed}`).toBe(0);
        expect(seen!.idx, `analyzed: ${analyzed}`).toBeLessThan(200);
      }
      // The minutely sweep's "stranded" list: due before its cut-off (new ones created before it).
      const repo = new WebhookRepository(svc.core.prisma, svc.core.db);
      const sweep = async (dueBefore: string) => new Set(await repo.listStrandedDeliveries(new Date(dueBefore), new Date(minutes(-1)), 10_000));
      const early = await sweep(minutes(-7));
      expect([id(1), id(BACKLOG + 1), id(BACKLOG * 2 + 1), id(BACKLOG * 2 + 2)].map((x) => early.has(x))).toEqual([false, false, false, true]);
      const late = await sweep(minutes(1));
      expect([id(1), id(BACKLOG), id(BACKLOG + 1), id(BACKLOG * 2 + 1), id(BACKLOG * 2 + 2)].map((x) => late.has(x))).toEqual([true, true, false, true, true]);

      // The idle probe (is anything due at all?) with every delivery retrying later: bounded
      // lookups, not a walk over the 6,000 (the probe before 2026-12-06 read them all, each wake-up).
      await svc.core.prisma.$executeRawUnsafe(`UPDATE webhook_deliveries SET status = 'failed', "nextAttemptAt" = $1::timestamp WHERE status IN ('pending', 'failed')`, minutes(60));
      await svc.core.prisma.$executeRawUnsafe(`UPDATE webhook_deliveries SET "lastAttemptAt" = $1::timestamp WHERE status = 'delivering'`, now.toISOString());
      // (What autovacuum does after such an update: the index entries of the old row versions go.)
      await svc.core.prisma.$executeRawUnsafe('VACUUM webhook_deliveries');
      const probes: Array<{ due: boolean; reads: number }> = [];
      const probe = async () => {
        await svc.core.prisma.$transaction(async (tx) => {
          const [before] = await tx.$queryRawUnsafe<Array<{ seq: number; idx: number }>>(READS_SQL);
          const [r] = await tx.$queryRawUnsafe<Array<{ due: boolean }>>('SELECT mbc_webhook_any_due($1::timestamp, $2::timestamp) AS due', now.toISOString(), minutes(-1));
          const [after] = await tx.$queryRawUnsafe<Array<{ seq: number; idx: number }>>(READS_SQL);
          probes.push({ due: r!.due, reads: after!.seq + after!.idx - before!.seq - before!.idx });
        });
      };
      await probe();
      await svc.core.prisma.$executeRawUnsafe(`UPDATE webhook_deliveries SET "nextAttemptAt" = $1::timestamp WHERE id = $2`, minutes(-1), id(BACKLOG + 7));
      await probe();
      expect(probes.map((p) => p.due)).toEqual([false, true]);
      expect(probes[0]!.reads).toBeLessThan(20);
    } finally {
      // Out of the way of the other tests' claims.
      await svc.core.prisma.webhookEndpoint.update({ where: { id: endpointId }, data: { deletedAt: new Date() } });
    }
  });
});

describe('keep-alive connections', () => {
  it('reuses a connection for the same pinned target, and never one opened for other addresses', async () => {
    const ports: number[] = [];
    const server = http.createServer((req, res) => {
      ports.push(req.socket.remotePort!);
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const send = createWebhookSender({ version: 't' });
    try {
      const policy = { production: false, allowHosts: ['*.internal.test'] };
      const pinnedA = await checkWebhookUrl(`http://hooks.internal.test:${port}/a`, { ...policy, resolver: async () => [{ address: '127.0.0.1', family: 4 }] });
      for (let i = 0; i < 3; i++) expect(await send({ target: pinnedA, headers: {}, body: '{}' })).toMatchObject({ ok: true, status: 204 });
      expect(new Set(ports).size).toBe(1);
      // The host now resolves to another address list: a new connection, and the old one is not reused.
      const pinnedB = await checkWebhookUrl(`http://hooks.internal.test:${port}/b`, {
        ...policy,
        resolver: async () => [
          { address: '127.0.0.1', family: 4 },
          { address: '127.0.0.3', family: 4 },
        ],
      });
      expect(await send({ target: pinnedB, headers: {}, body: '{}' })).toMatchObject({ ok: true, status: 204 });
      expect(ports[3]).not.toBe(ports[0]);
      // A receiver that closes idle connections: the next attempt still succeeds (fresh connection).
      server.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
      expect(await send({ target: pinnedB, headers: {}, body: '{}' })).toMatchObject({ ok: true, status: 204 });
      expect(ports).toHaveLength(5);
    } finally {
      send.close?.();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('fan-out of committed events (dispatchCommitted)', () => {
  /** The milliseconds an id carries (its first 48 bits). */
  const idTime = (id: string): number => {
    let v = 0n;
    for (const c of id.slice(id.indexOf('_') + 1)) v = (v << 5n) | BigInt('0123456789ABCDEFGHJKMNPQRSTVWXYZ'.indexOf(c));
    return Number(v >> 82n);
  };

  const deliveriesOf = (eventIds: string[]) =>
    svc.core.prisma.webhookDelivery.findMany({ where: { eventId: { in: eventIds } }, select: { id: true, eventId: true, endpointId: true, tenantId: true, status: true, createdAt: true } });

  it('one statement: each event to the enabled, undeleted endpoints of its tenant subscribed to its type, with ids of the connector’s format; the events are marked dispatched', async ({ skip }) => {
    if (svc.core.db.kind !== 'postgres') skip('the one-statement fan-out is the Postgres path; the embedded database fans out through Prisma (webhooks tests)');
    // Events other tests of this file left undispatched are not this test's.
    await svc.core.prisma.outboxEvent.updateMany({ where: { dispatchedAt: null }, data: { dispatchedAt: new Date() } });
    const a = (await svc.createTenant()).tenantId;
    const b = (await svc.createTenant()).tenantId;
    const all = await createEndpoint(a);
    const disconnected = await createEndpoint(a, { events: ['mailbox.disconnected'] });
    await createEndpoint(a, { enabled: false });
    await createEndpoint(a, { deletedAt: new Date() });
    const connected = await createEndpoint(a, { events: ['mailbox.connected'] });
    const other = await createEndpoint(b);
    const [r1, r2, c1] = await commitEvents(a, ['mailbox.disconnected', 'mailbox.disconnected', 'mailbox.connected']);
    const [c2] = await commitEvents(b, ['mailbox.connected']);
    const now = new Date(Date.now() + 1000);
    const repo = new WebhookRepository(svc.core.prisma, svc.core.db);

    expect(await repo.dispatchCommitted(now, 500)).toEqual({ events: 4, created: 7 });
    const rows = await deliveriesOf([r1!, r2!, c1!, c2!]);
    const pairs = rows.map((d) => `${d.eventId}>${d.endpointId}`).sort();
    expect(pairs).toEqual([`${r1}>${all}`, `${r1}>${disconnected}`, `${r2}>${all}`, `${r2}>${disconnected}`, `${c1}>${all}`, `${c1}>${connected}`, `${c2}>${other}`].sort());
    for (const d of rows) {
      expect(isId('delivery', d.id)).toBe(true);
      expect(idTime(d.id)).toBe(now.getTime());
      expect(d).toMatchObject({ status: 'pending', createdAt: now });
    }
    expect(new Set(rows.map((d) => d.id)).size).toBe(7);
    expect(rows.find((d) => d.eventId === c2)?.tenantId).toBe(b);
    const events = await svc.core.prisma.outboxEvent.findMany({ where: { id: { in: [r1!, r2!, c1!, c2!] } }, select: { dispatchedAt: true } });
    expect(events.map((e) => e.dispatchedAt)).toEqual([now, now, now, now]);
    // Nothing left: the same statement is the idle probe.
    expect(await repo.dispatchCommitted(now, 500)).toEqual({ events: 0, created: 0 });
    // An event created after `now` waits for a later call.
    const [late] = await commitEvents(b, ['mailbox.connected']);
    await svc.core.prisma.outboxEvent.update({ where: { id: late! }, data: { createdAt: new Date(now.getTime() + 60_000) } });
    expect(await repo.dispatchCommitted(now, 500)).toEqual({ events: 0, created: 0 });
    expect(await repo.dispatchCommitted(new Date(now.getTime() + 60_000), 500)).toEqual({ events: 1, created: 1 });
    expect(await deliveriesOf([late!])).toHaveLength(1);
  });

  it('workers fanning out at once split the events: each event once, one delivery per endpoint', async ({ skip }) => {
    if (svc.core.db.kind !== 'postgres') skip('the one-statement fan-out is the Postgres path');
    await svc.core.prisma.outboxEvent.updateMany({ where: { dispatchedAt: null }, data: { dispatchedAt: new Date() } });
    const t = (await svc.createTenant()).tenantId;
    const endpoints = [await createEndpoint(t), await createEndpoint(t)];
    const ids = await commitEvents(t, Array.from({ length: 60 }, () => 'mailbox.connected' as const));
    const now = new Date(Date.now() + 1000);
    const repos = Array.from({ length: 4 }, () => new WebhookRepository(svc.core.prisma, svc.core.db));
    let events = 0;
    let created = 0;
    for (;;) {
      const rounds = await Promise.all(repos.map((r) => r.dispatchCommitted(now, 7)));
      const taken = rounds.reduce((s, x) => s + x!.events, 0);
      events += taken;
      created += rounds.reduce((s, x) => s + x!.created, 0);
      if (taken === 0) break;
    }
    expect({ events, created }).toEqual({ events: 60, created: 120 });
    const rows = await deliveriesOf(ids);
    expect(rows).toHaveLength(120);
    expect(new Set(rows.map((d) => `${d.eventId}>${d.endpointId}`)).size).toBe(120);
    expect(new Set(rows.map((d) => d.endpointId))).toEqual(new Set(endpoints));
  });
});

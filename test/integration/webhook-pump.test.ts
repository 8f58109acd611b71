// The delivery pump's building blocks against the real database: batch claims between competing
// workers (no double claim, per-endpoint limit held across claimers), batched result writes, and
// keep-alive connections that never outlive the egress check that pinned them.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/storage/ids.js';
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

async function endpointWithDeliveries(count: number): Promise<{ tenantId: string; endpointId: string }> {
  const t = await svc.createTenant();
  const endpointId = newId('webhookEndpoint');
  const secretEnc = await svc.core.dataKeys.encryptFor({ type: 'tenant', id: t.tenantId }, generateWebhookSecret(), ENDPOINT_SECRET_AAD(endpointId));
  await svc.core.prisma.webhookEndpoint.create({ data: { id: endpointId, tenantId: t.tenantId, url: 'http://127.0.0.1:9/hooks', secretEnc: new Uint8Array(secretEnc) } });
  const mbx = await seedMailbox(svc.core, t.tenantId);
  const outbox = new OutboxService({ repo: new OutboxRepository(svc.core.prisma), dataKeys: svc.core.dataKeys, clock: svc.core.clock });
  const events = await svc.core.prisma.$transaction(async (tx) => {
    const out = [];
    for (let i = 0; i < count; i++) out.push(await outbox.appendEvent(tx, { tenantId: t.tenantId, mailboxId: mbx.id, type: 'mailbox.connected' }));
    return out;
  });
  const repo = new WebhookRepository(svc.core.prisma, svc.core.db);
  await repo.insertDeliveries(events.map((e) => ({ tenantId: t.tenantId, eventId: e.id, endpointId })));
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

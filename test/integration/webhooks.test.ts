import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhooksSettled } from '../helpers/settled.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { emit, seedMailbox, seedMessage, startReceiver, waitFor, type ReceivedRequest } from './webhooks-seed.js';

// Retries every ~300 ms instead of Svix's hours: 1 attempt + 3 retries, then dead.
const SCHEDULE = '300,300,300';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService({ env: { WEBHOOK_RETRY_SCHEDULE_MS: SCHEDULE, WEBHOOK_ENDPOINT_CONCURRENCY: '2' } });
});
afterAll(async () => {
  await svc?.close();
});

async function tenantWithEndpoint(url: string, events?: string[]) {
  const t = await svc.createTenant();
  const res = await svc.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url, ...(events ? { events } : {}) });
  expect(res.status).toBe(201);
  return { ...t, endpointId: res.body.id as string, secret: res.body.secret as string };
}

function verify(secret: string, r: ReceivedRequest): Record<string, unknown> {
  return new Webhook(secret).verify(r.body, r.headers) as Record<string, unknown>;
}

async function eventStatus(apiKey: string, eventId: string) {
  return (await svc.api(apiKey, 'GET', `/v1/events/${eventId}`)).body;
}

describe('webhook endpoints', () => {
  it('shows the whsec_ secret once, stores it encrypted, and never lists it', async () => {
    const rx = await startReceiver();
    try {
      const t = await tenantWithEndpoint(rx.url, ['message.received']);
      expect(t.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
      const one = await svc.api(t.apiKey, 'GET', `/v1/webhook-endpoints/${t.endpointId}`);
      expect(one.status).toBe(200);
      expect(one.body).toMatchObject({ id: t.endpointId, url: rx.url, events: ['message.received'], enabled: true });
      expect(JSON.stringify(one.body)).not.toContain(t.secret);
      const list = await svc.api(t.apiKey, 'GET', '/v1/webhook-endpoints');
      expect(list.body.data.map((e: { id: string }) => e.id)).toEqual([t.endpointId]);
      expect(JSON.stringify(list.body)).not.toContain('whsec_');
      const row = await svc.core.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: t.endpointId } });
      expect(Buffer.from(row.secretEnc).toString('latin1')).not.toContain(t.secret.slice(6, 20));

      const patched = await svc.api(t.apiKey, 'PATCH', `/v1/webhook-endpoints/${t.endpointId}`, { events: [], description: 'tickets' });
      expect(patched.body).toMatchObject({ events: [], description: 'tickets' });
      const bad = await svc.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url: rx.url, events: ['message.unknown'] });
      expect(bad.status).toBe(400);
      const del = await svc.api(t.apiKey, 'DELETE', `/v1/webhook-endpoints/${t.endpointId}`);
      expect(del.body).toEqual({ id: t.endpointId, object: 'webhook_endpoint', deleted: true });
      expect((await svc.api(t.apiKey, 'GET', `/v1/webhook-endpoints/${t.endpointId}`)).status).toBe(404);
    } finally {
      await rx.close();
    }
  });
});

describe('delivery', () => {
  it('delivers message.received built from encrypted storage, signed, verifiable with standardwebhooks', async () => {
    const rx = await startReceiver();
    try {
      const t = await tenantWithEndpoint(rx.url);
      const mbx = await seedMailbox(svc.core, t.tenantId);
      const msg = await seedMessage(svc.core, t.tenantId, mbx.id, { attachments: [{ filename: 'invoice.pdf', bytes: Buffer.from('%PDF-1.4 test'), scanStatus: 'clean' }] });
      const [ev] = await emit(svc.core, [{ tenantId: t.tenantId, mailboxId: mbx.id, type: 'message.received', refs: { messageId: msg.id } }]);
      await waitFor(() => rx.received.length >= 1, 15_000, 'delivery');
      const r = rx.received[0]!;
      expect(r.headers['webhook-id']).toBe(ev!.id);
      const body = verify(t.secret, r);
      expect(body).toMatchObject({ id: ev!.id, type: 'message.received', tenantId: t.tenantId, mailboxId: mbx.id, sequence: Number(ev!.sequence) });
      expect(body.data).toEqual({
        messageId: msg.id,
        threadKey: `thr_${msg.id}`,
        providerThreadId: `t-${msg.id}`,
        internetMessageId: msg.content.internetMessageId,
        inReplyTo: null,
        references: [],
        from: msg.content.from,
        to: msg.content.to,
        cc: [],
        replyTo: [],
        subject: msg.content.subject,
        date: msg.content.date,
        text: msg.content.text,
        html: null,
        safeHtml: null,
        // A row stored before reply extraction existed: computed on delivery (no quote: the whole text).
        replyText: msg.content.text,
        signature: null,
        forwarded: null,
        isAutoReply: false,
        isBounce: false,
        origin: 'live',
        oversize: false,
        parseError: null,
        attachments: [{ id: msg.attachmentIds[0], filename: 'invoice.pdf', contentType: 'application/pdf', size: 13, contentId: null, isInline: false, scanStatus: 'clean' }],
      });
      const status = await waitFor(async () => {
        const e = await eventStatus(t.apiKey, ev!.id);
        return e.status === 'delivered' && e;
      });
      expect(status.deliveries).toHaveLength(1);
      expect(status.deliveries[0]).toMatchObject({ endpointId: t.endpointId, status: 'delivered', attempts: 1, lastStatus: 204 });
      expect(status.deliveries[0].attemptLog).toHaveLength(1);
      // Neither the payload nor the subject ever reaches a log line or the delivery log.
      const logs = svc.logs.join('\n');
      expect(logs).not.toContain(msg.content.subject);
      expect(logs).not.toContain(msg.content.text!);
      expect(JSON.stringify(status)).not.toContain(msg.content.subject);
      // Nothing readable in the outbox row either.
      const row = await svc.core.prisma.outboxEvent.findUniqueOrThrow({ where: { id: ev!.id } });
      expect(JSON.stringify(row.refs)).not.toContain(msg.content.subject);
    } finally {
      await rx.close();
    }
  });

  it('message.received says whether the message is imported history (origin) and carries the reply without its quote', async () => {
    const rx = await startReceiver();
    try {
      const t = await tenantWithEndpoint(rx.url, ['message.received']);
      const mbx = await seedMailbox(svc.core, t.tenantId);
      const text = 'Thanks, that fixed it.\n\nBest regards,\nAda\n\nOn Mon, Dec 1, 2026 at 10:00 AM, Support <support@acme.test> wrote:\n> Did the update help?\n';
      const msg = await seedMessage(svc.core, t.tenantId, mbx.id, { text });
      await svc.core.prisma.message.update({ where: { id: msg.id }, data: { origin: 'backfill' } });
      await emit(svc.core, [{ tenantId: t.tenantId, mailboxId: mbx.id, type: 'message.received', refs: { messageId: msg.id } }]);
      await waitFor(() => rx.received.length >= 1, 15_000, 'delivery');
      const body = verify(t.secret, rx.received[0]!) as { data: Record<string, unknown> };
      expect(body.data).toMatchObject({ origin: 'backfill', replyText: 'Thanks, that fixed it.\n\nBest regards,\nAda', signature: 'Best regards,\nAda', forwarded: null, text });
    } finally {
      await rx.close();
    }
  });

  it('numbers events per mailbox so the receiver can order them', async () => {
    const rx = await startReceiver();
    try {
      const t = await tenantWithEndpoint(rx.url, ['mailbox.connected', 'mailbox.reauth_required']);
      const mbx = await seedMailbox(svc.core, t.tenantId);
      const evs = await emit(svc.core, [
        { tenantId: t.tenantId, mailboxId: mbx.id, type: 'mailbox.connected' },
        { tenantId: t.tenantId, mailboxId: mbx.id, type: 'mailbox.reauth_required', data: { reason: 'invalid_grant' } },
      ]);
      expect(evs.map((e) => Number(e.sequence))).toEqual([1, 2]);
      await waitFor(() => rx.received.length >= 2);
      const bodies = rx.received.map((r) => verify(t.secret, r)).sort((a, b) => (a.sequence as number) - (b.sequence as number));
      expect(bodies.map((b) => b.type)).toEqual(['mailbox.connected', 'mailbox.reauth_required']);
      expect(bodies[0]!.data).toMatchObject({ mailboxId: mbx.id, provider: 'google', address: mbx.address });
      expect(bodies[1]!.data).toMatchObject({ reason: 'invalid_grant' });
    } finally {
      await rx.close();
    }
  });

  it('a receiver that fails for a while gets every event, with the same webhook-id on every retry', async () => {
    // Down for the first two attempts of every event, then healthy.
    const seen = new Map<string, number>();
    const rx = await startReceiver((r) => {
      const n = (seen.get(r.headers['webhook-id']!) ?? 0) + 1;
      seen.set(r.headers['webhook-id']!, n);
      return n <= 2 ? 503 : 200;
    });
    try {
      const t = await tenantWithEndpoint(rx.url);
      const mbx = await seedMailbox(svc.core, t.tenantId);
      const evs = await emit(svc.core, [1, 2, 3].map(() => ({ tenantId: t.tenantId, mailboxId: mbx.id, type: 'mailbox.connected' as const })));
      const ids = evs.map((e) => e.id);
      await waitFor(async () => {
        const all = await Promise.all(ids.map((id) => eventStatus(t.apiKey, id)));
        return all.every((e) => e.status === 'delivered');
      }, 20_000, 'all delivered');
      for (const id of ids) {
        const forEvent = rx.received.filter((r) => r.headers['webhook-id'] === id);
        expect(forEvent).toHaveLength(3); // two failures, then delivered — and nothing after
        for (const r of forEvent) expect(verify(t.secret, r).id).toBe(id);
      }
      const detail = await eventStatus(t.apiKey, ids[0]!);
      expect(detail.deliveries[0].attemptLog.map((a: { statusCode: number }) => a.statusCode)).toContain(503);
      expect(detail.deliveries[0].attemptLog.at(-1).statusCode).toBe(200);
    } finally {
      await rx.close();
    }
  });

  it('after the schedule an event is dead, listed as dead, and replay delivers it with the same webhook-id', async () => {
    let up = false;
    const rx = await startReceiver(() => (up ? 200 : 500));
    try {
      const t = await tenantWithEndpoint(rx.url);
      const mbx = await seedMailbox(svc.core, t.tenantId);
      const [ev] = await emit(svc.core, [{ tenantId: t.tenantId, mailboxId: mbx.id, type: 'mailbox.disconnected', data: { reason: 'customer' } }]);
      const dead = await waitFor(async () => {
        const e = await eventStatus(t.apiKey, ev!.id);
        return e.status === 'dead' && e;
      }, 20_000, 'dead');
      expect(dead.deliveries[0].attempts).toBe(4);
      expect(dead.deliveries[0].attemptLog).toHaveLength(4);
      const list = await svc.api(t.apiKey, 'GET', '/v1/events?status=dead');
      expect(list.body.data.map((e: { id: string }) => e.id)).toEqual([ev!.id]);
      expect((await svc.api(t.apiKey, 'GET', '/v1/events?status=delivered')).body.data).toEqual([]);

      up = true;
      const before = rx.received.length;
      const replay = await svc.api(t.apiKey, 'POST', `/v1/events/${ev!.id}/replay`, {});
      expect(replay.status).toBe(202);
      expect(replay.body.deliveries).toHaveLength(1);
      await waitFor(async () => (await eventStatus(t.apiKey, ev!.id)).status === 'delivered', 15_000, 'replayed');
      const after = rx.received.slice(before);
      expect(after).toHaveLength(1);
      expect(after[0]!.headers['webhook-id']).toBe(ev!.id);
      expect(verify(t.secret, after[0]!)).toMatchObject({ id: ev!.id, type: 'mailbox.disconnected', data: { reason: 'customer' } });
      expect((await svc.api(t.apiKey, 'GET', '/v1/events?status=dead')).body.data).toEqual([]);
      // The replay is in the tenant's audit trail.
      const audit = await svc.api(t.apiKey, 'GET', '/v1/audit');
      expect(audit.body.data.some((a: { action: string; targetId: string }) => a.action === 'event.replayed' && a.targetId === ev!.id)).toBe(true);
    } finally {
      await rx.close();
    }
  });

  it('410 Gone disables the endpoint and stops deliveries to it', async () => {
    const rx = await startReceiver(() => 410);
    try {
      const t = await tenantWithEndpoint(rx.url);
      const mbx = await seedMailbox(svc.core, t.tenantId);
      const [ev] = await emit(svc.core, [{ tenantId: t.tenantId, mailboxId: mbx.id, type: 'mailbox.connected' }]);
      await waitFor(async () => (await svc.api(t.apiKey, 'GET', `/v1/webhook-endpoints/${t.endpointId}`)).body.enabled === false, 15_000, 'disabled');
      const ep = await svc.api(t.apiKey, 'GET', `/v1/webhook-endpoints/${t.endpointId}`);
      expect(ep.body.disabledReason).toBe('receiver_gone_410');
      expect((await eventStatus(t.apiKey, ev!.id)).deliveries[0].attempts).toBe(1);
      await emit(svc.core, [{ tenantId: t.tenantId, mailboxId: mbx.id, type: 'mailbox.connected' }]);
      // The new event is fanned out and nothing is left to deliver: none went to the disabled endpoint.
      await webhooksSettled(svc.core, { tenantId: t.tenantId });
      expect(rx.received).toHaveLength(1);
    } finally {
      await rx.close();
    }
  });

  it('while a secret is rotated both secrets sign, and each verifies on its own', async () => {
    const rx = await startReceiver();
    try {
      const t = await tenantWithEndpoint(rx.url);
      const rotated = await svc.api(t.apiKey, 'POST', `/v1/webhook-endpoints/${t.endpointId}/rotate-secret`);
      expect(rotated.status).toBe(200);
      const newSecret = rotated.body.secret as string;
      expect(newSecret).not.toBe(t.secret);
      expect(Date.parse(rotated.body.previousSecretExpiresAt) - Date.now()).toBeGreaterThan(23 * 3_600_000);
      const mbx = await seedMailbox(svc.core, t.tenantId);
      await emit(svc.core, [{ tenantId: t.tenantId, mailboxId: mbx.id, type: 'mailbox.connected' }]);
      await waitFor(() => rx.received.length >= 1);
      const r = rx.received[0]!;
      expect(r.headers['webhook-signature']!.split(' ')).toHaveLength(2);
      expect(verify(newSecret, r).type).toBe('mailbox.connected');
      expect(verify(t.secret, r).type).toBe('mailbox.connected');
      expect(() => new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(r.body, r.headers)).toThrow();
    } finally {
      await rx.close();
    }
  });

  it('cancels a content event whose message was purged instead of sending it half-empty', async () => {
    const rx = await startReceiver();
    try {
      const t = await tenantWithEndpoint(rx.url, ['message.received']);
      const mbx = await seedMailbox(svc.core, t.tenantId);
      const msg = await seedMessage(svc.core, t.tenantId, mbx.id);
      await svc.core.dataKeys.destroy({ type: 'mailbox', id: mbx.id });
      const [ev] = await emit(svc.core, [{ tenantId: t.tenantId, mailboxId: mbx.id, type: 'message.received', refs: { messageId: msg.id } }]);
      const e = await waitFor(async () => {
        const s = await eventStatus(t.apiKey, ev!.id);
        return s.status === 'cancelled' && s;
      }, 15_000, 'cancelled');
      expect(e.deliveries[0].attemptLog).toEqual([]);
      expect(rx.received).toHaveLength(0);
    } finally {
      await rx.close();
    }
  });

  it('a slow endpoint holds at most its concurrency limit and does not delay another endpoint', async () => {
    // The slow receiver holds every request until the test opens the gate, so "not delayed" is
    // shown by order — the fast endpoint gets everything while the slow one has finished nothing —
    // not by a wall-clock budget that a loaded machine could miss.
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const slow = await startReceiver(async () => {
      await gate;
      return 200;
    });
    const fast = await startReceiver();
    try {
      const a = await tenantWithEndpoint(slow.url);
      const b = await tenantWithEndpoint(fast.url);
      const ma = await seedMailbox(svc.core, a.tenantId);
      const mb = await seedMailbox(svc.core, b.tenantId);
      await emit(svc.core, Array.from({ length: 6 }, () => ({ tenantId: a.tenantId, mailboxId: ma.id, type: 'mailbox.connected' as const })));
      // The slow endpoint is saturated: its limit's worth of requests are held open.
      await waitFor(() => slow.received.length >= 2, 15_000, 'slow endpoint saturated');
      await emit(svc.core, Array.from({ length: 3 }, () => ({ tenantId: b.tenantId, mailboxId: mb.id, type: 'mailbox.connected' as const })));
      await waitFor(() => fast.received.length >= 3, 15_000, 'fast endpoint');
      // Everything for the fast endpoint arrived while no slow request had completed, and the slow
      // endpoint never had more requests open than its limit.
      expect(slow.received.length).toBeLessThanOrEqual(2);
      expect(slow.maxInFlight).toBeLessThanOrEqual(2);
      openGate();
      await waitFor(() => slow.received.length >= 6, 30_000, 'slow endpoint');
      expect(slow.maxInFlight).toBeLessThanOrEqual(2);
    } finally {
      openGate();
      await slow.close();
      await fast.close();
    }
  });

  // Last: a replay by time also re-sends earlier tests' events (to their closed receivers).
  it('ops replay (`events replay --since`) redelivers every event since a time with the same webhook-id', async () => {
    const rx = await startReceiver();
    try {
      const t = await tenantWithEndpoint(rx.url);
      const mbx = await seedMailbox(svc.core, t.tenantId);
      const since = new Date(Date.now() - 1000).toISOString();
      const evs = await emit(svc.core, [1, 2].map(() => ({ tenantId: t.tenantId, mailboxId: mbx.id, type: 'mailbox.connected' as const })));
      await waitFor(() => rx.received.length >= 2);
      const admin = await svc.core.apiKeys.issue({ admin: true });
      const res = await svc.api(admin.key, 'POST', '/v1/admin/ops/events.replay', { since });
      expect(res.status).toBe(200);
      expect(res.body.result.deliveries).toBeGreaterThanOrEqual(2);
      await waitFor(() => rx.received.length >= 4, 15_000, 'replayed');
      for (const ev of evs) {
        const got = rx.received.filter((r) => r.headers['webhook-id'] === ev.id);
        expect(got).toHaveLength(2);
        for (const r of got) expect(verify(t.secret, r).id).toBe(ev.id);
      }
      const one = await svc.api(admin.key, 'POST', '/v1/admin/ops/events.replay', { eventId: 'evt_missing' });
      expect(one.status).toBe(404);
    } finally {
      await rx.close();
    }
  });
});

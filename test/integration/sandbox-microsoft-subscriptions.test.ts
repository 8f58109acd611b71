import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProviderError } from '../../src/providers/provider-error.js';
import { GraphSubscriptionsAdapter } from '../../src/providers/microsoft/graph-subscriptions.adapter.js';
import { sandboxMicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { waitUntil } from '../helpers/wait.js';

interface Received {
  path: string;
  body: { value: Array<Record<string, unknown>> };
  at: number;
}

/** The connector side of the webhook: echoes validation tokens, records notifications. */
class Receiver {
  received: Received[] = [];
  validationMode: 'correct' | 'encoded' | 'wrong-status' = 'correct';
  /** Delay (ms) before acknowledging the next N change notifications. */
  slowAcks: number[] = [];
  private server: Server | undefined;
  base = '';

  async start(): Promise<void> {
    const app = express();
    app.use(express.text({ type: 'text/plain' }), express.json());
    app.post(['/notify', '/lifecycle'], async (req, res) => {
      const token = req.query.validationToken;
      if (typeof token === 'string') {
        if (this.validationMode === 'wrong-status') return res.status(202).type('text/plain').send(token);
        return res.status(200).type('text/plain').send(this.validationMode === 'encoded' ? encodeURIComponent(token) : token);
      }
      this.received.push({ path: req.path, body: req.body as Received['body'], at: Date.now() });
      const delay = req.path === '/notify' ? this.slowAcks.shift() : undefined;
      if (delay) await new Promise((r) => setTimeout(r, delay));
      res.status(202).end();
    });
    this.server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async waitFor(pred: (r: Received[]) => boolean, timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred(this.received)) {
      if (Date.now() > end) throw new Error('timed out waiting for notifications');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}

let sb: MicrosoftSandbox;
const rx = new Receiver();
const EMAIL = 'support@contoso.test';
let subs: GraphSubscriptionsAdapter;

beforeAll(async () => {
  // Graph waits 3 s for an ack and retries for hours; here 1 s (room for a busy CI box) and two quick retries.
  sb = await startMicrosoftSandbox({ notifications: { ackTimeoutMs: 1000, retryDelaysMs: [100, 200], validationTimeoutMs: 2000 } });
  await rx.start();
  sb.createUser(EMAIL);
  const token = sb.issueAccessToken(EMAIL);
  subs = new GraphSubscriptionsAdapter({ endpoints: sandboxMicrosoftEndpoints(sb), accessToken: async () => token });
});
afterAll(async () => {
  await sb?.close();
  await rx.stop();
});

const inAnHour = (): Date => new Date(Date.now() + 3600_000);
const raw = (n: number): Buffer => Buffer.from(`From: c@fabrikam.test\r\nTo: ${EMAIL}\r\nSubject: n${n}\r\nMessage-ID: <n${n}@fabrikam.test>\r\n\r\nhello\r\n`);

describe('Graph subscriptions against the stand-in', () => {
  it('validates both URLs with the handshake, creates (201), and notifies new inbox mail with the documented body', async () => {
    rx.received = [];
    const created = await subs.create({ notificationUrl: `${rx.base}/notify`, lifecycleNotificationUrl: `${rx.base}/lifecycle`, clientState: 'cs-secret-1', expiresAt: inAnHour() });
    expect(created.subscriptionId).toMatch(/[0-9a-f-]{36}/);
    expect(Math.abs(created.expiresAt.getTime() - inAnHour().getTime())).toBeLessThan(60_000);
    expect(sb.subscriptions().find((s) => s.id === created.subscriptionId)).toMatchObject({ email: EMAIL, deleted: false });

    const d = await sb.deliver(EMAIL, raw(1));
    await rx.waitFor((r) => r.some((x) => x.path === '/notify'));
    const n = rx.received.find((x) => x.path === '/notify')?.body.value[0];
    expect(n).toMatchObject({ subscriptionId: created.subscriptionId, clientState: 'cs-secret-1', changeType: 'created', tenantId: sb.tenantId });
    expect(n?.resourceData).toMatchObject({ '@odata.type': '#Microsoft.Graph.Message', id: d.id });
    expect(String(n?.resource)).toContain(d.id);

    await subs.delete(created.subscriptionId);
  });

  it('fails creation with ValidationError when the endpoint echoes an encoded token or a wrong status', async () => {
    for (const mode of ['encoded', 'wrong-status'] as const) {
      rx.validationMode = mode;
      const err = await subs.create({ notificationUrl: `${rx.base}/notify`, lifecycleNotificationUrl: `${rx.base}/lifecycle`, clientState: 'x', expiresAt: inAnHour() }).catch((e: unknown) => e);
      expect(isProviderError(err, 'invalid_request')).toBe(true);
      expect(err).toMatchObject({ status: 400, reason: 'ValidationError' });
    }
    rx.validationMode = 'correct';
  });

  it('rejects an expiry beyond 10,080 minutes and a clientState over 128 characters (stand-in and adapter)', async () => {
    const token = sb.issueAccessToken(EMAIL);
    const post = (body: Record<string, unknown>) =>
      fetch(`${sb.graphBaseUrl}/v1.0/subscriptions`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const base = { changeType: 'created', notificationUrl: `${rx.base}/notify`, resource: "/me/mailfolders('inbox')/messages" };
    const far = await post({ ...base, expirationDateTime: new Date(Date.now() + 10_081 * 60_000).toISOString(), clientState: 'x' });
    expect(far.status).toBe(400);
    const longState = await post({ ...base, expirationDateTime: inAnHour().toISOString(), clientState: 'x'.repeat(129) });
    expect(longState.status).toBe(400);
    await expect(subs.create({ notificationUrl: `${rx.base}/notify`, lifecycleNotificationUrl: `${rx.base}/lifecycle`, clientState: 'x', expiresAt: new Date(Date.now() + 10_081 * 60_000) })).rejects.toMatchObject({ kind: 'invalid_request' });
  });

  it('re-sends a notification that was not acknowledged in time, and drops when told to', async () => {
    const created = await subs.create({ notificationUrl: `${rx.base}/notify`, lifecycleNotificationUrl: `${rx.base}/lifecycle`, clientState: 'retry', expiresAt: inAnHour() });
    rx.received = [];
    rx.slowAcks = [1500];
    const d = await sb.deliver(EMAIL, raw(2));
    await rx.waitFor((r) => r.filter((x) => x.path === '/notify').length >= 2);
    const forMsg = rx.received.filter((x) => (x.body.value[0]?.resourceData as { id?: string } | undefined)?.id === d.id);
    expect(forMsg.length).toBeGreaterThanOrEqual(2);
    // The stand-in records an attempt once the answer (or the timeout) is in, after the receiver saw it.
    const attempts = () => sb.notificationAttempts().filter((a) => a.subscriptionId === created.subscriptionId && a.kind === 'change');
    const end = Date.now() + 2000;
    while (attempts().length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(attempts().map((a) => a.outcome)).toEqual(['timeout', 202]);

    rx.received = [];
    const earlier = attempts().length;
    sb.dropNotifications(1);
    await sb.deliver(EMAIL, raw(3));
    const d4 = await sb.deliver(EMAIL, raw(4));
    await rx.waitFor((r) => r.length >= 1);
    // Both notifications are accounted for (the stand-in records a drop at once, a delivery once
    // answered; neither is retried): nothing else is on its way to the receiver.
    await waitUntil('both notifications recorded', () => attempts().length >= earlier + 2, { intervalMs: 10 });
    expect(attempts().slice(earlier).map((a) => a.outcome)).toEqual(['dropped', 202]);
    expect(rx.received.map((x) => (x.body.value[0]?.resourceData as { id: string }).id)).toEqual([d4.id]);
    await subs.delete(created.subscriptionId);
  });

  it('delivers lifecycle events with the documented body; subscriptionRemoved deletes the subscription', async () => {
    const created = await subs.create({ notificationUrl: `${rx.base}/notify`, lifecycleNotificationUrl: `${rx.base}/lifecycle`, clientState: 'life', expiresAt: inAnHour() });
    rx.received = [];
    for (const event of ['reauthorizationRequired', 'missed', 'subscriptionRemoved'] as const) sb.sendLifecycleNotification(created.subscriptionId, event);
    await rx.waitFor((r) => r.filter((x) => x.path === '/lifecycle').length === 3);
    const events = rx.received.filter((x) => x.path === '/lifecycle').map((x) => x.body.value[0]);
    expect(events.map((e) => e?.lifecycleEvent).sort()).toEqual(['missed', 'reauthorizationRequired', 'subscriptionRemoved']);
    for (const e of events) expect(e).toMatchObject({ subscriptionId: created.subscriptionId, clientState: 'life', tenantId: sb.tenantId });
    expect(sb.subscriptions().find((s) => s.id === created.subscriptionId)).toMatchObject({ deleted: true, removedBy: 'lifecycle' });
    await expect(subs.renew(created.subscriptionId, inAnHour())).rejects.toMatchObject({ kind: 'not_found' });
  });

  it('renews (200), reauthorizes, deletes (204) and treats a second delete as done', async () => {
    const created = await subs.create({ notificationUrl: `${rx.base}/notify`, lifecycleNotificationUrl: `${rx.base}/lifecycle`, clientState: 'renew', expiresAt: inAnHour() });
    const later = new Date(Date.now() + 3 * 24 * 3600_000);
    const renewed = await subs.renew(created.subscriptionId, later);
    expect(Math.abs(renewed.expiresAt.getTime() - later.getTime())).toBeLessThan(1000);
    await subs.reauthorize(created.subscriptionId);
    expect(sb.subscriptions().find((s) => s.id === created.subscriptionId)?.reauthorizedCount).toBe(1);
    await subs.delete(created.subscriptionId);
    expect(sb.subscriptions().find((s) => s.id === created.subscriptionId)).toMatchObject({ deleted: true, removedBy: 'client' });
    await expect(subs.delete(created.subscriptionId)).resolves.toBeUndefined();
  });
});

describe('sandbox HTTP control API', () => {
  it('creates a user, delivers mail, injects a fault and shows what was sent', async () => {
    const api = (path: string, init: RequestInit = {}) => fetch(`${sb.graphBaseUrl}/_sandbox${path}`, { ...init, headers: { 'content-type': 'application/json' } });
    const user = (await (await api('/users', { method: 'POST', body: JSON.stringify({ email: 'ops@contoso.test' }) })).json()) as { homeAccountId: string };
    expect(user.homeAccountId).toContain(sb.tenantId);
    const delivered = await api(`/users/${encodeURIComponent('ops@contoso.test')}/messages`, { method: 'POST', body: JSON.stringify({ rawMimeBase64: raw(9).toString('base64') }) });
    expect(delivered.status).toBe(201);
    const { accessToken } = (await (await api(`/users/${encodeURIComponent('ops@contoso.test')}/access-token`, { method: 'POST', body: '{}' })).json()) as { accessToken: string };
    expect((await api('/faults', { method: 'POST', body: JSON.stringify({ status: 503, count: 1 }) })).status).toBe(204);
    const faulted = await fetch(`${sb.graphBaseUrl}/v1.0/me`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(faulted.status).toBe(503);
    const ok = await fetch(`${sb.graphBaseUrl}/v1.0/me`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(ok.status).toBe(200);
    const bad = await api('/faults', { method: 'POST', body: JSON.stringify({ status: 'x' }) });
    expect(bad.status).toBe(400);
    const list = (await (await api(`/users/${encodeURIComponent('ops@contoso.test')}/messages`)).json()) as { value: Array<{ subject: string }> };
    expect(list.value.map((m) => m.subject)).toEqual(['n9']);
  });
});

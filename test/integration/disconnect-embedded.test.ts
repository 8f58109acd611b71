// The README's default: no DATABASE_URL, the embedded database (PGlite, one connection) in a data
// folder, SANDBOX=1. Connect a Gmail mailbox through the hosted flow, let sync ingest its mail,
// disconnect it, and the ticket service's webhook receiver gets `mailbox.purged` within 10 s.
// Runs on the embedded database whatever DATABASE_URL says, so the Postgres CI run covers it too.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { access, connectMailbox } from './connect-helpers.js';
import { startReceiver, waitFor, type ReceivedRequest } from './webhooks-seed.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'mbc-embedded-purge-'));
let svc: TestService;
let rx: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  rx = await startReceiver();
  svc = await startTestService({ dataDir, env: { SANDBOX: '1' } });
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await rx?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const EMAIL = 'dora@embedded.example';

function mime(subject: string): Buffer {
  return Buffer.from(
    ['From: Customer <customer@example.org>', `To: ${EMAIL}`, `Subject: ${subject}`, `Message-ID: <${subject.replace(/\W/g, '')}.${Date.now()}@example.org>`, `Date: ${new Date().toUTCString()}`, '', `Body of ${subject}`, ''].join('\r\n'),
  );
}

describe('disconnect on the embedded database', () => {
  it('connect → ingest → DELETE → mailbox.purged delivered to the webhook receiver within 10 s, and the address can be connected again', async () => {
    expect(svc.core.db.kind).toBe('embedded');
    const google = (await access(svc)).settings.sandbox.google!;
    const t = await svc.createTenant();
    const endpoint = await svc.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url: rx.url });
    expect(endpoint.status, JSON.stringify(endpoint.body)).toBe(201);
    const hook = new Webhook(endpoint.body.secret as string);
    const events = (): Array<{ type: string; data: Record<string, unknown> }> =>
      rx.received.map((r: ReceivedRequest) => hook.verify(r.body, r.headers) as { type: string; data: Record<string, unknown> });

    google.createUser(EMAIL);
    google.deliver(EMAIL, mime('Order 1042 arrived damaged'));
    const { result } = await connectMailbox(svc, t.apiKey, 'google', EMAIL);
    expect(result.status, result.html.slice(0, 300)).toBeLessThan(400);
    const mailbox = (await svc.api(t.apiKey, 'GET', '/v1/mailboxes')).body.data[0] as { id: string };

    // Ingest: the backfill stores the message and the receiver is told about it.
    const received = await waitFor(() => events().find((e) => e.type === 'message.received'), 60_000, 'message.received webhook');
    const messageId = received.data.messageId as string;
    expect((await svc.api(t.apiKey, 'GET', `/v1/messages/${messageId}`)).status).toBe(200);

    const started = Date.now();
    const del = await svc.api(t.apiKey, 'DELETE', `/v1/mailboxes/${mailbox.id}`);
    expect(del.status, JSON.stringify(del.body)).toBe(202);
    const purgeId = del.body.purgeId as string;
    const purged = await waitFor(() => events().find((e) => e.type === 'mailbox.purged'), 10_000, 'mailbox.purged webhook');
    const elapsedMs = Date.now() - started;
    expect(elapsedMs).toBeLessThan(10_000);
    expect(purged.data).toMatchObject({ purgeId, status: 'purged', trigger: 'customer' });

    // What the event promises is true: the receipt is complete, the content is gone, and the
    // same address can be connected again.
    expect((await svc.api(t.apiKey, 'GET', `/v1/purges/${purgeId}`)).body).toMatchObject({ status: 'completed', revoke: { status: 'revoked' } });
    expect((await svc.api(t.apiKey, 'GET', `/v1/messages/${messageId}`)).status).toBe(404);
    expect(await svc.core.prisma.message.count({ where: { mailboxId: mailbox.id } })).toBe(0);
    const again = await connectMailbox(svc, t.apiKey, 'google', EMAIL);
    expect(again.result.status, again.result.html.slice(0, 300)).toBeLessThan(400);
    const list = (await svc.api(t.apiKey, 'GET', '/v1/mailboxes')).body.data as Array<{ id: string; status: string }>;
    expect(list).toHaveLength(1);
    expect(list[0]!.id).not.toBe(mailbox.id);
    expect(list[0]!.status).toBe('active');
    console.log(`embedded purge: DELETE → mailbox.purged webhook in ${elapsedMs} ms`);
  }, 180_000);
});

// attachment.scanned (issue 13 item 10): a message delivered while clamd is down carries a
// `pending` attachment; when the rescan completes with a real clamd, attachment.scanned is
// delivered through the outbox, signed, with the new status — once.
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClamdScanner } from '../../src/scan/clamd.scanner.js';
import { clamdUnavailableReason, disposeClamd, startClamd, type ClamdHandle } from '../helpers/clamd.js';
import { missing } from '../helpers/requirements.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { attachmentPart, EICAR, ingestHarness, multipart } from './ingest-harness.js';
import { seedMailbox, startReceiver, waitFor, type ReceivedRequest } from './webhooks-seed.js';

let svc: TestService;
let clamd: ClamdHandle;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let tenant: { tenantId: string; apiKey: string; secret: string };
let mailbox: { id: string; tenantId: string };

interface Delivered {
  id: string;
  type: string;
  sequence: number;
  data: Record<string, unknown>;
}

const delivered = (): Delivered[] => rx.received.map((r: ReceivedRequest) => new Webhook(tenant.secret).verify(r.body, r.headers) as Delivered);
const ofType = (type: string, attachmentId?: string) =>
  delivered().filter((b) => b.type === type && (attachmentId === undefined || b.data.attachmentId === attachmentId || JSON.stringify(b.data.attachments ?? []).includes(attachmentId)));

describe.skipIf(missing('a private clamd', clamdUnavailableReason({ forcePrivate: true })))('attachment.scanned', () => {
  beforeAll(async () => {
    clamd = await startClamd({ forcePrivate: true });
    svc = await startTestService({ env: { WEBHOOK_RETRY_SCHEDULE_MS: '300,300,300' } });
    rx = await startReceiver();
    const t = await svc.createTenant();
    const ep = await svc.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url: rx.url });
    expect(ep.status).toBe(201);
    tenant = { ...t, secret: ep.body.secret as string };
    mailbox = { ...(await seedMailbox(svc.core, tenant.tenantId)), tenantId: tenant.tenantId };
  }, 90_000);
  afterAll(async () => {
    await rx?.close();
    await svc?.close();
    if (clamd) await disposeClamd(clamd);
  });

  const scanner = () => new ClamdScanner({ socket: clamd.socket, streamMaxBytes: clamd.streamMaxBytes ?? undefined });
  const later = () => new Date(Date.now() + 5_000);

  it('pending at delivery (clamd down) → rescan clean → attachment.scanned delivered, signed, with scanStatus clean', async () => {
    const h = ingestHarness(svc.core, { scanner: scanner(), policy: { retryDelaysMs: [1000], maxAttempts: 5 } });
    await clamd.stop();
    let messageId: string;
    let attachmentId: string;
    try {
      const r = await h.run(mailbox, 'scanned-clean', multipart('report while clamd is down', [attachmentPart('report.pdf', Buffer.from('%PDF-1.4 quarterly numbers'), 'application/pdf')]));
      if (r.status !== 'stored') throw new Error('not stored');
      messageId = r.messageId;
      const [att] = await svc.core.prisma.attachment.findMany({ where: { messageId } });
      attachmentId = att!.id;
      const received = await waitFor(() => ofType('message.received').find((b) => b.data.messageId === messageId), 20_000, 'message.received');
      expect(received.data.attachments).toEqual([expect.objectContaining({ id: attachmentId, scanStatus: 'pending' })]);
      expect(ofType('attachment.scanned', attachmentId)).toEqual([]);
    } finally {
      await clamd.start();
    }

    const outcome = await h.rescan(later).run();
    expect(outcome).toMatchObject({ status: 'done', detail: { clean: 1 } });
    const scanned = await waitFor(() => ofType('attachment.scanned', attachmentId)[0], 20_000, 'attachment.scanned');
    expect(scanned.data).toEqual({
      attachmentId,
      messageId,
      filename: 'report.pdf',
      contentType: 'application/pdf',
      size: 26,
      contentId: null,
      isInline: false,
      previousStatus: 'pending',
      scanStatus: 'clean',
      signature: null,
    });
    const received = ofType('message.received').find((b) => b.data.messageId === messageId)!;
    expect(scanned.sequence).toBeGreaterThan(received.sequence);
    // The consumer can fetch it now.
    const content = await svc.api(tenant.apiKey, 'GET', `/v1/attachments/${attachmentId}/content`);
    expect(content.status).toBe(200);
    // Exactly once: another rescan finds nothing pending and emits nothing.
    expect(await h.rescan(later).run()).toMatchObject({ status: 'done', detail: { scanned: 0 } });
    const events = await svc.core.prisma.outboxEvent.findMany({ where: { mailboxId: mailbox.id, type: 'attachment.scanned' } });
    expect(events.filter((e) => (e.refs as { attachmentId?: string }).attachmentId === attachmentId)).toHaveLength(1);
  }, 90_000);

  it('pending → rescan finds EICAR → attachment.infected then attachment.scanned (scanStatus infected, signature)', async () => {
    const h = ingestHarness(svc.core, { scanner: scanner(), policy: { retryDelaysMs: [1000], maxAttempts: 5 } });
    await clamd.stop();
    let attachmentId: string;
    try {
      const r = await h.run(mailbox, 'scanned-infected', multipart('eicar while clamd is down', [attachmentPart('eicar.com', EICAR)]));
      if (r.status !== 'stored') throw new Error('not stored');
      attachmentId = (await svc.core.prisma.attachment.findFirstOrThrow({ where: { messageId: r.messageId } })).id;
    } finally {
      await clamd.start();
    }
    expect(await h.rescan(later).run()).toMatchObject({ status: 'done', detail: { infected: 1 } });
    const scanned = await waitFor(() => ofType('attachment.scanned', attachmentId)[0], 20_000, 'attachment.scanned');
    expect(scanned.data).toMatchObject({ attachmentId, previousStatus: 'pending', scanStatus: 'infected', signature: expect.stringMatching(/eicar/i) });
    const infected = await waitFor(() => ofType('attachment.infected', attachmentId)[0], 20_000, 'attachment.infected');
    expect(infected.sequence).toBe(scanned.sequence - 1);
  }, 90_000);
});

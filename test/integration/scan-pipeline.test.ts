// Scanning inside the full ingest path with a real clamd: infected content never kept (signature
// and event are), clamd down → pending and never served, clamd back → rescanned clean.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClamdScanner } from '../../src/scan/clamd.scanner.js';
import { clamdUnavailableReason, disposeClamd, startClamd, type ClamdHandle } from '../helpers/clamd.js';
import { missing } from '../helpers/requirements.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { attachmentPart, EICAR, ingestHarness, multipart, storedZip } from './ingest-harness.js';
import { seedMailbox } from './webhooks-seed.js';


let svc: TestService;
let clamd: ClamdHandle;
let tenant: { tenantId: string; apiKey: string };
let mailbox: { id: string; tenantId: string };
let n = 0;

const attachmentsOf = (messageId: string) => svc.core.prisma.attachment.findMany({ where: { messageId }, orderBy: { ordinal: 'asc' } });
const download = (id: string) => svc.api(tenant.apiKey, 'GET', `/v1/attachments/${id}/content`);

describe.skipIf(missing('a private clamd', clamdUnavailableReason({ forcePrivate: true })))('ingest with real clamd', () => {
  beforeAll(async () => {
    // A private clamd: the down/up test stops it.
    clamd = await startClamd({ forcePrivate: true, streamMaxLength: '8M' });
    svc = await startTestService({ workers: false });
    tenant = await svc.createTenant();
    mailbox = { ...(await seedMailbox(svc.core, tenant.tenantId)), tenantId: tenant.tenantId };
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
    if (clamd) await disposeClamd(clamd);
  });

  const scanner = () => new ClamdScanner({ socket: clamd.socket, streamMaxBytes: clamd.streamMaxBytes ?? undefined });

  it.each([
    ['plain', () => multipart('plain eicar', [attachmentPart('eicar.com', EICAR), attachmentPart('notes.txt', Buffer.from('hello, clean file'), 'text/plain')])],
    ['zipped', () => multipart('zipped eicar', [attachmentPart('invoice.zip', storedZip('eicar.com', EICAR), 'application/zip'), attachmentPart('notes.txt', Buffer.from('hello, clean file'), 'text/plain')])],
    ['inline', () => multipart('inline eicar', [attachmentPart('logo.png', EICAR, 'image/png', 'inline', 'logo@x'), attachmentPart('notes.txt', Buffer.from('hello, clean file'), 'text/plain')])],
  ])('EICAR %s → infected: signature kept, content discarded, attachment.infected event; the clean file is served', async (_kind, build) => {
    const h = ingestHarness(svc.core, { scanner: scanner() });
    const r = await h.run(mailbox, `eicar-${++n}`, build());
    expect(r.status).toBe('stored');
    if (r.status !== 'stored') return;
    const [bad, good] = await attachmentsOf(r.messageId);
    expect(bad!.scanStatus).toBe('infected');
    expect(bad!.scanSignature).toMatch(/eicar/i);
    expect(bad!.blobId).toBeNull();
    expect(good!.scanStatus).toBe('clean');
    const events = await svc.core.prisma.outboxEvent.findMany({ where: { id: { in: r.eventIds } } });
    expect(events.map((e) => e.type).sort()).toEqual(['attachment.infected', 'message.received']);
    expect(events.find((e) => e.type === 'attachment.infected')!.refs).toMatchObject({ attachmentId: bad!.id, messageId: r.messageId });
    const blocked = await download(bad!.id);
    expect(blocked.status).toBe(409);
    const served = await download(good!.id);
    expect(served.status).toBe(200);
    expect(served.body).toBe('hello, clean file');
    // No blob of the infected file survives anywhere.
    const blobs = await svc.core.prisma.blob.count({ where: { mailboxId: mailbox.id } });
    const referenced = await svc.core.prisma.attachment.count({ where: { mailboxId: mailbox.id, blobId: { not: null } } });
    expect(blobs).toBe(referenced);
  });

  it('EICAR inside an attached message (message/rfc822) → infected', async () => {
    const inner = Buffer.from(
      ['From: inner@example.com', 'To: a@example.com', 'Subject: forwarded', 'Message-ID: <inner-fwd@example.com>', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="in"', '', '--in', 'Content-Type: text/plain', '', 'see attachment', '--in', 'Content-Type: application/octet-stream; name="invoice.com"', 'Content-Disposition: attachment; filename="invoice.com"', 'Content-Transfer-Encoding: base64', '', EICAR.toString('base64'), '--in--', ''].join('\r\n'),
    );
    const raw = multipart('fwd', [{ headers: ['Content-Type: message/rfc822', 'Content-Disposition: attachment; filename="fwd.eml"'], body: inner }]);
    const h = ingestHarness(svc.core, { scanner: scanner() });
    const r = await h.run(mailbox, `eicar-${++n}`, raw);
    expect(r.status).toBe('stored');
    if (r.status !== 'stored') return;
    const atts = await attachmentsOf(r.messageId);
    expect(atts.length).toBeGreaterThan(0);
    expect(atts.some((a) => a.scanStatus === 'infected')).toBe(true);
    expect(atts.filter((a) => a.scanStatus === 'infected').every((a) => a.blobId === null)).toBe(true);
    expect(r.infected).toBeGreaterThan(0);
  });

  it('clamd stopped → pending and never served; clamd back → the scan job marks it clean and it is served', async () => {
    const policy = { retryDelaysMs: [1000], maxAttempts: 5 };
    const h = ingestHarness(svc.core, { scanner: scanner(), policy });
    await clamd.stop();
    try {
      const r = await h.run(mailbox, `down-${++n}`, multipart('while down', [attachmentPart('report.pdf', Buffer.from('%PDF-1.4 quarterly numbers'), 'application/pdf')]));
      expect(r.status).toBe('stored');
      if (r.status !== 'stored') return;
      const [att] = await attachmentsOf(r.messageId);
      expect(att!.scanStatus).toBe('pending');
      expect(att!.scanError).toBe('unreachable');
      expect(att!.blobId).not.toBeNull();
      const blocked = await download(att!.id);
      expect(blocked.status).toBe(409);
      expect(blocked.body.error.details.scanStatus).toBe('pending');
      // The scan job while clamd is still down: nothing changes, nothing served.
      expect((await h.rescan().run()).status).toBe('skipped');

      await clamd.start();
      const later = () => new Date(Date.now() + 5_000);
      const outcome = await h.rescan(later).run();
      expect(outcome).toMatchObject({ status: 'done', detail: { clean: 1 } });
      const [after] = await attachmentsOf(r.messageId);
      expect(after!.scanStatus).toBe('clean');
      const served = await download(att!.id);
      expect(served.status).toBe(200);
      expect(served.body).toBe('%PDF-1.4 quarterly numbers');
    } finally {
      await clamd.start();
    }
  }, 60_000);

  it('no scanner configured → pending with no retry time (scanned when one is configured)', async () => {
    const h = ingestHarness(svc.core, { scanner: null });
    const r = await h.run(mailbox, `none-${++n}`, multipart('no scanner', [attachmentPart('a.txt', Buffer.from('abc'), 'text/plain')]));
    if (r.status !== 'stored') throw new Error('not stored');
    const [att] = await attachmentsOf(r.messageId);
    expect(att).toMatchObject({ scanStatus: 'pending', scanAttempts: 0, nextScanAt: null });
    expect((await download(att!.id)).status).toBe(409);
    // Later with clamd: the scan job picks it up.
    const withClamd = ingestHarness(svc.core, { scanner: scanner() });
    await withClamd.rescan().run([att!.id]);
    expect((await attachmentsOf(r.messageId))[0]!.scanStatus).toBe('clean');
  });
});

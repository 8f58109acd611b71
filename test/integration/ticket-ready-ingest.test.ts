// Issue 13 items 4-8 end to end: messages delivered to the Google stand-in, backfilled by the real
// service (parse worker threads, Postgres or embedded), announced by message.received to a local
// receiver and read back through GET /v1/messages/:id — both show the same names, addresses and
// parseError.
import iconv from 'iconv-lite';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeOutboundContent, OUTBOUND_CONTENT_AAD } from '../../src/send/outbound-content.js';
import type { GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { connectMailbox } from './connect-helpers.js';
import { startReceiver, waitFor } from './webhooks-seed.js';

let svc: TestService;
let gs: GoogleSandbox;

beforeAll(async () => {
  svc = await startTestService({ env: { SANDBOX: '1', BACKFILL_DAYS: '7' } });
  gs = svc.services.access.settings.sandbox.google!;
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

/** A From of several hundred KB of To: lines past mailsplit's 1 MiB header limit. */
function hugeHeader(): Buffer {
  const lines = ['From: Sender <sender@example.com>', 'Subject: huge header', 'Message-ID: <huge-1@example.com>', `Date: ${new Date().toUTCString()}`, 'Cc: cc@example.com'];
  for (let i = 0, size = 0; size < 1.2 * 1024 * 1024; i++) {
    const line = `To: "User ${i}" <user${i}@example.com>, "Other ${i}" <o${i}@example.com>`;
    lines.push(line);
    size += line.length + 2;
  }
  return Buffer.from([...lines, '', 'body', ''].join('\r\n'));
}

function winmail(files: Array<[string, string]>): Buffer {
  const attribute = (id: number, data: Buffer) => {
    const h = Buffer.alloc(9);
    h.writeUInt8(2, 0);
    h.writeUInt32LE(id, 1);
    h.writeUInt32LE(data.length, 5);
    return Buffer.concat([h, data, Buffer.alloc(2)]);
  };
  const start = Buffer.alloc(6);
  start.writeUInt32LE(0x223e9f78, 0);
  return Buffer.concat([start, ...files.flatMap(([name, content]) => [attribute(0x00069002, Buffer.alloc(14)), attribute(0x00018010, Buffer.from(`${name}\0`)), attribute(0x0006800f, Buffer.from(content))])]);
}

/** A bounce from a name-only sender with a raw GB2312 subject, a winmail.dat and unnamed parts. */
function bounce(): Buffer {
  return Buffer.concat([
    Buffer.from('From: MAILER-DAEMON (Mail Delivery System)\r\nTo: support@acme.test\r\nSubject: '),
    iconv.encode('退信：关于会议的通知', 'gb2312'),
    Buffer.from(
      [
        '',
        'Message-ID: <bounce-1@mx.example>',
        `Date: ${new Date().toUTCString()}`,
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="b"',
        '',
        '--b',
        'Content-Type: text/plain; charset=gb2312',
        '',
        'Delivery failed.',
        '--b',
        'Content-Type: message/global-delivery-status',
        '',
        'Reporting-MTA: dns; mx.example',
        '--b',
        'Content-Type: message/rfc822',
        '',
        'From: support@acme.test',
        'Subject: Your order 1042',
        '',
        'original',
        '--b',
        'Content-Type: text/plain; name="notes.txt"',
        '',
        'a text file',
        '--b',
        'Content-Type: application/ms-tnef; name="winmail.dat"',
        'Content-Disposition: attachment; filename="winmail.dat"',
        'Content-Transfer-Encoding: base64',
        '',
        winmail([['report.pdf', '%PDF-1.4 report'], ['photo.jpg', 'jpeg bytes']]).toString('base64'),
        '--b--',
        '',
      ].join('\r\n'),
    ),
  ]);
}

describe('ticket-ready messages through the real ingest path', () => {
  it('names every attachment, unpacks TNEF, keeps a name-only From, decodes the raw GB2312 subject, exposes parseError with salvaged headers', async () => {
    const rx = await startReceiver();
    try {
      const { apiKey } = await svc.createTenant();
      const endpoint = await svc.api(apiKey, 'POST', '/v1/webhook-endpoints', { url: rx.url, events: ['message.received'] });
      expect(endpoint.status).toBe(201);
      const email = 'ticket-ready@acme.test';
      gs.createUser(email);
      const hours = (h: number) => ({ internalDate: Date.now() - h * 3_600_000 });
      gs.deliver(email, hugeHeader(), hours(2));
      gs.deliver(email, bounce(), hours(1));
      await connectMailbox(svc, apiKey, 'google', email);

      await waitFor(() => rx.received.length >= 2, 120_000, 'two message.received webhooks');
      const events = rx.received.map((r) => new Webhook(endpoint.body.secret as string).verify(r.body, r.headers) as { data: Record<string, unknown> });
      const bySubject = new Map(events.map((e) => [e.data.subject as string, e.data]));

      const huge = bySubject.get('huge header')!;
      expect(huge).toBeDefined();
      expect(huge.from).toEqual({ name: 'Sender', address: 'sender@example.com' });
      expect(huge.cc).toEqual([{ name: null, address: 'cc@example.com' }]);
      expect(huge.internetMessageId).toBe('huge-1@example.com');
      expect(huge.parseError).toEqual({ code: 'limit_exceeded', reason: expect.stringContaining('1 MiB') });

      const b = bySubject.get('退信：关于会议的通知')!;
      expect(b).toBeDefined();
      expect(b.from).toEqual({ name: 'MAILER-DAEMON (Mail Delivery System)', address: null });
      expect(b.parseError).toBeNull();
      const atts = b.attachments as Array<{ id: string; filename: string; contentType: string; size: number; scanStatus: string }>;
      expect(atts.map((a) => a.filename)).toEqual(['delivery-status.txt', 'Your order 1042.eml', 'notes.txt', 'report.pdf', 'photo.jpg']);
      expect(atts.find((a) => a.filename === 'report.pdf')!.size).toBe(15);
      // The files from winmail.dat went through the same sink (stored, and scanned when a scanner is configured).
      expect(new Set(atts.map((a) => a.scanStatus)).size).toBe(1);

      // The read API says the same.
      for (const data of [huge, b]) {
        const read = await svc.api(apiKey, 'GET', `/v1/messages/${data.messageId as string}`);
        expect(read.status).toBe(200);
        expect(read.body.from).toEqual(data.from);
        expect(read.body.subject).toBe(data.subject);
        expect(read.body.parseError).toEqual(data.parseError);
        expect(read.body.attachments.map((a: { filename: string }) => a.filename)).toEqual((data.attachments as Array<{ filename: string }>).map((a) => a.filename));
      }
      // A name without an address is nobody to reply to: the reply goes to the other recipients only.
      const replied = await svc.api(apiKey, 'POST', `/v1/messages/${b.messageId as string}/reply`, { text: 'Thanks' }, { 'idempotency-key': 'reply-to-daemon-1' });
      expect(replied.status).toBe(202);
      const outbound = await svc.core.prisma.outboundMessage.findUniqueOrThrow({ where: { id: replied.body.outboundId as string } });
      const sent = decodeOutboundContent(await svc.core.dataKeys.decryptFor({ type: 'mailbox', id: outbound.mailboxId }, outbound.contentEnc, OUTBOUND_CONTENT_AAD(outbound.id)));
      expect([...sent.headers.to, ...sent.headers.cc].map((a) => a.address)).toEqual(['support@acme.test']);
      // A TNEF file downloads as itself once clean (or is refused while not clean): never the winmail.dat.
      const pdf = atts.find((a) => a.filename === 'report.pdf')!;
      const dl = await fetch(`${svc.url}/v1/attachments/${pdf.id}/content`, { headers: { authorization: `Bearer ${apiKey}` } });
      if (pdf.scanStatus === 'clean') expect(await dl.text()).toBe('%PDF-1.4 report');
      else expect(dl.status).toBe(409);
    } finally {
      await rx.close();
    }
  }, 180_000);
});

// GET /v1/messages/:id of a large message is built off the event loop (MessageViewer.fullJson with
// a MessageContentPool: a content of 128 KiB or more is parsed, checked, shaped and encoded in the
// worker thread; attachment names are decrypted in steps with a turn of the event loop between)
// and answers the same bytes as JSON.stringify of MessageViewer.full — what the route sent before
// with res.json — for a 25,000-address header, 990 attachments, megabytes of HTML with remote
// images blocked for the tenant, an HTML body whose cid: images become URLs (?inline=urls), and a
// small message. Real service (HTTP), real database (Postgres with DATABASE_URL, the embedded one
// without), messages stored by the real ingest pipeline.
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachmentContentUrl } from '../../src/http/routes/messages.route.js';
import { MessageContentPool } from '../../src/messages/content-pool.js';
import { MessageReadService } from '../../src/messages/message-read.service.js';
import { MessageViewer } from '../../src/messages/message-view.js';
import { BlobStore } from '../../src/storage/blob.store.js';
import { blobInfo, MessageReadRepository } from '../../src/storage/message-read.repository.js';
import { hugeHeader, largeHtml, manyParts } from '../helpers/pathological-mail.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { attachmentPart, ingestHarness, multipart } from './ingest-harness.js';
import { seedMailbox } from './webhooks-seed.js';

let svc: TestService;
const pool = new MessageContentPool();

beforeAll(async () => {
  svc = await startTestService({ workers: false });
}, 60_000);
afterAll(async () => {
  await pool.close();
  await svc?.close();
});


/** multipart/related: about 300 KiB of HTML showing an inline image by cid:, and the image. */
function relatedHtml(): Buffer {
  const rows = Array.from({ length: 5000 }, (_, i) => `<p>paragraph ${i} <img src="cid:logo@acme.example" alt="logo"></p>`).join('\n');
  const html = `<html><body>${rows}</body></html>`;
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da6364f8ffbf1e000502027f3d2f6b0000000049454e44ae426082', 'hex');
  return Buffer.from(
    [
      'From: Ada <ada@customer.example>',
      'To: support@helpdesk.example',
      'Subject: related html',
      'Message-ID: <related-html@customer.example>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/related; boundary="rel"',
      '',
      '--rel',
      'Content-Type: text/html; charset=utf-8',
      '',
      html,
      '--rel',
      'Content-Type: image/png',
      'Content-ID: <logo@acme.example>',
      'Content-Disposition: inline; filename="logo.png"',
      'Content-Transfer-Encoding: base64',
      '',
      png.toString('base64'),
      '--rel--',
      '',
    ].join('\r\n'),
  );
}

/** The longest the event loop went without running a 1 ms interval timer while `fn` ran (printed, not asserted: it moves with the machine's load). */
async function longestHold<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  let last = performance.now();
  let max = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - last);
    last = now;
  }, 1);
  try {
    const value = await fn();
    return { value, ms: Math.max(max, performance.now() - last) };
  } finally {
    clearInterval(timer);
  }
}

describe('GET /v1/messages/:id off the event loop', () => {
  it('answers large messages built in the content worker, byte for byte what res.json of MessageViewer.full sent', async () => {
    const t = await svc.createTenant();
    await svc.core.prisma.tenant.update({ where: { id: t.tenantId }, data: { blockRemoteImages: true } });
    const mailbox = { ...(await seedMailbox(svc.core, t.tenantId)), tenantId: t.tenantId };
    const h = ingestHarness(svc.core);
    await h.run(mailbox, 'r-header', hugeHeader(0.95 * 1024 * 1024, 0));
    await h.run(mailbox, 'r-parts', manyParts(990, true));
    await h.run(mailbox, 'r-html', largeHtml());
    await h.run(mailbox, 'r-related', relatedHtml());
    await h.run(mailbox, 'r-small', multipart('small one', [attachmentPart('note.txt', Buffer.from('hello'), 'text/plain')]));
    const stored = await svc.core.prisma.message.findMany({ where: { mailboxId: mailbox.id }, select: { id: true, providerMessageId: true } });
    const ids = ['r-header', 'r-parts', 'r-html', 'r-related', 'r-small'].map((p) => stored.find((m) => m.providerMessageId === p)!.id);

    const repo = new MessageReadRepository(svc.core.prisma);
    const reference = new MessageViewer(svc.core.dataKeys, async () => ({ blockRemoteImages: true }));
    const urlOf = (attachmentId: string) => attachmentContentUrl(svc.config.http.publicUrl, attachmentId);
    const served = new Map<string, Buffer>();
    for (const id of ids) {
      for (const inline of ['cid', 'urls'] as const) {
        const res = await fetch(`${svc.url}/v1/messages/${id}?inline=${inline}`, { headers: { authorization: `Bearer ${t.apiKey}` } });
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
        const bytes = Buffer.from(await res.arrayBuffer());
        const row = (await repo.findMessageForTenant(t.tenantId, id))!;
        const view = await reference.full(row, inline === 'urls' ? { inlineImageUrl: urlOf } : {});
        expect(bytes.equals(Buffer.from(JSON.stringify(view), 'utf8'))).toBe(true);
        expect(Number(res.headers.get('content-length'))).toBe(bytes.length);
        served.set(`${id}?${inline}`, bytes);
      }
    }

    const body = (key: string) => JSON.parse(served.get(key)!.toString('utf8'));
    expect(body(`${ids[0]}?cid`).to.length).toBeGreaterThan(25_000);
    expect(body(`${ids[1]}?cid`).attachments).toHaveLength(990);
    expect(body(`${ids[2]}?cid`).safeHtml).toContain('data-blocked-src="https://tracker.example/p3999.png"');
    expect(body(`${ids[2]}?cid`).safeHtml).not.toMatch(/ src="https:\/\/tracker/);
    const related = body(`${ids[3]}?urls`);
    const logo = related.attachments.find((a: { contentId: string | null }) => a.contentId === 'logo@acme.example');
    expect(related.html).toContain(`src="${urlOf(logo.id)}"`);
    expect(related.html).not.toContain('cid:logo@acme.example');
    expect(body(`${ids[3]}?cid`).html).toContain('src="cid:logo@acme.example"');
    expect(body(`${ids[4]}?cid`).subject).toBe('small one');

    // The path taken, as messages.module wires it: the three large contents (header, HTML, related
    // HTML; each asked for twice) go to the worker; the 990-attachment message (a small content:
    // its attachment names are separate columns, decrypted in steps) and the small one do not.
    const reads = (contentPool?: MessageContentPool) =>
      new MessageReadService({
        messages: repo,
        mailboxes: svc.core.mailboxes,
        viewer: new MessageViewer(svc.core.dataKeys, async () => ({ blockRemoteImages: true })),
        blobs: new BlobStore(svc.core.prisma, svc.core.dataKeys),
        blobInfo: (blobId) => blobInfo(svc.core.prisma, blobId),
        audit: svc.core.audit,
        ...(contentPool ? { contentPool } : {}),
      });
    const reader = { tenantId: t.tenantId, actorType: 'api_key' as const, actorId: t.apiKeyId };
    const readAll = (service: MessageReadService) =>
      Promise.all(ids.flatMap((id) => [service.getJson(reader, id), service.getJson(reader, id, { inlineImageUrl: urlOf })]));
    await readAll(reads(pool)); // warm-up: the worker thread starts
    const before = pool.tasks;
    const offloaded = await longestHold(() => readAll(reads(pool)));
    expect(pool.tasks - before).toBe(6);
    const onLoop = await longestHold(() => readAll(reads()));
    expect(offloaded.value.map((b, i) => b.equals(onLoop.value[i]!))).toEqual(offloaded.value.map(() => true));
    expect(offloaded.value[0]!.equals(served.get(`${ids[0]}?cid`)!)).toBe(true);
    console.log(`longest event-loop hold reading all ${ids.length * 2} views: worker ${offloaded.ms.toFixed(1)} ms, event loop ${onLoop.ms.toFixed(1)} ms`);
  }, 180_000);
});

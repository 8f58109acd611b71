// Message reads of large messages are built off the event loop (MessageViewer.fullJson /
// summaryJson with a MessageContentPool: a content of 128 KiB or more is parsed, checked, shaped
// and encoded in the worker thread; attachment names are decrypted in steps with a turn of the
// event loop between) and answer the same bytes as before, when the routes res.json-ed
// MessageViewer.full / the summaries: GET /v1/messages/:id (with ?inline=urls too) and the list
// pages GET /v1/mailboxes/:id/messages and GET /v1/messages (cursor included), for a
// 25,000-address header, 990 attachments, megabytes of HTML with remote images blocked for the
// tenant, an HTML body whose cid: images become URLs, and a small message. Real service (HTTP),
// real database (Postgres with DATABASE_URL, the embedded one without), messages stored by the
// real ingest pipeline.
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachmentContentUrl } from '../../src/http/routes/messages.route.js';
import { MessageContentPool } from '../../src/messages/content-pool.js';
import { MessageReadService } from '../../src/messages/message-read.service.js';
import { MessageViewer, type MessageSummary } from '../../src/messages/message-view.js';
import { encodeCursor } from '../../src/http/pagination.js';
import { BlobStore } from '../../src/storage/blob.store.js';
import { blobInfo, MessageReadRepository } from '../../src/storage/message-read.repository.js';
import { hugeHeader, largeHtml, manyParts } from '../helpers/pathological-mail.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { attachmentPart, ingestHarness, multipart } from './ingest-harness.js';
import { seedMailbox } from './webhooks-seed.js';

let svc: TestService;
const pool = new MessageContentPool();
/** One tenant (remote images blocked) and mailbox holding the five shapes, stored by the real ingest. */
let t: { tenantId: string; apiKey: string; apiKeyId: string };
let mailbox: { id: string; tenantId: string };
let ids: string[];

beforeAll(async () => {
  svc = await startTestService({ workers: false });
  t = await svc.createTenant();
  await svc.core.prisma.tenant.update({ where: { id: t.tenantId }, data: { blockRemoteImages: true } });
  mailbox = { ...(await seedMailbox(svc.core, t.tenantId)), tenantId: t.tenantId };
  const h = ingestHarness(svc.core);
  await h.run(mailbox, 'r-header', hugeHeader(0.95 * 1024 * 1024, 0));
  await h.run(mailbox, 'r-parts', manyParts(990, true));
  await h.run(mailbox, 'r-html', largeHtml());
  await h.run(mailbox, 'r-related', relatedHtml());
  await h.run(mailbox, 'r-small', multipart('small one', [attachmentPart('note.txt', Buffer.from('hello'), 'text/plain')]));
  const stored = await svc.core.prisma.message.findMany({ where: { mailboxId: mailbox.id }, select: { id: true, providerMessageId: true } });
  ids = ['r-header', 'r-parts', 'r-html', 'r-related', 'r-small'].map((p) => stored.find((m) => m.providerMessageId === p)!.id);
}, 120_000);
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

/** The read service as messages.module builds it, with or without a content pool. */
function reads(contentPool?: MessageContentPool): MessageReadService {
  return new MessageReadService({
    messages: new MessageReadRepository(svc.core.prisma),
    mailboxes: svc.core.mailboxes,
    viewer: new MessageViewer(svc.core.dataKeys, async () => ({ blockRemoteImages: true })),
    blobs: new BlobStore(svc.core.prisma, svc.core.dataKeys),
    blobInfo: (blobId) => blobInfo(svc.core.prisma, blobId),
    audit: svc.core.audit,
    ...(contentPool ? { contentPool } : {}),
  });
}

async function get(pathname: string): Promise<{ bytes: Buffer; contentType: string | null; contentLength: number }> {
  const res = await fetch(`${svc.url}${pathname}`, { headers: { authorization: `Bearer ${t.apiKey}` } });
  expect(res.status).toBe(200);
  const bytes = Buffer.from(await res.arrayBuffer());
  return { bytes, contentType: res.headers.get('content-type'), contentLength: Number(res.headers.get('content-length')) };
}

describe('message reads off the event loop', () => {
  it('answers large messages built in the content worker, byte for byte what res.json of MessageViewer.full sent', async () => {
    const repo = new MessageReadRepository(svc.core.prisma);
    const reference = new MessageViewer(svc.core.dataKeys, async () => ({ blockRemoteImages: true }));
    const urlOf = (attachmentId: string) => attachmentContentUrl(svc.config.http.publicUrl, attachmentId);
    const served = new Map<string, Buffer>();
    for (const id of ids) {
      for (const inline of ['cid', 'urls'] as const) {
        const { bytes, contentType, contentLength } = await get(`/v1/messages/${id}?inline=${inline}`);
        expect(contentType).toBe('application/json; charset=utf-8');
        const row = (await repo.findMessageForTenant(t.tenantId, id))!;
        const view = await reference.full(row, inline === 'urls' ? { inlineImageUrl: urlOf } : {});
        expect(bytes.equals(Buffer.from(JSON.stringify(view), 'utf8'))).toBe(true);
        expect(contentLength).toBe(bytes.length);
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
  it('answers list pages of large messages built the same way, byte for byte what res.json of the summaries sent', async () => {
    const reader = { tenantId: t.tenantId, actorType: 'api_key' as const, actorId: t.apiKeyId };
    // What the routes sent before: JSON.stringify of {object, data: summaries, nextCursor}.
    const referencePage = async (rows: MessageSummary[], limit: number): Promise<Buffer> => {
      const data = rows.slice(0, limit);
      const last = data[data.length - 1];
      return Buffer.from(JSON.stringify({ object: 'list', data, nextCursor: rows.length > limit && last ? encodeCursor(`${Date.parse(last.receivedAt)}:${last.id}`) : null }), 'utf8');
    };
    const first = await get(`/v1/mailboxes/${mailbox.id}/messages?limit=3`);
    expect(first.contentType).toBe('application/json; charset=utf-8');
    const firstRows = await reads().list(reader, mailbox.id, { limit: 3 });
    expect(first.bytes.equals(await referencePage(firstRows, 3))).toBe(true);
    const firstBody = JSON.parse(first.bytes.toString('utf8'));
    expect(firstBody.data).toHaveLength(3);
    expect(firstBody.nextCursor).not.toBeNull();

    const second = await get(`/v1/mailboxes/${mailbox.id}/messages?limit=3&cursor=${encodeURIComponent(firstBody.nextCursor)}`);
    const last = firstRows[2]!;
    const secondRows = await reads().list(reader, mailbox.id, { limit: 3, before: { receivedAt: new Date(last.receivedAt), id: last.id } });
    expect(second.bytes.equals(await referencePage(secondRows, 3))).toBe(true);
    const secondBody = JSON.parse(second.bytes.toString('utf8'));
    expect(secondBody.nextCursor).toBeNull();
    expect([...firstBody.data, ...secondBody.data].map((m: { id: string }) => m.id).sort()).toEqual([...ids].sort());
    expect([...firstBody.data, ...secondBody.data].find((m: { id: string }) => m.id === ids[0]).to.length).toBeGreaterThan(25_000);

    const tenantWide = await get(`/v1/messages?limit=10`);
    expect(tenantWide.bytes.equals(await referencePage(await reads().listForTenant(reader, { limit: 10 }), 10))).toBe(true);
    const empty = await get(`/v1/messages?limit=10&threadKey=no-such-thread`);
    expect(empty.bytes.toString('utf8')).toBe('{"object":"list","data":[],"nextCursor":null}');

    // The path taken: the three large contents go to the worker, the extra row of a page is not decoded.
    const before = pool.tasks;
    const page = await reads(pool).listJson(reader, mailbox.id, { limit: 5 });
    expect(pool.tasks - before).toBe(3);
    expect(page.items).toHaveLength(5);
    expect(page.more).toBe(false);
    const withExtra = await reads(pool).listJson(reader, mailbox.id, { limit: 1 });
    expect(withExtra).toMatchObject({ more: true });
    expect(withExtra.items).toHaveLength(1);
  }, 180_000);
});

// Webhook bodies of large messages are built off the event loop (PayloadBuilder.encodeMany with a
// MessageContentPool: a content of 128 KiB or more is parsed, checked and encoded in a worker
// thread) and are the same bytes as the body built on the event loop (JSON.stringify of build()'s
// body) — for a 25,000-address header, 990 attachments (built on the event loop), a large HTML body with remote images
// blocked for the tenant, and an ordinary small message. Real database (Postgres with
// DATABASE_URL, the embedded one without), messages stored by the real ingest pipeline.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PayloadBuilder } from '../../src/events/payload-builder.js';
import { MessageContentPool } from '../../src/messages/content-pool.js';
import { MessageViewer } from '../../src/messages/message-view.js';
import { MessageReadRepository } from '../../src/storage/message-read.repository.js';
import { hugeHeader, largeHtml, manyParts } from '../helpers/pathological-mail.js';
import { startTestCore, type TestCore } from '../helpers/test-core.js';
import { attachmentPart, ingestHarness, multipart } from './ingest-harness.js';
import { seedMailbox } from './webhooks-seed.js';

let svc: TestCore;
const pool = new MessageContentPool();

beforeAll(async () => {
  svc = await startTestCore();
}, 60_000);
afterAll(async () => {
  await pool.close();
  await svc?.close();
});


describe('PayloadBuilder.encodeMany', () => {
  it('encodes large message.received bodies in the worker, byte for byte what build() gives', async () => {
    const t = await svc.createTenant();
    const mailbox = { ...(await seedMailbox(svc.core, t.tenantId)), tenantId: t.tenantId };
    const h = ingestHarness(svc.core);
    await h.run(mailbox, 'p-header', hugeHeader(0.95 * 1024 * 1024, 0));
    await h.run(mailbox, 'p-parts', manyParts(990, true));
    await h.run(mailbox, 'p-html', largeHtml());
    await h.run(mailbox, 'p-small', multipart('small one', [attachmentPart('note.txt', Buffer.from('hello'), 'text/plain')]));
    const events = await svc.core.prisma.outboxEvent.findMany({ where: { mailboxId: mailbox.id, type: 'message.received' }, orderBy: { seq: 'asc' } });
    expect(events).toHaveLength(4);

    const deps = {
      messages: new MessageReadRepository(svc.core.prisma),
      mailboxes: svc.core.mailboxes,
      // The tenant blocks remote images: safeHtml is rewritten in the worker too.
      viewer: new MessageViewer(svc.core.dataKeys, async () => ({ blockRemoteImages: true })),
      dataKeys: svc.core.dataKeys,
    };
    const reference = new PayloadBuilder(deps);
    const offloaded = new PayloadBuilder({ ...deps, contentPool: pool });

    const encoded = await offloaded.encodeMany(events);
    // The header message and the large HTML one went to the worker; the 990-attachment one (a small
    // content: its attachment names are separate columns, decrypted in slices) and the small one did not.
    expect(pool.tasks).toBe(2);
    for (const [i, e] of events.entries()) {
      const built = await reference.build(e);
      expect(built.kind).toBe('ready');
      const enc = encoded[i]!;
      expect(enc.kind).toBe('ready');
      if (built.kind !== 'ready' || enc.kind !== 'ready') continue;
      expect(enc.bytes.equals(Buffer.from(JSON.stringify(built.body), 'utf8'))).toBe(true);
    }

    const bodies = encoded.map((e) => (e.kind === 'ready' ? JSON.parse(e.bytes.toString('utf8')) : null));
    expect(bodies[0].data.to.length).toBeGreaterThan(25_000);
    expect(bodies[1].data.attachments).toHaveLength(990);
    expect(bodies[2].data.safeHtml).toContain('data-blocked-src="https://tracker.example/p3999.png"');
    expect(bodies[2].data.safeHtml).not.toMatch(/ src="https:\/\/tracker/);
    expect(bodies[2].data.html).toContain('https://tracker.example/p3999.png');
    expect(bodies[3].data.subject).toBe('small one');
    expect(bodies.map((b) => b.sequence)).toEqual(events.map((e) => Number(e.seq)));
  }, 180_000);

  it('cancels a large message whose mailbox key was destroyed, as build() does', async () => {
    const t = await svc.createTenant();
    const mailbox = { ...(await seedMailbox(svc.core, t.tenantId)), tenantId: t.tenantId };
    await ingestHarness(svc.core).run(mailbox, 'p-header', hugeHeader(300 * 1024, 1));
    const events = await svc.core.prisma.outboxEvent.findMany({ where: { mailboxId: mailbox.id, type: 'message.received' } });
    await svc.core.dataKeys.destroy({ type: 'mailbox', id: mailbox.id });
    const builder = new PayloadBuilder({ messages: new MessageReadRepository(svc.core.prisma), mailboxes: svc.core.mailboxes, viewer: new MessageViewer(svc.core.dataKeys), dataKeys: svc.core.dataKeys, contentPool: pool });
    expect(await builder.encodeMany(events)).toEqual([{ kind: 'cancelled', reason: 'source_purged' }]);
    expect(await builder.build(events[0]!)).toEqual({ kind: 'cancelled', reason: 'source_purged' });
  }, 120_000);
});

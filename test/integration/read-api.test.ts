import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { seedMailbox, seedMessage } from './webhooks-seed.js';

let svc: TestService;
let t: { tenantId: string; apiKey: string; apiKeyId: string };
let mailboxId: string;
const msgs: Array<Awaited<ReturnType<typeof seedMessage>>> = [];
const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(300_000, 0x41)]);

beforeAll(async () => {
  svc = await startTestService({ workers: false });
  t = await svc.createTenant();
  mailboxId = (await seedMailbox(svc.core, t.tenantId)).id;
  const base = Date.parse('2026-11-01T10:00:00Z');
  for (let i = 0; i < 5; i++) {
    msgs.push(
      await seedMessage(svc.core, t.tenantId, mailboxId, {
        receivedAt: new Date(base + i * 60_000),
        threadKey: i < 2 ? 'thr_shared' : undefined,
        subject: `Subject number ${i}`,
        attachments:
          i === 4
            ? [
                { filename: 'report "Q3"/../ü.pdf', bytes: pdf, scanStatus: 'clean' },
                { filename: 'pending.pdf', bytes: Buffer.from('x'), scanStatus: 'pending' },
                { filename: 'eicar.com', bytes: Buffer.from('X5O!P%@AP'), scanStatus: 'infected' },
                { filename: 'big.zip', bytes: Buffer.from('zip'), scanStatus: 'unscannable' },
              ]
            : [],
      }),
    );
  }
});
afterAll(async () => {
  await svc?.close();
});

describe('messages', () => {
  it('lists a mailbox newest first with opaque cursor pagination and a thread filter', async () => {
    const p1 = await svc.api(t.apiKey, 'GET', `/v1/mailboxes/${mailboxId}/messages?limit=2`);
    expect(p1.status).toBe(200);
    expect(p1.body.data.map((m: { subject: string }) => m.subject)).toEqual(['Subject number 4', 'Subject number 3']);
    expect(p1.body.data[0]).not.toHaveProperty('text');
    expect(p1.body.nextCursor).toEqual(expect.any(String));
    const p2 = await svc.api(t.apiKey, 'GET', `/v1/mailboxes/${mailboxId}/messages?limit=2&cursor=${p1.body.nextCursor}`);
    const p3 = await svc.api(t.apiKey, 'GET', `/v1/mailboxes/${mailboxId}/messages?limit=2&cursor=${p2.body.nextCursor}`);
    expect([...p2.body.data, ...p3.body.data].map((m: { subject: string }) => m.subject)).toEqual(['Subject number 2', 'Subject number 1', 'Subject number 0']);
    expect(p3.body.nextCursor).toBeNull();
    const thread = await svc.api(t.apiKey, 'GET', `/v1/mailboxes/${mailboxId}/messages?threadKey=thr_shared`);
    expect(thread.body.data.map((m: { id: string }) => m.id)).toEqual([msgs[1]!.id, msgs[0]!.id]);
    const bad = await svc.api(t.apiKey, 'GET', `/v1/mailboxes/${mailboxId}/messages?cursor=not-a-cursor`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_cursor');
  });

  it('returns one message decrypted, with attachment metadata', async () => {
    const m = msgs[4]!;
    const res = await svc.api(t.apiKey, 'GET', `/v1/messages/${m.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: m.id,
      object: 'message',
      mailboxId,
      subject: 'Subject number 4',
      text: m.content.text,
      from: m.content.from,
      internetMessageId: m.content.internetMessageId,
    });
    expect(res.body.attachments.map((a: { scanStatus: string }) => a.scanStatus)).toEqual(['clean', 'pending', 'infected', 'unscannable']);
    expect(res.body.attachments[0]).toMatchObject({ id: m.attachmentIds[0], filename: 'report "Q3"/../ü.pdf', size: pdf.length, contentType: 'application/pdf' });
  });
});

describe('attachments', () => {
  it('streams a clean attachment with safe headers', async () => {
    const id = msgs[4]!.attachmentIds[0]!;
    const res = await fetch(`${svc.url}/v1/attachments/${id}/content`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(res.headers.get('content-length')).toBe(String(pdf.length));
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const disposition = res.headers.get('content-disposition')!;
    expect(disposition).toMatch(/^attachment; filename="[^"/\\]+"; filename\*=UTF-8''/);
    expect(disposition).not.toContain('/');
    expect(Buffer.from(await res.arrayBuffer()).equals(pdf)).toBe(true);
  });

  it.each([
    [1, 'pending'],
    [2, 'infected'],
    [3, 'unscannable'],
  ])('refuses attachment %i with 409 when its verdict is %s', async (i, verdict) => {
    const res = await svc.api(t.apiKey, 'GET', `/v1/attachments/${msgs[4]!.attachmentIds[i]}/content`);
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: 'attachment_not_clean', details: { scanStatus: verdict } });
  });
});

describe('audit and lifecycle', () => {
  it('writes every content read to the tenant’s audit trail (who, what, when)', async () => {
    const before = Date.now();
    await svc.api(t.apiKey, 'GET', `/v1/messages/${msgs[0]!.id}`);
    await fetch(`${svc.url}/v1/attachments/${msgs[4]!.attachmentIds[0]}/content`, { headers: { authorization: `Bearer ${t.apiKey}` } }).then((r) => r.arrayBuffer());
    const entries: Array<{ action: string; actorType: string; actorId: string; targetId: string; createdAt: string }> = [];
    let cursor: string | null = null;
    do {
      const page = await svc.api(t.apiKey, 'GET', `/v1/audit?limit=5${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      entries.push(...page.body.data);
      cursor = page.body.nextCursor;
    } while (cursor);
    const read = entries.find((e) => e.action === 'message.read' && e.targetId === msgs[0]!.id)!;
    expect(read).toMatchObject({ actorType: 'api_key', actorId: t.apiKeyId });
    expect(Date.parse(read.createdAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(entries.some((e) => e.action === 'attachment.downloaded' && e.targetId === msgs[4]!.attachmentIds[0])).toBe(true);
    expect(entries.some((e) => e.action === 'message.listed')).toBe(true);
    // The trail holds ids, never content.
    expect(JSON.stringify(entries)).not.toContain('Subject number');
  });

  it('refuses content while the mailbox is disconnecting, and 404s once it is purged', async () => {
    const other = await seedMailbox(svc.core, t.tenantId);
    const m = await seedMessage(svc.core, t.tenantId, other.id);
    await svc.core.prisma.mailbox.update({ where: { id: other.id }, data: { status: 'disconnecting' } });
    const r1 = await svc.api(t.apiKey, 'GET', `/v1/messages/${m.id}`);
    expect(r1.status).toBe(409);
    expect(r1.body.error.code).toBe('mailbox_disconnecting');
    expect((await svc.api(t.apiKey, 'GET', `/v1/mailboxes/${other.id}/messages`)).status).toBe(409);
    await svc.core.dataKeys.destroy({ type: 'mailbox', id: other.id });
    await svc.core.prisma.mailbox.update({ where: { id: other.id }, data: { status: 'purged' } });
    expect((await svc.api(t.apiKey, 'GET', `/v1/messages/${m.id}`)).status).toBe(404);
  });

  it('never writes mail content to a log line', () => {
    const logs = svc.logs.join('\n');
    for (const m of msgs) {
      expect(logs).not.toContain(m.content.subject);
      expect(logs).not.toContain(m.content.text!);
    }
  });
});

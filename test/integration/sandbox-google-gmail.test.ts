import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gmail, type gmail_v1 } from '@googleapis/gmail';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { connectGoogleSandboxUser } from '../../src/sandbox/google/google-sandbox-connect.client.js';

const FIX = new URL('../../fixtures/google/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIX));
const SCOPES = ['openid', 'email', 'https://www.googleapis.com/auth/gmail.modify'];

let sandbox: GoogleSandbox;
let api: gmail_v1.Gmail;
let token: string;
let seq = 0;
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const opts = () => ({ headers: { Authorization: `Bearer ${token}` } });

function mime(o: { subject: string; messageId: string; inReplyTo?: string; references?: string; to?: string; from?: string }): Buffer {
  return Buffer.from(
    [
      `From: ${o.from ?? 'Customer <customer@example.org>'}`,
      `To: ${o.to ?? 'agent@acme.test'}`,
      `Subject: ${o.subject}`,
      `Message-ID: <${o.messageId}>`,
      ...(o.inReplyTo ? [`In-Reply-To: <${o.inReplyTo}>`] : []),
      ...(o.references ? [`References: ${o.references}`] : []),
      'Content-Type: text/plain; charset=utf-8',
      '',
      `body ${o.subject}`,
      '',
    ].join('\r\n'),
  );
}

async function status(p: Promise<unknown>): Promise<{ status: number; reason: string | undefined; headers: Headers | undefined }> {
  try {
    await p;
    return { status: 200, reason: undefined, headers: undefined };
  } catch (err) {
    const e = err as { response: { status: number; headers: Headers; data: { error: { errors: Array<{ reason: string }> } } } };
    return { status: e.response.status, reason: e.response.data.error?.errors?.[0]?.reason, headers: e.response.headers };
  }
}

beforeAll(async () => {
  sandbox = await startGoogleSandbox();
  const user = await connectGoogleSandboxUser(sandbox.endpoints, { email: 'agent@acme.test', scopes: SCOPES });
  token = user.accessToken;
  api = gmail({ version: 'v1', rootUrl: sandbox.endpoints.gmailRootUrl, retry: false });
});
afterAll(async () => {
  await sandbox.close();
});
beforeEach(() => {
  seq++;
});

describe('Gmail stand-in through @googleapis/gmail', () => {
  it('returns format=raw as base64url of the exact delivered bytes, and full/minimal/metadata shapes', async () => {
    for (const name of ['latin1-8bit.eml', 'multipart-attachment.eml', 'plain-inbound.eml']) {
      const bytes = fixture(name);
      const stored = sandbox.deliver('agent@acme.test', bytes);
      const { data } = await api.users.messages.get({ userId: 'me', id: stored.id, format: 'raw' }, opts());
      expect(Buffer.from(data.raw!, 'base64url').equals(bytes)).toBe(true);
      expect(data.sizeEstimate).toBe(bytes.length);
      expect(data.labelIds).toContain('INBOX');
    }
    const multi = sandbox.deliver('agent@acme.test', fixture('multipart-attachment.eml'));
    const full = (await api.users.messages.get({ userId: 'me', id: multi.id }, opts())).data;
    expect(full.payload!.mimeType).toBe('multipart/mixed');
    expect(full.payload!.parts!.map((p) => p.partId)).toEqual(['0', '1']);
    expect(full.payload!.parts![0]!.parts!.map((p) => p.partId)).toEqual(['0.0', '0.1']);
    const text = Buffer.from(full.payload!.parts![0]!.parts![0]!.body!.data!, 'base64url').toString('utf8');
    expect(text).toContain('Gr\u00fc\u00dfe');
    const pdf = full.payload!.parts![1]!;
    expect(pdf.filename).toBe('invoice.pdf');
    const att = await api.users.messages.attachments.get({ userId: 'me', messageId: multi.id, id: pdf.body!.attachmentId! }, opts());
    expect(Buffer.from(att.data.data!, 'base64url').toString('latin1')).toMatch(/^%PDF-1\.4/);
    expect(att.data.size).toBe(pdf.body!.size);
    const minimal = (await api.users.messages.get({ userId: 'me', id: multi.id, format: 'minimal' }, opts())).data;
    expect(minimal.payload).toBeUndefined();
    const meta = (await api.users.messages.get({ userId: 'me', id: multi.id, format: 'metadata', metadataHeaders: ['Subject'] }, opts())).data;
    expect(meta.payload!.headers).toEqual([{ name: 'Subject', value: 'Invoice attached' }]);
  });

  it('lists with q=after: (epoch seconds and YYYY/MM/DD), labelIds and pages, newest first', async () => {
    const email = `lister${seq}@acme.test`;
    const u = await connectGoogleSandboxUser(sandbox.endpoints, { email, scopes: SCOPES });
    const o = { headers: { Authorization: `Bearer ${u.accessToken}` } };
    const base = Date.UTC(2026, 10, 1, 12);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(sandbox.deliver(email, mime({ subject: `m${i}`, messageId: `l${seq}-${i}@x` }), { internalDate: base + i * 86_400_000 }).id);
    }
    sandbox.deliver(email, mime({ subject: 'archived', messageId: `l${seq}-arch@x` }), { internalDate: base + 10 * 86_400_000, labelIds: ['Label_1'] });
    const after = Math.floor((base + 2 * 86_400_000) / 1000);
    const page1 = (await api.users.messages.list({ userId: 'me', q: `after:${after}`, labelIds: ['INBOX'], maxResults: 2 }, o)).data;
    expect(page1.messages!.map((m) => m.id)).toEqual([ids[4], ids[3]]);
    expect(page1.nextPageToken).toBeTruthy();
    const page2 = (await api.users.messages.list({ userId: 'me', q: `after:${after}`, labelIds: ['INBOX'], maxResults: 2, pageToken: page1.nextPageToken! }, o)).data;
    expect(page2.messages!.map((m) => m.id)).toEqual([ids[2]]);
    expect(page2.nextPageToken).toBeUndefined();
    // Date form: midnight PST of 2026/11/04 is 08:00 UTC, so the 12:00 UTC message that day counts.
    const byDate = (await api.users.messages.list({ userId: 'me', q: 'after:2026/11/04', labelIds: ['INBOX'] }, o)).data;
    expect(byDate.messages!.map((m) => m.id)).toEqual([ids[4], ids[3]]);
    const none = (await api.users.messages.list({ userId: 'me', q: 'after:2030/01/01' }, o)).data;
    expect(none.messages).toBeUndefined();
    expect(none.resultSizeEstimate).toBe(0);
  });

  it('threads a send into the given threadId only when subject and References both match', async () => {
    const original = sandbox.deliver('agent@acme.test', mime({ subject: 'Order 55 broken', messageId: `orig-${seq}@example.org` }));
    const send = async (raw: Buffer, threadId?: string) =>
      (await api.users.messages.send({ userId: 'me', requestBody: { raw: raw.toString('base64url'), ...(threadId ? { threadId } : {}) } }, opts())).data;

    const good = await send(
      mime({ to: 'customer@example.org', from: 'agent@acme.test', subject: 'Re: Order 55 broken', messageId: `reply1-${seq}@acme.test`, inReplyTo: `orig-${seq}@example.org`, references: `<orig-${seq}@example.org>` }),
      original.threadId,
    );
    expect(good.threadId).toBe(original.threadId);
    expect(good.labelIds).toEqual(['SENT']);

    const otherSubject = await send(
      mime({ to: 'customer@example.org', subject: 'Something else', messageId: `reply2-${seq}@acme.test`, inReplyTo: `orig-${seq}@example.org` }),
      original.threadId,
    );
    expect(otherSubject.threadId).not.toBe(original.threadId);

    const noRefs = await send(mime({ to: 'customer@example.org', subject: 'Re: Order 55 broken', messageId: `reply3-${seq}@acme.test` }), original.threadId);
    expect(noRefs.threadId).not.toBe(original.threadId);

    const noThreadId = await send(
      mime({ to: 'customer@example.org', subject: 'Re: Order 55 broken', messageId: `reply4-${seq}@acme.test`, inReplyTo: `orig-${seq}@example.org` }),
    );
    expect(noThreadId.threadId).not.toBe(original.threadId);

    // The sent copy is in the mailbox (SENT), with its Message-ID, findable by rfc822msgid:.
    const found = (await api.users.messages.list({ userId: 'me', q: `rfc822msgid:<reply1-${seq}@acme.test>` }, opts())).data;
    expect(found.messages!.map((m) => m.id)).toEqual([good.id]);
    const raw = (await api.users.messages.get({ userId: 'me', id: good.id!, format: 'raw' }, opts())).data.raw!;
    expect(Buffer.from(raw, 'base64url').toString()).toContain(`Message-ID: <reply1-${seq}@acme.test>`);
    expect(sandbox.sent('agent@acme.test').map((s) => s.id)).toContain(good.id);
  });

  it('sends through the upload endpoint (multipart with threadId, media without) and answers 413 above 35 MB', async () => {
    const original = sandbox.deliver('agent@acme.test', mime({ subject: 'Big files', messageId: `big-${seq}@example.org` }));
    // From the account itself: any other From would be replaced by the account's address, as Gmail does.
    const reply = mime({ from: 'Agent <agent@acme.test>', to: 'customer@example.org', subject: 'RE: Big files', messageId: `bigreply-${seq}@acme.test`, references: `<big-${seq}@example.org>` });
    const { Readable } = await import('node:stream');
    const multipart = await api.users.messages.send(
      { userId: 'me', requestBody: { threadId: original.threadId! }, media: { mimeType: 'message/rfc822', body: Readable.from([reply]) } },
      // The client-level rootUrl does not reach mediaUrl; it must be given per call.
      { ...opts(), rootUrl: sandbox.endpoints.gmailRootUrl },
    );
    expect(multipart.data.threadId).toBe(original.threadId);
    const rec = sandbox.sent().find((s) => s.id === multipart.data.id)!;
    expect(rec.via).toBe('upload');
    expect(rec.raw.equals(reply)).toBe(true);

    const media = await api.users.messages.send({ userId: 'me', media: { mimeType: 'message/rfc822', body: Readable.from([mime({ to: 'x@example.org', subject: 'solo', messageId: `solo-${seq}@a` })]) } }, { ...opts(), rootUrl: sandbox.endpoints.gmailRootUrl });
    expect(media.data.id).toBeTruthy();

    // A declared size over maxSize is refused before the body is read (no 35 MB upload needed).
    const { request } = await import('node:http');
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${sandbox.url}/upload/gmail/v1/users/me/messages/send?uploadType=media`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'message/rfc822', 'content-length': String(36_700_161) },
      });
      req.on('response', (r) => {
        let body = '';
        r.on('data', (c: Buffer) => (body += c.toString()));
        r.on('end', () => {
          resolve({ status: r.statusCode ?? 0, body });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.write(Buffer.alloc(1024, 0x61));
    });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).error.code).toBe(413);
  });

  it('rejects an invalid recipient with 400 invalidArgument', async () => {
    const r = await status(
      api.users.messages.send({ userId: 'me', requestBody: { raw: mime({ to: 'not an address', subject: 's', messageId: `bad-${seq}@a` }).toString('base64url') } }, opts()),
    );
    expect(r).toMatchObject({ status: 400, reason: 'invalidArgument' });
  });

  it('pages history chronologically with non-contiguous ids, and 404s behind the horizon', async () => {
    const email = `hist${seq}@acme.test`;
    const u = await connectGoogleSandboxUser(sandbox.endpoints, { email, scopes: SCOPES });
    const o = { headers: { Authorization: `Bearer ${u.accessToken}` } };
    const start = (await api.users.getProfile({ userId: 'me' }, o)).data.historyId!;
    const added: string[] = [];
    for (let i = 0; i < 7; i++) added.push(sandbox.deliver(email, mime({ subject: `h${i}`, messageId: `h${seq}-${i}@x` })).id);
    sandbox.deliver(email, mime({ subject: 'sent only', messageId: `h${seq}-s@x` }), { labelIds: ['SENT'] });
    const seen: string[] = [];
    const ids: bigint[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    let last: gmail_v1.Schema$ListHistoryResponse;
    do {
      last = (await api.users.history.list({ userId: 'me', startHistoryId: start, historyTypes: ['messageAdded'], labelId: 'INBOX', maxResults: 3, ...(pageToken ? { pageToken } : {}) }, o)).data;
      pages++;
      for (const h of last.history ?? []) {
        ids.push(BigInt(h.id!));
        for (const a of h.messagesAdded ?? []) seen.push(a.message!.id!);
      }
      pageToken = last.nextPageToken ?? undefined;
    } while (pageToken);
    expect(pages).toBe(3);
    expect(seen).toEqual(added);
    expect([...ids].sort((a, b) => (a < b ? -1 : 1))).toEqual(ids);
    expect(ids.some((id, i) => i > 0 && id - ids[i - 1]! > 1n) || ids.length < 2).toBe(true);
    expect(last.historyId).toBe(sandbox.currentHistoryId(email));

    sandbox.expireHistory(email);
    const r = await status(api.users.history.list({ userId: 'me', startHistoryId: start }, o));
    expect(r).toMatchObject({ status: 404, reason: 'notFound' });
    const fresh = await api.users.history.list({ userId: 'me', startHistoryId: sandbox.currentHistoryId(email) }, o);
    expect(fresh.data.history).toBeUndefined();
  });

  it('answers 401 with Google\'s envelope for a bad token and 403 for another user\'s mailbox', async () => {
    const bad = await status(api.users.getProfile({ userId: 'me' }, { headers: { Authorization: 'Bearer ya29.nope' } }));
    expect(bad).toMatchObject({ status: 401, reason: 'authError' });
    const res = await fetch(`${sandbox.url}/gmail/v1/users/me/profile`, { headers: { authorization: 'Bearer ya29.nope' } });
    const body = (await res.json()) as Json;
    expect(Object.keys(body.error).sort()).toEqual(['code', 'errors', 'message', 'status']);
    expect(body.error.status).toBe('UNAUTHENTICATED');
    const other = await status(api.users.getProfile({ userId: 'someone@else.test' }, opts()));
    expect(other.status).toBe(403);
  });

  it('enforces the per-user quota with 429 + Retry-After (or 403 userRateLimitExceeded), and injects faults', async () => {
    const email = `quota${seq}@acme.test`;
    const u = await connectGoogleSandboxUser(sandbox.endpoints, { email, scopes: SCOPES });
    const o = { headers: { Authorization: `Bearer ${u.accessToken}` } };
    const m = sandbox.deliver(email, mime({ subject: 'q', messageId: `q${seq}@x` }));
    sandbox.setQuota({ unitsPerWindow: 100, windowMs: 60_000 });
    try {
      const results = await Promise.all(Array.from({ length: 8 }, () => status(api.users.messages.get({ userId: 'me', id: m.id }, o))));
      expect(results.filter((r) => r.status === 200)).toHaveLength(5);
      const limited = results.filter((r) => r.status === 429);
      expect(limited).toHaveLength(3);
      expect(limited[0]!.reason).toBe('rateLimitExceeded');
      expect(Number(limited[0]!.headers!.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(sandbox.quotaUsed(email)).toBe(100);
      sandbox.setQuota({ overLimitResponse: '403' });
      expect(await status(api.users.messages.get({ userId: 'me', id: m.id }, o))).toMatchObject({ status: 403, reason: 'userRateLimitExceeded' });
    } finally {
      sandbox.setQuota({ unitsPerWindow: 6000, overLimitResponse: '429' });
    }
    sandbox.setLatency(150);
    const t0 = Date.now();
    expect(await status(api.users.getProfile({ userId: 'me' }, opts()))).toMatchObject({ status: 200 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    sandbox.setLatency(0);
    sandbox.serverErrorNext(1, 500);
    expect(await status(api.users.getProfile({ userId: 'me' }, opts()))).toMatchObject({ status: 500, reason: 'backendError' });
    sandbox.rateLimitNext(1);
    expect(await status(api.users.getProfile({ userId: 'me' }, opts()))).toMatchObject({ status: 429 });
    expect(await status(api.users.getProfile({ userId: 'me' }, opts()))).toMatchObject({ status: 200 });
  });

  it('exposes state and accepts deliveries over the HTTP control API', async () => {
    const raw = fixture('plain-inbound.eml');
    const res = await fetch(`${sandbox.url}/_sandbox/users/agent@acme.test/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ raw: raw.toString('base64'), labelIds: ['INBOX'] }),
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as Json;
    const got = (await api.users.messages.get({ userId: 'me', id, format: 'raw' }, opts())).data;
    expect(Buffer.from(got.raw!, 'base64url').equals(raw)).toBe(true);
    const state = (await (await fetch(`${sandbox.url}/_sandbox/state`)).json()) as Json;
    expect(state.users.find((x: { email: string }) => x.email === 'agent@acme.test').messages).toBeGreaterThan(0);
    expect(JSON.stringify(state)).not.toContain('ya29.');
  });
});

import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';

/** Raw-HTTP checks of documented Graph behaviour the adapter does not exercise directly. */
let sb: MicrosoftSandbox;
let n = 0;

beforeAll(async () => {
  sb = await startMicrosoftSandbox();
});
afterAll(async () => {
  await sb?.close();
});

function mailbox(): { email: string; call: (path: string, init?: RequestInit & { prefer?: string }) => Promise<Response> } {
  n += 1;
  const email = `raw${n}@contoso.test`;
  sb.createUser(email);
  const token = sb.issueAccessToken(email);
  return {
    email,
    call: (path, init = {}) => {
      const url = path.startsWith('http') ? path : `${sb.graphBaseUrl}/v1.0${path}`;
      return fetch(url, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.prefer ? { prefer: init.prefer } : {}), ...(init.headers as Record<string, string> | undefined) } });
    },
  };
}

const raw = (subject: string, extra = ''): Buffer => Buffer.from(`From: c@fabrikam.test\r\nTo: x@contoso.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@fabrikam.test>\r\n${extra}\r\nbody\r\n`);
type Page = { value: Array<Record<string, unknown>>; '@odata.nextLink'?: string; '@odata.deltaLink'?: string };

describe('Graph delta in the stand-in', () => {
  it('pages with Prefer: odata.maxpagesize, reports @removed deletions later, and honours $filter and the ("inbox") spelling', async () => {
    const { email, call } = mailbox();
    const a = await sb.deliver(email, raw('a'), { receivedAt: new Date('2026-01-01T00:00:00Z') });
    const b = await sb.deliver(email, raw('b'), { receivedAt: new Date('2026-02-01T00:00:00Z') });
    const c = await sb.deliver(email, raw('c'), { receivedAt: new Date('2026-02-02T00:00:00Z') });

    const p1res = await call("/me/mailFolders('inbox')/messages/delta?$select=subject", { prefer: 'odata.maxpagesize=2' });
    expect(p1res.headers.get('preference-applied')).toBe('odata.maxpagesize=2');
    const p1 = (await p1res.json()) as Page;
    expect(p1.value.map((m) => m.id)).toEqual([a.id, b.id]);
    expect(p1['@odata.nextLink']).toMatch(new RegExp(`^${sb.graphBaseUrl}/v1\\.0/.*\\$skiptoken=`));
    const p2 = (await (await call(p1['@odata.nextLink'] ?? '')).json()) as Page;
    expect(p2.value.map((m) => m.id)).toEqual([c.id]);
    expect(p2.value[0]).toMatchObject({ subject: 'c' });
    expect(p2.value[0]).not.toHaveProperty('body');
    const deltaLink = p2['@odata.deltaLink'] ?? '';
    expect(deltaLink).toContain('$deltatoken=');

    sb.deleteMessage(email, a.id);
    const d = await sb.deliver(email, raw('d'));
    const next = (await (await call(deltaLink)).json()) as Page;
    expect(next.value).toEqual(expect.arrayContaining([expect.objectContaining({ id: a.id, '@removed': { reason: 'deleted' } }), expect.objectContaining({ id: d.id, subject: 'd' })]));

    // "Your application must be prepared for replays": the same deltaLink answers the same changes again.
    const replay = (await (await call(deltaLink)).json()) as Page;
    expect(replay.value.map((m) => m.id).sort()).toEqual(next.value.map((m) => m.id).sort());

    const filtered = (await (await call(`/me/mailFolders/inbox/messages/delta?$filter=${encodeURIComponent('receivedDateTime ge 2026-02-01T00:00:00Z')}&changeType=created`)).json()) as Page;
    expect(filtered.value.map((m) => m.id).sort()).toEqual([b.id, c.id, d.id].sort());
  });

  it('changeType=created hides deletions; $deltatoken=latest starts at now', async () => {
    const { email, call } = mailbox();
    const a = await sb.deliver(email, raw('a'));
    const latest = (await (await call('/me/mailFolders/inbox/messages/delta?changeType=created&$deltatoken=latest')).json()) as Page;
    expect(latest.value).toEqual([]);
    sb.deleteMessage(email, a.id);
    const b = await sb.deliver(email, raw('b'));
    const page = (await (await call(latest['@odata.deltaLink'] ?? '')).json()) as Page;
    expect(page.value.map((m) => m.id)).toEqual([b.id]);
  });

  it('answers an expired token with 410 + Location carrying an empty $deltatoken, or 400 syncStateNotFound', async () => {
    const { email, call } = mailbox();
    const first = (await (await call('/me/mailFolders/inbox/messages/delta')).json()) as Page;
    sb.expireDelta(email, 'gone');
    const gone = await call(first['@odata.deltaLink'] ?? '');
    expect(gone.status).toBe(410);
    expect(gone.headers.get('location')).toMatch(/messages\/delta\?\$deltatoken=$/);
    const again = (await (await call(gone.headers.get('location') ?? '')).json()) as Page;
    expect(again['@odata.deltaLink']).toBeDefined();
    sb.expireDelta(email, 'syncStateNotFound');
    const lost = await call(again['@odata.deltaLink'] ?? '');
    expect(lost.status).toBe(400);
    expect(((await lost.json()) as { error: { code: string } }).error.code).toBe('syncStateNotFound');
  });

  it('refuses another mailbox’s delta token', async () => {
    const one = mailbox();
    const two = mailbox();
    const link = ((await (await one.call('/me/mailFolders/inbox/messages/delta')).json()) as Page)['@odata.deltaLink'] ?? '';
    expect((await two.call(link)).status).toBe(400);
  });
});

describe('drafts, replies and upload sessions in the stand-in', () => {
  it('createReply rejects comment plus body; a JSON reply draft shares the conversation and threads the headers', async () => {
    const { email, call } = mailbox();
    const orig = await sb.deliver(email, raw('orig'));
    const json = { 'content-type': 'application/json' };
    const both = await call(`/me/messages/${encodeURIComponent(orig.id)}/createReply`, { method: 'POST', headers: json, body: JSON.stringify({ comment: 'x', message: { body: { contentType: 'text', content: 'y' } } }) });
    expect(both.status).toBe(400);
    const draftRes = await call(`/me/messages/${encodeURIComponent(orig.id)}/createReply`, { method: 'POST', headers: json, body: JSON.stringify({ comment: 'Thanks!' }) });
    expect(draftRes.status).toBe(201);
    const draft = (await draftRes.json()) as { id: string; conversationId: string; subject: string; isDraft: boolean; toRecipients: unknown[] };
    expect(draft).toMatchObject({ conversationId: orig.conversationId, subject: 'RE: orig', isDraft: true });
    expect(draft.toRecipients).toEqual([{ emailAddress: { address: 'c@fabrikam.test', name: 'c@fabrikam.test' } }]);
    const patched = await call(`/me/messages/${encodeURIComponent(draft.id)}`, { method: 'PATCH', headers: json, body: JSON.stringify({ subject: 'RE: orig (updated)' }) });
    expect(patched.status).toBe(200);
    expect((await call(`/me/messages/${encodeURIComponent(draft.id)}/send`, { method: 'POST' })).status).toBe(202);
    const sent = sb.sentMessages(email)[0];
    expect(sent).toMatchObject({ conversationId: orig.conversationId, subject: 'RE: orig (updated)', inReplyTo: orig.internetMessageId });
    expect(sent?.mime.toString()).toMatch(new RegExp(`In-Reply-To: ${orig.internetMessageId.replace(/[.+]/g, '\\$&')}`));
    // Sending moved the draft to Sent Items under a new id, as Exchange does.
    expect((await call(`/me/messages/${encodeURIComponent(draft.id)}`)).status).toBe(404);
    expect(sb.mailbox(email).find((m) => m.id === sent?.messageId)?.folder).toBe('sentitems');
  });

  it('upload URLs take sequential ranged PUTs only, without the bearer token', async () => {
    const { call } = mailbox();
    const json = { 'content-type': 'application/json' };
    const draft = (await (await call('/me/messages', { method: 'POST', headers: json, body: JSON.stringify({ subject: 'files', toRecipients: [{ emailAddress: { address: 'x@fabrikam.test' } }] }) })).json()) as { id: string };
    const size = 3 * 1024 * 1024 + 10;
    const session = (await (await call(`/me/messages/${encodeURIComponent(draft.id)}/attachments/createUploadSession`, { method: 'POST', headers: json, body: JSON.stringify({ AttachmentItem: { attachmentType: 'file', name: 'f.bin', size } }) })).json()) as { uploadUrl: string };
    const bytes = Buffer.alloc(size, 7);
    const put = (start: number, end: number, auth?: string) =>
      fetch(session.uploadUrl, { method: 'PUT', headers: { 'content-range': `bytes ${start}-${end}/${size}`, ...(auth ? { authorization: auth } : {}) }, body: bytes.subarray(start, end + 1) });
    expect((await put(0, 1023, 'Bearer leaked')).status).toBe(401);
    expect((await put(1024, 2047)).status).toBe(416);
    const part = await put(0, 2 * 1024 * 1024 - 1);
    expect(part.status).toBe(200);
    expect(((await part.json()) as { nextExpectedRanges: string[] }).nextExpectedRanges).toEqual([`${2 * 1024 * 1024}-`]);
    const done = await put(2 * 1024 * 1024, size - 1);
    expect(done.status).toBe(201);
    expect(done.headers.get('location')).toContain('Attachments(');
    const list = (await (await call(`/me/messages/${encodeURIComponent(draft.id)}/attachments`)).json()) as { value: Array<{ name: string; size: number }> };
    expect(list.value).toEqual([expect.objectContaining({ name: 'f.bin', size })]);
  });

  it('sendMail with JSON honours saveToSentItems=false and delivers to another sandbox mailbox', async () => {
    const sender = mailbox();
    const receiver = mailbox();
    const res = await sender.call('/me/sendMail', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        message: { subject: 'Hello', body: { contentType: 'Text', content: 'Hi there' }, toRecipients: [{ emailAddress: { address: receiver.email } }], attachments: [{ '@odata.type': '#microsoft.graph.fileAttachment', name: 'a.txt', contentType: 'text/plain', contentBytes: Buffer.from('abc').toString('base64') }] },
        saveToSentItems: false,
      }),
    });
    expect(res.status).toBe(202);
    expect(sb.sentMessages(sender.email)[0]).toMatchObject({ via: 'sendMail', savedToSentItems: false, subject: 'Hello', attachments: [expect.objectContaining({ name: 'a.txt', size: 3 })] });
    expect(sb.mailbox(sender.email)).toHaveLength(0);
    const end = Date.now() + 2000;
    while (sb.mailbox(receiver.email).length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(sb.mailbox(receiver.email)).toEqual([expect.objectContaining({ folder: 'inbox', subject: 'Hello' })]);
  });

  it('rejects Graph calls without a valid bearer token with InvalidAuthenticationToken', async () => {
    const res = await fetch(`${sb.graphBaseUrl}/v1.0/me`, { headers: { authorization: 'Bearer nope' } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('InvalidAuthenticationToken');
  });
});

describe('consent page', () => {
  it('prefills #email from login_hint and shows one checkbox per requested scope', async () => {
    const url = `${sb.authority}/oauth2/v2.0/authorize?client_id=sandbox-client-id&response_type=code&redirect_uri=${encodeURIComponent('http://127.0.0.1:9/cb')}&scope=${encodeURIComponent('openid offline_access https://graph.microsoft.com/Mail.Read')}&login_hint=${encodeURIComponent('hint@contoso.test')}&state=s`;
    const html = await new Promise<string>((resolve, reject) => {
      request(url, { ca: sb.caCertPem }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      })
        .on('error', reject)
        .end();
    });
    expect(html).toMatch(/id="email" name="email" value="hint@contoso.test"/);
    expect([...html.matchAll(/name="scope"/g)]).toHaveLength(3);
    expect(html).toContain('id="approve"');
    expect(html).toContain('id="deny"');
  });
});

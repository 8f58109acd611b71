import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { simpleParser } from 'mailparser';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SyncCursor } from '../../src/providers/mail-provider.port.js';
import { isProviderError, type ProviderError } from '../../src/providers/provider-error.js';
import { ConcurrencyLimiter } from '../../src/providers/microsoft/concurrency-limiter.js';
import { GraphAdapter, type GraphAdapterOptions } from '../../src/providers/microsoft/graph.adapter.js';
import { sandboxMicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../../fixtures/microsoft/${name}`, import.meta.url));

let sb: MicrosoftSandbox;
let mailboxNo = 0;

beforeAll(async () => {
  sb = await startMicrosoftSandbox();
});
afterAll(async () => {
  await sb?.close();
});
beforeEach(() => {
  sb.clearFaults();
});

function newMailbox(): string {
  mailboxNo += 1;
  const email = `agent${mailboxNo}@contoso.test`;
  sb.createUser(email);
  return email;
}

/** The delegated scopes the connector asks for (src/oauth/scope-policy.ts): no Mail.ReadWrite. */
const CONNECTOR_SCOPES = ['Mail.Read', 'Mail.Send', 'User.Read'];

function adapterFor(email: string, extra: Partial<GraphAdapterOptions> = {}, scopes = CONNECTOR_SCOPES): GraphAdapter {
  const token = sb.issueAccessToken(email, scopes);
  return new GraphAdapter({ endpoints: sandboxMicrosoftEndpoints(sb), accessToken: async () => token, deltaPageSize: 3, windowPageSize: 2, ...extra });
}

function mime(n: number, extra = ''): Buffer {
  return Buffer.from(`From: Customer ${n} <c${n}@fabrikam.test>\r\nTo: support@contoso.test\r\nSubject: Question ${n}\r\nMessage-ID: <q${n}.${randomBytes(4).toString('hex')}@fabrikam.test>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n${extra}\r\nBody ${n}\r\n`);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isProviderError(err)) throw new Error(`expected a ProviderError, got ${String(err)}`);
  return err;
}

describe('GraphAdapter against the Microsoft stand-in (real Graph client, real HTTP)', () => {
  it('reads the mailbox address from /me', async () => {
    const email = newMailbox();
    await expect(adapterFor(email).getAddress()).resolves.toBe(email);
  });

  it('pages delta with Prefer: odata.maxpagesize, follows nextLink to a deltaLink, then sees only later mail', async () => {
    const email = newMailbox();
    const adapter = adapterFor(email);
    const before = await sb.deliver(email, mime(0));
    const start = await adapter.currentCursor();
    expect(start.provider === 'microsoft' && start.link).toContain('$deltatoken=');

    const delivered: string[] = [];
    for (let i = 1; i <= 7; i += 1) delivered.push((await sb.deliver(email, mime(i), { receivedAt: new Date(Date.UTC(2026, 2, 2, 9, i)) })).id);
    const pages = [];
    let cursor = start;
    for (;;) {
      const page = await adapter.listChanges(cursor);
      pages.push(page);
      cursor = page.nextCursor;
      if (!page.hasMore) break;
    }
    expect(pages.map((p) => p.addedMessageIds.length)).toEqual([3, 3, 1]);
    expect(pages[0]?.nextCursor.provider === 'microsoft' && pages[0].nextCursor.link).toContain('$skiptoken=');
    expect(cursor.provider === 'microsoft' && cursor.link).toContain('$deltatoken=');
    expect(pages.flatMap((p) => p.addedMessageIds)).toEqual(delivered);
    expect(pages.flatMap((p) => p.addedMessageIds)).not.toContain(before.id);

    // Nothing new: an empty page that keeps a usable deltaLink.
    const idle = await adapter.listChanges(cursor);
    expect(idle).toMatchObject({ addedMessageIds: [], hasMore: false });

    const late = await sb.deliver(email, mime(8));
    sb.deleteMessage(email, delivered[0] ?? '');
    const after = await adapter.listChanges(idle.nextCursor);
    expect(after.addedMessageIds).toEqual([late.id]);
  });

  it('walks to "now" on connect/resync with Prefer: odata.maxpagesize (one page for 25 messages, not 3 of Graph’s default 10)', async () => {
    const email = newMailbox();
    for (let i = 0; i < 25; i += 1) await sb.deliver(email, mime(i));
    const token = sb.issueAccessToken(email);
    const defaults = new GraphAdapter({ endpoints: sandboxMicrosoftEndpoints(sb), accessToken: async () => token });
    const cursor = await defaults.currentCursor();
    expect(sb.deltaRequests(email)).toEqual([{ maxPageSize: '1000', returned: 25 }]);
    await sb.deliver(email, mime(99));
    await defaults.listChanges(cursor);
    expect(sb.deltaRequests(email).at(-1)).toEqual({ maxPageSize: '50', returned: 1 });
    // The walk size is an option: 10 per page → three pages, each asked with the header.
    const before = sb.deltaRequests(email).length;
    await adapterFor(email, { walkPageSize: 10 }).currentCursor();
    expect(sb.deltaRequests(email).slice(before)).toEqual([
      { maxPageSize: '10', returned: 10 },
      { maxPageSize: '10', returned: 10 },
      { maxPageSize: '10', returned: 6 },
    ]);
  });

  it('follows delta links that name the inbox by its folder id (Microsoft’s sample form), learning the id once', async () => {
    const email = newMailbox();
    sb.setDeltaLinkFolder(email, 'id');
    const adapter = adapterFor(email);
    await sb.deliver(email, mime(0));
    const start = await adapter.currentCursor();
    if (start.provider !== 'microsoft') throw new Error('expected a Graph cursor');
    expect(start.link).toMatch(/\/mailFolders\/AQMkAD[^/(]+\/messages\/delta\?\$deltatoken=/);
    expect(start.inboxFolderId).toBe(decodeURIComponent(/mailFolders\/([^/]+)\//.exec(start.link)?.[1] ?? ''));

    const delivered: string[] = [];
    for (let i = 1; i <= 4; i += 1) delivered.push((await sb.deliver(email, mime(i), { receivedAt: new Date(Date.UTC(2026, 2, 2, 9, i)) })).id);
    // A fresh adapter (a later sync) gets the folder id from the stored cursor.
    const later = adapterFor(email);
    const seen: string[] = [];
    let cursor: SyncCursor = start;
    for (;;) {
      const page = await later.listChanges(cursor);
      seen.push(...page.addedMessageIds);
      expect(page.nextCursor).toMatchObject({ provider: 'microsoft', inboxFolderId: start.inboxFolderId });
      cursor = page.nextCursor;
      if (!page.hasMore) break;
    }
    expect(seen).toEqual(delivered);

    // The same link naming another folder's id is refused as an expired cursor (→ window resync).
    const other = start.link.replace(/mailFolders\/[^/]+\//, `mailFolders/${encodeURIComponent('AQMkADc2VudGl0ZW1z=')}/`);
    await expect(failure(adapterFor(email).listChanges({ ...start, link: other }))).resolves.toMatchObject({ kind: 'cursor_expired', reason: 'link_rejected' });
    // …also when the cursor carries no inbox id: the adapter asks Graph which folder is the inbox.
    await expect(failure(adapterFor(email).listChanges({ ...start, link: other, inboxFolderId: undefined }))).resolves.toMatchObject({ kind: 'cursor_expired', reason: 'link_rejected' });
  });

  it('turns 410 Gone and syncStateNotFound on a stored deltaLink into cursor_expired', async () => {
    const email = newMailbox();
    const adapter = adapterFor(email);
    const cursor = await adapter.currentCursor();
    sb.expireDelta(email, 'gone');
    const gone = await failure(adapter.listChanges(cursor));
    expect(gone).toMatchObject({ kind: 'cursor_expired', status: 410 });

    const fresh = await adapter.currentCursor();
    sb.expireDelta(email, 'syncStateNotFound');
    const lost = await failure(adapter.listChanges(fresh));
    expect(lost).toMatchObject({ kind: 'cursor_expired', reason: 'syncStateNotFound' });
    // After a resync the new cursor works again.
    await expect(adapter.listChanges(await adapter.currentCursor())).resolves.toMatchObject({ hasMore: false });
  });

  it('refuses to follow a tampered deltaLink (SSRF guard) without calling anyone', async () => {
    const email = newMailbox();
    const adapter = adapterFor(email);
    const ok = await adapter.currentCursor();
    const link = ok.provider === 'microsoft' ? ok.link : '';
    for (const bad of [link.replace('127.0.0.1', 'evil.example'), link.replace('/messages/delta', '/messages'), `${new URL(link).origin}/v1.0/me/mailFolders('inbox')/messages/delta`]) {
      const err = await failure(adapter.listChanges({ v: 1, provider: 'microsoft', link: bad }));
      expect(err).toMatchObject({ kind: 'cursor_expired', reason: 'link_rejected' });
      expect(err.message).not.toContain('evil');
    }
  });

  it('lists the inbox window since a date, newest first, across pages', async () => {
    const email = newMailbox();
    const adapter = adapterFor(email);
    const old = await sb.deliver(email, mime(1), { receivedAt: new Date('2026-01-01T00:00:00Z') });
    const a = await sb.deliver(email, mime(2), { receivedAt: new Date('2026-02-01T00:00:00Z') });
    const b = await sb.deliver(email, mime(3), { receivedAt: new Date('2026-02-02T00:00:00Z') });
    const c = await sb.deliver(email, mime(4), { receivedAt: new Date('2026-02-03T00:00:00Z') });
    const first = await adapter.listWindow(new Date('2026-02-01T00:00:00Z'));
    expect(first.messageIds).toEqual([c.id, b.id]);
    expect(first.nextPageToken).toBeDefined();
    const second = await adapter.listWindow(new Date('2026-02-01T00:00:00Z'), first.nextPageToken);
    expect(second).toEqual({ messageIds: [a.id], nextPageToken: undefined });
    expect([...first.messageIds, ...second.messageIds]).not.toContain(old.id);
  });

  it('streams $value with the exact bytes and returns conversationId and receivedDateTime', async () => {
    const email = newMailbox();
    const adapter = adapterFor(email);
    for (const name of ['inbound-8bit-with-attachment.eml', 'outbound-lf-only.eml']) {
      const raw = fixture(name);
      const d = await sb.deliver(email, raw, { receivedAt: new Date('2026-03-02T09:14:05Z') });
      const got = await adapter.fetchRaw(d.id);
      const bytes = await readAll(got.raw);
      expect(bytes.equals(raw)).toBe(true);
      expect(got).toMatchObject({ providerMessageId: d.id, providerThreadId: d.conversationId, sizeEstimate: raw.length });
      expect(got.receivedAt?.toISOString()).toBe('2026-03-02T09:14:05.000Z');
    }
  });

  it('finds a message by an internetMessageId containing + and an apostrophe', async () => {
    const email = newMailbox();
    const adapter = adapterFor(email);
    const d = await sb.deliver(email, fixture('inbound-8bit-with-attachment.eml'));
    await expect(adapter.findByInternetMessageId("<order+442.o'brien@fabrikam.test>")).resolves.toBe(d.id);
    await expect(adapter.findByInternetMessageId('<missing@fabrikam.test>')).resolves.toBeUndefined();
  });

  it('replies with reply (base64 MIME) using only Mail.Read + Mail.Send: no draft, same conversation, threading headers and the sent MIME are ours', async () => {
    const email = newMailbox();
    const adapter = adapterFor(email);
    const inbound = await sb.deliver(email, mime(1));
    const reply = await new MailComposer({
      from: email,
      to: 'c1@fabrikam.test',
      subject: 'RE: Question 1',
      messageId: '<reply-1@connector.test>',
      inReplyTo: inbound.internetMessageId,
      references: inbound.internetMessageId,
      text: 'Thanks, we are on it.',
    })
      .compile()
      .build();
    const result = await adapter.send({ mime: reply, internetMessageId: '<reply-1@connector.test>', replyToProviderMessageId: inbound.id });
    expect(result.providerThreadId).toBe(inbound.conversationId);
    const sent = sb.sentMessages(email);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ via: 'reply', conversationId: inbound.conversationId, internetMessageId: '<reply-1@connector.test>', inReplyTo: inbound.internetMessageId, savedToSentItems: true });
    expect(result).toEqual({ providerMessageId: sent[0]?.messageId, providerThreadId: inbound.conversationId, sentFrom: email });
    const out = await simpleParser(sent[0]?.mime ?? Buffer.alloc(0));
    expect(out.text).toContain('Thanks, we are on it.');
    expect(out.inReplyTo).toBe(inbound.internetMessageId);
    expect(out.references).toBe(inbound.internetMessageId);
    // Nothing was drafted (drafts need Mail.ReadWrite); the copy is in Sent Items.
    expect(sb.mailbox(email).filter((m) => m.isDraft || m.folder === 'drafts')).toHaveLength(0);
    expect(sb.mailbox(email).filter((m) => m.folder === 'sentitems').map((m) => m.id)).toEqual([sent[0]?.messageId]);
    // The idempotency check finds the sent copy.
    await expect(adapter.findByInternetMessageId('<reply-1@connector.test>')).resolves.toBe(sent[0]?.messageId);
  });

  it('the stand-in refuses drafts, createReply and upload sessions to a token without Mail.ReadWrite, as Graph does (403 ErrorAccessDenied)', async () => {
    const email = newMailbox();
    const inbound = await sb.deliver(email, mime(1));
    const base = `${sb.graphBaseUrl}/v1.0/me`;
    const call = async (token: string, path: string, body: string, contentType = 'text/plain'): Promise<{ status: number; error: unknown }> => {
      const res = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body });
      const text = await res.text();
      return { status: res.status, error: text ? (JSON.parse(text) as { error?: unknown }).error : undefined };
    };
    const connector = sb.issueAccessToken(email, CONNECTOR_SCOPES);
    const mimeB64 = Buffer.from(`From: ${email}\r\nTo: c1@fabrikam.test\r\nSubject: x\r\n\r\nx\r\n`).toString('base64');
    const denied = { status: 403, error: { code: 'ErrorAccessDenied', message: 'Access is denied. Check credentials and try again.' } };
    await expect(call(connector, `/messages/${encodeURIComponent(inbound.id)}/createReply`, mimeB64)).resolves.toMatchObject(denied);
    await expect(call(connector, '/messages', mimeB64)).resolves.toMatchObject(denied);
    await expect(call(connector, `/messages/${encodeURIComponent(inbound.id)}/attachments/createUploadSession`, JSON.stringify({ AttachmentItem: { attachmentType: 'file', name: 'a.bin', size: 4 * 1024 * 1024 } }), 'application/json')).resolves.toMatchObject(denied);
    expect(sb.mailbox(email).filter((m) => m.isDraft)).toHaveLength(0);
    // Without Mail.Send, reply and sendMail are refused too.
    const readOnly = sb.issueAccessToken(email, ['Mail.Read', 'User.Read']);
    await expect(call(readOnly, `/messages/${encodeURIComponent(inbound.id)}/reply`, mimeB64)).resolves.toMatchObject(denied);
    await expect(call(readOnly, '/sendMail', mimeB64)).resolves.toMatchObject(denied);
    expect(sb.sentMessages(email)).toHaveLength(0);
    // With Mail.ReadWrite (an app that holds it), createReply makes a draft in the conversation.
    const readWrite = sb.issueAccessToken(email, ['Mail.ReadWrite', 'Mail.Send']);
    await expect(call(readWrite, `/messages/${encodeURIComponent(inbound.id)}/createReply`, mimeB64)).resolves.toMatchObject({ status: 201 });
  });

  it('sends new mail with sendMail (base64 MIME); In-Reply-To joins the stored conversation', async () => {
    const email = newMailbox();
    const adapter = adapterFor(email);
    const inbound = await sb.deliver(email, mime(1));
    const out = Buffer.from(`From: ${email}\r\nTo: c1@fabrikam.test\r\nSubject: Follow-up\r\nMessage-ID: <fu-1@connector.test>\r\nIn-Reply-To: ${inbound.internetMessageId}\r\nReferences: ${inbound.internetMessageId}\r\n\r\nFollowing up.\r\n`);
    const result = await adapter.send({ mime: out, internetMessageId: '<fu-1@connector.test>' });
    expect(result.providerThreadId).toBe(inbound.conversationId);
    expect(sb.sentMessages(email)[0]).toMatchObject({ via: 'sendMail', conversationId: inbound.conversationId });
    expect(sb.sentMessages(email)[0]?.mime.equals(out)).toBe(true);
  });

  it('refuses a message over Graph’s 4 MB request limit (reply or new) as invalid_request message_too_large: nothing sent, nothing drafted', async () => {
    const email = newMailbox();
    const adapter = adapterFor(email);
    const inbound = await sb.deliver(email, mime(1));
    const big = randomBytes(3 * 1024 * 1024 + 77);
    const build = (messageId: string, inReplyTo?: string): Promise<Buffer> =>
      new MailComposer({ from: email, to: 'c1@fabrikam.test', subject: 'Files', messageId, inReplyTo, text: 'Attached.', attachments: [{ filename: 'scan.pdf', content: big }] }).compile().build();
    const reply = await build('<big-1@connector.test>', inbound.internetMessageId);
    const err1 = await failure(adapter.send({ mime: reply, internetMessageId: '<big-1@connector.test>', replyToProviderMessageId: inbound.id }));
    expect(err1).toMatchObject({ kind: 'invalid_request', reason: 'message_too_large' });
    const err2 = await failure(adapter.send({ mime: await build('<big-2@connector.test>'), internetMessageId: '<big-2@connector.test>' }));
    expect(err2).toMatchObject({ kind: 'invalid_request', reason: 'message_too_large' });
    expect(sb.sentMessages(email)).toHaveLength(0);
    expect(sb.mailbox(email).filter((m) => m.isDraft)).toHaveLength(0);
  });

  it("currentCursor with the 'latest' strategy costs one call and reports only later mail", async () => {
    const email = newMailbox();
    await sb.deliver(email, mime(1));
    const adapter = adapterFor(email, { cursorStrategy: 'latest' });
    const cursor = await adapter.currentCursor();
    const later = await sb.deliver(email, mime(2));
    await expect(adapter.listChanges(cursor)).resolves.toMatchObject({ addedMessageIds: [later.id], hasMore: false });
  });

  it('rejects a message body over the 4 MB request limit as invalid_request before creating anything', async () => {
    const email = newMailbox();
    const adapter = adapterFor(email);
    // No attachment to move out of the way: the body alone is over the limit, so no draft may be created.
    const hugeBody = Buffer.concat([Buffer.from(`From: ${email}\r\nTo: x@fabrikam.test\r\nSubject: big\r\nMessage-ID: <huge@connector.test>\r\n\r\n`), Buffer.alloc(4 * 1024 * 1024, 'a')]);
    const err = await failure(adapter.send({ mime: hugeBody, internetMessageId: '<huge@connector.test>' }));
    expect(err).toMatchObject({ kind: 'invalid_request', reason: 'message_too_large' });
    expect(sb.sentMessages(email)).toHaveLength(0);
    expect(sb.mailbox(email).filter((m) => m.isDraft)).toHaveLength(0);
  });

  it('maps 401, 404, 5xx and long Retry-After to ProviderError kinds; retries a short 429 and a GET 503', async () => {
    const email = newMailbox();
    const backoffs: number[] = [];
    const adapter = adapterFor(email, { runner: { maxRetryWaitMs: 2000, sleep: async (ms) => void backoffs.push(ms), random: () => 0.5 } });
    const d = await sb.deliver(email, mime(1));
    await expect(failure(adapter.fetchRaw('AAMkADdoesnotexist='))).resolves.toMatchObject({ kind: 'not_found', status: 404 });

    sb.injectFault({ status: 503, count: 1, pathIncludes: '/me' });
    await expect(adapter.getAddress()).resolves.toBe(email);
    sb.injectFault({ status: 429, count: 1, retryAfterSeconds: 0 });
    await expect(adapter.getAddress()).resolves.toBe(email);

    sb.injectFault({ status: 429, count: 1, retryAfterSeconds: 120 });
    await expect(failure(adapter.getAddress())).resolves.toMatchObject({ kind: 'rate_limited', retryAfterMs: 120_000, status: 429 });
    sb.injectFault({ status: 500, count: 10 });
    await expect(failure(adapter.getAddress())).resolves.toMatchObject({ kind: 'transient', status: 500 });
    // 1 retry for the 503, then the full 3-retry exponential backoff for the 500 storm: full
    // jitter below 250, 500, 1000 ms (random pinned at 0.5).
    expect(backoffs).toEqual([125, 125, 250, 500]);
    sb.clearFaults();

    sb.expireAccessTokens(email);
    const revoked = await failure(adapter.fetchRaw(d.id));
    expect(revoked).toMatchObject({ kind: 'auth_revoked', status: 401 });
  });
});

describe('Outlook concurrency limit', () => {
  it('answers the fifth simultaneous request with 429 ApplicationThrottled and Retry-After', async () => {
    const email = newMailbox();
    const token = sb.issueAccessToken(email);
    // Long enough that all five are in flight at once even on a busy machine.
    sb.setLatency(800);
    try {
      const responses = await Promise.all(Array.from({ length: 5 }, () => fetch(`${sb.graphBaseUrl}/v1.0/me`, { headers: { authorization: `Bearer ${token}` } })));
      const throttled = responses.filter((r) => r.status === 429);
      expect(throttled).toHaveLength(1);
      expect(Number(throttled[0]?.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await throttled[0]?.json()) as { error: { code: string } }).error.code).toBe('ApplicationThrottled');
      expect(responses.filter((r) => r.status === 200)).toHaveLength(4);
    } finally {
      sb.setLatency(0);
    }
  });

  it('the adapter never runs more than 4 requests for one mailbox, so 12 parallel fetches all succeed', async () => {
    const email = newMailbox();
    const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => sb.deliver(email, mime(i)).then((d) => d.id)));
    const limiter = new ConcurrencyLimiter(4);
    const adapter = adapterFor(email, { limiter });
    const throttledBefore = sb.throttledCount();
    sb.setLatency(40);
    try {
      const results = await Promise.all([...ids, ...ids].map((id) => adapter.fetchRaw(id).then((r) => readAll(r.raw))));
      expect(results).toHaveLength(12);
    } finally {
      sb.setLatency(0);
    }
    expect(limiter.peak).toBe(4);
    expect(sb.peakConcurrency(email)).toBeLessThanOrEqual(4);
    expect(sb.throttledCount()).toBe(throttledBefore);
  });

  it('enforces the requests-per-window limit with a Retry-After until the window ends', async () => {
    const email = newMailbox();
    const token = sb.issueAccessToken(email);
    sb.configureThrottle({ requestsPerWindow: 3, windowMs: 60_000 });
    try {
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 4; i += 1) {
        const r = await fetch(`${sb.graphBaseUrl}/v1.0/me`, { headers: { authorization: `Bearer ${token}` } });
        statuses.push(r.status);
        if (r.status === 429) retryAfter = r.headers.get('retry-after');
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect(Number(retryAfter)).toBeGreaterThan(50);
    } finally {
      sb.configureThrottle({ requestsPerWindow: 10_000, windowMs: 600_000 });
    }
  });
});

describe('Graph write limits in the stand-in', () => {
  it('answers 413 to a write body over 4 MB and rejects an upload session under 3 MB', async () => {
    const email = newMailbox();
    const token = sb.issueAccessToken(email);
    const auth = { authorization: `Bearer ${token}` };
    const tooBig = await fetch(`${sb.graphBaseUrl}/v1.0/me/sendMail`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: Buffer.alloc(4 * 1024 * 1024 + 10, 'Q') });
    expect(tooBig.status).toBe(413);
    const badB64 = await fetch(`${sb.graphBaseUrl}/v1.0/me/sendMail`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'not base64 !!' });
    expect(((await badB64.json()) as { error: { code: string } }).error.code).toBe('ErrorMimeContentInvalidBase64String');
    const draft = (await (await fetch(`${sb.graphBaseUrl}/v1.0/me/messages`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ subject: 'x' }) })).json()) as { id: string };
    const small = await fetch(`${sb.graphBaseUrl}/v1.0/me/messages/${encodeURIComponent(draft.id)}/attachments/createUploadSession`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ AttachmentItem: { attachmentType: 'file', name: 'a.txt', size: 1024 } }),
    });
    expect(small.status).toBe(400);
    const body = (await small.json()) as { error: { code: string; innerError: Record<string, string> } };
    expect(body.error.code).toBe('ErrorAttachmentSizeShouldNotBeLessThanMinimumSize');
    expect(Object.keys(body.error.innerError).sort()).toEqual(['client-request-id', 'date', 'request-id']);
  });
});

import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { connectGoogleSandboxUser } from '../../src/sandbox/google/google-sandbox-connect.client.js';
import { GmailAdapter } from '../../src/providers/google/gmail.adapter.js';
import { GmailQuotaBudget } from '../../src/providers/google/gmail-quota.js';
import { sandboxGoogleEndpoints, type GoogleEndpoints } from '../../src/providers/google/google-endpoints.js';
import { isProviderError, type ProviderError } from '../../src/providers/provider-error.js';
import type { SyncCursor } from '../../src/providers/mail-provider.port.js';

const SCOPES = ['openid', 'email', 'https://www.googleapis.com/auth/gmail.modify'];
const FIX = new URL('../../fixtures/google/', import.meta.url);

let sandbox: GoogleSandbox;
let endpoints: GoogleEndpoints;
let n = 0;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

function mime(subject: string, extra: string[] = [], to = 'customer@example.org'): Buffer {
  n++;
  return Buffer.from(
    [`From: Customer <customer@example.org>`, `To: ${to}`, `Subject: ${subject}`, `Message-ID: <m${n}-${Date.now()}@example.org>`, ...extra, '', `body ${n}`, ''].join('\r\n'),
  );
}

async function adapterFor(email: string, quota?: GmailQuotaBudget, jsonSendThresholdBytes?: number): Promise<{ adapter: GmailAdapter; token: () => string; calls: () => number }> {
  const user = await connectGoogleSandboxUser(sandbox.endpoints, { email, scopes: SCOPES });
  let calls = 0;
  const adapter = new GmailAdapter({
    endpoints,
    accessToken: async () => {
      calls++;
      return user.accessToken;
    },
    ...(quota ? { quota } : {}),
    ...(jsonSendThresholdBytes !== undefined ? { jsonSendThresholdBytes } : {}),
  });
  return { adapter, token: () => user.accessToken, calls: () => calls };
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isProviderError(err)) throw new Error(`expected a ProviderError, got ${String(err)}`);
  return err;
}

beforeAll(async () => {
  sandbox = await startGoogleSandbox();
  endpoints = sandboxGoogleEndpoints(sandbox.url);
});
afterAll(async () => {
  await sandbox.close();
});

describe('GmailAdapter against the Google stand-in', () => {
  it('pages more than 500 inbox additions across history pages, skipping sent-only and draft messages', async () => {
    const email = 'history@acme.test';
    const { adapter } = await adapterFor(email);
    expect(await adapter.getAddress()).toBe(email);
    const start = await adapter.currentCursor();
    expect(start).toEqual({ v: 1, provider: 'google', historyId: sandbox.currentHistoryId(email) });

    const expected: string[] = [];
    for (let i = 0; i < 505; i++) {
      if (i % 100 === 7) sandbox.deliver(email, mime(`sent ${i}`), { labelIds: ['SENT'] });
      if (i % 100 === 9) sandbox.deliver(email, mime(`draft ${i}`), { labelIds: ['DRAFT', 'INBOX'] });
      expected.push(sandbox.deliver(email, mime(`in ${i}`)).id);
    }
    let cursor: SyncCursor = start;
    const seen: string[] = [];
    let pages = 0;
    for (;;) {
      const page = await adapter.listChanges(cursor);
      pages++;
      seen.push(...page.addedMessageIds);
      cursor = page.nextCursor;
      if (!page.hasMore) break;
    }
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(seen).toEqual(expected);
    expect(cursor).toEqual({ v: 1, provider: 'google', historyId: sandbox.currentHistoryId(email) });
    const again = await adapter.listChanges(cursor);
    expect(again).toEqual({ addedMessageIds: [], nextCursor: cursor, hasMore: false });

    // Resuming from a mid-way cursor (a crash after page one) neither skips nor repeats.
    const first = await adapter.listChanges(start);
    const rest: string[] = [];
    let c = first.nextCursor;
    for (;;) {
      const p = await adapter.listChanges(c);
      rest.push(...p.addedMessageIds);
      c = p.nextCursor;
      if (!p.hasMore) break;
    }
    expect([...first.addedMessageIds, ...rest]).toEqual(expected);
  });

  it('reports cursor_expired when the history id is behind the horizon', async () => {
    const email = 'expired@acme.test';
    const { adapter } = await adapterFor(email);
    const cursor = await adapter.currentCursor();
    sandbox.deliver(email, mime('x'));
    sandbox.expireHistory(email);
    const err = await failure(adapter.listChanges(cursor));
    expect(err.kind).toBe('cursor_expired');
    expect(err.status).toBe(404);
    // A 404 elsewhere is plain not_found.
    expect((await failure(adapter.fetchRaw('0000000000000000'))).kind).toBe('not_found');
  });

  it('lists a window newest first with paging and fetches exact raw bytes with metadata', async () => {
    const email = 'window@acme.test';
    const { adapter } = await adapterFor(email);
    const since = new Date(Date.UTC(2026, 9, 1));
    sandbox.deliver(email, mime('old'), { internalDate: since.getTime() - 1000 });
    const ids: string[] = [];
    for (let i = 0; i < 130; i++) ids.push(sandbox.deliver(email, mime(`w${i}`), { internalDate: since.getTime() + i * 60_000 }).id);
    const p1 = await adapter.listWindow(since);
    expect(p1.messageIds).toHaveLength(100);
    expect(p1.messageIds[0]).toBe(ids[129]);
    const p2 = await adapter.listWindow(since, p1.nextPageToken);
    expect(p2.nextPageToken).toBeUndefined();
    expect([...p1.messageIds, ...p2.messageIds].sort()).toEqual([...ids].sort());

    const bytes = readFileSync(new URL('latin1-8bit.eml', FIX));
    const stored = sandbox.deliver(email, bytes, { internalDate: Date.UTC(2026, 10, 2, 9) });
    const raw = await adapter.fetchRaw(stored.id);
    expect((await readAll(raw.raw)).equals(bytes)).toBe(true);
    expect(raw).toMatchObject({ providerMessageId: stored.id, providerThreadId: stored.threadId, sizeEstimate: bytes.length, labelIds: ['INBOX', 'UNREAD'] });
    expect(raw.receivedAt).toEqual(new Date(Date.UTC(2026, 10, 2, 9)));
  });

  it('sends threaded replies (JSON and upload), finds them by Message-ID, refuses over 35 MB', async () => {
    const email = 'sender@acme.test';
    // A low JSON threshold sends the big message through the upload endpoint without 5 MB of test data.
    const { adapter } = await adapterFor(email, undefined, 64 * 1024);
    const original = sandbox.deliver(email, mime('Refund request', [], email));
    const origId = `<${sandbox.mailbox(email)!.messages.get(original.id)!.internetMessageId}>`;
    const replyId = `<reply-${Date.now()}@acme.test>`;
    const reply = Buffer.from(
      [`From: ${email}`, 'To: customer@example.org', 'Subject: Re: Refund request', `Message-ID: ${replyId}`, `In-Reply-To: ${origId}`, `References: ${origId}`, '', 'Refund issued.', ''].join('\r\n'),
    );
    const sent = await adapter.send({ mime: reply, internetMessageId: replyId, providerThreadId: original.threadId });
    expect(sent.providerThreadId).toBe(original.threadId);
    expect(await adapter.findByInternetMessageId(replyId)).toBe(sent.providerMessageId);
    expect(await adapter.findByInternetMessageId('<never-sent@acme.test>')).toBeUndefined();

    // Above the threshold the message goes through the upload endpoint, still threaded.
    const bigId = `<big-${Date.now()}@acme.test>`;
    const big = Buffer.concat([
      Buffer.from([`From: ${email}`, 'To: customer@example.org', 'Subject: RE: Refund request', `Message-ID: ${bigId}`, `References: ${origId}`, 'Content-Type: text/plain', '', ''].join('\r\n')),
      Buffer.alloc(200 * 1024, 'abcdefghij\r\n'),
    ]);
    const bigSent = await adapter.send({ mime: big, internetMessageId: bigId, providerThreadId: original.threadId });
    expect(bigSent.providerThreadId).toBe(original.threadId);
    const rec = sandbox.sent(email).find((s) => s.id === bigSent.providerMessageId)!;
    expect(rec.via).toBe('upload');
    expect(rec.raw.equals(big)).toBe(true);

    const before = sandbox.sent(email).length;
    const tooBig = await failure(adapter.send({ mime: Buffer.alloc(36_700_161), internetMessageId: '<x@y>' }));
    expect(tooBig.kind).toBe('invalid_request');
    expect(sandbox.sent(email).length).toBe(before);

    const bad = await failure(adapter.send({ mime: mime('bad', [], 'not-an-address'), internetMessageId: '<b@y>' }));
    expect(bad.kind).toBe('invalid_request');
    expect(bad.status).toBe(400);
  });

  it('maps a revoked grant to auth_revoked after one retry with a fresh token', async () => {
    const email = 'revoked@acme.test';
    const { adapter, calls } = await adapterFor(email);
    await adapter.getAddress();
    sandbox.revokeUserGrants(email);
    const before = calls();
    const err = await failure(adapter.currentCursor());
    expect(err.kind).toBe('auth_revoked');
    expect(calls() - before).toBe(2);
    expect(err.message).not.toMatch(/ya29/);
  });

  it('maps 429 to rate_limited with Retry-After, pauses the mailbox budget, and 5xx to transient', async () => {
    const email = 'limited@acme.test';
    const { adapter } = await adapterFor(email);
    sandbox.rateLimitNext(1);
    const err = await failure(adapter.getAddress());
    expect(err).toMatchObject({ kind: 'rate_limited', retryAfterMs: 1000, status: 429, reason: 'rateLimitExceeded' });
    const t0 = Date.now();
    expect(await adapter.getAddress()).toBe(email);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);

    sandbox.serverErrorNext(1, 503);
    expect((await failure(adapter.getAddress())).kind).toBe('transient');
  });

  it('keeps a concurrent backfill under the per-user quota, where an unbudgeted burst is throttled', async () => {
    sandbox.setQuota({ unitsPerWindow: 100, windowMs: 1000 });
    try {
      // Quota is per user, so the two halves use different mailboxes and need not wait for each other.
      const burstIds = Array.from({ length: 10 }, (_, i) => sandbox.deliver('burst@acme.test', mime(`b${i}`)).id);
      const unbudgeted = await adapterFor('burst@acme.test', new GmailQuotaBudget({ unitsPerWindow: 1_000_000 }));
      const burst = await Promise.allSettled(burstIds.map((id) => unbudgeted.adapter.fetchRaw(id)));
      const limited = burst.filter((r) => r.status === 'rejected' && isProviderError(r.reason, 'rate_limited'));
      expect(limited.length).toBeGreaterThan(0);

      const email = 'backfill@acme.test';
      const ids = Array.from({ length: 10 }, (_, i) => sandbox.deliver(email, mime(`b${i}`)).id);
      const budget = new GmailQuotaBudget({ unitsPerWindow: 100, windowMs: 1000, safetyFactor: 0.8 });
      const { adapter } = await adapterFor(email, budget);
      const page = await adapter.listWindow(new Date(0));
      expect(page.messageIds.sort()).toEqual([...ids].sort());
      const t0 = Date.now();
      const fetched = await Promise.all(page.messageIds.map((id) => adapter.fetchRaw(id)));
      expect(fetched).toHaveLength(10);
      // 10 x 20 units at 80 units/s cannot finish in under ~2 s: the budget really throttled.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    } finally {
      sandbox.setQuota({ unitsPerWindow: 6000, windowMs: 60_000 });
    }
  });
});

describe('GmailAdapter with a short history retention', () => {
  it('answers cursor_expired once the records after the cursor were discarded, and works inside the range', async () => {
    const short = await startGoogleSandbox({ historyMaxRecords: 5 });
    try {
      const email = 'short@acme.test';
      const user = await connectGoogleSandboxUser(short.endpoints, { email, scopes: SCOPES });
      const adapter = new GmailAdapter({ endpoints: sandboxGoogleEndpoints(short.url), accessToken: async () => user.accessToken });
      const old = await adapter.currentCursor();
      for (let i = 0; i < 3; i++) short.deliver(email, mime(`s${i}`));
      const recent = await adapter.currentCursor();
      const kept = [short.deliver(email, mime('k1')).id, short.deliver(email, mime('k2')).id];
      for (let i = 0; i < 3; i++) short.deliver(email, mime(`t${i}`));
      expect((await failure(adapter.listChanges(old))).kind).toBe('cursor_expired');
      expect((await adapter.listChanges(recent)).addedMessageIds.slice(0, 2)).toEqual(kept);
    } finally {
      await short.close();
    }
  });
});

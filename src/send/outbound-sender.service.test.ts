import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { AppendEventInput } from '../events/outbox.service.js';
import type { MailProvider, SendRequest, SendResult } from '../providers/mail-provider.port.js';
import { ProviderError } from '../providers/provider-error.js';
import type { Prisma } from '../storage/database.js';
import type { MailboxRecord } from '../storage/mailbox.repository.js';
import type { ClaimedOutbound, OutboundRow } from '../storage/outbound.repository.js';
import { encodeOutboundContent, type OutboundContent } from './outbound-content.js';
import { OutboundSender, type OutboundSenderOptions } from './outbound-sender.service.js';

const MIME = Buffer.from('From: a@acme.test\r\nTo: b@customer.example\r\nMessage-ID: <gen-1@acme.test>\r\nSubject: Re: x\r\n\r\nhello\r\n');
const TX = {} as Prisma.TransactionClient;

/** In-memory outbound table with the same guarded transitions as the SQL in OutboundRepository. */
class FakeOutbound {
  row: OutboundRow;
  constructor(row: OutboundRow) {
    this.row = row;
  }
  async claim(id: string, now: Date, staleBefore: Date): Promise<ClaimedOutbound | null> {
    const r = this.row;
    if (r.id !== id) return null;
    const stale = r.status === 'sending' && r.updatedAt < staleBefore;
    if (r.status !== 'queued' && !stale) return null;
    this.row = { ...r, status: 'sending', attempts: r.attempts + 1, sendStartedAt: now, updatedAt: now };
    return { row: { ...this.row }, attempt: this.row.attempts };
  }
  async findUnscoped(id: string): Promise<OutboundRow | null> {
    return this.row.id === id ? { ...this.row } : null;
  }
  async markSent(_tx: unknown, id: string, attempt: number, result: { providerMessageId: string | null; providerThreadId: string | null; sentAt: Date }): Promise<boolean> {
    if (this.row.id !== id || this.row.status !== 'sending' || this.row.attempts !== attempt) return false;
    this.row = { ...this.row, status: 'sent', ...result };
    return true;
  }
  async markFailed(_tx: unknown, id: string, attempt: number | null, f: { code: string; reason: string }): Promise<boolean> {
    if (this.row.id !== id || this.row.status !== 'sending' || this.row.attempts !== attempt) return false;
    this.row = { ...this.row, status: 'failed', failureCode: f.code, failureReason: f.reason };
    return true;
  }
  async heartbeat(id: string, attempt: number, at: Date): Promise<boolean> {
    if (this.row.id !== id || this.row.status !== 'sending' || this.row.attempts !== attempt) return false;
    this.row = { ...this.row, updatedAt: at };
    return true;
  }
  async release(id: string, attempt: number): Promise<boolean> {
    if (this.row.id !== id || this.row.status !== 'sending' || this.row.attempts !== attempt) return false;
    this.row = { ...this.row, status: 'queued' };
    return true;
  }
}

/** A provider that records sends and can be told to fail, answer slowly or already hold a copy. */
class FakeProvider implements MailProvider {
  readonly name = 'google' as const;
  sent: SendRequest[] = [];
  lookups = 0;
  failures: ProviderError[] = [];
  delayMs = 0;
  async send(req: SendRequest): Promise<SendResult> {
    const failure = this.failures.shift();
    if (failure) throw failure;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    this.sent.push(req);
    return { providerMessageId: `gm-${this.sent.length}`, providerThreadId: req.providerThreadId };
  }
  async findByInternetMessageId(id: string): Promise<string | undefined> {
    this.lookups++;
    const i = this.sent.findIndex((s) => s.internetMessageId === id);
    return i >= 0 ? `gm-${i + 1}` : undefined;
  }
  getAddress = unexpected;
  currentCursor = unexpected;
  listChanges = unexpected;
  listWindow = unexpected;
  async fetchRaw(id: string) {
    return { providerMessageId: id, providerThreadId: 'thread-1', raw: Readable.from([Buffer.from('…')]), sizeEstimate: undefined, receivedAt: undefined, labelIds: ['SENT'] };
  }
}

function unexpected(): never {
  throw new Error('not used by the sender');
}

function setup(opts: { mailboxStatus?: MailboxRecord['status']; blob?: Buffer; sender?: OutboundSenderOptions } = {}) {
  const content: OutboundContent = {
    v: 1,
    kind: 'reply',
    internetMessageId: '<gen-1@acme.test>',
    mime: { blobId: 'blb_1', size: MIME.length, sha256: createHash('sha256').update(MIME).digest('hex') },
    headers: { from: { address: 'a@acme.test' }, to: [{ address: 'b@customer.example' }], cc: [], bcc: [], subject: 'Re: x', inReplyTo: '<o@c>', references: ['<o@c>'] },
    attachments: [],
    provider: { threadId: 'thread-1', replyToProviderMessageId: 'gm-orig' },
  };
  const outbound = new FakeOutbound({
    id: 'out_1',
    tenantId: 'ten_1',
    mailboxId: 'mbx_1',
    kind: 'reply',
    replyToMessageId: 'msg_1',
    idempotencyKey: 'k',
    requestHash: 'h',
    status: 'queued',
    failureCode: null,
    failureReason: null,
    messageIdIndex: 'idx',
    contentEnc: new Uint8Array(0),
    providerMessageId: null,
    providerThreadId: null,
    threadKey: 'thr_1',
    attempts: 0,
    sendStartedAt: null,
    sentAt: null,
    createdAt: new Date(),
    updatedAt: new Date(),
  });
  const provider = new FakeProvider();
  const events: AppendEventInput[] = [];
  let now = Date.parse('2026-11-29T06:00:00Z');
  const sender = new OutboundSender(
    {
      outbound,
      mailboxes: { findByIdUnscoped: async (id) => ({ id, tenantId: 'ten_1', provider: 'google', status: opts.mailboxStatus ?? 'active' }) as MailboxRecord },
      blobs: { readAll: async (id) => (id === 'blb_1' ? (opts.blob ?? MIME) : Promise.reject(new Error('no such blob'))) },
      dataKeys: {
        getOrCreate: async () => ({ id: 'dek_1', version: 1, key: Buffer.alloc(32) }) as never,
        async decryptFor(owner, _blob, aad) {
          expect(owner).toEqual({ type: 'mailbox', id: 'mbx_1' });
          expect(aad).toEqual({ table: 'outbound_messages', column: 'contentEnc', rowId: 'out_1' });
          return encodeOutboundContent(content);
        },
      },
      outbox: {
        async appendEvent(_tx, input) {
          events.push(input);
          return { id: `evt_${events.length}`, sequence: BigInt(events.length) };
        },
      },
      transaction: (fn) => fn(TX),
      eventsCommitted: async () => undefined,
      providers: async () => provider,
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
      clock: () => new Date(now),
    },
    { baseDelayMs: 1_000, maxDelayMs: 60_000, maxAttempts: 3, leaseMs: 60_000, random: () => 0.5, ...opts.sender },
  );
  return { sender, outbound, provider, events, advance: (ms: number) => (now += ms) };
}

describe('OutboundSender', () => {
  it('sends once, threaded, and appends one message.sent; a duplicate job changes nothing', async () => {
    const { sender, outbound, provider, events } = setup();
    expect(await sender.handle({ outboundId: 'out_1' })).toMatchObject({ status: 'done' });
    expect(provider.sent).toHaveLength(1);
    expect(provider.sent[0]).toMatchObject({ internetMessageId: '<gen-1@acme.test>', providerThreadId: 'thread-1' });
    expect(provider.sent[0]!.mime.equals(MIME)).toBe(true);
    expect(outbound.row).toMatchObject({ status: 'sent', providerMessageId: 'gm-1', providerThreadId: 'thread-1', attempts: 1 });
    expect(await sender.handle({ outboundId: 'out_1' })).toEqual({ status: 'skipped', reason: 'already sent' });
    expect(provider.sent).toHaveLength(1);
    expect(events.map((e) => e.type)).toEqual(['message.sent']);
  });

  it('lets only one of two concurrent jobs send; the other waits for the lease', async () => {
    const { sender, provider, events } = setup();
    provider.delayMs = 30;
    const [a, b] = await Promise.all([sender.handle({ outboundId: 'out_1' }), sender.handle({ outboundId: 'out_1' })]);
    expect([a.status, b.status].sort()).toEqual(['done', 'retry']);
    expect(provider.sent).toHaveLength(1);
    expect(events).toHaveLength(1);
  });

  it('after an attempt that may have reached the provider, finds the copy instead of sending again', async () => {
    const { sender, outbound, provider, events, advance } = setup();
    // The provider accepted the message, but the answer was lost (a 502 from a proxy).
    provider.send = async function (req) {
      this.sent.push(req);
      throw new ProviderError('google', 'transient', 'Google messages.send: 502', { status: 502 });
    };
    const first = await sender.handle({ outboundId: 'out_1' });
    expect(first).toEqual({ status: 'retry', reason: 'transient', afterMs: 1_000 });
    expect(outbound.row.status).toBe('queued');
    advance(1_000);
    expect(await sender.handle({ outboundId: 'out_1' })).toMatchObject({ status: 'done', detail: { recovered: true } });
    expect(provider.lookups).toBe(1);
    expect(provider.sent).toHaveLength(1);
    expect(outbound.row).toMatchObject({ status: 'sent', providerMessageId: 'gm-1', providerThreadId: 'thread-1', attempts: 2 });
    expect(events.map((e) => e.type)).toEqual(['message.sent']);
  });

  it('takes over a row whose worker died mid-send only after the lease, then checks the provider first', async () => {
    const { sender, outbound, provider, advance } = setup();
    await outbound.claim('out_1', new Date(Date.parse('2026-11-29T06:00:00Z')), new Date(0)); // a worker that then died
    const early = await sender.handle({ outboundId: 'out_1' });
    expect(early).toMatchObject({ status: 'retry', reason: 'another attempt is in progress', afterMs: 60_000 });
    advance(60_001);
    expect(await sender.handle({ outboundId: 'out_1' })).toMatchObject({ status: 'done', detail: { recovered: false } });
    expect(provider.lookups).toBe(1);
    expect(provider.sent).toHaveLength(1);
  });

  it('a live attempt renews its lease: a send running far past the lease is not taken over', async () => {
    const { sender, outbound, provider, advance } = setup({ sender: { heartbeatMs: 5 } });
    provider.delayMs = 200; // a long upload
    const first = sender.handle({ outboundId: 'out_1' });
    await new Promise((r) => setTimeout(r, 50));
    advance(10 * 60_000); // ten leases later on the clock…
    await new Promise((r) => setTimeout(r, 50)); // …the running attempt has renewed since
    expect(await sender.handle({ outboundId: 'out_1' })).toMatchObject({ status: 'retry', reason: 'another attempt is in progress' });
    expect(await first).toMatchObject({ status: 'done' });
    expect(provider.sent).toHaveLength(1);
    expect(provider.lookups).toBe(0);
    expect(outbound.row).toMatchObject({ status: 'sent', attempts: 1 });
  });

  it('honours Retry-After, backs off on 5xx, and gives up with one send_failed after maxAttempts', async () => {
    const { sender, outbound, provider, events, advance } = setup();
    provider.failures = [
      new ProviderError('google', 'rate_limited', '429', { status: 429, retryAfterMs: 7_000 }),
      new ProviderError('google', 'transient', '503', { status: 503 }),
      new ProviderError('google', 'transient', '503', { status: 503 }),
    ];
    expect(await sender.handle({ outboundId: 'out_1' })).toEqual({ status: 'retry', reason: 'rate_limited', afterMs: 7_000 });
    advance(7_000);
    // attempt 2: full jitter below 1 s × 2^1, random 0.5 → 1 s
    expect(await sender.handle({ outboundId: 'out_1' })).toEqual({ status: 'retry', reason: 'transient', afterMs: 1_000 });
    advance(1_000);
    expect(await sender.handle({ outboundId: 'out_1' })).toEqual({ status: 'failed', reason: 'retries_exhausted' });
    expect(outbound.row).toMatchObject({ status: 'failed', failureCode: 'retries_exhausted', attempts: 3 });
    expect(provider.sent).toHaveLength(0);
    expect(events).toEqual([expect.objectContaining({ type: 'message.send_failed', refs: { outboundId: 'out_1' }, data: expect.objectContaining({ code: 'retries_exhausted' }) })]);
  });

  it('fails permanent refusals at once with a content-free reason', async () => {
    const { sender, outbound, provider, events } = setup();
    provider.failures = [new ProviderError('google', 'invalid_request', 'Google messages.send: Invalid To header', { status: 400, reason: 'invalidArgument' })];
    expect(await sender.handle({ outboundId: 'out_1' })).toEqual({ status: 'failed', reason: 'invalid_request' });
    expect(outbound.row).toMatchObject({ status: 'failed', failureCode: 'invalid_request', failureReason: 'the provider refused the message (HTTP 400, invalidArgument)' });
    expect(events.map((e) => e.type)).toEqual(['message.send_failed']);
  });

  it('does not call the provider for a mailbox that needs reauthorisation, or for MIME that does not match its digest', async () => {
    const reauth = setup({ mailboxStatus: 'reauth_required' });
    expect(await reauth.sender.handle({ outboundId: 'out_1' })).toEqual({ status: 'failed', reason: 'auth_revoked' });
    expect(reauth.provider.sent).toHaveLength(0);

    const tampered = setup({ blob: Buffer.from(MIME.toString().replace('hello', 'HELLO')) });
    expect(await tampered.sender.handle({ outboundId: 'out_1' })).toEqual({ status: 'failed', reason: 'content_unavailable' });
    expect(tampered.provider.sent).toHaveLength(0);
  });
});

import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { gmail, type gmail_v1 } from '@googleapis/gmail';
import { z } from 'zod';
import type {
  AccessTokenSource,
  ChangePage,
  MailProvider,
  RawMessage,
  SendAsAddress,
  SendRequest,
  SendResult,
  SyncCursor,
  WindowPage,
} from '../mail-provider.port.js';
import { ProviderError, unexpectedResponse, withRetryAfter } from '../provider-error.js';
import type { GoogleEndpoints } from './google-endpoints.js';
import { readGmailRawMessage } from './gmail-raw-stream.js';
import { mapGoogleError, type GoogleOperation } from './google-error.mapper.js';
import { GmailQuotaBudget, type GmailQuotaMethod } from './gmail-quota.js';
import {
  gmailHistoryListSchema,
  gmailMessageListSchema,
  gmailProfileSchema,
  gmailMinimalMessageSchema,
  gmailSendAsListSchema,
  gmailSendResponseSchema,
} from './gmail-response.schema.js';

/** messages.send maxSize in the Gmail discovery document (35 MB). */
export const GMAIL_MAX_SEND_BYTES = 36_700_160;
/**
 * Above this the JSON `raw` body (base64, +33%) is avoided: its limit is undocumented and
 * third-party reports show 400/413 for ~8-15 MB JSON bodies (provider-facts 1.4), so larger
 * messages go through the /upload media endpoint.
 */
export const GMAIL_JSON_SEND_THRESHOLD_BYTES = 5 * 1024 * 1024;

export interface GmailAdapterOptions {
  endpoints: Pick<GoogleEndpoints, 'gmailRootUrl'>;
  accessToken: AccessTokenSource;
  /** Per-mailbox budget; share one instance between every adapter of the same mailbox. */
  quota?: GmailQuotaBudget;
  timeoutMs?: number;
  jsonSendThresholdBytes?: number;
}

/** Enough of an error body for its Google reason; the rest is dropped unread. */
const ERROR_BODY_LIMIT = 64 * 1024;

function toNodeReadable(data: unknown): Readable {
  if (data instanceof Readable) return data;
  if (data !== null && typeof data === 'object' && typeof (data as { getReader?: unknown }).getReader === 'function') {
    return Readable.fromWeb(data as WebReadableStream<Uint8Array>);
  }
  throw new ProviderError('google', 'transient', 'Google messages.get: no response body');
}

async function readCapped(stream: Readable, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      parts.push(Buffer.from(chunk));
      size += chunk.length;
      if (size >= limit) break;
    }
  } catch {
    // A broken error body still has its status.
  }
  stream.destroy();
  return Buffer.concat(parts).subarray(0, limit).toString('utf8');
}

const googleCursorSchema = z.object({
  v: z.literal(1),
  provider: z.literal('google'),
  historyId: z.string().regex(/^\d+$/),
});

/** Parse an external response; a malformed one is a ProviderError (`unexpected_response`), never a ZodError. */
function parse<T>(schema: z.ZodType<T>, data: unknown, operation: GoogleOperation): T {
  const r = schema.safeParse(data);
  if (!r.success) throw unexpectedResponse('google', operation, { issues: r.error.issues });
  return r.data;
}

/**
 * MailProvider for one Gmail mailbox through @googleapis/gmail. The access token is set per
 * request from `accessToken`, so token refresh stays in the vault.
 */
export class GmailAdapter implements MailProvider {
  readonly name = 'google' as const;
  private readonly client: gmail_v1.Gmail;
  private readonly quota: GmailQuotaBudget;
  private readonly timeoutMs: number;
  private readonly jsonThreshold: number;

  constructor(private readonly opts: GmailAdapterOptions) {
    // Retries belong to the job system (it knows Retry-After and backoff); gaxios must not add its own.
    this.client = gmail({ version: 'v1', rootUrl: opts.endpoints.gmailRootUrl, retry: false });
    this.quota = opts.quota ?? new GmailQuotaBudget();
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.jsonThreshold = opts.jsonSendThresholdBytes ?? GMAIL_JSON_SEND_THRESHOLD_BYTES;
  }

  /**
   * One Gmail call: wait for quota, attach a bearer token, map failures. A 401 is retried once
   * with a freshly obtained token (the vault may have refreshed meanwhile); a second 401 means
   * the grant is gone.
   */
  private async call<T>(method: GmailQuotaMethod, fn: (options: { headers: Record<string, string>; timeout: number }) => Promise<{ data: T }>): Promise<T> {
    const operation = method as GoogleOperation;
    for (let attempt = 1; ; attempt++) {
      const ticket = await this.quota.take(method);
      let token: string;
      try {
        token = await this.opts.accessToken();
      } catch (err) {
        ticket.settle();
        throw mapGoogleError(err, 'oauth.token');
      }
      try {
        const res = await fn({ headers: { Authorization: `Bearer ${token}` }, timeout: this.timeoutMs });
        ticket.settle();
        this.quota.succeeded();
        return res.data;
      } catch (err) {
        ticket.settle();
        const mapped = mapGoogleError(err, operation);
        if (mapped.status === 401 && attempt === 1) continue;
        if (mapped.kind === 'rate_limited') throw withRetryAfter(mapped, this.quota.rateLimited(mapped.retryAfterMs));
        throw mapped;
      }
    }
  }

  async getAddress(): Promise<string> {
    const data = await this.call('getProfile', (o) => this.client.users.getProfile({ userId: 'me' }, o));
    return parse(gmailProfileSchema, data, 'getProfile').emailAddress;
  }

  async currentCursor(): Promise<SyncCursor> {
    const data = await this.call('getProfile', (o) => this.client.users.getProfile({ userId: 'me' }, o));
    return { v: 1, provider: 'google', historyId: parse(gmailProfileSchema, data, 'getProfile').historyId };
  }

  /**
   * One page of history.list. When more pages follow, the next cursor is the id of the last
   * history record on this page: history.list returns records *after* startHistoryId, so that
   * cursor resumes exactly where this page ended and no page token has to be stored (the
   * SyncCursor shape stays unchanged). On the last page it is the response's historyId.
   */
  async listChanges(cursor: SyncCursor): Promise<ChangePage> {
    const c = googleCursorSchema.safeParse(cursor);
    if (!c.success) throw new ProviderError('google', 'invalid_request', 'Google history.list: not a Gmail sync cursor');
    const data = await this.call('history.list', (o) =>
      this.client.users.history.list(
        { userId: 'me', startHistoryId: c.data.historyId, historyTypes: ['messageAdded'], labelId: 'INBOX', maxResults: 500 },
        o,
      ),
    );
    const page = parse(gmailHistoryListSchema, data, 'history.list');
    const seen = new Set<string>();
    const added: string[] = [];
    for (const h of page.history ?? []) {
      for (const a of h.messagesAdded ?? []) {
        const labels = a.message.labelIds ?? [];
        // A message added to Drafts or Sent only is not inbound mail.
        if (!labels.includes('INBOX') || labels.includes('DRAFT')) continue;
        if (seen.has(a.message.id)) continue;
        seen.add(a.message.id);
        added.push(a.message.id);
      }
    }
    const records = page.history ?? [];
    const hasMore = page.nextPageToken !== undefined && records.length > 0;
    const nextHistoryId = hasMore ? records[records.length - 1]!.id : page.historyId;
    return { addedMessageIds: added, nextCursor: { v: 1, provider: 'google', historyId: nextHistoryId }, hasMore };
  }

  async listWindow(since: Date, pageToken?: string): Promise<WindowPage> {
    const after = Math.floor(since.getTime() / 1000);
    const data = await this.call('messages.list', (o) =>
      this.client.users.messages.list(
        { userId: 'me', q: `after:${after}`, labelIds: ['INBOX'], maxResults: 100, ...(pageToken ? { pageToken } : {}) },
        o,
      ),
    );
    const page = parse(gmailMessageListSchema, data, 'messages.list');
    return { messageIds: (page.messages ?? []).map((m) => m.id), nextPageToken: page.nextPageToken };
  }

  /**
   * `format=raw` read as a stream (gmail-raw-stream.ts): the base64url `raw` string is decoded as
   * it arrives and never held whole, so a 35 MB message costs a few chunks of memory, not the
   * ~47 MB string plus its decoded copy. Errors keep their Google reason: a non-2xx body is read
   * (capped) and mapped like any other call.
   */
  async fetchRaw(providerMessageId: string): Promise<RawMessage> {
    const body = await this.call('messages.get', async (o) => {
      const res = await this.client.users.messages.get(
        { userId: 'me', id: providerMessageId, format: 'raw' },
        // gaxios turns a streamed error body into "1,2,3…" text: take every status and map it here.
        { ...o, responseType: 'stream', validateStatus: () => true },
      );
      const stream = toNodeReadable(res.data as unknown);
      if (res.status < 200 || res.status >= 300) {
        throw { response: { status: res.status, headers: res.headers, data: await readCapped(stream, ERROR_BODY_LIMIT) } };
      }
      return { data: stream };
    });
    const { metadata: m, raw } = await readGmailRawMessage(body, {
      // Only when Google sends the metadata after a large `raw`: one extra minimal get.
      onMetadataLate: async (id) => {
        const data = await this.call('messages.get', (o) => this.client.users.messages.get({ userId: 'me', id: id ?? providerMessageId, format: 'minimal' }, o));
        const meta = parse(gmailMinimalMessageSchema, data, 'messages.get');
        return { threadId: meta.threadId, labelIds: meta.labelIds, internalDate: meta.internalDate };
      },
    });
    return {
      providerMessageId: m.id ?? providerMessageId,
      providerThreadId: m.threadId,
      raw,
      sizeEstimate: m.sizeEstimate,
      receivedAt: m.internalDate ? new Date(Number(m.internalDate)) : undefined,
      labelIds: m.labelIds ?? [],
    };
  }

  async findByInternetMessageId(internetMessageId: string): Promise<string | undefined> {
    const id = internetMessageId.trim().replace(/^<|>$/g, '');
    if (!/^[^\s<>"]+$/.test(id)) throw new ProviderError('google', 'invalid_request', 'Google messages.list: malformed Message-ID');
    // No label filter: the copy we sent carries SENT, not INBOX.
    const data = await this.call('messages.list', (o) =>
      this.client.users.messages.list({ userId: 'me', q: `rfc822msgid:${id}`, maxResults: 10 }, o),
    );
    return parse(gmailMessageListSchema, data, 'messages.list').messages?.[0]?.id;
  }

  async send(req: SendRequest): Promise<SendResult> {
    if (req.mime.length > GMAIL_MAX_SEND_BYTES) {
      throw new ProviderError('google', 'invalid_request', 'Google messages.send: message exceeds the 35 MB limit', { status: 413 });
    }
    const threadId = req.providerThreadId;
    const data = await this.call('messages.send', (o) => {
      if (req.mime.length <= this.jsonThreshold) {
        return this.client.users.messages.send(
          { userId: 'me', requestBody: { raw: req.mime.toString('base64url'), ...(threadId ? { threadId } : {}) } },
          o,
        );
      }
      // Upload endpoint: multipart/related (metadata + message) when threading, plain media otherwise.
      // The client-level rootUrl is not applied to `mediaUrl` (googleapis-common only rewrites
      // `url`), so the per-call rootUrl is required or the upload would go to gmail.googleapis.com.
      return this.client.users.messages.send(
        {
          userId: 'me',
          ...(threadId ? { requestBody: { threadId } } : {}),
          media: { mimeType: 'message/rfc822', body: Readable.from([req.mime]) },
        },
        { ...o, rootUrl: this.opts.endpoints.gmailRootUrl },
      );
    });
    const sent = parse(gmailSendResponseSchema, data, 'messages.send');
    return { providerMessageId: sent.id, providerThreadId: sent.threadId };
  }

  /**
   * users.settings.sendAs.list (1 quota unit). Google's discovery document accepts
   * gmail.readonly for it (also mail.google.com, gmail.modify, gmail.settings.basic), so the
   * scopes the connector already holds suffice; gmail.send alone does not.
   */
  async listSendAs(): Promise<SendAsAddress[]> {
    const data = await this.call('settings.sendAs.list', (o) => this.client.users.settings.sendAs.list({ userId: 'me' }, o));
    return (parse(gmailSendAsListSchema, data, 'settings.sendAs.list').sendAs ?? []).map((s) => {
      const isPrimary = s.isPrimary === true;
      return { address: s.sendAsEmail, displayName: s.displayName || undefined, isPrimary, verified: isPrimary || s.verificationStatus === 'accepted' };
    });
  }
}
